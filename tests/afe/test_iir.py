"""IIR post-filter: scalar integer reference, coefficient design, -3 dB points, step response."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, signal

from bms_emu.afe.iir import (
    IIR_FC_HZ,
    IIR_K_Q16,
    IirState,
    iir_design_k,
    iir_f3dB_Hz,
    iir_filter,
)


def scalar_iir(x: list[int], y0: int, K: int) -> list[int]:
    """Python ints, written from the docstring's RTL description."""
    y = y0
    out = []
    for xi in x:
        d = xi * 65536 - y
        y += (d * K + 32768) >> 16
        out.append(max(-32767, min(32767, (y + 32768) >> 16)))
    return out


@pytest.mark.parametrize("fc", range(1, 8))
def test_vectorised_filter_equals_scalar_reference(fc: int) -> None:
    rng = np.random.default_rng(fc)
    x = rng.integers(-32767, 32768, size=(300, 2, 3))
    x[150:] = rng.integers(-20, 20, size=(150, 2, 3)) + 12000  # small steps near the dead band
    y0 = rng.integers(-(2**31), 2**31 - 1, size=(2, 3))
    st = IirState(y0.copy())
    out = np.concatenate([iir_filter(x[:77], st, fc), iir_filter(x[77:], st, fc)])
    for i, j in np.ndindex(2, 3):
        assert out[:, i, j].tolist() == scalar_iir(x[:, i, j].tolist(), int(y0[i, j]),
                                                   IIR_K_Q16[fc])


def test_coefficients_are_shifts_that_reproduce_the_datasheet_corners() -> None:
    """k = 2**-n; the datasheet's list is -ln(1 - k) f_odr / 2 pi rounded (REFERENCE.md 2.1)."""
    for fc, f3 in IIR_FC_HZ.items():
        K = IIR_K_Q16[fc]
        assert K & (K - 1) == 0  # a power of two: a shift in the RTL
        approx_Hz = -np.log(1 - K / 2**16) * 1000.0 / (2 * np.pi)
        assert approx_Hz == pytest.approx(f3, rel=0.03)  # 10.27 Hz is listed as 10
        # the exact design for the listed corner is within a factor 1.07 of the shift
        assert K / 2**16 == pytest.approx(iir_design_k(f3), rel=0.07)


@pytest.mark.parametrize("fc", range(1, 8))
def test_exact_corner_near_the_datasheet_list_and_agrees_with_freqz(fc: int) -> None:
    k = IIR_K_Q16[fc] / 2**16
    f3_analytic = iir_f3dB_Hz(k)
    assert f3_analytic == pytest.approx(IIR_FC_HZ[fc], rel=0.05)

    def excess_dB(f: float) -> float:  # independent: scipy's evaluation of the same H(z)
        _, h = signal.freqz([k], [1.0, -(1.0 - k)], worN=[f], fs=1000.0)
        return float(20 * np.log10(np.abs(h[0])) + 10 * np.log10(2.0))

    f3_freqz = optimize.brentq(excess_dB, 1e-3, 499.0, xtol=1e-9)
    assert f3_freqz == pytest.approx(f3_analytic, rel=1e-7)


@pytest.mark.parametrize("fc", [1, 4, 7])
def test_bit_true_filter_attenuates_3dB_at_its_corner(fc: int) -> None:
    f3 = iir_f3dB_Hz(IIR_K_Q16[fc] / 2**16)
    n = 30_000
    t = np.arange(n) / 1000.0
    x = np.round(15000 * np.sin(2 * np.pi * f3 * t)).astype(np.int64)[:, None]
    y = iir_filter(x, IirState.from_codes([0]), fc)[:, 0].astype(np.float64)
    keep = slice(n // 3, n)  # settled
    basis = np.stack([np.sin(2 * np.pi * f3 * t[keep]), np.cos(2 * np.pi * f3 * t[keep])], 1)
    coef, *_ = np.linalg.lstsq(basis, y[keep], rcond=None)
    gain_dB = 20 * np.log10(np.hypot(*coef) / 15000)
    assert gain_dB == pytest.approx(-10 * np.log10(2.0), abs=0.02)


@pytest.mark.parametrize("fc", [2, 5, 7])
def test_step_response_follows_closed_form_and_settles_exactly(fc: int) -> None:
    K = IIR_K_Q16[fc]
    k = K / 2**16
    n = 6000
    y = iir_filter(np.full((n, 1), 20000), IirState.from_codes([-1000]), fc)[:, 0]
    m = np.arange(n)
    closed = 20000 - 21000 * (1 - k) ** (m + 1)
    assert np.max(np.abs(y - closed)) <= 1.0
    assert y[-1] == 20000  # no dead band left over


def test_bypass_is_identity_and_hands_over_state() -> None:
    x = np.array([[5], [-7], [300]])
    st = IirState.from_codes([0])
    assert np.array_equal(iir_filter(x, st, 0), x)
    assert iir_filter(np.array([[300]]), st, 7)[0, 0] == 300  # continues from the last result
    with pytest.raises(ValueError, match="FC"):
        iir_filter(x, st, 8)
