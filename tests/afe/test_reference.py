"""Voltage reference model: tempco, hysteresis, reflow, drift and noise against analytic truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import welch

from bms_emu.afe.reference import (
    BANDGAP_SPEC,
    BURIED_ZENER_SPEC,
    HAVE_NUMBA,
    ReferenceNoise,
    ReferenceParams,
    ReferenceScalars,
    ReferenceState,
    hysteresis_update,
    hysteresis_update_scalar,
    reference_error_ppm,
    sample_reference,
    v_ref_scalar_V,
    v_ref_V,
)


def scalar_v_ref(
    p: ReferenceParams, i: int, temp_C: float, t_h: float, m: float, ta: float
) -> float:
    """The REFERENCE.md section-3 formula for one device, written out with math."""
    d = temp_C - 25.0
    ppm = p.e0_ppm[i] + p.a1_ppm_per_C[i] * d + p.a2_ppm_per_C2[i] * d * d
    ppm += p.hyst_ppm[i] * m / 2
    ppm += p.drift_ppm_per_sqrt_kh[i] * math.sqrt(t_h / 1000.0)
    if not math.isnan(ta) and t_h >= ta:
        r = p.reflow_recovery_frac[i]
        ppm += p.reflow_ppm[i] * ((1 - r) + r * math.exp(-(t_h - ta) / p.reflow_tau_h[i]))
    return p.v_nom_V[i] * (1 + ppm * 1e-6)


def scalar_play(m: float, temp_C: float, thr: float, full: float) -> float:
    """Play operator, one device, branch by branch."""
    d = temp_C - 25.0
    f = min(max((abs(d) - thr) / (full - thr), 0.0), 1.0)
    if d > 0:
        return max(m, 2 * f - 1)
    if d < 0:
        return min(m, 1 - 2 * f)
    return m


def test_v_ref_grid_matches_scalar_formula() -> None:
    rng = np.random.default_rng(3)
    p = sample_reference(7, BANDGAP_SPEC, rng)
    state = ReferenceState.new(7)
    state.hyst_m = rng.uniform(-1, 1, 7)
    state.assemble(100.0, mask=np.arange(7) % 2 == 0)
    temps = np.linspace(-10.0, 90.0, 6)
    times = np.array([0.0, 50.0, 100.0, 300.0, 87660.0])
    grid = v_ref_V(p, state, np.broadcast_to(temps[None, :, None], (7, 6, 1)), times[None, None, :])
    assert grid.shape == (7, 6, 5)
    for i in range(7):
        for j, temp in enumerate(temps):
            for k, t in enumerate(times):
                want = scalar_v_ref(p, i, temp, t, state.hyst_m[i], state.t_assembly_h[i])
                assert grid[i, j, k] == pytest.approx(want, rel=1e-14, abs=0)


def test_scalar_temperature_gives_one_value_per_device() -> None:
    p = ReferenceParams.constant(3, e0_ppm=100.0, v_nom_V=3.3)
    np.testing.assert_allclose(v_ref_V(p, None, 25.0), 3.3 * (1 + 100e-6), rtol=1e-15)


def test_hot_excursion_then_cold_excursion_shift_by_the_modelled_amount() -> None:
    # Only hysteresis: threshold 5 C, full effect at 25 C of excursion.
    p = ReferenceParams.constant(2, hyst_ppm=20.0, v_nom_V=3.0)
    st = ReferenceState.new(2)
    v_fresh = v_ref_V(p, st, 25.0)
    np.testing.assert_allclose(v_fresh, 3.0)
    for temp in (40.0, 65.0, 50.0, 25.0):  # hot excursion to 65 C, back to 25 C
        st.observe_temperature(p, temp)
    # Full hot excursion: +hyst/2 = +10 ppm at 25 C, and it stays there.
    np.testing.assert_allclose(reference_error_ppm(p, 25.0, hyst_m=st.hyst_m), 10.0, rtol=1e-12)
    hot = v_ref_V(p, st, 25.0)
    for temp in (10.0, 0.0, 25.0):  # cold excursion to 0 C (25 C below t0: full effect)
        st.observe_temperature(p, temp)
    cold = v_ref_V(p, st, 25.0)
    # Datasheet definition: peak-to-peak between the two returns to 25 C is hyst_ppm.
    np.testing.assert_allclose((hot - cold) / 3.0 * 1e6, 20.0, rtol=1e-9)
    np.testing.assert_allclose(reference_error_ppm(p, 25.0, hyst_m=st.hyst_m), -10.0, rtol=1e-12)


def test_partial_and_dead_band_excursions() -> None:
    p = ReferenceParams.constant(1, hyst_ppm=100.0, hyst_threshold_C=5.0, hyst_full_C=25.0)
    m = np.array([-1.0])
    # 25 -> 29 C is inside the 5 C dead band: nothing happens.
    assert hysteresis_update(p, m, 29.0)[0] == -1.0
    # 25 -> 40 C: f = (15 - 5) / 20 = 0.5, so m goes from -1 to 2 * 0.5 - 1 = 0.
    m = hysteresis_update(p, m, 40.0)
    assert m[0] == pytest.approx(0.0, abs=1e-15)
    # A weaker hot excursion afterwards changes nothing (rate-independent memory).
    assert hysteresis_update(p, m, 35.0)[0] == pytest.approx(0.0, abs=1e-15)
    # A cold excursion to 15 C (f = 0.25) targets 1 - 0.5 = 0.5 > m: min keeps m = 0.
    assert hysteresis_update(p, m, 15.0)[0] == pytest.approx(0.0, abs=1e-15)
    # A cold excursion to 5 C (f = 0.75) pulls it down to 1 - 1.5 = -0.5.
    assert hysteresis_update(p, m, 5.0)[0] == pytest.approx(-0.5, abs=1e-15)


def test_hysteresis_vectorised_matches_scalar_on_random_paths() -> None:
    rng = np.random.default_rng(11)
    n = 50
    p = sample_reference(n, BURIED_ZENER_SPEC, rng)
    p = ReferenceParams(
        **{
            **{k: getattr(p, k) for k in p.__dataclass_fields__},
            "hyst_threshold_C": rng.uniform(0, 10, n),
            "hyst_full_C": rng.uniform(15, 40, n),
        }
    )
    path = rng.uniform(-20, 90, (40, n))
    m = np.zeros(n)
    ms = [0.0] * n
    for temps in path:
        m = hysteresis_update(p, m, temps)
        ms = [
            scalar_play(ms[i], temps[i], p.hyst_threshold_C[i], p.hyst_full_C[i]) for i in range(n)
        ]
        np.testing.assert_array_equal(m, ms)
    assert np.all(np.abs(m) <= 1.0)


def test_reflow_shift_and_partial_recovery_follow_the_time_constant() -> None:
    p = ReferenceParams.constant(1, reflow_ppm=80.0, reflow_recovery_frac=0.6, reflow_tau_h=200.0)
    st = ReferenceState.new(1)
    assert reference_error_ppm(p, 25.0, 10.0, t_assembly_h=st.t_assembly_h)[0] == 0.0
    st.assemble(10.0)
    err = lambda t: reference_error_ppm(p, 25.0, t, t_assembly_h=st.t_assembly_h)[0]  # noqa: E731
    assert err(9.999) == 0.0  # before the event
    assert err(10.0) == pytest.approx(80.0, rel=1e-12)  # full shift at the event
    assert err(1e6) == pytest.approx(80.0 * 0.4, rel=1e-9)  # permanent part
    # Recovering part decays as exp(-t/tau): one tau leaves 1/e of the 48 ppm.
    assert err(210.0) == pytest.approx(32.0 + 48.0 / math.e, rel=1e-12)
    # Log-linear fit of the recovering part recovers tau = 200 h.
    t = np.linspace(10.0, 1000.0, 30)
    excess = reference_error_ppm(p, 25.0, t[None, :], t_assembly_h=st.t_assembly_h)[0] - 32.0
    slope = np.polyfit(t - 10.0, np.log(excess), 1)[0]
    assert -1.0 / slope == pytest.approx(200.0, rel=1e-9)


def test_drift_follows_sqrt_time_and_ten_year_figure() -> None:
    p = ReferenceParams.constant(2, drift_ppm_per_sqrt_kh=20.0)
    ten_years_h = 10 * 365.25 * 24
    assert ten_years_h == pytest.approx(87660.0)
    # REFERENCE.md: 10-year drift at 20 ppm/sqrt(kh) = 187 ppm = 20 * sqrt(87.66).
    got = reference_error_ppm(p, 25.0, ten_years_h)
    np.testing.assert_allclose(got, 20.0 * math.sqrt(87.66), rtol=1e-12)
    assert got[0] == pytest.approx(187.3, abs=0.1)
    quadrupled = reference_error_ppm(p, 25.0, np.array([[1000.0, 4000.0]]))
    np.testing.assert_allclose(quadrupled[0], [20.0, 40.0], rtol=1e-12)


def test_sample_reference_statistics_and_determinism() -> None:
    p = sample_reference(200_000, BANDGAP_SPEC, np.random.default_rng(1))
    assert p.n_devices == 200_000
    # Sampling error of a mean over 2e5 normals is sigma / 447: allow 5 standard errors.
    assert abs(p.e0_ppm.mean()) < 5 * 2000.0 / 447
    assert p.a1_ppm_per_C.std() == pytest.approx(10.0, rel=0.01)
    assert p.a2_ppm_per_C2.mean() == pytest.approx(-0.1, abs=5 * 0.03 / 447)
    assert p.drift_ppm_per_sqrt_kh.mean() == pytest.approx(60.0, abs=5 * 15.0 / 447)
    assert np.all((p.reflow_recovery_frac >= 0) & (p.reflow_recovery_frac <= 1))
    again = sample_reference(200_000, BANDGAP_SPEC, np.random.default_rng(1))
    np.testing.assert_array_equal(p.hyst_ppm, again.hyst_ppm)


def test_params_validation() -> None:
    with pytest.raises(ValueError, match="e0_ppm"):
        ReferenceParams(**{**ReferenceParams.constant(3).__dict__, "e0_ppm": np.zeros(4)})
    with pytest.raises(ValueError, match="hyst_threshold_C"):
        ReferenceParams.constant(2, hyst_threshold_C=30.0, hyst_full_C=20.0)
    with pytest.raises(TypeError, match="unknown"):
        ReferenceParams.constant(2, tempco=1.0)


# ---- noise --------------------------------------------------------------------------------

FS_HZ = 4.0
NPERSEG = 1 << 13  # 2048 s segments: 0.5 mHz bins, 20 bins per decade at 0.01 Hz


def _welch_mean(p: ReferenceParams, n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = ReferenceNoise(p, FS_HZ, np.random.default_rng(seed)).generate(n_samples)
    f, s = welch(x, fs=FS_HZ, nperseg=NPERSEG, axis=-1)
    return f[1:], s.mean(axis=0)[1:]  # average over devices; drop DC


def test_flicker_psd_slope_and_level_over_the_eis_band() -> None:
    k_uV = 2.0
    p = ReferenceParams.constant(16, noise_flicker_uV_per_rtHz_1Hz=k_uV)
    f, s = _welch_mean(p, 1 << 16, seed=2)
    band = (f >= 0.01) & (f <= 1.0)
    slope = np.polyfit(np.log10(f[band]), np.log10(s[band]), 1)[0]
    assert -1.2 <= slope <= -0.8
    assert slope == pytest.approx(-1.0, abs=0.05)
    # Level: S(f) f = k^2 within 10 % (averaged over the band, so Welch scatter is small).
    assert np.mean(s[band] * f[band]) == pytest.approx((k_uV * 1e-6) ** 2, rel=0.1)


def test_white_floor_at_high_frequency_and_flicker_below_the_corner() -> None:
    w_uV, k_uV = 1.0, 0.5  # corner (k/w)^2 = 0.25 Hz
    p = ReferenceParams.constant(
        16, noise_white_uV_per_rtHz=w_uV, noise_flicker_uV_per_rtHz_1Hz=k_uV
    )
    f, s = _welch_mean(p, 1 << 16, seed=4)
    target = (w_uV * 1e-6) ** 2 + (k_uV * 1e-6) ** 2 / f
    hi = (f >= 1.0) & (f <= 1.9)  # 1/f part here is 6-13 % of the white floor
    assert np.mean(s[hi]) == pytest.approx(np.mean(target[hi]), rel=0.05)
    lo = (f >= 0.01) & (f <= 0.03)
    assert np.mean(s[lo]) == pytest.approx(np.mean(target[lo]), rel=0.15)


def test_noise_is_chunk_invariant_and_stationary() -> None:
    p = ReferenceParams.constant(3, noise_white_uV_per_rtHz=0.1, noise_flicker_uV_per_rtHz_1Hz=0.3)
    whole = ReferenceNoise(p, 10.0, np.random.default_rng(8)).generate(3000)
    gen = ReferenceNoise(p, 10.0, np.random.default_rng(8))
    parts = np.hstack([gen.generate(n) for n in (1, 999, 0, 2000)])
    np.testing.assert_array_equal(whole, parts)
    # Stationary start: the variance of the first sample over many devices equals that of a
    # late sample (no start-up transient).
    many = ReferenceParams.constant(20000, noise_flicker_uV_per_rtHz_1Hz=1.0)
    x = ReferenceNoise(many, 10.0, np.random.default_rng(9)).generate(50)
    assert x[:, 0].var() == pytest.approx(x[:, -1].var(), rel=0.05)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
def test_numba_noise_is_bit_identical_to_the_lfilter_reference() -> None:
    """The compiled AR(1) recursion reproduces scipy lfilter to the bit, states included.

    Random populations and sample rates (1 kHz as the chip uses it, block rates as the record
    path uses), blocks of 0, 1, 16, 256 and 3000 samples interleaved with skips.
    """
    rng = np.random.default_rng(2024)
    for case in range(6):
        n = int(rng.integers(1, 5))
        p = ReferenceParams.constant(
            n, noise_white_uV_per_rtHz=float(rng.uniform(0, 0.5)),
            noise_flicker_uV_per_rtHz_1Hz=float(rng.uniform(0, 2.0)),
        )
        fs = [1000.0, 16.0, 64.0, 1000.0, 4.0, 250.0][case]
        ref = ReferenceNoise(p, fs, np.random.default_rng(case), f_min_Hz=min(1e-4, fs / 40))
        fast = ReferenceNoise(p, fs, np.random.default_rng(case), f_min_Hz=min(1e-4, fs / 40))
        for n_samples in (16, 1, 0, 256, 3, 3000, 16):
            a = ref.generate(n_samples, backend="lfilter")
            b = fast.generate(n_samples, backend="numba")
            assert a.shape == b.shape == (n, n_samples)
            assert a.tobytes() == b.tobytes()
            assert ref._x.tobytes() == fast._x.tobytes()
            ref.skip(37)
            fast.skip(37)
    with pytest.raises(ValueError, match="backend"):
        fast.generate(4, backend="scipy")


def test_scalar_paths_are_bit_identical_to_the_vectorised_model() -> None:
    """v_ref_scalar_V / hysteresis_update_scalar (the per-conversion path) vs the array model."""
    rng = np.random.default_rng(77)
    for spec in (BURIED_ZENER_SPEC, BANDGAP_SPEC):
        n = 400
        p = sample_reference(n, spec, rng)
        temp = rng.uniform(-40.0, 125.0, n)
        temp[::7] = 25.0  # d == 0 branch
        t_h = rng.uniform(0.0, 1e5, n)
        m = rng.uniform(-1.0, 1.0, n)
        ta = np.where(rng.random(n) < 0.3, np.nan, t_h - rng.uniform(-50.0, 500.0, n))
        for i in range(n):
            pi = p.take([i])
            si = ReferenceState(m[i : i + 1], ta[i : i + 1])
            want = v_ref_V(pi, si, np.array([temp[i]]), t_h[i])[0]
            got = v_ref_scalar_V(ReferenceScalars.of(p, i), temp[i], t_h[i], m[i], ta[i])
            assert np.float64(got).tobytes() == want.tobytes(), i
            want_m = hysteresis_update(pi, m[i : i + 1], np.array([temp[i]]))[0]
            got_m = hysteresis_update_scalar(ReferenceScalars.of(p, i), m[i], temp[i])
            assert got_m == want_m, i
