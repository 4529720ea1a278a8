"""Built-in OCV and entropic tables against their cited sources; OCV(SOC, T) law."""

from __future__ import annotations

import numpy as np
import pytest
from pack_testlib import make_config

from bms_emu.pack import VirtualPack
from bms_emu.pack.ocv import ENTROPIC_MV_PER_K, OCV25_V

A123_POINTS = [
    (1.0, 3.59),
    (0.957, 3.32),
    (0.527, 3.272),
    (0.226, 3.22),
    (0.0535, 3.12),
    (0.01, 2.90),
]


def test_lfp_table_passes_through_a123_points() -> None:
    soc, v = np.array(A123_POINTS).T
    np.testing.assert_allclose(OCV25_V["lfp"](soc), v, atol=1e-12)


def test_lfp_plateau_slope_is_sub_mv_per_percent() -> None:
    """REFERENCE.md: ~0.6 mV per % SOC on the plateau (30-95 %)."""
    soc = np.linspace(0.30, 0.95, 66)
    slope_mV_per_pct = np.diff(OCV25_V["lfp"](soc)) / np.diff(soc) * 1e3 / 100
    assert np.all(slope_mV_per_pct > 0)
    assert 0.3 < np.mean(slope_mV_per_pct) < 1.2


@pytest.mark.parametrize("chem", ["lfp", "nmc"])
def test_tables_are_monotonic_and_entropic_terms_small(chem: str) -> None:
    soc = np.linspace(0, 1, 501)
    assert np.all(np.diff(OCV25_V[chem](soc)) > 0)
    assert np.max(np.abs(ENTROPIC_MV_PER_K[chem](soc))) <= 0.5  # tens to hundreds of uV/K


def test_nmc_full_cell_spans_the_m50_cutoffs() -> None:
    """LG M50: 2.5 V and 4.2 V cut-offs (Chen 2020)."""
    v = OCV25_V["nmc"](np.array([0.0, 0.5, 1.0]))
    assert v[0] == pytest.approx(2.5, abs=0.05)
    assert v[2] == pytest.approx(4.2, abs=0.02)
    assert 3.6 < v[1] < 3.8


def test_ocv_temperature_law() -> None:
    """OCV(SOC, T) = OCV25(SOC) + (T - 25) dU/dT(SOC)."""
    cfg = make_config(
        cell={
            "entropic_mV_per_K": {"soc": [0.0, 1.0], "value": [0.2, -0.2]},
            "thermal": {"initial_temp_C": 40.0, "ambient_temp_C": 40.0},
            "initial_soc": 0.25,
        }
    )
    pack = VirtualPack(cfg)
    want = (3.0 + 0.4 * 0.25) + 15.0 * 0.1e-3  # dU/dT(0.25) = 0.1 mV/K
    np.testing.assert_allclose(pack.ocv_V(), want, rtol=1e-14)
