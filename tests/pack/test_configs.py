"""The shipped pack configs load, run, and carry the figures their comments cite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bms_emu.config import load_pack
from bms_emu.pack import VirtualPack

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "packs"


@pytest.mark.parametrize("name", ["lfp_16s_280Ah.yaml", "nmc_16s_100Ah.yaml"])
def test_config_loads_and_runs_a_discharge(name: str) -> None:
    cfg = load_pack(CONFIGS / name)
    pack = VirtualPack(cfg)
    assert pack.n_cells == cfg.n_cells == 16
    v0 = pack.cell_voltage_V()
    i_A = 0.5 * cfg.cell.capacity_Ah  # C/2 for 20 min
    for _ in range(1200):
        pack.step(1.0, i_A)
    assert pack.t_s == pytest.approx(1200.0)
    # 600 As per Ah of nominal capacity, over each cell's own capacity (self-discharge < 2e-5)
    cap = pack.cell_parameters()["capacity_Ah"]
    want = VirtualPack(cfg).soc() - i_A * 1200.0 / (3600.0 * cap)
    np.testing.assert_allclose(pack.soc(), want, atol=2e-5)
    assert np.all(pack.cell_voltage_V() < v0)
    assert np.all(pack.temperature_C() > cfg.cell.thermal.ambient_temp_C)
    v_ntc = pack.ntc_voltage_V()
    assert v_ntc.shape == (len(cfg.ntc.sensor_cells),)
    assert np.all((v_ntc > 0) & (v_ntc < cfg.ntc.supply_V))


def test_lfp_280Ah_matches_its_cited_figures() -> None:
    cfg = load_pack(CONFIGS / "lfp_16s_280Ah.yaml")
    pack = VirtualPack(cfg)
    # AC-IR at 1 kHz <= 0.25 mOhm (EVE LF280K spec)
    assert np.all(pack.impedance(1000.0).real < 0.25e-3)
    # |Z| a few hundred micro-ohm over the EIS band
    z = np.abs(pack.impedance(np.array([0.01, 0.1, 1.0])))
    assert np.all((z > 100e-6) & (z < 1000e-6))
    # Warburg knee ~9 mHz and ~6 kJ/K heat capacity (REFERENCE.md s.5, s.6)
    assert cfg.cell.warburg is not None
    assert 1 / (2 * np.pi * cfg.cell.warburg.tau_s) == pytest.approx(9e-3, rel=0.1)
    assert cfg.cell.thermal.heat_capacity_J_per_K == pytest.approx(6100.0, rel=0.05)
    assert 0.05 <= cfg.interconnect.busbar_mOhm <= 0.1
