"""Lumped per-cell thermal model: ``C_th dT/dt = Q - hA (T - T_amb)``.

Heat sources (J = cell current, + = discharge):

- Joule heat in the ohmic resistance, ``J^2 R0``;
- polarisation losses, ``sum_j V_j^2 / R_j`` over the RC pairs and the Warburg ladder sections
  (the power dissipated in the resistors of the equivalent circuit);
- reversible (entropic) heat ``Q_rev = -J T_K dU/dT``. Sign convention: with discharge positive,
  a cell whose OCV rises with temperature (dU/dT > 0) cools while discharging and warms while
  charging (Bernardi: Q = J (U - V) - J T dU/dT). Equivalently ``+I T dU/dT`` with charge positive.

With Q held over a step of length h the update is exact:
``T(t+h) = T_inf + (T(t) - T_inf) exp(-h hA / C_th)`` with ``T_inf = T_amb + Q / hA``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["heat_W", "thermal_step"]


def heat_W(
    current_A: np.ndarray | float,
    r0_Ohm: np.ndarray,
    v_rc_V: np.ndarray,
    r_rc_Ohm: np.ndarray,
    temp_K: np.ndarray,
    dudt_V_per_K: np.ndarray,
) -> np.ndarray:
    """Heat generated in each cell.

    Parameters
    ----------
    current_A : float or numpy.ndarray, shape (n_cells,)
        Cell current, + = discharge.
    r0_Ohm : numpy.ndarray, shape (n_cells,)
    v_rc_V, r_rc_Ohm : numpy.ndarray, shape (n_cells, m)
        RC / ladder element voltages and resistances.
    temp_K : numpy.ndarray, shape (n_cells,)
    dudt_V_per_K : numpy.ndarray, shape (n_cells,)
        Entropic coefficient.

    Returns
    -------
    numpy.ndarray, shape (n_cells,)
        Heat in W.
    """
    i = np.asarray(current_A, dtype=float)
    return i * i * r0_Ohm + np.sum(v_rc_V * v_rc_V / r_rc_Ohm, axis=1) - i * temp_K * dudt_V_per_K


def thermal_step(
    temp_C: np.ndarray,
    heat_W: np.ndarray,
    h_a_W_per_K: float,
    ambient_temp_C: float,
    decay: float,
) -> np.ndarray:
    """Exact lumped thermal update with the heat held over the step.

    Parameters
    ----------
    temp_C : numpy.ndarray, shape (n_cells,)
    heat_W : numpy.ndarray, shape (n_cells,)
    h_a_W_per_K : float
    ambient_temp_C : float
    decay : float
        ``exp(-h hA / C_th)``.

    Returns
    -------
    numpy.ndarray, shape (n_cells,)
    """
    t_inf = ambient_temp_C + heat_W / h_a_W_per_K
    return t_inf + (temp_C - t_inf) * decay
