"""The virtual pack: a series string of equivalent-circuit cells behind the monitor chip.

Per cell: OCV(SOC, T) + R0 + RC pairs + a Warburg RC ladder, coulomb counting with a charge-side
coulombic efficiency, self-discharge leakage, a lumped thermal node, and the interconnect
(busbars, sense wires, bleed resistors) described in :mod:`bms_emu.pack.interconnect`.

Time stepping holds the pack current at its mean over each step (zero-order hold). The RC, SOC
and thermal updates are then exact; only the state-dependent quantities (resistance factors,
entropic coefficient, bleed currents, heat) are frozen at their start-of-step values.

Sign convention: current + = discharge.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from bms_emu.pack.interconnect import balance_currents_A, sense_voltages_V
from bms_emu.pack.ntc import (
    beta_divider_voltage_V,
    divider_voltage_V,
    steinhart_hart_r_Ohm,
)
from bms_emu.pack.ocv import ENTROPIC_MV_PER_K, OCV25_V, SocTable
from bms_emu.pack.step_kernel import steps_no_balancing, terminal_and_sense_no_balancing
from bms_emu.pack.thevenin import GAS_CONSTANT_J_PER_MOL_K, T_REF_K, ZERO_C_IN_K
from bms_emu.pack.warburg import foster_ladder, ladder_impedance
from bms_emu.sim import RandomStreams

if TYPE_CHECKING:
    from bms_emu.config import PackConfig, SocTableConfig

__all__ = ["HOURS_PER_MONTH", "VirtualPack"]

#: Mean month (365.25 days / 12) used to turn %/month self-discharge into a leakage current.
HOURS_PER_MONTH = 365.25 * 24.0 / 12.0
#: Floor of the spread multipliers (capacity, R0) so a wild draw never gives <= 0.
_SPREAD_FLOOR = 0.05


def _table(cfg: SocTableConfig | None, default: SocTable, scale: float = 1.0) -> SocTable:
    if cfg is None:
        return SocTable(default.soc, default.value * scale)
    return SocTable(cfg.soc, np.asarray(cfg.value, dtype=float) * scale)


class VirtualPack:
    """A series string of ``n_cells`` equivalent-circuit cells with interconnect and sensors.

    Parameters
    ----------
    config : PackConfig
        Pack parameters.
    seed : int, optional
        Seed of the manufacturing spread; ``None`` uses ``config.seed``. The spread is drawn from
        ``RandomStreams(seed).generator("pack.spread")`` as one ``standard_normal((4, n_cells))``
        array whose rows are capacity, R0, initial SOC and self-discharge.
    max_step_s : float
        Longest internal step :meth:`advance_to` takes (it splits longer intervals evenly).

    Attributes
    ----------
    n_cells : int
    t_s : float
        Time the state is at.
    """

    def __init__(self, config: PackConfig, seed: int | None = None, *, max_step_s: float = 10.0):
        cell = config.cell
        n = int(config.n_cells)
        self.n_cells = n
        self.t_s = 0.0
        if not max_step_s > 0:
            raise ValueError(f"max_step_s must be > 0, got {max_step_s}")
        self.max_step_s = float(max_step_s)

        rng = RandomStreams(config.seed if seed is None else seed).generator("pack.spread")
        z = rng.standard_normal((4, n))
        sp = config.spread
        self._capacity_Ah = cell.capacity_Ah * np.maximum(
            1.0 + sp.capacity_rel_sigma * z[0], _SPREAD_FLOOR
        )
        self._r0_nom_Ohm = (
            cell.r0_mOhm * 1e-3 * np.maximum(1.0 + sp.r0_rel_sigma * z[1], _SPREAD_FLOOR)
        )
        soc0 = np.clip(cell.initial_soc + sp.initial_soc_sigma * z[2], 0.0, 1.0)
        sd_rel = np.maximum(1.0 + sp.self_discharge_rel_sigma * z[3], 0.0)
        self._self_discharge_A = (
            cell.self_discharge_pct_per_month / 100.0 * self._capacity_Ah / HOURS_PER_MONTH * sd_rel
        )
        # d(SOC)/d(charge in As) per cell
        self._inv_q_per_As = 1.0 / (3600.0 * self._capacity_Ah)
        self._sd_soc_per_s = self._self_discharge_A * self._inv_q_per_As
        self._eta = float(cell.coulombic_efficiency)

        # RC pairs and Warburg ladder sections share one state array: (n_cells, m)
        r_list = [p.r_mOhm * 1e-3 for p in cell.rc_pairs]
        tau_list = [p.r_mOhm * 1e-3 * p.c_F for p in cell.rc_pairs]
        r_el = np.asarray(r_list, dtype=float)
        tau_el = np.asarray(tau_list, dtype=float)
        self._n_rc = len(r_list)
        if cell.warburg is not None and cell.warburg.r_mOhm > 0:
            r_w, tau_w = foster_ladder(
                cell.warburg.r_mOhm * 1e-3, cell.warburg.tau_s, cell.warburg.n_elements
            )
            r_el = np.concatenate([r_el, r_w])
            tau_el = np.concatenate([tau_el, tau_w])
        self._r_el_Ohm = r_el  # (m,), at 25 C, SOC factor 1
        self._g_el_S = 1.0 / r_el
        self._tau_el_s = tau_el

        self._ocv25 = _table(cell.ocv_table, OCV25_V[config.chemistry])
        # mV/K -> V/K
        self._dudt = _table(cell.entropic_mV_per_K, ENTROPIC_MV_PER_K[config.chemistry], 1e-3)
        self._soc_factor = (
            None
            if cell.r0_soc_factor is None
            else SocTable(cell.r0_soc_factor.soc, cell.r0_soc_factor.value)
        )
        self._ea_over_r_K = cell.arrhenius_Ea_J_per_mol / GAS_CONSTANT_J_PER_MOL_K
        self._ea_over_r_ref = self._ea_over_r_K / T_REF_K

        th = cell.thermal
        self._c_th_J_per_K = th.heat_capacity_J_per_K
        self._h_a_W_per_K = th.h_A_W_per_K
        self._ambient_C = float(th.ambient_temp_C)
        t0 = th.ambient_temp_C if th.initial_temp_C is None else th.initial_temp_C

        ic = config.interconnect
        self._r_bb_Ohm = np.full(n, ic.busbar_mOhm * 1e-3)
        self._r_bb_Ohm[0] = 0.0  # cell 0 sits on the pack minus: no busbar below it
        self._r_sw_Ohm = np.full(n + 1, ic.sense_wire_mOhm * 1e-3)

        self._ntc = config.ntc
        self._ntc_cells = np.asarray(config.ntc.sensor_cells, dtype=int)

        # state
        self._soc = soc0
        # (m, n_cells): element-major so the per-element decay broadcasts along contiguous rows
        self._v_el_V = np.zeros((r_el.size, n))
        self._temp_K = np.full(n, float(t0) + ZERO_C_IN_K)  # Kelvin saves two ops per step
        self._current_A = 0.0
        self._g_bleed_S = np.zeros(n)
        self._balancing = False

        # step-size cache (exponentials depend only on h)
        self._cached_dt_s = -1.0
        self._current_1 = np.zeros(1)
        self._empty = np.zeros(0)
        self._decay = np.empty(0)
        self._r_gain_Ohm = np.empty(0)
        self._th_decay = 1.0

    # ------------------------------------------------------------------ helpers

    def _prepare(self, dt_s: float) -> None:
        """Precompute everything that depends only on the step length."""
        decay = np.exp(-dt_s / self._tau_el_s)
        r_gain = self._r_el_Ohm * (1.0 - decay)
        self._decay = decay[:, None]  # (m, 1)
        self._r_gain_Ohm = r_gain[:, None]  # (m, 1)
        th_decay = math.exp(-dt_s * self._h_a_W_per_K / self._c_th_J_per_K)
        self._th_decay = th_decay
        self._th_heat_gain_K_per_W = (1.0 - th_decay) / self._h_a_W_per_K
        self._soc_per_A_dis = self._inv_q_per_As * dt_s  # SOC drop per A of discharge, (n,)
        self._soc_per_A_chg = self._soc_per_A_dis * self._eta  # charge side: losses
        self._soc_sd = self._sd_soc_per_s * dt_s
        self._cached_dt_s = dt_s
        # the compiled step's views of the same constants: fresh contiguous (m,) / (n,) arrays
        # already, so no copies (steps vary in length when conversions are sparse, so this runs
        # on most steps and its numpy call count matters)
        self._decay_1d = decay
        self._r_gain_1d = r_gain
        self._soc_sd_arr = self._soc_sd
        self._per_a_dis = self._soc_per_A_dis
        self._per_a_chg = self._soc_per_A_chg
        self._coef = np.array([
            th_decay, self._th_heat_gain_K_per_W, self._ambient_C + ZERO_C_IN_K,
            self._ea_over_r_K, self._ea_over_r_ref,
        ])  # fmt: skip

    def _r_factor(self) -> np.ndarray:
        """Resistance multiplier vs 25 C / SOC factor 1, shape (n_cells,)."""
        if self._ea_over_r_K:
            # exp(Ea/R (1/T - 1/T_ref)) with the constant folded in
            f = np.exp(self._ea_over_r_K / self._temp_K - self._ea_over_r_ref)
        else:
            f = np.ones(self.n_cells)
        if self._soc_factor is not None:
            f *= np.interp(self._soc, self._soc_factor.soc, self._soc_factor.value)
        return f

    def _emf_V(self) -> np.ndarray:
        """OCV minus the RC/ladder voltages, shape (n_cells,)."""
        return self.ocv_V() - self._v_el_V.sum(axis=0)

    def _bleed_A(self, r0_Ohm: np.ndarray) -> np.ndarray:
        if not self._balancing:
            return np.zeros(self.n_cells)
        return balance_currents_A(
            self._emf_V(), self._current_A, r0_Ohm, self._g_bleed_S, self._r_sw_Ohm, self._r_bb_Ohm
        )

    # ------------------------------------------------------------------ stepping

    def step(self, dt_s: float, current_A: float) -> None:
        """Advance the state by ``dt_s`` with the pack current held at ``current_A``.

        Parameters
        ----------
        dt_s : float
            Step length, > 0.
        current_A : float
            Mean pack current over the step, + = discharge.
        """
        if not dt_s > 0.0:
            raise ValueError(f"dt_s must be > 0, got {dt_s}")
        if dt_s != self._cached_dt_s:
            self._prepare(dt_s)
        i_pack = float(current_A)
        self._current_A = i_pack
        if not self._balancing:
            self._current_1[0] = i_pack
            self._run_compiled(self._current_1)
            self.t_s += dt_s
            return
        soc = self._soc
        temp_K = self._temp_K
        # resistance factor (inlined _r_factor: this is the hot path)
        if self._ea_over_r_K:
            f = np.exp(self._ea_over_r_K / temp_K - self._ea_over_r_ref)
        else:
            f = np.ones(self.n_cells)
        if self._soc_factor is not None:
            f *= np.interp(soc, self._soc_factor.soc, self._soc_factor.value)
        # heat terms are accumulated already multiplied by (1 - a)/hA, the thermal gain
        gain = self._th_heat_gain_K_per_W
        # balancing (the compiled kernel covers the rest): cell currents differ per cell
        r0 = self._r0_nom_Ohm * f
        j = i_pack + self._bleed_A(r0)  # (n_cells,)
        # coulombic losses only on charge (J < 0)
        d_soc = j * np.where(j < 0.0, self._soc_per_A_chg, self._soc_per_A_dis)
        dtemp = (j * j * gain) * r0
        jf = j * f
        dudt = np.interp(soc, self._dudt.soc, self._dudt.value)  # inlined SocTable call

        self._soc = soc - (d_soc + self._soc_sd)
        # exact RC/ladder update: V <- V e^{-h/tau} + J R (1 - e^{-h/tau}), R = f R_nom
        v = self._v_el_V
        v *= self._decay
        v += self._r_gain_Ohm * jf
        # heat Q = J^2 R0 + sum V^2 / (f R_nom) - J T dU/dT, held over the step; exact update
        # T <- T a + (T_amb + Q/hA)(1 - a), with gain = (1 - a)/hA folded into each term
        dtemp += (self._g_el_S @ (v * v)) * (gain / f)
        dtemp -= (j * gain) * temp_K * dudt
        dtemp += (self._ambient_C + ZERO_C_IN_K) * (1.0 - self._th_decay)
        temp_K = temp_K * self._th_decay
        temp_K += dtemp
        self._temp_K = temp_K
        self.t_s += dt_s

    def run(self, dt_s: float, currents_A: np.ndarray) -> None:
        """Take ``len(currents_A)`` steps of ``dt_s``, step ``k`` at mean current ``currents_A[k]``.

        Same result as calling :meth:`step` in a loop; without balancing the whole loop runs
        compiled (no per-step Python overhead).
        """
        i = np.ascontiguousarray(currents_A, dtype=float)
        if not dt_s > 0.0:
            raise ValueError(f"dt_s must be > 0, got {dt_s}")
        if self._balancing:
            for i_k in i:
                self.step(dt_s, float(i_k))
            return
        if i.size == 0:
            return
        if dt_s != self._cached_dt_s:
            self._prepare(dt_s)
        self._run_compiled(i)
        self._current_A = float(i[-1])
        self.t_s += dt_s * i.size

    def _run_compiled(self, currents_A: np.ndarray) -> None:
        sf = self._soc_factor
        steps_no_balancing(
            currents_A, self._soc, self._v_el_V, self._temp_K, self._decay_1d,
            self._r_gain_1d, self._g_el_S, self._r0_nom_Ohm, self._soc_sd_arr, self._per_a_dis,
            self._per_a_chg, self._coef,
            self._empty if sf is None else sf.soc, self._empty if sf is None else sf.value,
            self._dudt.soc, self._dudt.value,
        )  # fmt: skip

    def advance_to(self, t_s: float, current_A: float) -> None:
        """Step from ``self.t_s`` to ``t_s`` with the current held at ``current_A``.

        Intervals longer than ``max_step_s`` are split into equal steps. No-op if ``t_s`` equals
        the present time.

        Raises
        ------
        ValueError
            If ``t_s`` is earlier than the present time.
        """
        if t_s == self.t_s:
            return
        if t_s < self.t_s:
            raise ValueError(f"cannot advance back to t_s = {t_s}: the pack is at {self.t_s}")
        span = t_s - self.t_s
        n_sub = max(1, math.ceil(span / self.max_step_s))
        h = span / n_sub
        for _ in range(n_sub):
            self.step(h, current_A)
        self.t_s = float(t_s)  # no rounding drift from the sub-steps

    # ------------------------------------------------------------------ inputs

    def set_balance_resistance(self, r_Ohm: np.ndarray) -> None:
        """Bleed resistor across each cell's sense pins; ``np.inf`` = switch open.

        Parameters
        ----------
        r_Ohm : numpy.ndarray, shape (n_cells,)
        """
        r = np.asarray(r_Ohm, dtype=float)
        if r.shape != (self.n_cells,):
            raise ValueError(f"r_Ohm must have shape ({self.n_cells},), got {r.shape}")
        if np.any(~(r > 0)):
            raise ValueError("balance resistances must be > 0 (np.inf = off)")
        self._g_bleed_S = 1.0 / r
        self._balancing = bool(np.any(self._g_bleed_S > 0))

    def set_ambient_temp(self, temp_C: float) -> None:
        """Ambient temperature the cells exchange heat with."""
        self._ambient_C = float(temp_C)
        self._cached_dt_s = -1.0  # the compiled step holds the ambient among its constants

    # ------------------------------------------------------------------ outputs

    def ocv_V(self) -> np.ndarray:
        """Open-circuit voltage ``OCV25(SOC) + (T - 25) dU/dT(SOC)``, shape (n_cells,)."""
        return self._ocv25(self._soc) + (self._temp_K - T_REF_K) * self._dudt(self._soc)

    def soc(self) -> np.ndarray:
        """State of charge (not clipped), shape (n_cells,)."""
        return self._soc.copy()

    def temperature_C(self) -> np.ndarray:
        """Cell temperatures, shape (n_cells,)."""
        return self._temp_K - ZERO_C_IN_K

    def balance_current_A(self) -> np.ndarray:
        """Bleed current of each cell at the present state and current, shape (n_cells,)."""
        return self._bleed_A(self._r0_nom_Ohm * self._r_factor())

    def cell_voltage_V(self) -> np.ndarray:
        """True terminal voltage ``E - (I + I_b) R0`` at the present state, shape (n_cells,)."""
        r0 = self._r0_nom_Ohm * self._r_factor()
        i_b = self._bleed_A(r0)
        return self._emf_V() - (self._current_A + i_b) * r0

    def sense_voltage_V(self) -> np.ndarray:
        """Differential voltage at the chip's sense pins, shape (n_cells,).

        Includes the busbar drop in each cell's span and the bleed-current drops in the sense
        wires (crosstalk to the neighbours); see :mod:`bms_emu.pack.interconnect`.
        """
        return self.cell_and_sense_voltage_V()[1]

    def cell_and_sense_voltage_V(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`cell_voltage_V` and :meth:`sense_voltage_V` from one evaluation of the shared
        terms (resistance factor, bleed currents, EMF): what a sample needs, at half the cost."""
        if not self._balancing:
            return self._terminal_and_sense_no_bleed()
        r0 = self._r0_nom_Ohm * self._r_factor()
        i_b = self._bleed_A(r0)
        v_term = self._emf_V() - (self._current_A + i_b) * r0
        v_sense = sense_voltages_V(v_term, self._current_A, i_b, self._r_sw_Ohm, self._r_bb_Ohm)
        return v_term, v_sense

    def _terminal_and_sense_no_bleed(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`cell_and_sense_voltage_V` with no bleed resistor on, in one compiled call.

        Zero bleed currents: ``I + 0`` and the zero wire drops of the general path change no
        bit, so the kernel leaves them out. Only the Arrhenius exp stays in numpy (its exp may
        differ from a compiled one in the last bit).
        """
        if self._ea_over_r_K:
            f = np.exp(self._ea_over_r_K / self._temp_K - self._ea_over_r_ref)
        else:
            f = np.ones(self.n_cells)
        sf = self._soc_factor
        v_term = np.empty(self.n_cells)
        v_sense = np.empty(self.n_cells)
        terminal_and_sense_no_balancing(
            f, self._soc, self._temp_K, self._v_el_V, self._r0_nom_Ohm, self._r_bb_Ohm,
            self._current_A, T_REF_K, self._ocv25.soc, self._ocv25.value, self._dudt.soc,
            self._dudt.value, self._empty if sf is None else sf.soc,
            self._empty if sf is None else sf.value, v_term, v_sense,
        )  # fmt: skip
        return v_term, v_sense

    def ntc_voltage_V(self) -> np.ndarray:
        """Divider voltage of each NTC sensor, shape (n_sensors,)."""
        c = self._ntc
        if c.model == "beta":  # the hot case in one compiled pass around np.exp
            return beta_divider_voltage_V(self._temp_K, self._ntc_cells, c.r25_Ohm, c.beta_K,
                                          c.pullup_Ohm, c.supply_V)
        temp = self._temp_K[self._ntc_cells] - ZERO_C_IN_K
        assert c.steinhart_hart_abc is not None  # enforced by the config validator
        r = steinhart_hart_r_Ohm(temp, c.steinhart_hart_abc)
        return divider_voltage_V(r, c.pullup_Ohm, c.supply_V)

    def impedance(self, f_Hz: np.ndarray | float) -> np.ndarray:
        """Small-signal impedance of each cell's circuit at its present state.

        ``Z = R0 + sum_j R_j / (1 + j w tau_j)`` over the RC pairs and the Warburg ladder
        sections actually simulated, with the present temperature/SOC resistance factors. The OCV
        branch (a capacitance ``3600 Q / (dOCV/dSOC)``, ~1 uOhm at 10 mHz for 280 Ah LFP) is not
        included: it is the truth for an EIS that removes the OCV drift.

        Parameters
        ----------
        f_Hz : array_like, shape (n_f,) or scalar

        Returns
        -------
        numpy.ndarray, shape (n_f, n_cells), complex
            Impedance in Ohm (voltage drop per unit discharge current).
        """
        f = self._r_factor()
        z_el = ladder_impedance(f_Hz, self._r_el_Ohm, self._tau_el_s)  # (n_f,)
        return (self._r0_nom_Ohm * f)[None, :] + z_el[:, None] * f[None, :]

    def cell_parameters(self) -> dict[str, np.ndarray]:
        """Per-cell parameters after spread (copies).

        Returns
        -------
        dict of numpy.ndarray
            ``capacity_Ah``, ``r0_Ohm`` (25 C, SOC factor 1) and ``self_discharge_A``, each
            shape (n_cells,); ``element_r_Ohm`` and ``element_tau_s``, shape (m,), the RC pairs
            followed by the Warburg ladder sections.
        """
        return {
            "capacity_Ah": self._capacity_Ah.copy(),
            "r0_Ohm": self._r0_nom_Ohm.copy(),
            "self_discharge_A": self._self_discharge_A.copy(),
            "element_r_Ohm": self._r_el_Ohm.copy(),
            "element_tau_s": self._tau_el_s.copy(),
        }

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays (``t_s`` and scalars as 0-d arrays).

        ``v_el_V`` is shape (n_cells, m): RC pairs then ladder sections; ``temp_K`` is the
        temperature state in kelvin (exactly as held, so a restore is bit-exact).
        """
        return {
            "t_s": np.array(self.t_s),
            "soc": self._soc.copy(),
            "v_el_V": self._v_el_V.T.copy(),
            "temp_K": self._temp_K.copy(),
            "current_A": np.array(self._current_A),
            "g_bleed_S": self._g_bleed_S.copy(),
            "ambient_temp_C": np.array(self._ambient_C),
        }

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Set the state from a :meth:`snapshot` of a pack built from the same config and seed."""
        self.t_s = float(state["t_s"])
        self._soc = np.array(state["soc"], dtype=float)
        self._v_el_V = np.array(state["v_el_V"], dtype=float).T.copy()
        self._temp_K = np.array(state["temp_K"], dtype=float)
        self._current_A = float(state["current_A"])
        self._g_bleed_S = np.array(state["g_bleed_S"], dtype=float)
        self._balancing = bool(np.any(self._g_bleed_S > 0))
        self._ambient_C = float(state["ambient_temp_C"])
        self._cached_dt_s = -1.0
