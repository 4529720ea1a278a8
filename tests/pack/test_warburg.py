"""Warburg element: analytic limits, the Foster expansion, and the ladder actually simulated."""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.pack.warburg import foster_ladder, ladder_impedance, warburg_impedance

BAND_HZ = np.geomspace(0.005, 10.0, 300)


def test_analytic_limits() -> None:
    """Low f: tanh(x)/x = 1 - x^2/3 + 2x^4/15 - 17x^6/315; high f: R / sqrt(j w tau), -45 deg."""
    r, tau = 1e-3, 17.0
    f_lo = 1e-5
    w = 2 * np.pi * f_lo
    wt = w * tau
    want = r * (1 - 1j * wt / 3 - 2 * wt**2 / 15 + 17j * wt**3 / 315)
    np.testing.assert_allclose(warburg_impedance(f_lo, r, tau), want, rtol=1e-11)
    f_hi = 1e4
    z = warburg_impedance(f_hi, r, tau)[0]
    np.testing.assert_allclose(z, r / np.sqrt(2j * np.pi * f_hi * tau), rtol=1e-12)
    assert np.angle(z, deg=True) == pytest.approx(-45.0, abs=1e-9)
    assert warburg_impedance(0.0, r, tau)[0] == r


def test_foster_series_converges_to_tanh() -> None:
    """sum_k 2/(x + lambda_k) -> tanh(sqrt x)/sqrt x (independent of the ladder code)."""
    x = 2j * np.pi * 0.3 * 17.0
    k = np.arange(1, 2_000_001)
    lam = ((2 * k - 1) * np.pi / 2) ** 2
    series = np.sum(2.0 / (x + lam))
    assert abs(series - np.tanh(np.sqrt(x)) / np.sqrt(x)) < 1e-6


@pytest.mark.parametrize("tau_s", [1.0, 5.0, 17.0, 126.0, 300.0])
def test_ladder_matches_analytic_over_band(tau_s: float) -> None:
    """12 sections match R tanh(sqrt(jwT))/sqrt(jwT) within 2 % |Z| and 2 deg, 0.005-10 Hz."""
    r = 1e-4
    r_k, tau_k = foster_ladder(r, tau_s, 12)
    assert r_k.shape == tau_k.shape == (12,)
    za = warburg_impedance(BAND_HZ, r, tau_s)
    zl = ladder_impedance(BAND_HZ, r_k, tau_k)
    assert np.max(np.abs(np.abs(zl) / np.abs(za) - 1)) < 0.02
    assert np.max(np.abs(np.angle(zl / za, deg=True))) < 2.0


def test_lfp_ladder_is_well_inside_the_tolerance() -> None:
    """The LFP case (tau 17 s) is the EIS truth: hold it to 0.5 % and 0.3 deg."""
    r_k, tau_k = foster_ladder(1e-4, 17.0, 12)
    za = warburg_impedance(BAND_HZ, 1e-4, 17.0)
    zl = ladder_impedance(BAND_HZ, r_k, tau_k)
    assert np.max(np.abs(np.abs(zl) / np.abs(za) - 1)) < 0.005
    assert np.max(np.abs(np.angle(zl / za, deg=True))) < 0.3


@pytest.mark.parametrize(("tau_s", "n"), [(17.0, 12), (126.0, 12), (3.0, 5), (1000.0, 8)])
def test_ladder_dc_resistance_sums_to_r(tau_s: float, n: int) -> None:
    r_k, _ = foster_ladder(2.5e-4, tau_s, n)
    assert np.sum(r_k) == pytest.approx(2.5e-4, rel=1e-13)
    assert np.all(r_k > 0)


def test_first_sections_are_the_exact_foster_terms() -> None:
    """The slow, sparse terms are kept exactly: R_k = 2R/lambda_k, tau_k = tau/lambda_k."""
    r, tau = 1e-4, 17.0
    r_k, tau_k = foster_ladder(r, tau, 12)
    for k in (1, 2, 3):
        lam = ((2 * k - 1) * np.pi / 2) ** 2
        assert r_k[k - 1] == pytest.approx(2 * r / lam, rel=1e-14)
        assert tau_k[k - 1] == pytest.approx(tau / lam, rel=1e-14)


def test_single_section_is_r_and_tau_over_3() -> None:
    """One section keeps DC R and the first moment: sum R_k tau_k / R = tau/3."""
    r_k, tau_k = foster_ladder(1e-3, 9.0, 1)
    assert r_k.tolist() == [1e-3]
    assert tau_k[0] == pytest.approx(3.0, rel=1e-15)
