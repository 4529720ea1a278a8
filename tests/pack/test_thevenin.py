"""Exactness of the exponential RC update and the resistance scaling laws."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pack_testlib import make_config

from bms_emu.pack import VirtualPack
from bms_emu.pack.thevenin import arrhenius_factor, rc_step


@pytest.mark.parametrize("h_s", [0.01, 0.37, 2.0, 25.0])
def test_rc_step_matches_closed_form(h_s: float) -> None:
    """V(t) = I R (1 - e^{-t/RC}) at every step end, whatever the step size."""
    r_Ohm, c_F, i_A = 2e-3, 1500.0, 40.0
    tau = r_Ohm * c_F
    decay = np.exp(-h_s / np.array([tau]))
    v = np.zeros((1, 1))
    for k in range(1, 60):
        v = rc_step(v, np.array([i_A]), np.array([[r_Ohm]]), decay)
        t = k * h_s
        assert v[0, 0] == pytest.approx(i_A * r_Ohm * (1 - math.exp(-t / tau)), rel=1e-12)


@pytest.mark.parametrize("h_s", [0.05, 1.0, 7.0])
def test_pack_overpotential_is_r0_plus_rc_closed_form(h_s: float) -> None:
    """OCV - V_cell = I R0 + I R1 (1 - e^{-t/tau1}) for a one-RC cell under a current step."""
    cfg = make_config(cell={"rc_pairs": [{"r_mOhm": 0.8, "c_F": 5000.0}]})
    pack = VirtualPack(cfg)
    i_A, r0, r1, tau = 30.0, 0.5e-3, 0.8e-3, 0.8e-3 * 5000.0
    for k in range(1, 40):
        pack.step(h_s, i_A)
        t = k * h_s
        want = i_A * (r0 + r1 * (1 - math.exp(-t / tau)))
        got = pack.ocv_V() - pack.cell_voltage_V()
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_arrhenius_factor_closed_form() -> None:
    """R(T)/R(25 C) = exp(Ea/R_gas (1/T - 1/298.15)); 1 at 25 C; > 1 when cold."""
    ea = 30_000.0
    temps = np.array([-10.0, 0.0, 25.0, 45.0])
    want = np.exp(ea / 8.314462618 * (1 / (temps + 273.15) - 1 / 298.15))
    np.testing.assert_allclose(arrhenius_factor(temps, ea), want, rtol=1e-13)
    assert arrhenius_factor(np.array([25.0]), ea)[0] == pytest.approx(1.0, abs=1e-15)
    # 30 kJ/mol roughly triples R from 25 C down to 0 C: exp(3608 K * 3.0697e-4 /K) = 3.02
    assert arrhenius_factor(np.array([0.0]), ea)[0] == pytest.approx(3.02, abs=0.01)


def test_resistance_scaling_shows_in_impedance() -> None:
    """High-frequency |Z| -> R0 x SOC factor x Arrhenius factor (cold cell, low SOC)."""
    cfg = make_config(
        cell={
            "initial_soc": 0.1,
            "r0_soc_factor": {"soc": [0.0, 0.2, 1.0], "value": [2.0, 1.0, 1.0]},
            "arrhenius_Ea_J_per_mol": 20_000.0,
            "thermal": {"ambient_temp_C": 5.0},
        }
    )
    pack = VirtualPack(cfg)
    soc_factor = 1.5  # linear between (0, 2.0) and (0.2, 1.0) at SOC 0.1
    arr = math.exp(20_000.0 / 8.314462618 * (1 / 278.15 - 1 / 298.15))
    z = pack.impedance(1e6)
    np.testing.assert_allclose(z.real, 0.5e-3 * soc_factor * arr, rtol=1e-12)
