"""Coulomb counting and self-discharge against closed forms."""

from __future__ import annotations

import numpy as np
from pack_testlib import make_config

from bms_emu.pack import VirtualPack


def test_soc_change_equals_integrated_current() -> None:
    """dSOC = -sum(I_k h_k w_k) / (3600 Q), w = 1 on discharge and eta on charge."""
    eta, q_Ah = 0.97, 100.0
    cfg = make_config(
        cell={"coulombic_efficiency": eta, "capacity_Ah": q_Ah},
        spread={"initial_soc_sigma": 0.05},
    )
    pack = VirtualPack(cfg)
    rng = np.random.default_rng(11)
    h = rng.uniform(0.1, 30.0, 400)
    i = rng.uniform(-150.0, 150.0, 400)
    soc0 = pack.soc()
    for hk, ik in zip(h, i, strict=True):
        pack.step(float(hk), float(ik))
    weight = np.where(i < 0, eta, 1.0)
    want = soc0 - np.sum(i * h * weight) / (3600.0 * q_Ah)
    np.testing.assert_allclose(pack.soc(), want, rtol=0, atol=1e-9)


def test_self_discharge_percent_per_month() -> None:
    """3 %/month with no current: SOC falls by exactly 0.03 in one mean month (30.4375 d)."""
    cfg = make_config(cell={"self_discharge_pct_per_month": 3.0})
    pack = VirtualPack(cfg, max_step_s=3600.0)  # linear in time: long steps are exact
    month_s = 365.25 / 12 * 86400
    pack.advance_to(month_s, 0.0)
    np.testing.assert_allclose(pack.soc(), 0.5 - 0.03, rtol=0, atol=1e-12)


def test_self_discharge_spread_is_per_cell() -> None:
    cfg = make_config(
        cell={"self_discharge_pct_per_month": 3.0}, spread={"self_discharge_rel_sigma": 0.3}
    )
    pack = VirtualPack(cfg, max_step_s=86400.0)
    pack.advance_to(30 * 86400.0, 0.0)
    drop = 0.5 - pack.soc()
    assert np.ptp(drop) > 1e-3  # sigma 30 % of ~3 % over 16 cells
    assert np.all(drop >= 0)


def test_bleed_current_discharges_only_its_cell() -> None:
    """A bleed resistor on cell 4 drains ~V/R for the time it is on; the others keep SOC."""
    cfg = make_config(interconnect={"sense_wire_mOhm": 20.0})
    pack = VirtualPack(cfg)
    r_bleed = np.full(16, np.inf)
    r_bleed[4] = 32.0
    pack.set_balance_resistance(r_bleed)
    t_s = 3600.0
    pack.advance_to(t_s, 0.0)
    drop = 0.5 - pack.soc()
    # OCV 3.2 V falls by < 0.5 mV over the hour: I_b = 3.2 / (32 + 0.04 + 0.0005) A within 2e-4
    want = 3.2 / (32.0 + 0.04 + 0.0005) * t_s / (3600.0 * 100.0)
    assert abs(drop[4] - want) / want < 2e-4
    np.testing.assert_array_equal(np.delete(drop, 4), 0.0)
