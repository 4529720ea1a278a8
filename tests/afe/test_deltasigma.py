"""Cycle-mode modulator: scalar reference, backends, chunking, noise source, DC and SNR theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import windows

from bms_emu.afe import deltasigma as ds
from bms_emu.afe.sinc3 import Sinc3State, sinc3_block, sinc3_impulse_response

MASK64 = (1 << 64) - 1


def scalar_modulator(u_in: list[float], v_ref: list[float], sigma_V: float, seed: int,
                     x1: float = 0.0, x2: float = 0.0, v: float = 1.0) -> list[int]:
    """One channel, plain Python floats and ints: the loop exactly as written in the docs."""
    sig = sigma_V / math.sqrt((2.0**32 - 1.0) / 3.0)
    xs = seed
    bits = []
    for vin, vr in zip(u_in, v_ref, strict=True):
        xs ^= xs >> 12
        xs ^= (xs << 25) & MASK64
        xs ^= xs >> 27
        z = (xs * 0x2545F4914F6CDD1D) & MASK64
        s = (z & 0xFFFF) + ((z >> 16) & 0xFFFF) + ((z >> 32) & 0xFFFF) + (z >> 48) - 131070
        u = (vin + s * sig) * (1.0 / vr)
        x2 = x2 + (x1 - v) * 0.5
        x1 = x1 + (u - v) * 0.5
        v = 1.0 if x2 >= 0.0 else -1.0
        bits.append(int(v))
    return bits


BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not ds.HAVE_NUMBA, reason="numba not installed"))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_vectorised_matches_scalar_reference(backend: str) -> None:
    rng = np.random.default_rng(11)
    n, n_ch = 700, 3
    st = ds.ModulatorState.new(n_ch, rng)
    t = np.arange(n)
    v_in = np.stack([0.3 * np.sin(2 * np.pi * t / 97), np.full(n, -1.1), np.full(n, 2.2)], 1)
    v_ref = 3.0 + 0.02 * np.cos(2 * np.pi * t / 50)[:, None]  # (n, 1): broadcast over channels
    seeds = [int(x) for x in st.prng]
    bits = ds.modulate(v_in, v_ref, st, 2e-3, backend=backend)
    for c in range(n_ch):
        ref = scalar_modulator(list(v_in[:, c]), list(v_ref[:, 0]), 2e-3, seeds[c])
        assert bits[:, c].tolist() == ref


@pytest.mark.skipif(not ds.HAVE_NUMBA, reason="numba not installed")
def test_fused_kernel_and_chunking_are_bit_identical() -> None:
    rng = np.random.default_rng(5)
    n, n_ch, R = 20_000, 4, 64
    st0 = ds.ModulatorState.new(n_ch, rng)

    def v_in(t_s: np.ndarray) -> np.ndarray:
        return 0.9 * np.sin(2 * np.pi * 300.0 * t_s)[:, None] + np.linspace(-1, 1, n_ch)

    bits = ds.modulate(v_in, 3.0, st0.copy(), 1e-3, n_samples=n, backend="numpy")
    codes_ref = sinc3_block(bits, R)
    # fused numba kernel, fed in uneven chunks with the time origin carried along
    st, sinc = st0.copy(), Sinc3State.zeros(n_ch)
    parts, start = [], 0
    for size in (1, 63, 1000, 5555, n - 6619):
        parts.append(ds.modulate_decimate(v_in, 3.0, st, sinc, R, 1e-3, n_samples=size,
                                          n0=start, backend="numba"))
        start += size
    assert np.array_equal(np.concatenate(parts), codes_ref)
    st_np = st0.copy()
    ds.modulate(v_in, 3.0, st_np, 1e-3, n_samples=n, backend="numpy")
    assert np.array_equal(st.prng, st_np.prng)
    assert np.array_equal(st.x1, st_np.x1) and np.array_equal(st.x2, st_np.x2)


def test_same_generator_seed_same_bits_other_seed_differs() -> None:
    a = ds.modulate(np.zeros(2), 3.0, ds.ModulatorState.new(2, np.random.default_rng(1)), 1e-3,
                    n_samples=2000)
    b = ds.modulate(np.zeros(2), 3.0, ds.ModulatorState.new(2, np.random.default_rng(1)), 1e-3,
                    n_samples=2000)
    c = ds.modulate(np.zeros(2), 3.0, ds.ModulatorState.new(2, np.random.default_rng(2)), 1e-3,
                    n_samples=2000)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_noise_source_moments_match_irwin_hall_theory() -> None:
    """Mean 0, variance (2**32-1)/3, excess kurtosis -6/(5*4) = -0.3, white, independent."""
    st = ds.ModulatorState.new(4, np.random.default_rng(3))
    s = ds.noise_integers(st, 50_000).astype(np.float64)
    z = s / ds.IH_SIGMA
    n = z.shape[0]
    assert np.all(np.abs(z.mean(0)) < 4 / np.sqrt(n))
    assert np.all(np.abs(z.var(0) - 1.0) < 4 * np.sqrt(2 / n))
    kurt = (z**4).mean(0) / z.var(0) ** 2 - 3.0
    assert np.all(np.abs(kurt + 0.3) < 0.06)
    assert np.abs(z).max() <= 2 * 0xFFFF / ds.IH_SIGMA + 1e-12  # bounded tails, +-3.46 sigma
    for lag in (1, 2, 3, 7):
        r = (z[lag:] * z[:-lag]).mean(0)
        assert np.all(np.abs(r) < 4 / np.sqrt(n))
    c = np.corrcoef(z.T)
    assert np.all(np.abs(c[np.triu_indices(4, 1)]) < 4 / np.sqrt(n))


def test_dc_mean_obeys_integrator_bound_and_loop_is_stable() -> None:
    """sum(u - v) = 2 (x1_end - x1_start), so |mean(v) - u| <= 2 max|x1| / N, up to |u| = 0.8."""
    u = np.array([-0.8, -0.5, -0.123, 0.0, 0.3, 0.77, 0.8])
    st = ds.ModulatorState.new(u.size, np.random.default_rng(4))
    n = 200_000
    bits = ds.modulate(u * 3.0, 3.0, st, 0.0, n_samples=n)
    assert np.all(np.abs(st.x1) < 2.0) and np.all(np.abs(st.x2) < 4.0)
    assert np.all(np.abs(bits.mean(0) - u) <= 2 * 2.0 / n)


def _snr_dB(v: np.ndarray, osr: int, k_sig: int) -> float:
    """SNDR of a +-1 bitstream in the band [0, fs/(2 OSR)] from a Blackman-Harris FFT."""
    n = v.size
    w = windows.blackmanharris(n, sym=False)
    p = np.abs(np.fft.rfft(v * w)) ** 2
    band = n // (2 * osr)
    sig = slice(k_sig - 4, k_sig + 5)  # the 4-term window's main lobe is +-4 bins
    p_sig = p[sig].sum()
    noise_bins = np.ones(band + 1, bool)
    noise_bins[:4] = False  # DC leakage of the window
    noise_bins[sig] = False
    p_noise = p[: band + 1][noise_bins].mean() * band  # scale the mean back to the full band
    return float(10 * np.log10(p_sig / p_noise))


@pytest.mark.parametrize(("osr", "k_sig"), [(64, 101), (128, 53)])
def test_sine_sqnr_within_3dB_of_second_order_theory(osr: int, k_sig: int) -> None:
    """Linear MOD2 theory (Schreier & Temes 2005, sec. 4.1): NTF = (1 - z**-1)**2, white error
    of variance Delta**2/12 with Delta = 2 (levels +-1) gives in-band noise
    (1/3) pi**4 / (5 OSR**5), so a sine of amplitude A has
    SQNR = 10 log10((A**2/2) / ((1/3) pi**4 / (5 OSR**5))) = 1.76 - 12.9 + 50 log10(OSR)
    + 20 log10(A). (The usual "6.02 N" term is 0 here: for a +-1 quantiser the full-scale sine
    has amplitude Delta/2 = 1.) A = 0.25 stays clear of the 1-bit loop's overload region,
    where the linear model no longer holds (at A = 0.5 the loop is ~3.5 dB worse)."""
    n, amp = 1 << 16, 0.25
    u = amp * np.sin(2 * np.pi * k_sig * np.arange(n) / n)
    snr_lin = []
    for seed in range(3):  # average three start states so no single lucky seed decides
        st = ds.ModulatorState.new(1, np.random.default_rng(seed))
        st.x1[:] = np.random.default_rng(seed).uniform(-0.3, 0.3, 1)
        v = ds.modulate(u[:, None], 1.0, st, 0.0)[:, 0].astype(np.float64)
        snr_lin.append(10 ** (_snr_dB(v, osr, k_sig) / 10))
    measured = 10 * np.log10(np.mean(snr_lin))
    theory = 10 * np.log10((amp**2 / 2) / ((1 / 3) * np.pi**4 / (5 * osr**5)))
    assert theory == pytest.approx(1.76 - 12.9 + 50 * np.log10(osr) + 20 * np.log10(amp),
                                   abs=0.05)
    assert abs(measured - theory) < 3.0, (measured, theory)


def test_thermal_noise_reaches_sinc3_output_as_sigma_squared_sum_h_squared() -> None:
    """White input noise through the sinc3: var(u_out) = (sigma/v_ref)**2 * sum(h**2) / R**6."""
    R, n_ch, n_out = 256, 64, 200
    sigma_V, v_ref = 0.05, 2.5
    st = ds.ModulatorState.new(n_ch, np.random.default_rng(8))
    codes = ds.modulate_decimate(np.full(n_ch, 0.4), v_ref, st, Sinc3State.zeros(n_ch), R,
                                 sigma_V, n_samples=R * n_out)
    u = 2.0 * codes[3:] / R**3 - 1.0
    h = sinc3_impulse_response(R).astype(np.float64)
    theory = (sigma_V / v_ref) ** 2 * np.sum(h**2) / float(R) ** 6
    measured = np.mean((u - 0.4 / v_ref) ** 2)  # the modulator's DC gain is exactly 1
    assert measured == pytest.approx(theory, rel=0.06)
