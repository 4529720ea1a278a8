"""NTC models against a datasheet table and their own inverses; the divider in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from pack_testlib import make_config

from bms_emu.pack import VirtualPack
from bms_emu.pack.ntc import (
    beta_divider_voltage_V,
    beta_r_Ohm,
    beta_temp_C,
    divider_r_Ohm,
    divider_voltage_V,
    steinhart_hart_fit,
    steinhart_hart_r_Ohm,
    steinhart_hart_temp_C,
)

# Semitec 103AT-2 (10 k, B25/85 = 3435 K) datasheet R-T table, kOhm
DATASHEET_103AT = {-20.0: 67.77, 0.0: 27.28, 10.0: 17.96, 25.0: 10.00, 50.0: 4.160, 85.0: 1.451}
TEMPS_C = np.linspace(-40.0, 125.0, 67)


def test_beta_model_matches_datasheet_on_its_b25_85_span() -> None:
    """B25/85 is exact at 25 and 85 C and within 2 % at 50 C."""
    assert beta_r_Ohm(25.0, 10e3, 3435.0) == pytest.approx(10e3, rel=1e-15)
    assert beta_r_Ohm(85.0, 10e3, 3435.0) == pytest.approx(1451.0, rel=2e-3)
    r50 = float(beta_r_Ohm(50.0, 10e3, 3435.0))
    assert 4100.0 <= r50 <= 4200.0
    assert r50 == pytest.approx(4160.0, rel=0.02)


def test_steinhart_hart_fit_predicts_other_datasheet_points() -> None:
    """Fit at -20, 25, 85 C; 0 C must read 27.2-27.3 k and 50 C 4.1-4.2 k (unused points)."""
    pts = (-20.0, 25.0, 85.0)
    abc = steinhart_hart_fit(pts, tuple(DATASHEET_103AT[t] * 1e3 for t in pts))
    r0 = float(steinhart_hart_r_Ohm(0.0, abc))
    r50 = float(steinhart_hart_r_Ohm(50.0, abc))
    assert 27.2e3 <= r0 <= 27.3e3
    assert 4.1e3 <= r50 <= 4.2e3
    assert float(steinhart_hart_r_Ohm(10.0, abc)) == pytest.approx(17.96e3, rel=3e-3)


def test_beta_round_trip() -> None:
    r = beta_r_Ohm(TEMPS_C, 10e3, 3435.0)
    v = divider_voltage_V(r, 10e3, 3.0)
    t = beta_temp_C(divider_r_Ohm(v, 10e3, 3.0), 10e3, 3435.0)
    np.testing.assert_allclose(t, TEMPS_C, rtol=0, atol=1e-9)


def test_steinhart_hart_round_trip() -> None:
    abc = steinhart_hart_fit((0.0, 25.0, 85.0), (27.28e3, 10e3, 1.451e3))
    r = steinhart_hart_r_Ohm(TEMPS_C, abc)
    v = divider_voltage_V(r, 10e3, 3.0)
    t = steinhart_hart_temp_C(divider_r_Ohm(v, 10e3, 3.0), abc)
    np.testing.assert_allclose(t, TEMPS_C, rtol=0, atol=1e-9)


def test_divider_closed_form() -> None:
    assert divider_voltage_V(10e3, 10e3, 3.0) == pytest.approx(1.5, rel=1e-15)
    assert divider_voltage_V(30e3, 10e3, 3.0) == pytest.approx(2.25, rel=1e-15)


@pytest.mark.parametrize("model", ["beta", "steinhart_hart"])
def test_pack_ntc_voltages(model: str) -> None:
    """Cells at 25 C with a 10 k pull-up from 3 V read 1.5 V; a warm cell reads lower."""
    abc = steinhart_hart_fit((0.0, 25.0, 85.0), (27.28e3, 10e3, 1.451e3))
    cfg = make_config(
        ntc={"model": model, "steinhart_hart_abc": list(abc), "sensor_cells": [0, 5, 15]}
    )
    pack = VirtualPack(cfg)
    v = pack.ntc_voltage_V()
    assert v.shape == (3,)
    np.testing.assert_allclose(v, 1.5, rtol=1e-9)
    pack.set_ambient_temp(45.0)
    pack.advance_to(5000.0, 0.0)
    assert np.all(pack.ntc_voltage_V() < 1.5)


def test_compiled_beta_divider_equals_numpy_path() -> None:
    """``beta_divider_voltage_V`` (VirtualPack's NTC sample) against the numpy functions."""
    rng = np.random.default_rng(31)
    for _ in range(300):
        temp_K = rng.uniform(200.0, 420.0, 16)
        cells = np.sort(rng.choice(16, int(rng.integers(0, 17)), replace=False))
        r25, beta = float(rng.uniform(1e3, 1e5)), float(rng.uniform(2500.0, 4500.0))
        pullup, supply = float(rng.uniform(1e3, 1e5)), float(rng.uniform(1.5, 5.0))
        ref = divider_voltage_V(beta_r_Ohm(temp_K[cells] - 273.15, r25, beta), pullup, supply)
        got = beta_divider_voltage_V(temp_K, cells, r25, beta, pullup, supply)
        assert np.array_equal(got, ref)
