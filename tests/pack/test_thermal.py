"""Lumped thermal model against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pack_testlib import make_config

from bms_emu.pack import VirtualPack


def test_joule_steady_state() -> None:
    """T_ss = T_amb + I^2 R0 / hA (no RC, no entropic term, no Arrhenius)."""
    cfg = make_config(
        cell={"capacity_Ah": 1e5, "thermal": {"heat_capacity_J_per_K": 200.0, "h_A_W_per_K": 2.0}}
    )
    pack = VirtualPack(cfg)
    i_A = 80.0
    pack.advance_to(6000.0, i_A)  # 60 thermal time constants
    np.testing.assert_allclose(pack.temperature_C(), 25.0 + i_A**2 * 0.5e-3 / 2.0, atol=1e-9)


@pytest.mark.parametrize("h_s", [0.5, 10.0, 100.0])
def test_joule_transient_is_exact_exponential(h_s: float) -> None:
    """T(t) = T_amb + dT (1 - exp(-t hA / C)) at step ends, for any step size."""
    cfg = make_config(
        cell={"capacity_Ah": 1e5, "thermal": {"heat_capacity_J_per_K": 300.0, "h_A_W_per_K": 1.5}}
    )
    pack = VirtualPack(cfg)
    i_A = 60.0
    d_t = i_A**2 * 0.5e-3 / 1.5
    for k in range(1, 30):
        pack.step(h_s, i_A)
        want = 25.0 + d_t * (1 - math.exp(-k * h_s * 1.5 / 300.0))
        np.testing.assert_allclose(pack.temperature_C(), want, rtol=1e-12)


@pytest.mark.parametrize("i_A", [70.0, -70.0])
def test_steady_state_with_polarisation_and_entropic_heat(i_A: float) -> None:
    """hA (T - Ta) = I^2 (R0 + sum R_j) - I (T + 273.15) dU/dT, solved for T.

    At steady state every RC/ladder element carries V_j = I R_j, so its loss is I^2 R_j.
    """
    s_V_per_K = 0.15e-3
    cfg = make_config(
        cell={
            "capacity_Ah": 1e5,
            "rc_pairs": [{"r_mOhm": 0.2, "c_F": 20_000.0}],
            "warburg": {"r_mOhm": 0.3, "tau_s": 10.0},
            "entropic_mV_per_K": {"soc": [0.0, 1.0], "value": [0.15, 0.15]},
            "thermal": {"heat_capacity_J_per_K": 100.0, "h_A_W_per_K": 1.0},
        }
    )
    pack = VirtualPack(cfg)
    pack.advance_to(4000.0, i_A)
    r_tot = (0.5 + 0.2 + 0.3) * 1e-3
    t_amb, h_a = 25.0, 1.0
    want = (h_a * t_amb + i_A**2 * r_tot - i_A * 273.15 * s_V_per_K) / (h_a + i_A * s_V_per_K)
    np.testing.assert_allclose(pack.temperature_C(), want, atol=1e-9)
    # sign convention: with dU/dT > 0 discharge cools relative to Joule heat alone, charge warms
    joule_only = t_amb + i_A**2 * r_tot / h_a
    assert (want < joule_only) == (i_A > 0)


def test_ambient_change_relaxes_with_thermal_time_constant() -> None:
    cfg = make_config(cell={"thermal": {"heat_capacity_J_per_K": 500.0, "h_A_W_per_K": 2.0}})
    pack = VirtualPack(cfg)
    pack.set_ambient_temp(35.0)
    pack.advance_to(250.0, 0.0)  # one time constant
    np.testing.assert_allclose(pack.temperature_C(), 35.0 - 10.0 * math.exp(-1.0), rtol=1e-12)
