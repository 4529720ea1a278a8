"""Conversion mode vs cycle mode, its noise model, and the 16-bit code format."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from bms_emu.afe import conversion as cv
from bms_emu.afe import deltasigma as ds
from bms_emu.afe.adc_params import (
    CODE_MAX,
    CODE_MIN,
    FS_CELL_V,
    G_IN,
    R_CADC,
    R_SADC,
    V_CODE_ZERO_V,
    cell_code_from_sinc3,
    cell_code_from_volts,
    cell_volts_from_code,
    modulator_input_V,
    raw_code_from_sinc3,
)
from bms_emu.afe.iir import IirState, iir_filter
from bms_emu.afe.sinc3 import Sinc3State, sinc3_code_to_u, sinc3_impulse_response

R = R_CADC


def kernel_truth(R: int) -> tuple[float, float, float]:
    """(R * sum h**2 / R**6, lag-R and lag-2R autocorrelation of h): white noise through the
    sinc3, decimated by R, computed from the integer kernel alone."""
    h = sinc3_impulse_response(R).astype(np.float64)
    e0 = h @ h
    return e0 * R / float(R) ** 6, (h[R:] @ h[:-R]) / e0, (h[2 * R :] @ h[: -2 * R]) / e0


@pytest.mark.parametrize(("rho1", "rho2"), [(26 / 66, 1 / 66), (0.3, 0.0), (0.0, 0.0),
                                            (-0.4, 0.1)])
def test_ma2_coefficients_reproduce_the_autocorrelation(rho1: float, rho2: float) -> None:
    b = cv.ma2_coefficients(rho1, rho2)
    assert b @ b == pytest.approx(1.0)
    assert b[0] * b[1] + b[1] * b[2] == pytest.approx(rho1, abs=1e-12)
    assert b[0] * b[2] == pytest.approx(rho2, abs=1e-12)
    assert np.all(np.abs(np.roots(b)) < 1.0 + 1e-12)  # minimum phase


@pytest.mark.parametrize("R_", [R_CADC, R_SADC])
def test_stored_noise_figures_agree_with_the_kernel_theory(R_: int) -> None:
    g, r1, r2 = kernel_truth(R_)
    fig = cv.noise_figures(R_)
    assert fig.g_thermal == pytest.approx(g, rel=0.03)
    assert fig.rho1 == pytest.approx(r1, abs=0.02)
    assert fig.rho2 == pytest.approx(r2, abs=0.02)
    # quantisation noise is negligible next to the default thermal noise at these ratios
    th, q = cv._noise_var_u(cv.SIGMA_NOISE_V, 3.0, R_, fig)
    assert q < 1e-4 * th


def test_remeasuring_reproduces_the_stored_figures() -> None:
    fig = cv.measure_noise_figures(np.random.default_rng(77), R, n_ch=64, n_results=250)
    ref = cv.noise_figures(R)
    assert fig.g_thermal == pytest.approx(ref.g_thermal, rel=0.05)
    assert fig.rho1 == pytest.approx(ref.rho1, abs=0.03)
    assert fig.rho2 == pytest.approx(ref.rho2, abs=0.03)
    assert fig.q_var_R5 == pytest.approx(ref.q_var_R5, rel=0.5)


def test_polyphase_means_equal_direct_convolution_with_one_clock_delay() -> None:
    r = 16
    rng = np.random.default_rng(1)
    u = rng.uniform(-0.5, 0.5, size=(20 * r, 2))
    got = cv._sinc3_means(u, r)
    h = sinc3_impulse_response(r) / r**3
    for c in range(2):
        full = np.convolve(u[:, c], h)  # full[n] = sum_j h[j] u[n - j]
        want = [full[(m + 1) * r - 2] for m in range(2, 20)]  # clock n_m - 1
        assert np.allclose(got[:, c], want, rtol=0, atol=1e-15)


def cell_input(kind: str):
    """Cell-referred test inputs (V) as functions of time, mapped to the modulator input."""
    def f(t_s: np.ndarray) -> np.ndarray:
        if kind == "dc":
            v = np.full_like(t_s, 3.2871)
        elif kind == "ramp":
            v = 3.0 + 1.5 * t_s  # 1.5 V/s
        else:  # 1 Hz sine, started near its zero crossing where the slope is largest
            v = 3.3 + 2.0 * np.sin(2 * np.pi * 1.0 * t_s - 0.2)
        return modulator_input_V(v)[:, None]
    return f


@pytest.mark.parametrize("kind", ["dc", "ramp", "sine"])
@pytest.mark.parametrize("v_ref_V", [2.97, 3.0, 3.03])
def test_conversion_mode_matches_cycle_mode(kind: str, v_ref_V: float) -> None:
    """Over 3 seeds: |mean difference| < 10 uV and sigma within 10 %, cell-referred, where each
    mode's error is taken against the noise-free sinc3-weighted input."""
    n_ch, n_res = 64, 200
    n = R * (n_res + 2)
    f = cell_input(kind)
    to_cell_V = v_ref_V / G_IN
    exact = cv.convert_continuous(f, v_ref_V, np.random.default_rng(0), 0.0, n_samples=n)
    u_exact = sinc3_code_to_u(exact[1:], R)  # drop output 2: its window starts at clock 1
    for seed in range(3):
        st = ds.ModulatorState.new(n_ch, np.random.default_rng(seed))
        cyc = ds.modulate_decimate(f, v_ref_V, st, Sinc3State.zeros(n_ch), R, cv.SIGMA_NOISE_V,
                                   n_samples=n)[3:]
        con = cv.convert_continuous(f, v_ref_V, np.random.default_rng(100 + seed),
                                    cv.SIGMA_NOISE_V, n_samples=n, pop_shape=(n_ch,))[1:]
        e_cyc = (sinc3_code_to_u(cyc, R) - u_exact) * to_cell_V
        e_con = (sinc3_code_to_u(con, R) - u_exact) * to_cell_V
        assert abs(e_cyc.mean() - e_con.mean()) < 10e-6
        assert abs(e_cyc.mean()) < 10e-6  # and both are unbiased
        assert e_con.std() == pytest.approx(e_cyc.std(), rel=0.10)
        # lag-1 correlation of consecutive results (what an IIR filter sees) agrees too
        r_cyc = np.mean(e_cyc[1:] * e_cyc[:-1]) / e_cyc.var()
        r_con = np.mean(e_con[1:] * e_con[:-1]) / e_con.var()
        assert r_con == pytest.approx(r_cyc, abs=0.05)


def test_convert_dc_population_matches_cycle_mode_statistics() -> None:
    v_ref = np.array([2.97, 3.0, 3.03])[:, None]  # (n_devices, 1): one reference per device
    v_cell = np.linspace(2.5, 3.65, 16)  # (n_channels,)
    v_in = np.broadcast_to(modulator_input_V(v_cell), (3, 16))
    n_rep = 400
    con = np.stack([cv.convert_dc(v_in, v_ref, np.random.default_rng(s)) for s in range(n_rep)])
    st = ds.ModulatorState.new(48, np.random.default_rng(5))
    cyc = ds.modulate_decimate(v_in.reshape(-1), np.repeat(v_ref.ravel(), 16), st,
                               Sinc3State.zeros(48), R, cv.SIGMA_NOISE_V,
                               n_samples=R * (n_rep + 3))[3:].reshape(n_rep, 3, 16)
    to_cell = v_ref / G_IN
    for d in (con, cyc):
        err = sinc3_code_to_u(d, R) * to_cell - v_in / G_IN
        assert np.abs(err.mean(axis=0)).mean() < 10e-6  # mean over channels of |bias|
        assert abs(err.mean()) < 5e-6
    s_con = (sinc3_code_to_u(con, R) * to_cell).std(axis=0).mean()
    s_cyc = (sinc3_code_to_u(cyc, R) * to_cell).std(axis=0).mean()
    assert s_con == pytest.approx(s_cyc, rel=0.10)


def test_convert_window_equals_the_continuous_result() -> None:
    n = R * 8
    v = modulator_input_V(3.0 + 40.0 * np.arange(n) / 1.024e6)[:, None]  # steep ramp
    cont = cv.convert_continuous(v, 3.0, np.random.default_rng(0), 0.0)
    m = 5  # result m uses clocks (m+1)R-1-1-(3R-3) .. (m+1)R-2
    start = (m + 1) * R - 2 - (3 * R - 3)
    win = cv.convert_window(v[start : start + 3 * R - 2], 3.0, np.random.default_rng(0), 0.0)
    assert abs(int(win[0]) - int(cont[m - 2, 0])) <= 1


def test_code_map_is_exact_two_step_rounding_and_saturates() -> None:
    """sinc3 -> 24-bit raw (9.375 uV) -> 16-bit code, each step exact rounding (Fractions)."""
    rng = np.random.default_rng(3)
    for r in (R_CADC, R_SADC, 1000):
        d = np.concatenate([rng.integers(0, r**3 + 1, 2000), [0, r**3, r**3 // 2]])
        raw = raw_code_from_sinc3(d, r)
        got = cell_code_from_sinc3(d, r)
        for di, ri, gi in zip(d.tolist(), raw.tolist(), got.tolist(), strict=True):
            x = Fraction((2 * di - r**3) * 960000, r**3)
            want_raw = max(-(2**23), min(2**23 - 1, int(np.floor(x + Fraction(1, 2)))))
            assert ri == want_raw
            want = int(np.floor(Fraction(want_raw - 160000, 16) + Fraction(1, 2)))
            assert gi == max(CODE_MIN, min(CODE_MAX, want))
            assert abs(Fraction(ri) * Fraction(150, 16) - x * Fraction(150, 16)) <= Fraction(75, 16)


def test_code_volts_round_trip_and_full_scale() -> None:
    codes = np.arange(CODE_MIN, CODE_MAX + 1, 97)
    assert np.array_equal(cell_code_from_volts(cell_volts_from_code(codes)), codes)
    assert FS_CELL_V == pytest.approx(9.0)
    # u = 0.5 at the nominal reference is 4.5 V (no analog level shift) = code 20000
    assert cell_code_from_sinc3(3 * R**3 // 4, R) == 20000
    assert float(cell_volts_from_code(20000)) == pytest.approx(0.5 * FS_CELL_V)
    assert V_CODE_ZERO_V == 1.5


def test_end_to_end_cycle_mode_code_and_iir_settle_on_the_cell_voltage() -> None:
    """3.3000 V at the nominal reference: code 12000; filtered (FC 7) within +-1 code."""
    n_ch = 4
    st = ds.ModulatorState.new(n_ch, np.random.default_rng(2))
    d = ds.modulate_decimate(np.full(n_ch, modulator_input_V(3.3)), 3.0, st,
                             Sinc3State.zeros(n_ch), R, cv.SIGMA_NOISE_V, n_samples=R * 3000)
    codes = cell_code_from_sinc3(d[2:], R)
    filt = iir_filter(codes, IirState.from_codes(codes[0]), 7)
    assert abs(codes.mean() - 12000) < 0.1
    assert np.all(np.abs(filt[-1] - 12000) <= 1)
