"""bms_emu.afe.lockin: the EIS lock-in (NCO + sin/cos MAC) against analytic truth.

Truth: exact tones (float) and their closed-form DFT (Dirichlet kernel), the derived error
bound (module docstring), the NCO's frequency measured from its own LUT output, and a scalar
pure-Python reference of the whole datapath (full-wave ``round(A sin)``, no quarter fold).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bms_emu.afe.lockin import (
    LockinFormat,
    amplitude_phase,
    drift_corrected_phasor,
    drift_corrected_phasors,
    drift_error_bound,
    drift_error_bounds,
    error_bound,
    frequency_resolution_Hz,
    lockin_accumulate,
    lockin_phasor,
    nco_frequency_Hz,
    nco_phase,
    nco_sin_cos,
    record_samples,
    sin_quarter_table,
    tuning_word,
)

FMT = LockinFormat()
#: The engine's frequencies (bms_emu.device.eis_engine defaults) at its 16 Hz sample rate and
#: at the C-ADC's 1 kHz output data rate.
ENGINE_F_HZ = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _scalar_lockin(x: list[list[int]], ftw: int, offset: list[int], fmt: LockinFormat
                   ) -> tuple[list[int], list[int], list[int], list[int]]:
    """Reference: one sample at a time in Python ints, sine from the full-wave formula.

    Returns acc_i, acc_q, sum d, sum n d per channel.
    """
    p, l_bits = fmt.phase_bits, fmt.lut_addr_bits
    shift = p - l_bits
    a = fmt.amplitude
    n_ch = len(offset)
    acc_i, acc_q, s0, s1 = [0] * n_ch, [0] * n_ch, [0] * n_ch, [0] * n_ch
    phase = 0
    for n, row in enumerate(x):
        m = ((phase + (1 << (shift - 1))) >> shift) % (1 << l_bits)
        s = math.floor(a * math.sin(2 * math.pi * m / (1 << l_bits)) + 0.5)
        c = math.floor(a * math.cos(2 * math.pi * m / (1 << l_bits)) + 0.5)
        for ch in range(n_ch):
            d = row[ch] - offset[ch]
            acc_i[ch] += d * c
            acc_q[ch] += d * s
            s0[ch] += d
            s1[ch] += n * d
        phase = (phase + ftw) % (1 << p)
    return acc_i, acc_q, s0, s1


def _tone_codes(n: int, f_Hz: float, f_odr_Hz: float, amp: float, phi: float, dc: int,
                bits: int = 16) -> np.ndarray:
    """``round(dc + amp cos(w n + phi))`` (round half up), shape (n,)."""
    t = np.arange(n) / f_odr_Hz
    y = dc + amp * np.cos(2 * np.pi * f_Hz * t + phi)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(np.floor(y + 0.5), lo, hi).astype(np.int64)


def test_tuning_word_is_ceil_and_the_frequency_error_spans_one_resolution_step() -> None:
    rng = np.random.default_rng(7)
    for f_odr in (16.0, 1000.0):
        res = frequency_resolution_Hz(f_odr)
        err = []
        for f in rng.uniform(1e-3, 0.49 * f_odr, 2000):
            ftw = tuning_word(float(f), f_odr)
            err.append((nco_frequency_Hz(ftw, f_odr) - f) / res)
        err = np.asarray(err)
        assert err.min() >= 0.0 and err.max() < 1.0 + 1e-6  # never slow, less than one step
        assert err.max() > 0.99 and err.min() < 0.01  # and the whole step occurs
    for bad in (0.0, -1.0, 8.0, math.nan):
        with pytest.raises(ValueError):
            tuning_word(bad, 16.0)


def test_nco_output_runs_at_the_tuning_word_frequency() -> None:
    """Measured from the LUT outputs: a coarse 20-bit phase makes the error visible."""
    fmt = LockinFormat(phase_bits=20)
    f_odr = 1000.0
    n_blocks, n_blk = 32, 2048
    for f in (1.2345, 7.77, 0.3):
        ftw = tuning_word(f, f_odr, fmt)
        want = nco_frequency_Hz(ftw, f_odr, fmt) - f
        assert 0 <= want < frequency_resolution_Hz(f_odr, fmt)
        sin, cos = nco_sin_cos(nco_phase(ftw, n_blocks * n_blk, fmt), fmt)
        n = np.arange(n_blocks * n_blk)
        # beat against the exact requested tone: the phase slope is 2 pi (f_nco - f)
        z = (cos + 1j * sin) * np.exp(-2j * np.pi * f * n / f_odr)
        ph = np.unwrap(np.angle(z.reshape(n_blocks, n_blk).sum(axis=1)))
        slope = np.polyfit(np.arange(n_blocks) * n_blk / f_odr, ph, 1)[0] / (2 * np.pi)
        assert abs(slope - want) < 1e-3 * frequency_resolution_Hz(f_odr, fmt)


def test_lut_fold_equals_the_full_wave_formula_at_every_index() -> None:
    shift = FMT.phase_bits - FMT.lut_addr_bits
    m = np.arange(1 << FMT.lut_addr_bits)
    sin, cos = nco_sin_cos(m.astype(np.uint64) << np.uint64(shift))
    a = FMT.amplitude
    want_s = [math.floor(a * math.sin(2 * math.pi * k / m.size) + 0.5) for k in m.tolist()]
    want_c = [math.floor(a * math.cos(2 * math.pi * k / m.size) + 0.5) for k in m.tolist()]
    assert sin.tolist() == want_s and cos.tolist() == want_c
    assert np.array_equal(np.roll(sin, -m.size // 2), -sin)  # exact half-turn antisymmetry
    assert np.abs(sin).max() == a and np.abs(cos).max() == a
    t = sin_quarter_table()
    assert t.size == (1 << (FMT.lut_addr_bits - 2)) + 1 and t[0] == 0 and t[-1] == a
    # the phase is rounded to the nearest point (half up), not truncated
    half = np.uint64(1 << (shift - 1))
    s_lo, _ = nco_sin_cos(np.array([half - np.uint64(1), half], dtype=np.uint64))
    assert s_lo.tolist() == [0, int(t[1])]


def test_vectorised_path_equals_the_scalar_reference() -> None:
    rng = np.random.default_rng(11)
    cases = [(tuning_word(1.0, 16.0), 300), (tuning_word(0.01, 16.0), 1700),
             (int(rng.integers(1, 1 << 47)), 900), (1, 50)]
    for ftw, n in cases:
        x = rng.integers(-32768, 32768, (n, 3))
        x[:5] = [[-32768, 32767, 0]] * 5  # the extremes
        off = rng.integers(-32768, 32768, 3)
        r = lockin_accumulate(x, ftw, off)
        want = _scalar_lockin(x.tolist(), ftw, off.tolist(), FMT)
        got = (r.acc_i.tolist(), r.acc_q.tolist(), r.sum_d.tolist(), r.sum_nd.tolist())
        assert got == want and r.n_samples == n
    # across the model's internal chunk boundary (65536 samples), one channel
    n = 70_000
    ftw = tuning_word(0.37, 16.0)
    x = rng.integers(-32768, 32768, (n, 1))
    r = lockin_accumulate(x, ftw, [123])
    got = (r.acc_i.tolist(), r.acc_q.tolist(), r.sum_d.tolist(), r.sum_nd.tolist())
    assert got == _scalar_lockin(x.tolist(), ftw, [123], FMT)


def test_population_shape_equals_one_channel_at_a_time() -> None:
    """(n_samples, n_devices, n_channels) with per-channel offsets: each channel on its own."""
    rng = np.random.default_rng(12)
    ftw = tuning_word(0.05, 16.0)
    x = rng.integers(-32768, 32768, (640, 3, 5))
    off = rng.integers(-32768, 32768, (3, 5))
    r = lockin_accumulate(x, ftw, off)
    assert r.acc_i.shape == (3, 5) and r.n_samples == 640
    for d in range(3):
        for c in range(5):
            one = lockin_accumulate(x[:, d, c], ftw, off[d, c])
            assert (one.acc_i[()], one.acc_q[()]) == (r.acc_i[d, c], r.acc_q[d, c])
            assert (one.sum_d[()], one.sum_nd[()]) == (r.sum_d[d, c], r.sum_nd[d, c])


@pytest.mark.parametrize(
    ("f_odr", "f"),
    [(16.0, f) for f in ENGINE_F_HZ] + [(1000.0, 0.01), (1000.0, 3.0), (17.0, 1.0)],
)
def test_pure_tone_amplitude_and_phase_within_the_derived_bound(f_odr: float, f: float) -> None:
    rng = np.random.default_rng(int(f * 1000) + int(f_odr))
    ftw = tuning_word(f, f_odr)
    n = record_samples(ftw, 3)
    assert n == round(3 * f_odr / f)  # whole periods of the requested frequency
    for amp in (20000.0, 1000.0, 3.7):
        phi = float(rng.uniform(-np.pi, np.pi))
        dc = int(rng.integers(-10000, 10000))
        x = _tone_codes(n, f, f_odr, amp, phi, dc)
        r = lockin_accumulate(x[:, None], ftw, [x[0]])
        got = lockin_phasor(r.acc_i, r.acc_q, n)[0]
        bound = float(error_bound(np.abs(x - x[0]).mean(), n, ftw, f, f_odr))
        assert abs(got - amp * np.exp(1j * phi)) <= bound
        a, p = amplitude_phase(r.acc_i, r.acc_q, n)
        assert abs(a[0] - amp) <= bound
        if amp > 10 * bound:
            assert abs(np.angle(np.exp(1j * (p[0] - phi)))) <= math.asin(bound / amp)
        # the bound is tight enough to mean something: ~1 code + 0.15 % of the swing
        assert bound <= 1.0 + 2 * np.abs(x - x[0]).mean() * (math.pi / 4096 + 3e-5)


def test_phase_rounding_is_unbiased_over_random_phases() -> None:
    """Index rounding errors average out (truncation would bias the phase by pi/4096)."""
    f_odr, f = 16.0, 0.07  # odd FTW: every LUT index rounds
    ftw = tuning_word(f, f_odr)
    n = 5 * round(f_odr / f * 7)  # 35 periods of 228.57 samples: 1600 samples x 5
    rng = np.random.default_rng(3)
    ratios = []
    for phi in rng.uniform(-np.pi, np.pi, 100):
        x = 16000.0 * np.cos(2 * np.pi * f * np.arange(n) / f_odr + phi)
        r = lockin_accumulate(np.floor(x + 0.5).astype(np.int64)[:, None], ftw)
        ratios.append(lockin_phasor(r.acc_i, r.acc_q, n)[0] / (16000.0 * np.exp(1j * phi)))
    mean = np.mean(ratios)
    assert abs(np.angle(mean)) < 0.1 * math.pi / 4096
    assert abs(abs(mean) - 1) < 1e-4


def test_dc_leakage_is_zero_over_whole_even_periods_and_bounded_otherwise() -> None:
    for f_odr in (16.0, 1000.0):
        for f in ENGINE_F_HZ:
            ftw = tuning_word(f, f_odr)
            n = record_samples(ftw, 3)
            for dc in (-32768, 32767):
                # samples n and n + N/2 sit half a turn apart: their LUT values cancel exactly
                r = lockin_accumulate(np.full((n, 1), dc), ftw)
                assert r.acc_i.tolist() == [0] and r.acc_q.tolist() == [0]
    # odd samples per period: no pairs, the DC leaks (why the engine subtracts an offset)
    f_odr, f = 17.0, 1.0
    ftw = tuning_word(f, f_odr)
    n = record_samples(ftw, 5)
    r = lockin_accumulate(np.full((n, 1), 30000), ftw)
    leak = abs(lockin_phasor(r.acc_i, r.acc_q, n)[0])
    assert 0 < leak <= float(error_bound(30000, n, ftw, f, f_odr, q_max=0.0))
    # with the offset latched, a constant contributes nothing at all
    r = lockin_accumulate(np.full((n, 1), 30000), ftw, 30000)
    assert r.acc_i.tolist() == [0] and r.acc_q.tolist() == [0]


def _dirichlet(theta: float, n: int) -> complex:
    """``(1/N) sum_{k<N} exp(j theta k)`` in closed form."""
    if abs(math.sin(theta / 2)) < 1e-15:
        return complex(np.exp(1j * theta * (n - 1) / 2)) * (1 if math.cos(theta / 2) > 0 else
                                                              (-1) ** (n - 1))
    return complex(np.exp(1j * theta * (n - 1) / 2) * math.sin(n * theta / 2)
                   / (n * math.sin(theta / 2)))


@pytest.mark.parametrize("case", ["2f", "3f", "half_bin", "short_record", "long_record"])
def test_off_bin_and_off_period_leakage_follows_the_dirichlet_kernel(case: str) -> None:
    f_odr, f, k = 16.0, 0.2, 4  # 80 samples per period
    ftw = tuning_word(f, f_odr)
    n = record_samples(ftw, k)
    f2 = {"2f": 2 * f, "3f": 3 * f, "half_bin": f * (1 + 0.5 / k)}.get(case, f)
    n = {"short_record": n - 37, "long_record": n + 23}.get(case, n)
    amp, phi = 12000.0, 0.7
    x = _tone_codes(n, f2, f_odr, amp, phi, 0)
    r = lockin_accumulate(x[:, None], ftw)
    got = lockin_phasor(r.acc_i, r.acc_q, n)[0]
    w, w2 = 2 * np.pi * f / f_odr, 2 * np.pi * f2 / f_odr
    # (2/N) sum amp cos(w2 n + phi) e^{-j w n}: the positive and the image frequency
    want = amp * (np.exp(1j * phi) * _dirichlet(w2 - w, n)
                  + np.exp(-1j * phi) * _dirichlet(-w2 - w, n))
    bound = float(error_bound(np.abs(x).mean(), n, ftw, f, f_odr))
    assert abs(got - want) <= bound
    if case in ("2f", "3f"):
        assert abs(want) < 1e-9 * amp  # orthogonal over whole periods
    else:
        assert abs(want - amp * np.exp(1j * phi)) > 5 * bound  # the leakage is real


def test_accumulator_width_holds_the_worst_case_and_is_not_wider_than_needed() -> None:
    for fmt in (FMT, LockinFormat(code_bits=22), LockinFormat(code_bits=16, count_bits=20)):
        worst = fmt.max_samples * ((1 << fmt.code_bits) - 1) * fmt.amplitude  # |d| |lut| N
        assert worst < 1 << (fmt.acc_bits - 1)
        assert worst >= 1 << (fmt.acc_bits - 2)  # one bit fewer would not hold it
    assert FMT.acc_bits == 57 and LockinFormat(code_bits=22).acc_bits == 63
    for fmt in (FMT, LockinFormat(code_bits=22, count_bits=21)):  # the drift moments
        n, dmax = fmt.max_samples, (1 << fmt.code_bits) - 1
        assert (1 << (fmt.sum_d_bits - 2)) <= n * dmax < 1 << (fmt.sum_d_bits - 1)
        s1 = dmax * n * (n - 1) // 2
        assert (1 << (fmt.sum_nd_bits - 2)) <= s1 < 1 << (fmt.sum_nd_bits - 1)
    assert FMT.sum_d_bits == 42 and FMT.sum_nd_bits == 66
    with pytest.raises(ValueError, match="63"):
        LockinFormat(code_bits=23)
    # adversarial full-length record: full-scale codes with the sign of cos, every sample
    fmt = LockinFormat(count_bits=20)
    ftw = tuning_word(1.0, 1000.0, fmt)
    n = fmt.max_samples
    _, cos = nco_sin_cos(nco_phase(ftw, n, fmt), fmt)
    x = np.where(cos >= 0, 32767, -32768)
    r = lockin_accumulate(x[:, None], ftw, 0, fmt)
    exact = sum(int(a) * int(b) for a, b in zip(x.tolist(), cos.tolist(), strict=True))
    assert int(r.acc_i[0]) == exact
    # the first moment of a full-scale constant over the longest record: beyond int64 widths
    r = lockin_accumulate(np.full((n, 1), 32767), ftw, -32768, fmt)
    assert r.sum_nd[0] == 65535 * n * (n - 1) // 2 and r.sum_d[0] == 65535 * n
    assert 1 << (fmt.acc_bits - 3) <= exact < 1 << (fmt.acc_bits - 1)


def test_record_length_and_input_checks() -> None:
    # 255 periods of 0.01 Hz at 1 kHz: whole periods, and within the 25-bit counter
    assert record_samples(tuning_word(0.01, 1000.0), 255) == 255 * 100_000
    with pytest.raises(ValueError, match="counter"):
        record_samples(tuning_word(0.01, 1000.0), 400)
    with pytest.raises(ValueError, match="n_periods"):
        record_samples(1 << 40, 0)
    with pytest.raises(ValueError, match="FTW"):
        record_samples(1 << 47, 1)
    with pytest.raises(ValueError, match="16-bit"):
        lockin_accumulate([[32768]], 1 << 40)
    with pytest.raises(ValueError, match="x_offset"):
        lockin_accumulate([[0]], 1 << 40, -40000)
    with pytest.raises(ValueError, match="counter"):
        lockin_accumulate(np.zeros((1 << 10, 1)), 1 << 40, 0, LockinFormat(count_bits=10))
    with pytest.raises(ValueError, match="n_samples"):
        lockin_phasor(0, 0, 0)
    with pytest.raises(ValueError, match="integer codes"):
        lockin_accumulate([[1.5]], 1 << 40)
    with pytest.raises(ValueError, match="integer codes"):
        lockin_accumulate([[1]], 1 << 40, np.nan)
    with pytest.raises(ValueError, match="time axis"):
        lockin_accumulate(5, 1 << 40)
    # integer-valued floats are codes
    assert lockin_accumulate([[2.0]], 1 << 40, 1.0).acc_i.tolist() == [32767]


@pytest.mark.parametrize(
    ("f_odr", "f", "k"), [(16.0, 1.0, 3), (16.0, 0.2, 3), (16.0, 0.01, 3), (1000.0, 0.01, 3),
                          (16.0, 0.03, 3), (17.0, 1.0, 5)],
)
def test_drift_corrected_phasor_equals_the_float_sine_plus_drift_fit(f_odr: float, f: float,
                                                                     k: int) -> None:
    """Tone + linear drift + curvature + noise: the closed form from the four accumulators
    matches fit_tone(poly_degree=1) (float least squares) within the derived bound, and with
    an exactly linear drift it recovers the tone that the plain lock-in misses."""
    from bms_emu.afe.eis import fit_tone

    rng = np.random.default_rng(int(f * 100) + k)
    ftw = tuning_word(f, f_odr)
    n = record_samples(ftw, k)
    t = np.arange(n) / f_odr
    amp, phi = 150.0, float(rng.uniform(-np.pi, np.pi))
    slope = 2000.0 / n  # 2000 codes of drift over the record: 13x the tone
    y = (7000.0 + slope * np.arange(n) + 300.0 * (2 * np.arange(n) / n - 1) ** 2
         + amp * np.cos(2 * np.pi * f * t + phi) + rng.normal(0.0, 2.0, n))
    x = np.floor(y + 0.5).astype(np.int64)
    r = lockin_accumulate(x[:, None], ftw, [x[0]])
    got, beta = drift_corrected_phasor(r, f, f_odr)
    e = error_bound(np.abs(x - x[0]).mean(), n, ftw, f, f_odr)
    bound = float(drift_error_bound(e, n, f, f_odr))
    want = fit_tone(t, y, f, poly_degree=1).phasor[0]
    assert abs(got[0] - want) <= bound
    assert bound < 0.03 * amp + 2.0  # meaningful next to the tone
    # exactly linear drift, no noise: the float fit is the truth, so is the corrected lock-in
    y_lin = 7000.0 + slope * np.arange(n) + amp * np.cos(2 * np.pi * f * t + phi)
    x = np.floor(y_lin + 0.5).astype(np.int64)
    r = lockin_accumulate(x[:, None], ftw, [x[0]])
    got, beta = drift_corrected_phasor(r, f, f_odr)
    e = error_bound(np.abs(x - x[0]).mean(), n, ftw, f, f_odr)
    assert abs(got[0] - amp * np.exp(1j * phi)) <= float(drift_error_bound(e, n, f, f_odr))
    assert abs(beta[0] - slope) < 1e-3 * slope
    plain = lockin_phasor(r.acc_i, r.acc_q, n)[0]
    assert abs(plain - amp * np.exp(1j * phi)) > 10 * float(e)  # the drift leaks without it


def test_drift_correction_needs_whole_periods() -> None:
    ftw = tuning_word(1.0, 16.0)
    r = lockin_accumulate(np.zeros((40, 1), dtype=np.int64), ftw)
    with pytest.raises(ValueError, match="whole periods"):
        drift_corrected_phasor(r, 1.0, 16.0)
    with pytest.raises(ValueError, match="whole periods"):
        drift_error_bound(1.0, 40, 1.0, 16.0)


def test_joint_drift_correction_of_several_tones_equals_the_float_least_squares() -> None:
    """Multisine + drift: one lock-in per tone, one joint solve; truth = numpy lstsq on
    [1, n, cos_k, sin_k]. Correcting a tone alone is biased by the other tones' ramp
    projections (here 0.6 % of the lowest tone, ~90x the joint solve's error), which is why
    the solve is joint."""
    f_odr, freqs = 16.0, (0.05, 0.1, 0.2, 0.5)
    n = 3 * 320  # three periods of the lowest tone
    rng = np.random.default_rng(21)
    amps = rng.uniform(100.0, 300.0, len(freqs))
    phis = rng.uniform(-np.pi, np.pi, len(freqs))
    k = np.arange(n)
    y = 5000.0 + 3.0 * k + 200.0 * (2 * k / n - 1) ** 2 + rng.normal(0.0, 2.0, n)
    y += sum(a * np.cos(2 * np.pi * f * k / f_odr + p)
             for a, f, p in zip(amps, freqs, phis, strict=True))
    x = np.floor(y + 0.5).astype(np.int64)
    ftws = [tuning_word(f, f_odr) for f in freqs]
    res = [lockin_accumulate(x[:, None], ftw, [x[0]]) for ftw in ftws]
    got, beta = drift_corrected_phasors(res, freqs, f_odr)
    assert got.shape == (len(freqs), 1) and beta.shape == (1,)
    # independent truth: float least squares with every tone and a line
    cols = [np.ones(n), k - (n - 1) / 2]
    for f in freqs:
        cols += [np.cos(2 * np.pi * f * k / f_odr), np.sin(2 * np.pi * f * k / f_odr)]
    coef = np.linalg.lstsq(np.stack(cols, axis=1), y, rcond=None)[0]
    want = coef[2::2] - 1j * coef[3::2]
    e = [error_bound(np.abs(x - x[0]).mean(), n, ftw, f, f_odr)
         for ftw, f in zip(ftws, freqs, strict=True)]
    bounds = drift_error_bounds(e, n, freqs, f_odr)  # (n_tones,): scalar mean|d|
    assert np.all(np.abs(got[:, 0] - want) <= bounds)
    assert abs(beta[0] - coef[1]) < 1e-3 * abs(coef[1])
    alone = drift_corrected_phasor(res[0], freqs[0], f_odr)[0][0]
    assert abs(alone - want[0]) > max(10 * abs(got[0, 0] - want[0]), 2e-3 * amps[0])
    with pytest.raises(ValueError, match="one record"):
        drift_corrected_phasors([res[0], lockin_accumulate(x[:-320, None], ftws[1])],
                                freqs[:2], f_odr)
    with pytest.raises(ValueError, match="repeat"):
        drift_corrected_phasors(res[:2], (0.05, 0.05), f_odr)
    with pytest.raises(ValueError, match="tones"):
        drift_corrected_phasors(res[:2], freqs[:1], f_odr)
