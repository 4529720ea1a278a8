"""Thevenin (R0 + RC chain) kernels: exact exponential RC update and resistance scaling.

The RC state obeys ``dV_j/dt = -V_j / tau_j + I / C_j``. With the current held at its mean over
a step of length h (zero-order hold) the exact solution is

.. math:: V_j(t+h) = V_j(t)\\, e^{-h/\\tau_j} + I R_j \\left(1 - e^{-h/\\tau_j}\\right),

exact for any h, so the step size only matters through the hold of the current and of the
state-dependent resistances.

Resistances scale with temperature (Arrhenius) and SOC (a factor table); time constants are held
at their nominal values (i.e. the capacitances scale inversely), which keeps the per-step
exponentials independent of the state so they can be precomputed for a fixed step.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GAS_CONSTANT_J_PER_MOL_K", "T_REF_K", "arrhenius_factor", "rc_step"]

GAS_CONSTANT_J_PER_MOL_K = 8.314462618
#: Reference temperature of the nominal resistances (25 C).
T_REF_K = 298.15
ZERO_C_IN_K = 273.15


def arrhenius_factor(temp_C: np.ndarray, ea_J_per_mol: float) -> np.ndarray:
    """Resistance multiplier ``exp(Ea/R_gas (1/T - 1/T_ref))``, 1 at 25 C.

    Parameters
    ----------
    temp_C : numpy.ndarray, shape (n_cells,)
    ea_J_per_mol : float
        Activation energy; 0 disables the scaling.

    Returns
    -------
    numpy.ndarray, shape (n_cells,)
    """
    t_K = np.asarray(temp_C, dtype=float) + ZERO_C_IN_K
    return np.exp(ea_J_per_mol / GAS_CONSTANT_J_PER_MOL_K * (1.0 / t_K - 1.0 / T_REF_K))


def rc_step(
    v_V: np.ndarray, current_A: np.ndarray, r_Ohm: np.ndarray, decay: np.ndarray
) -> np.ndarray:
    """One exact step of parallel-RC elements under a held current (returns a new array).

    Parameters
    ----------
    v_V : numpy.ndarray, shape (n_cells, m)
        Element voltages at the start of the step.
    current_A : numpy.ndarray, shape (n_cells,)
        Mean current through each cell over the step (+ = discharge).
    r_Ohm : numpy.ndarray, shape (n_cells, m)
        Element resistances.
    decay : numpy.ndarray, shape (m,)
        ``exp(-h / tau_j)``.

    Returns
    -------
    numpy.ndarray, shape (n_cells, m)
        Element voltages at the end of the step.
    """
    return v_V * decay + np.asarray(current_A)[:, None] * r_Ohm * (1.0 - decay)
