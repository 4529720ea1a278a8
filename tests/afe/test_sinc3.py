"""sinc3 decimator: bit-true against a Python-int reference, wrap-around, frequency response."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import signal

from bms_emu.afe import deltasigma as ds
from bms_emu.afe.adc_params import F_MOD_HZ, R_CADC
from bms_emu.afe.sinc3 import (
    Sinc3Decimator,
    Sinc3State,
    sinc3_block,
    sinc3_code_to_u,
    sinc3_impulse_response,
    sinc3_magnitude,
    sinc3_width_bits,
)


def reference_sinc3(bits01: list[int], R: int, width: int) -> list[int]:
    """One channel, Python ints, explicit W-bit wrap on every register (the RTL, literally)."""
    mask = (1 << width) - 1
    i1 = i2 = i3 = z1 = z2 = z3 = 0
    out = []
    for n, b in enumerate(bits01):
        i1 = (i1 + b) & mask
        i2 = (i2 + i1) & mask
        i3 = (i3 + i2) & mask
        if n % R == R - 1:
            c1 = (i3 - z1) & mask
            c2 = (c1 - z2) & mask
            out.append((c2 - z3) & mask)
            z1, z2, z3 = i3, c1, c2
    return out


def fir_truth(bits01: np.ndarray, R: int) -> np.ndarray:
    """Unbounded integers: convolve with the kernel counted from its definition, no registers."""
    h = np.zeros(3 * R - 2, dtype=object)
    for a, b, c in itertools.product(range(R), repeat=3):  # h[k] = #{a+b+c = k}
        h[a + b + c] += 1
    full = np.convolve(bits01.astype(object), h)
    return full[R - 1 : bits01.size : R]


def test_width_is_one_plus_three_log2_R() -> None:
    for k in range(1, 14):
        assert sinc3_width_bits(2**k) == 1 + 3 * k
    assert sinc3_width_bits(R_CADC) == 31


def test_impulse_response_is_the_counted_kernel() -> None:
    R = 6
    h = sinc3_impulse_response(R)
    counted = np.zeros(3 * R - 2, np.int64)
    for a, b, c in itertools.product(range(R), repeat=3):
        counted[a + b + c] += 1
    assert np.array_equal(h, counted) and h.sum() == R**3


@pytest.mark.parametrize("R", [4, 16, 1000, 1024])
def test_stream_equals_block_equals_python_reference(R: int) -> None:
    rng = np.random.default_rng(R)
    n_ch, n = 3, 7 * R + R // 2 + 3
    bits = np.where(rng.random((n, n_ch)) < np.array([0.5, 0.97, 0.1]), 1, -1).astype(np.int8)
    block = sinc3_block(bits, R)
    dec = Sinc3Decimator(R, n_ch)
    cuts = np.sort(rng.integers(0, n, 6))
    stream = np.concatenate([dec.process(p) for p in np.split(bits, cuts)])
    assert np.array_equal(stream, block)
    w = sinc3_width_bits(R)
    for c in range(n_ch):
        ref = reference_sinc3(((bits[:, c].astype(int) + 1) // 2).tolist(), R, w)
        assert block[:, c].tolist() == ref


def test_wraparound_is_harmless_with_minimal_width_and_fatal_with_one_bit_less() -> None:
    """Integrators overflow thousands of times; the outputs still equal the unbounded FIR."""
    R = 8
    w = sinc3_width_bits(R)  # 10 bits
    rng = np.random.default_rng(0)
    b = (rng.random(4000) < 0.8).astype(np.int64)
    b[-3 * R :] = 1  # end on an all-ones window: D = R**3 needs every one of the W bits
    truth = fir_truth(b, R)
    assert list(truth) == reference_sinc3(b.tolist(), R, w)
    assert np.array_equal(sinc3_block(b[:, None], R)[:, 0], truth.astype(np.int64))
    assert truth[-1] == R**3
    assert reference_sinc3(b.tolist(), R, w - 1)[-1] == 0  # wrapped: one bit too few


def test_streaming_across_calls_from_state_copy() -> None:
    dec = Sinc3Decimator(16, 2)
    bits = np.ones((100, 2), np.int8)
    first = dec.process(bits[:37])
    snap = dec.state.copy()
    rest = dec.process(bits[37:])
    dec.state = snap
    assert np.array_equal(dec.process(bits[37:]), rest)
    assert np.array_equal(np.concatenate([first, rest]), sinc3_block(bits, 16))


def test_analytic_magnitude_matches_scipy_freqz_of_integer_kernel() -> None:
    R = 64
    f_mod = 64_000.0
    f = np.linspace(1.0, 20_000.0, 300)
    _, hz = signal.freqz(sinc3_impulse_response(R).astype(np.float64), worN=f, fs=f_mod)
    assert np.allclose(sinc3_magnitude(f, f_mod, R), np.abs(hz) / R**3, rtol=1e-9, atol=1e-13)
    assert np.all(sinc3_magnitude(np.array([1000.0, 2000.0, 5000.0]), f_mod, R) == 0.0)


def _tone_gain(f_Hz: float, n_out: int, amp: float = 0.5) -> float:
    """Amplitude gain of cycle mode (modulator + integer decimator) for a tone, by a
    least-squares fit at the aliased frequency over settled outputs."""
    R = R_CADC
    n_ch = 2
    st = ds.ModulatorState.new(n_ch, np.random.default_rng(int(f_Hz)))
    phases = np.array([0.3, 1.9])

    def tone(t_s: np.ndarray) -> np.ndarray:
        return amp * np.sin(2 * np.pi * f_Hz * t_s[:, None] + phases)

    codes = ds.modulate_decimate(tone, 1.0, st, Sinc3State.zeros(n_ch), R, 0.0,
                                 n_samples=R * n_out)
    u = sinc3_code_to_u(codes[3:], R)
    t_out = (np.arange(3, n_out) + 1) * R / F_MOD_HZ
    f_alias = f_Hz - np.round(f_Hz * R / F_MOD_HZ) * F_MOD_HZ / R
    basis = np.stack([np.cos(2 * np.pi * f_alias * t_out), np.sin(2 * np.pi * f_alias * t_out),
                      np.ones_like(t_out)], 1)
    coef, *_ = np.linalg.lstsq(basis, u, rcond=None)
    return float(np.mean(np.hypot(coef[0], coef[1])) / amp)


@pytest.mark.parametrize("f_Hz", [50.0, 60.0, 300.0])
def test_passband_and_mains_gain_match_analytic_sinc3(f_Hz: float) -> None:
    """At 1 kHz output rate the sinc3 barely touches 50/60 Hz (-0.107 / -0.154 dB)."""
    measured_dB = 20 * np.log10(_tone_gain(f_Hz, 120))
    analytic_dB = 20 * np.log10(sinc3_magnitude(f_Hz, F_MOD_HZ, R_CADC))
    assert measured_dB == pytest.approx(analytic_dB, abs=0.01)


@pytest.mark.parametrize("f_Hz", [990.0, 1010.0, 1980.0, 2020.0])
def test_near_notch_rejection_matches_analytic_sinc3(f_Hz: float) -> None:
    """1 % beside the notches at multiples of f_mod/R the sinc3 rejects ~120-130 dB."""
    measured_dB = 20 * np.log10(_tone_gain(f_Hz, 300))
    analytic_dB = 20 * np.log10(sinc3_magnitude(f_Hz, F_MOD_HZ, R_CADC))
    assert analytic_dB < -115
    assert measured_dB == pytest.approx(analytic_dB, abs=1.5)


def test_tone_exactly_on_notch_disappears() -> None:
    """On a notch the tone aliases to DC with gain 0: the output stays at u = 0."""
    R, n_out = R_CADC, 40
    st = ds.ModulatorState.new(3, np.random.default_rng(9))

    def tone(t_s: np.ndarray) -> np.ndarray:
        return 0.5 * np.sin(2 * np.pi * np.array([1000.0, 2000.0, 3000.0]) * t_s[:, None] + 0.7)

    codes = ds.modulate_decimate(tone, 1.0, st, Sinc3State.zeros(3), R, 0.0,
                                 n_samples=R * n_out)
    u = sinc3_code_to_u(codes[3:], R)
    assert np.max(np.abs(u)) < 0.5 * 10 ** (-110 / 20)
