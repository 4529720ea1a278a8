"""A scalar, per-cell reference implementation of one step guards the vectorised step.

The reference is written from the model equations with ``math`` and Python loops over cells;
only the spread-drawn per-cell parameters and the ladder sections are read from the pack
(the ladder itself is checked against the analytic Warburg element in test_warburg.py).
"""

from __future__ import annotations

import math

import numpy as np
from pack_testlib import make_config

from bms_emu.pack import VirtualPack

K0 = 273.15
R_GAS = 8.314462618


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    for a in range(len(xs) - 1):
        if xs[a] <= x <= xs[a + 1]:
            return ys[a] + (ys[a + 1] - ys[a]) * (x - xs[a]) / (xs[a + 1] - xs[a])
    raise AssertionError("unreachable")


CFG = dict(
    cell={
        "coulombic_efficiency": 0.98,
        "r0_soc_factor": {"soc": [0.0, 0.3, 1.0], "value": [1.7, 1.0, 1.2]},
        "arrhenius_Ea_J_per_mol": 28_000.0,
        "rc_pairs": [{"r_mOhm": 0.2, "c_F": 15_000.0}, {"r_mOhm": 0.1, "c_F": 300_000.0}],
        "warburg": {"r_mOhm": 0.25, "tau_s": 17.0, "n_elements": 6},
        "ocv_table": {"soc": [0.0, 0.2, 0.8, 1.0], "value": [2.8, 3.2, 3.3, 3.6]},
        "entropic_mV_per_K": {"soc": [0.0, 0.5, 1.0], "value": [0.2, -0.1, 0.05]},
        "self_discharge_pct_per_month": 2.5,
        "thermal": {"initial_temp_C": 18.0, "ambient_temp_C": 22.0},
    },
    spread={
        "capacity_rel_sigma": 0.02,
        "r0_rel_sigma": 0.05,
        "initial_soc_sigma": 0.1,
        "self_discharge_rel_sigma": 0.3,
    },
    interconnect={"busbar_mOhm": 0.08, "sense_wire_mOhm": 45.0},
)


class ScalarCells:
    """Per-cell Python model of the same equations."""

    def __init__(self, pack: VirtualPack) -> None:
        p = pack.cell_parameters()
        c = CFG["cell"]
        self.n = pack.n_cells
        self.q = p["capacity_Ah"].tolist()
        self.r0 = p["r0_Ohm"].tolist()
        self.sd = p["self_discharge_A"].tolist()
        self.r_el = p["element_r_Ohm"].tolist()
        self.tau_el = p["element_tau_s"].tolist()
        self.soc = pack.soc().tolist()
        self.temp = pack.temperature_C().tolist()
        self.v = [[0.0] * len(self.r_el) for _ in range(self.n)]
        self.amb = 22.0
        self.c = c
        self.g = [0.0] * self.n
        self.r_sw = 45e-3
        self.r_bb = [0.0] + [0.08e-3] * (self.n - 1)

    def factor(self, i: int) -> float:
        c = self.c
        t_k = self.temp[i] + K0
        arr = math.exp(c["arrhenius_Ea_J_per_mol"] / R_GAS * (1 / t_k - 1 / 298.15))
        sf = _interp(self.soc[i], c["r0_soc_factor"]["soc"], c["r0_soc_factor"]["value"])
        return arr * sf

    def dudt(self, i: int) -> float:
        t = self.c["entropic_mV_per_K"]
        return _interp(self.soc[i], t["soc"], t["value"]) * 1e-3

    def emf(self, i: int) -> float:
        t = self.c["ocv_table"]
        ocv = _interp(self.soc[i], t["soc"], t["value"]) + (self.temp[i] - 25.0) * self.dudt(i)
        return ocv - sum(self.v[i])

    def bleed(self, i_pack: float) -> list[float]:
        """Thomas algorithm on the tridiagonal loop equations, one cell at a time."""
        n = self.n
        a, b, cc, d = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
        for i in range(n):
            r0 = self.r0[i] * self.factor(i)
            ser = r0 + self.r_bb[i]
            g = self.g[i]
            b[i] = 1.0 + g * (ser + 2 * self.r_sw)
            a[i] = -g * self.r_sw if i > 0 else 0.0
            cc[i] = -g * self.r_sw if i < n - 1 else 0.0
            d[i] = g * (self.emf(i) - i_pack * ser)
        for i in range(1, n):
            m = a[i] / b[i - 1]
            b[i] -= m * cc[i - 1]
            d[i] -= m * d[i - 1]
        x = [0.0] * n
        x[n - 1] = d[n - 1] / b[n - 1]
        for i in range(n - 2, -1, -1):
            x[i] = (d[i] - cc[i] * x[i + 1]) / b[i]
        return x

    def step(self, h: float, i_pack: float) -> None:
        i_b = self.bleed(i_pack)
        eta = self.c["coulombic_efficiency"]
        hA, c_th = 1.0, 1000.0
        a_th = math.exp(-h * hA / c_th)
        new_soc, new_temp = [], []
        for i in range(self.n):
            f = self.factor(i)
            j = i_pack + i_b[i]
            w = eta if j < 0 else 1.0
            dudt = self.dudt(i)
            soc = self.soc[i] - (j * w + self.sd[i]) * h / (3600 * self.q[i])
            q = j * j * self.r0[i] * f
            for e, (r, tau) in enumerate(zip(self.r_el, self.tau_el, strict=True)):
                dec = math.exp(-h / tau)
                self.v[i][e] = self.v[i][e] * dec + j * f * r * (1 - dec)
                q += self.v[i][e] ** 2 / (f * r)
            q -= j * (self.temp[i] + K0) * dudt
            t_inf = self.amb + q / hA
            new_soc.append(soc)
            new_temp.append(t_inf + (self.temp[i] - t_inf) * a_th)
        self.soc, self.temp = new_soc, new_temp

    def terminal(self, i_pack: float) -> list[float]:
        i_b = self.bleed(i_pack)
        return [
            self.emf(i) - (i_pack + i_b[i]) * self.r0[i] * self.factor(i) for i in range(self.n)
        ]


def test_vectorised_step_matches_scalar_reference() -> None:
    pack = VirtualPack(make_config(**CFG), seed=42)
    ref = ScalarCells(pack)
    rng = np.random.default_rng(5)
    r_bleed = np.full(16, np.inf)
    r_bleed[[2, 3, 4, 10]] = 30.0  # adjacent cells couple through shared wires
    for k in range(60):
        if k == 20:
            pack.set_balance_resistance(r_bleed)
            ref.g = [1 / r for r in r_bleed]
        if k == 40:
            pack.set_ambient_temp(30.0)
            ref.amb = 30.0
        h = float(rng.uniform(0.2, 20.0))
        i = float(rng.uniform(-200.0, 200.0))
        pack.step(h, i)
        ref.step(h, i)
        np.testing.assert_allclose(pack.soc(), ref.soc, rtol=1e-12, atol=0)
        np.testing.assert_allclose(pack.temperature_C(), ref.temp, rtol=1e-12, atol=0)
        np.testing.assert_allclose(pack.snapshot()["v_el_V"], ref.v, rtol=1e-10, atol=1e-18)
        np.testing.assert_allclose(pack.cell_voltage_V(), ref.terminal(i), rtol=1e-12, atol=0)


def test_compiled_steps_follow_ambient_changes_at_constant_step() -> None:
    """The compiled step caches constants per step size; an ambient change must reach it."""
    pack = VirtualPack(make_config(**CFG), seed=3)
    ref = ScalarCells(pack)
    for k in range(30):
        if k == 10:
            pack.set_ambient_temp(40.0)
            ref.amb = 40.0
        pack.step(5.0, 120.0)
        ref.step(5.0, 120.0)
    np.testing.assert_allclose(pack.temperature_C(), ref.temp, rtol=1e-12, atol=0)
    np.testing.assert_allclose(pack.soc(), ref.soc, rtol=1e-12, atol=0)


def test_batch_run_equals_stepping() -> None:
    currents = np.random.default_rng(8).uniform(-150.0, 150.0, 500)
    a = VirtualPack(make_config(**CFG), seed=1)
    b = VirtualPack(make_config(**CFG), seed=1)
    a.run(2.0, currents)
    for i in currents:
        b.step(2.0, float(i))
    sa, sb = a.snapshot(), b.snapshot()
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
