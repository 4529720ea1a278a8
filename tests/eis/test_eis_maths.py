"""Independent truth for the pure EIS maths (bms_emu.afe.eis): synthetic signals with known
amplitude, phase, drift, delay and noise; scalar references for the vectorised kernels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bms_emu.afe import eis
from bms_emu.afe.iir import IirState, iir_filter
from bms_emu.afe.sinc3 import sinc3_impulse_response


def goertzel_scalar(y: list[float], f_Hz: float, fs_Hz: float) -> complex:
    """Scalar reference: Goertzel recursion for the single bin, one channel, plain Python."""
    w = 2 * math.pi * f_Hz / fs_Hz
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in y:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    # X = sum y[n] e^{-j w n}; Goertzel gives it as (s1 - s2 e^{-jw}) e^{-jw (N-1)}
    n = len(y)
    x = (s1 - s2 * complex(math.cos(w), -math.sin(w))) * complex(
        math.cos(w * (n - 1)), -math.sin(w * (n - 1))
    )
    return 2 * x / n


def _tone(t, amp, phase, f):
    return amp * np.cos(2 * np.pi * f * t + phase)


@pytest.mark.parametrize("f_Hz", [0.01, 0.1, 1.0])
def test_fit_recovers_amplitude_and_phase_exactly_without_noise(f_Hz):
    fs = 16.0
    t = np.arange(int(4 * fs / f_Hz)) / fs
    amps = np.array([1e-4, 3e-4, 2e-3])
    phases = np.array([0.3, -2.0, 1.1])
    y = _tone(t[:, None], amps, phases, f_Hz) + 3.3 + 1e-6 * t[:, None]  # offset + drift
    for spp in (None, int(fs / f_Hz)):
        fit = eis.fit_tone(t, y, f_Hz, poly_degree=1, samples_per_period=spp)
        np.testing.assert_allclose(fit.phasor, amps * np.exp(1j * phases), rtol=1e-8, atol=1e-12)


def test_vectorised_fit_equals_scalar_goertzel_per_channel():
    rng = np.random.default_rng(1)
    fs, f = 16.0, 0.2
    y = rng.standard_normal((320, 5))
    t = np.arange(320) / fs
    fit = eis.fit_tone(t, y, f, poly_degree=0, samples_per_period=80)
    ref = np.array([goertzel_scalar(list(y[:, c]), f, fs) for c in range(5)])
    np.testing.assert_allclose(fit.phasor, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(eis.dft_bin(y, f, fs), ref, rtol=1e-10, atol=1e-12)
    # the sine model without periodic noise estimate gives the same phasor at degree 0
    np.testing.assert_allclose(eis.fit_tone(t, y, f, 0).phasor, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("f_Hz", [0.01, 0.05, 0.2])
def test_linear_drift_leaks_a_over_pi_f_without_detrend_and_nothing_with_it(f_Hz):
    fs = 16.0
    t = np.arange(int(3 * fs / f_Hz)) / fs
    a = 10e-6  # V/s (REFERENCE.md 5: 10 uV/s at 10 mHz = 318 uV)
    y = a * t
    leak = eis.fit_tone(t, y, f_Hz, 0).phasor[0]
    assert abs(leak) == pytest.approx(eis.drift_leakage(a, f_Hz), rel=2e-3)
    # in quadrature (a phase error), up to the discrete ramp's half-sample term a / f_s
    assert abs(leak.real) == pytest.approx(a / fs, rel=1e-6)
    spp = int(fs / f_Hz)
    for spp_ in (None, spp):
        assert abs(eis.fit_tone(t, y, f_Hz, 1, spp_).phasor[0]) < 1e-12


def test_uncertainty_matches_the_scatter_sigma_sqrt_2_over_m():
    rng = np.random.default_rng(7)
    fs, f, m, sigma = 16.0, 0.5, 640, 100e-6
    t = np.arange(m) / fs
    y = _tone(t[:, None], 300e-6, 0.4, f) + sigma * rng.standard_normal((m, 2000))
    fit = eis.fit_tone(t, y, f, 1, samples_per_period=32)
    err = fit.phasor - 300e-6 * np.exp(0.4j)
    # theory for white noise and a pure tone: sigma sqrt(2/M) per component
    assert np.median(fit.u_phasor) == pytest.approx(sigma * math.sqrt(2 / m), rel=0.03)
    assert np.std(err.real) == pytest.approx(np.median(fit.u_phasor), rel=0.06)
    assert np.std(err.imag) == pytest.approx(np.median(fit.u_phasor), rel=0.06)
    cover = np.mean(np.abs(err) <= eis.COVERAGE_K95 * fit.u_phasor)
    assert 0.93 < cover < 0.97


def test_periodic_model_keeps_square_wave_harmonics_out_of_noise_and_drift():
    rng = np.random.default_rng(3)
    fs, f = 16.0, 1.0
    t = np.arange(16 * 20) / fs
    square = np.where((t * f) % 1.0 < 0.5, 1e-2, 0.0)  # 10 mV square: harmonics at 3f, 5f ...
    y = square + 5e-6 * t + 20e-6 * rng.standard_normal(t.size)
    fit = eis.fit_tone(t, y, f, 2, samples_per_period=16)
    # the sampled square's fundamental, from the noise-free record
    ref = eis.dft_bin(square, f, fs)
    assert abs(fit.phasor[0] - ref) < 5 * fit.u_phasor[0]
    assert fit.sigma[0] == pytest.approx(20e-6, rel=0.15)
    plain = eis.fit_tone(t, y, f, 2)  # the sine-only model counts the harmonics as noise
    assert plain.sigma[0] > 50 * fit.sigma[0]


def test_schroeder_and_clipping_lower_the_crest_factor_vs_theory():
    n = 32
    f = np.arange(1, n + 1) * 0.01
    t = np.arange(8192) / (8192 * 0.01)
    zero = eis.crest_factor(eis.multisine(t, f, 1.0, np.zeros(n)))
    assert zero == pytest.approx(math.sqrt(2 * n), rel=1e-6)  # all peaks align: N / sqrt(N/2)
    schroeder = eis.crest_factor(eis.multisine(t, f, 1.0, eis.schroeder_phases(n)))
    assert 1.4 < schroeder < 2.0  # Schroeder 1970: ~1.7 for a flat consecutive spectrum
    # the sweep as one multisine (sparse, log-spaced tones)
    f7 = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
    ph = eis.clip_optimise_phases(f7, eis.schroeder_phases(7), f_base_Hz=0.01)
    t7 = np.arange(4096) / (4096 * 0.01)
    cf = eis.crest_factor(eis.multisine(t7, f7, 1.0, ph))
    assert cf < eis.crest_factor(eis.multisine(t7, f7, 1.0, np.zeros(7)))
    assert cf < eis.crest_factor(eis.multisine(t7, f7, 1.0, eis.schroeder_phases(7))) + 1e-9
    assert cf < 0.85 * math.sqrt(2 * 7)


def test_square_wave_fundamental():
    t = np.arange(1600) / 1600.0
    sq = np.where(t < 0.5, 0.1, 0.0)
    assert abs(eis.dft_bin(sq, 1.0, 1600.0)[()]) == pytest.approx(
        eis.square_wave_fundamental(0.1), rel=1e-5
    )


def test_compensation_removes_a_known_delay():
    fs, f, d = 16.0, 0.5, 0.0371  # a sample stamped 37.1 ms after the instant it represents
    t = np.arange(320) / fs
    x = 1e-3 * np.exp(0.7j)
    y = np.real(x * np.exp(2j * np.pi * f * (t - d)))
    est = eis.fit_tone(t, y, f, 1, 32).phasor[0]
    assert abs(np.angle(est / x)) == pytest.approx(2 * np.pi * f * d, rel=1e-6)
    h = np.exp(-2j * np.pi * f * d)  # a pure delay's response
    assert abs(est / h - x) < 1e-12


def test_sinc3_boxcar_and_iir_responses_match_the_filters_they_describe():
    # sinc3 at a small R: convolve a sampled cosine with the integer kernel
    r, f_mod = 8, 8000.0
    hk = sinc3_impulse_response(r).astype(float) / r**3
    f = 40.0  # 10 periods in the 2000-sample span below
    n = np.arange(4000)
    x = np.cos(2 * np.pi * f * n / f_mod)
    y = np.convolve(x, hk)[: n.size]  # output at clock n weights x[n - j]
    window_s = (hk.size - 1) / f_mod  # kernel span: its centre is (3R-3)/2 clocks back
    got = eis.dft_bin(y[1000:3000], f, f_mod, t0_s=1000 / f_mod)
    want = eis.sinc3_response(f, r / f_mod, window_s, f_mod)
    assert abs(got - want) < 1e-6
    # block average of K results T apart, stamped at the last
    k, tc = 62, 1e-3
    fb = 0.9
    tt = np.arange(200000) * tc
    xb = np.cos(2 * np.pi * fb * tt)
    yb = np.convolve(xb, np.ones(k) / k)[: tt.size]
    gb = eis.dft_bin(yb[1000 : 1000 + 100000], fb, 1 / tc, t0_s=1000 * tc)
    assert abs(gb - eis.boxcar_response(fb, k, tc)) < 1e-6
    # the chip's IIR (FC = 4, k = 1/16) on large codes, bit-true, vs its analytic response
    fi = 5.0
    ti = np.arange(20000) * 1e-3
    codes = np.round(20000 * np.cos(2 * np.pi * fi * ti)).astype(np.int64)[:, None]
    out = iir_filter(codes, IirState.from_codes([codes[0, 0]]), 4)[:, 0] / 20000.0
    gi = eis.dft_bin(out[2000:], fi, 1000.0, t0_s=2.0)
    assert abs(gi - eis.iir_response(fi, 1 / 16)) < 2e-4
    assert np.angle(eis.iir_response(fi, 1 / 16)) < -0.4  # large phase: must be compensated


def test_record_plan_integer_periods_and_validation():
    settle, n = eis.integer_period_record(0.01, n_periods=3, min_integration_s=60, f_sample_Hz=16)
    assert settle == pytest.approx(100.0) and n == 4800
    settle, n = eis.integer_period_record(1.0, n_periods=3, min_integration_s=60, f_sample_Hz=16)
    assert n == 60 * 16
    with pytest.raises(ValueError, match="integer"):
        eis.integer_period_record(0.03, f_sample_Hz=16)
    t, i = eis.sine_breakpoints(0.5, 2.0, 4.0, points_per_period=8, dc_offset_A=1.0)
    assert t.size == 17 and i[0] == pytest.approx(1.0) and max(i) == pytest.approx(3.0)
