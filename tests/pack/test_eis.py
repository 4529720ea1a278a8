"""Small-signal impedance of the time-domain model vs the analytic ``impedance()``.

A zero-mean sine current (cosine phase, so the slow RC elements start near their steady state)
is fed as the exact mean of the sine over each step, 1000 steps per period. After settling, a
least-squares fit of [cos, sin, 1, t] over integer periods gives the phasors of the overpotential
OCV - V_cell (the OCV, including its small oscillation with SOC, is removed exactly) and of the
current samples actually fed. The only discretisation error is a phase of order pi/1000 on the RC
part (the held current represents the step midpoint), far below the tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pack_testlib import make_config

from bms_emu.config import load_pack
from bms_emu.pack import VirtualPack

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "packs"
STEPS_PER_PERIOD = 1000


def _measure(pack: VirtualPack, f_Hz: float, amp_A: float, settle: int, periods: int) -> complex:
    w = 2 * np.pi * f_Hz
    h = 1.0 / (f_Hz * STEPS_PER_PERIOD)
    n_total = (settle + periods) * STEPS_PER_PERIOD
    t_edges = np.arange(n_total + 1) * h
    # exact mean of amp cos(w t) over each step
    i_mean = amp_A * (np.sin(w * t_edges[1:]) - np.sin(w * t_edges[:-1])) / (w * h)
    eta_V = np.empty((n_total, pack.n_cells))
    for k in range(n_total):
        pack.step(h, i_mean[k])
        eta_V[k] = pack.ocv_V() - pack.cell_voltage_V()
    sl = slice(settle * STEPS_PER_PERIOD, None)
    t = t_edges[1:][sl]
    basis = np.stack([np.cos(w * t), np.sin(w * t), np.ones_like(t), t - t.mean()], axis=1)
    cv, *_ = np.linalg.lstsq(basis, eta_V[sl], rcond=None)
    ci, *_ = np.linalg.lstsq(basis, i_mean[sl], rcond=None)
    # phasor of a cos wt + b sin wt is a - j b
    return (cv[0] - 1j * cv[1]) / (ci[0] - 1j * ci[1])


@pytest.mark.parametrize(("f_Hz", "settle"), [(0.01, 12), (0.1, 12), (1.0, 12)])
def test_lfp_280Ah_time_domain_impedance_matches_analytic(f_Hz: float, settle: int) -> None:
    pack = VirtualPack(load_pack(CONFIGS / "lfp_16s_280Ah.yaml"))
    z_true = pack.impedance(f_Hz)[0]
    z_sim = _measure(pack, f_Hz, amp_A=10.0, settle=settle, periods=3)
    np.testing.assert_array_less(np.abs(np.abs(z_sim) / np.abs(z_true) - 1), 0.01)
    np.testing.assert_array_less(np.abs(np.angle(z_sim / z_true, deg=True)), 0.5)
    # sanity of the target itself: a few hundred micro-ohm (REFERENCE.md s.1)
    assert np.all((np.abs(z_true) > 100e-6) & (np.abs(z_true) < 1000e-6))


def test_cold_cell_with_rc_and_ladder_matches_analytic() -> None:
    """Arrhenius and SOC factors scale the simulated circuit and impedance() alike."""
    cfg = make_config(
        cell={
            "initial_soc": 0.15,
            "r0_soc_factor": {"soc": [0.0, 0.3, 1.0], "value": [1.8, 1.0, 1.0]},
            "arrhenius_Ea_J_per_mol": 30_000.0,
            "rc_pairs": [{"r_mOhm": 0.3, "c_F": 10_000.0}],
            "warburg": {"r_mOhm": 0.4, "tau_s": 30.0},
            "thermal": {"ambient_temp_C": 5.0},
        }
    )
    pack = VirtualPack(cfg)
    z_true = pack.impedance(0.05)[0]
    z_sim = _measure(pack, 0.05, amp_A=5.0, settle=8, periods=2)
    np.testing.assert_array_less(np.abs(np.abs(z_sim) / np.abs(z_true) - 1), 0.01)
    np.testing.assert_array_less(np.abs(np.angle(z_sim / z_true, deg=True)), 0.5)
