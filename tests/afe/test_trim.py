"""Trim: analytic oracles for each scheme, code quantisation statistics, the bit-true datapath
against exact arithmetic, the ECC-protected image, and the board re-trim after reflow."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from bms_emu.afe.die_thermal import TempSensorParams
from bms_emu.afe.ecc import EccStatus
from bms_emu.afe.reference import ReferenceParams, ReferenceState
from bms_emu.afe.trim import (
    IMAGE_WORDS,
    Devices,
    MeasurementPath,
    TrimCodes,
    TrimConditions,
    TrimFormat,
    TrimScheme,
    TrimTesterSpec,
    board_trim,
    correct_code,
    correct_code_float,
    effective_reference_error_ppm,
    measurement_error,
    pack_trim_image,
    read_trim_image,
    trim,
)

FMT = TrimFormat()
G_LSB_PPM = 1e6 * 2.0**-19  # 1.907 ppm
TC_LSB_PPM = 1e6 * 2.0**-24  # 0.0596 ppm/C
# Evaluation temperatures on the sensor grid (1/16 C), so sensor quantisation adds nothing.
T_GRID = np.arange(0, 65 * 16 + 1) / 16.0


def _population(n: int, seed: int, **fixed: float) -> ReferenceParams:
    """Random e0 and a1 (and any fixed fields); no hysteresis, reflow or drift."""
    rng = np.random.default_rng(seed)
    p = ReferenceParams.constant(n, **fixed)
    kw = {k: getattr(p, k) for k in p.__dataclass_fields__}
    kw["e0_ppm"] = rng.normal(0, 1000, n)
    kw["a1_ppm_per_C"] = rng.normal(0, 10, n)
    return ReferenceParams(**kw)


def _grid(n: int) -> np.ndarray:
    return np.broadcast_to(T_GRID, (n, T_GRID.size))


def _linear_bound_ppm(t1: float, t2: float, temps: np.ndarray) -> np.ndarray:
    """Quantisation bound of the two-temperature trim (reference-referred, ppm).

    With exact solutions G*, TC*, the tester quantises TC (error <= TC_LSB/2) and then centres
    the gain on the two points before quantising it (error <= G_LSB/2), so the applied
    multiplier differs from the ideal one by dg + dt (T - Tmid), Tmid = (T1 + T2)/2. Dividing
    by the multiplier (within 1 +- 0.5 % here) turns that into the residual.
    """
    return (G_LSB_PPM / 2 + TC_LSB_PPM / 2 * np.abs(temps - (t1 + t2) / 2)) * 1.005


# ---- analytic oracles ---------------------------------------------------------------------


@pytest.mark.parametrize(("t1", "t2"), [(0.0, 65.0), (25.0, 85.0)])
def test_two_temp_trim_of_a_linear_tempco_leaves_only_quantisation(t1: float, t2: float) -> None:
    n = 4000
    dev = Devices.with_ideal_path(_population(n, 1))
    res = trim(
        dev, "two_temp", np.random.default_rng(0), conditions=TrimConditions(t1_C=t1, t2_C=t2)
    )
    err = effective_reference_error_ppm(dev, res.codes, None, _grid(n))
    bound = _linear_bound_ppm(t1, t2, T_GRID)
    assert np.all(np.abs(err) <= bound)
    # Not vacuous: residuals use most of the bound somewhere, and untrimmed errors are huge.
    assert np.abs(err).max() > 0.5 * bound.min()
    untrimmed = effective_reference_error_ppm(dev, TrimCodes.zeros(n), None, _grid(n))
    assert np.abs(untrimmed).max() > 1000


@pytest.mark.parametrize("a2", [0.24, -0.1])
def test_two_temp_trim_of_a_parabola_leaves_the_chord_residual(a2: float) -> None:
    t1, t2 = 0.0, 65.0
    n = 2000
    p = _population(n, 2, a2_ppm_per_C2=a2)
    dev = Devices.with_ideal_path(p)
    res = trim(
        dev, "two_temp", np.random.default_rng(0), conditions=TrimConditions(t1_C=t1, t2_C=t2)
    )
    err = effective_reference_error_ppm(dev, res.codes, None, _grid(n))
    # Chord through (T1, T2) of eps(T) = e0 + a1 dT + a2 dT^2 leaves a2 (T - T1)(T - T2); the
    # corrected chip divides by the chord, so the reference-referred residual is
    # a2 (T - T1)(T - T2) / (1 + 1e-6 chord(T)).
    d = T_GRID - 25.0
    eps = p.e0_ppm[:, None] + p.a1_ppm_per_C[:, None] * d + a2 * d**2
    para = a2 * (T_GRID - t1) * (T_GRID - t2)
    expected = para / (1 + 1e-6 * (eps - para))
    assert np.all(np.abs(err - expected) <= _linear_bound_ppm(t1, t2, T_GRID))
    # REFERENCE.md figure: the mid-range extreme is -a2 (T2 - T1)^2 / 4 (254 ppm for 0.24).
    mid = np.flatnonzero(T_GRID == (t1 + t2) / 2)[0]
    peak = -a2 * (t2 - t1) ** 2 / 4
    bound_mid = G_LSB_PPM / 2 * 1.005 + abs(peak) * 0.005  # quantisation + the 1/(1+chord)
    np.testing.assert_array_less(np.abs(err[:, mid] - peak), bound_mid)
    if a2 == 0.24:
        assert peak == pytest.approx(-253.5)


def test_gain_code_residual_is_uniform_over_half_an_lsb() -> None:
    n = 100_000
    dev = Devices.with_ideal_path(_population(n, 3))
    res = trim(dev, "one_point", np.random.default_rng(0), conditions=TrimConditions(t1_C=25.0))
    resid = effective_reference_error_ppm(dev, res.codes, None, 25.0)
    # Uniform on +-LSB/2 (scaled by the multiplier, within 1 +- 0.5 %).
    assert np.abs(resid).max() <= G_LSB_PPM / 2 * 1.005
    assert resid.std() == pytest.approx(G_LSB_PPM / math.sqrt(12), rel=0.02)
    ks = stats.kstest(resid / G_LSB_PPM, stats.uniform(loc=-0.5, scale=1.0).cdf)
    assert ks.statistic < 0.01


def test_two_voltage_trim_removes_path_gain_and_offset_at_the_trim_temperature() -> None:
    n = 3000
    rng = np.random.default_rng(4)
    p = _population(n, 4)
    path = MeasurementPath(rng.normal(0, 300, n), rng.normal(0, 500, n))
    dev = Devices(p, path, TempSensorParams.ideal(n))
    cond = TrimConditions(t1_C=25.0, v_lo_V=2.0, v_hi_V=4.0)
    res = trim(dev, TrimScheme.TWO_VOLTAGE, rng, conditions=cond)
    v = np.linspace(0.5, 5.0, 19)
    _, err_mV = measurement_error(dev, res.codes, None, 25.0, 0.0, np.broadcast_to(v, (n, v.size)))
    # Gain quantisation dg tilts the line about the centre of the two points (the offset is
    # centred), offset quantisation shifts it: |err| <= LSB_g/2 |v - 3 V| + LSB_o/2.
    bound_mV = 1e3 * (2.0**-20 * np.abs(v - 3.0) * 1.005 + FMT.offset_lsb_V / 2) + 1e-9
    assert np.all(np.abs(err_mV) <= bound_mV)
    untrimmed = measurement_error(dev, TrimCodes.zeros(n), None, 25.0, 0.0, 0.5)[1]
    assert np.abs(untrimmed).max() > 1.0  # 500 uV offset sigma: > 1 mV somewhere


def test_sensor_offset_cancels_in_the_two_temperature_trim() -> None:
    n = 500
    p = _population(n, 5)
    ideal = Devices.with_ideal_path(p)
    # Offsets on the sensor grid: the chord is fitted and applied in the sensor's own scale.
    offsets = np.random.default_rng(5).integers(-48, 49, n) / 16.0
    shifted = Devices(
        p, MeasurementPath.ideal(n), TempSensorParams(offsets, np.zeros(n), np.zeros(n))
    )
    cond = TrimConditions(t1_C=0.0, t2_C=65.0)
    e_ideal = effective_reference_error_ppm(
        ideal,
        trim(ideal, "two_temp", np.random.default_rng(0), conditions=cond).codes,
        None,
        _grid(n),
    )
    e_shift = effective_reference_error_ppm(
        shifted,
        trim(shifted, "two_temp", np.random.default_rng(0), conditions=cond).codes,
        None,
        _grid(n),
    )
    assert np.all(np.abs(e_shift - e_ideal) <= 2 * _linear_bound_ppm(0.0, 65.0, T_GRID))


def test_two_temp_codes_match_a_scalar_solver() -> None:
    n = 25
    p = _population(n, 6, a2_ppm_per_C2=-0.05)
    dev = Devices.with_ideal_path(p)
    res = trim(
        dev, "two_temp", np.random.default_rng(0), conditions=TrimConditions(t1_C=0.0, t2_C=65.0)
    )
    for i in range(n):
        k = []
        for temp in (0.0, 65.0):
            d = temp - 25.0
            ppm = p.e0_ppm[i] + p.a1_ppm_per_C[i] * d - 0.05 * d * d
            k.append(1 + 1e-6 * ppm)  # target / raw = V_ref / v_nom for an ideal path
        tc = math.floor((k[1] - k[0]) / 65.0 / 2.0**-24 + 0.5)
        g = ((k[0] - 1 - tc * 2.0**-24 * -25.0) + (k[1] - 1 - tc * 2.0**-24 * 40.0)) / 2
        assert (res.codes.tempco[i], res.codes.gain[i]) == (tc, math.floor(g / 2.0**-19 + 0.5))


# ---- bit-true datapath --------------------------------------------------------------------


def scalar_correct(raw: int, gain: int, tc: int, off: int, d: int, board: int) -> int:
    """The datapath spelt out with Python ints (unbounded, so no overflow can hide)."""
    m = (1 << 28) + ((gain + board) << 9) + tc * (d - 400)
    acc = raw * m + (off << 26)
    out = (acc + (1 << 27)) >> 28  # Python >> floors: round half up
    return max(-(1 << 23), min((1 << 23) - 1, out))


def _random_inputs(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.integers(-(1 << 23), 1 << 23, n)
    codes = [rng.integers(-(1 << 15), 1 << 15, n) for _ in range(3)]
    d = rng.integers(-(1 << 15), 1 << 15, n)
    board = rng.integers(-(1 << 15), 1 << 15, n)
    # Make a third of the cases realistic (small codes, die temps 0-65 C) and pin extremes.
    k = n // 3
    for c, s in zip(codes, (3000, 2000, 4000), strict=True):
        c[:k] //= 65536 // s
    d[:k] = rng.integers(0, 65 * 16, k)
    board[:k] //= 64
    raw[-4:] = [-(1 << 23), (1 << 23) - 1, 0, 1]
    codes[0][-4:] = [-(1 << 15), (1 << 15) - 1, -(1 << 15), (1 << 15) - 1]
    return [raw, codes[0], codes[1], codes[2], d, board]


def test_datapath_matches_scalar_python_int_reference_bit_for_bit() -> None:
    raw, gain, tc, off, d, board = _random_inputs(20_000, 7)
    got = correct_code(raw, gain, tc, off, d, board)
    want = [
        scalar_correct(*map(int, args)) for args in zip(raw, gain, tc, off, d, board, strict=True)
    ]
    assert got.tolist() == want


def test_datapath_is_the_exact_value_rounded_half_up() -> None:
    raw, gain, tc, off, d, board = _random_inputs(20_000, 8)
    got = correct_code(raw, gain, tc, off, d, board)
    real = correct_code_float(raw, gain, tc, off, d, board)
    in_range = np.abs(real) < (1 << 23) - 1
    # Everything before the final shift is exact, so |int - real| <= 1/2 LSB (float64 carries
    # real to ~1e-9 LSB here, hence the small margin).
    assert np.all(np.abs(got[in_range] - real[in_range]) <= 0.5 + 1e-6)
    assert np.all(got[~in_range] == np.where(real[~in_range] > 0, (1 << 23) - 1, -(1 << 23)))
    # Exact rational check on a sample, including ties.
    for i in range(0, 20_000, 97):
        x = Fraction(int(raw[i])) * (
            1
            + Fraction(int(gain[i]) + int(board[i]), 1 << 19)
            + Fraction(int(tc[i]) * (int(d[i]) - 400), 1 << 28)
        ) + Fraction(int(off[i]), 4)
        want = max(-(1 << 23), min((1 << 23) - 1, math.floor(x + Fraction(1, 2))))
        assert int(got[i]) == want
    tie = correct_code(1, 0, 0, 2, 400)  # 1 + 2/4 = 1.5 -> rounds up to 2
    assert int(tie) == 2 and int(correct_code(-1, 0, 0, -2, 400)) == -1  # -1.5 -> -1


def test_datapath_broadcasts_device_codes_over_samples() -> None:
    raw = np.arange(12, dtype=np.int64).reshape(3, 4) * 100_000
    gain = np.array([0, 5243, -5243])
    got = correct_code(raw, gain, 0, 0, 400)
    want = [[scalar_correct(int(r), int(gain[i]), 0, 0, 400, 0) for r in raw[i]] for i in range(3)]
    assert got.tolist() == want


def test_format_widths_fit_int64() -> None:
    assert FMT.widths == {"dT": 17, "p": 33, "m": 35, "acc": 60}
    assert FMT.t_ref_code == 400
    with pytest.raises(ValueError, match="multiple"):
        TrimFormat(t_ref_C=25.01)


# ---- trim memory image --------------------------------------------------------------------


def test_trim_image_round_trip_and_ecc() -> None:
    rng = np.random.default_rng(9)
    n = 50
    codes = TrimCodes(*(rng.integers(-(1 << 15), 1 << 15, n) for _ in range(4)))
    image = pack_trim_image(codes, TrimScheme.TWO_TEMP, np.arange(n) % 2 == 0)
    assert image.shape == (n, IMAGE_WORDS) and image.dtype == np.uint32
    got, scheme, valid, status = read_trim_image(image)
    for name in ("gain", "tempco", "offset", "board"):
        np.testing.assert_array_equal(getattr(got, name), getattr(codes, name))
    assert np.all(scheme == 2) and valid.tolist() == (np.arange(n) % 2 == 0).tolist()
    assert np.all(status == EccStatus.OK)
    # One flipped bit per device, anywhere: corrected, codes unchanged.
    hit = image.copy()
    word, bit = rng.integers(0, IMAGE_WORDS, n), rng.integers(0, 22, n)
    hit[np.arange(n), word] ^= np.uint32(1) << bit.astype(np.uint32)
    got, _, _, status = read_trim_image(hit)
    np.testing.assert_array_equal(got.gain, codes.gain)
    np.testing.assert_array_equal(got.board, codes.board)
    assert np.all(status == EccStatus.CORRECTED)
    # Two flipped bits in one word: detected, the chip falls back to untrimmed codes.
    hit = image.copy()
    hit[:, 1] ^= np.uint32(0b11 << 5)
    got, scheme, _, status = read_trim_image(hit)
    assert np.all(status == EccStatus.UNCORRECTABLE)
    assert np.all(got.gain == 0) and np.all(scheme == 0)


# ---- reflow and board trim ----------------------------------------------------------------


def test_board_trim_after_reflow_removes_the_shift() -> None:
    n = 20_000
    tau, r, shift = 200.0, 0.5, 80.0
    p = _population(n, 10, reflow_ppm=shift, reflow_recovery_frac=r, reflow_tau_h=tau)
    dev = Devices.with_ideal_path(p)
    rng = np.random.default_rng(10)
    state = ReferenceState.new(n)
    factory = trim(
        dev, "two_temp", rng, state=state, conditions=TrimConditions(t1_C=0.0, t2_C=65.0)
    )
    state.assemble(0.0)
    # Before the board trim: the reference sits high by the reflow shift at 48 h.
    t_b = 48.0
    at_board = shift * (1 - r + r * math.exp(-t_b / tau))
    before = effective_reference_error_ppm(dev, factory.codes, state, 25.0, t_b)
    # (quantisation bound, plus 0.5 % of the shift for the division by the multiplier)
    bound = _linear_bound_ppm(0.0, 65.0, np.array(25.0)) + 0.005 * at_board
    assert np.abs(before - at_board).max() <= bound
    noise_uV = 20.0
    tester = TrimTesterSpec(noise_uV=noise_uV)
    board = board_trim(dev, factory, state, rng, temp_die_C=25.0, t_h=t_b, tester=tester)
    assert board.board_valid.all()
    after = effective_reference_error_ppm(dev, board.codes, state, 25.0, t_b)
    # Residual = board-code quantisation (uniform +-LSB/2) + tester noise (20 uV at 3.3 V).
    noise_ppm = noise_uV / 3.3
    assert np.abs(after).max() <= G_LSB_PPM / 2 * 1.005 + 5 * noise_ppm
    assert after.std() == pytest.approx(math.hypot(G_LSB_PPM / math.sqrt(12), noise_ppm), rel=0.03)
    # The recovery continues after the board trim: later error = the part recovered since.
    t_late = 1000.0
    later = effective_reference_error_ppm(dev, board.codes, state, 25.0, t_late)
    drift_back = shift * r * (math.exp(-t_late / tau) - math.exp(-t_b / tau))
    assert np.mean(later - after) == pytest.approx(drift_back, rel=1e-3)
    # The image carries the board code through the ECC.
    codes, _, valid, status = read_trim_image(board.image)
    np.testing.assert_array_equal(codes.board, board.codes.board)
    assert valid.all() and np.all(status == EccStatus.OK)


def test_trim_hot_point_sets_the_hysteresis_state() -> None:
    n = 10
    p = _population(n, 11, hyst_ppm=100.0)
    dev = Devices.with_ideal_path(p)
    state = ReferenceState.new(n)
    res = trim(
        dev,
        "two_temp",
        np.random.default_rng(0),
        state=state,
        conditions=TrimConditions(t1_C=25.0, t2_C=85.0),
    )
    assert np.all(state.hyst_m == 1.0)  # 60 C excursion: full hot state
    # The +50 ppm hysteresis step between the trim points (neutral at 25 C, hot at 85 C) is
    # taken for tempco, and the chip stays in the hot state: back at 25 C it reads as if its
    # reference were +hyst/2 = +50 ppm high (so trim order matters).
    at25 = effective_reference_error_ppm(dev, res.codes, state, 25.0)
    bound = G_LSB_PPM / 2 + TC_LSB_PPM / 2 * 30 + 0.005 * 50
    assert np.abs(at25 - 50.0).max() <= bound
    # A cold excursion then moves the chip by the full hysteresis (100 ppm, reading drops).
    state.observe_temperature(p, 0.0)
    cold = effective_reference_error_ppm(dev, res.codes, state, 25.0)
    np.testing.assert_allclose(cold - at25, -100.0, rtol=2e-3)


def test_scheme_names_and_none() -> None:
    dev = Devices.with_ideal_path(_population(3, 12))
    res = trim(dev, "none", np.random.default_rng(0))
    assert res.scheme is TrimScheme.NONE and np.all(res.codes.gain == 0)
    with pytest.raises(KeyError):
        trim(dev, "three_point", np.random.default_rng(0))


def test_random_seed_reproducible() -> None:
    dev = Devices.with_ideal_path(_population(100, 13))
    tester = TrimTesterSpec(noise_uV=30.0)
    a = trim(dev, "two_temp", np.random.default_rng(42), tester=tester)
    b = trim(dev, "two_temp", np.random.default_rng(42), tester=tester)
    np.testing.assert_array_equal(a.image, b.image)
