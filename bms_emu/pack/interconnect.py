"""Series-string interconnect: busbars, sense wires and passive-balancing bleed currents.

Topology and conventions (cells and pins 0-based, N cells, N+1 sense pins):

- Cell i lies between its minus terminal and its plus terminal ``A_i``. Busbar i (resistance
  ``r_bb[i]``, for i = 1..N-1) joins ``A_{i-1}`` to the minus terminal of cell i; cell 0's minus
  terminal is the pack minus, so ``r_bb[0] = 0``.
- Sense wire w (resistance ``r_sw[w]``) joins chip pin ``C_w`` to node ``A_{w-1}`` (the plus
  terminal of the cell below it, i.e. the node above cell w-1); wire 0 joins ``C_0`` to the pack
  minus. The chip measures cell i as ``V(C_{i+1}) - V(C_i)``, so busbar i lies in the span of
  cell i and its drop adds to that cell's reading: with discharge current I the reading of cell
  i >= 1 is lower by ``I r_bb[i]``.
- The bleed resistor of cell i sits between pins ``C_{i+1}`` and ``C_i``; its current ``I_b[i]``
  leaves the cell's plus node through wire i+1, crosses the resistor, and returns through wire i
  and busbar i into the cell's minus terminal. So wire w carries ``I_b[w-1] - I_b[w]`` from the
  node to the pin, cell i carries ``J_i = I + I_b[i]`` (discharging it), and busbar i carries
  ``J_i``.

Kirchhoff around the loop of cell i (``E_i`` = OCV minus polarisation, ``R0_i`` ohmic):

.. math::
    V_{meas,i} = E_i - J_i R0_i - J_i r_{bb,i} - I_{b,i} (r_{sw,i} + r_{sw,i+1})
                 + I_{b,i+1} r_{sw,i+1} + I_{b,i-1} r_{sw,i}

and ``V_meas,i = I_b,i R_bleed,i`` for a balancing cell: the bleed current of cell i lowers its
own reading by ``I_b (r_sw,i + r_sw,i+1)`` and raises its neighbours' by ``I_b r_sw,i+1`` (cell
above) and ``I_b r_sw,i`` (cell below). Adjacent balancing cells couple through the shared wire,
giving a tridiagonal system.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_banded

__all__ = ["balance_currents_A", "sense_voltages_V"]


def balance_currents_A(
    emf_V: np.ndarray,
    current_A: float,
    r0_Ohm: np.ndarray,
    g_bleed_S: np.ndarray,
    r_sw_Ohm: np.ndarray,
    r_bb_Ohm: np.ndarray,
) -> np.ndarray:
    """Bleed currents of all cells, solving the coupled loop equations exactly.

    Row i (multiplied by ``G_i = 1/R_bleed,i`` so that an open switch, G = 0, gives I_b = 0):
    ``I_b,i (1 + G_i S_i) - G_i r_sw,i+1 I_b,i+1 - G_i r_sw,i I_b,i-1``
    ``= G_i (E_i - I (R0_i + r_bb,i))`` with ``S_i = R0_i + r_bb,i + r_sw,i + r_sw,i+1``.

    Parameters
    ----------
    emf_V : numpy.ndarray, shape (n_cells,)
        OCV minus the RC/ladder voltages.
    current_A : float
        Pack current, + = discharge.
    r0_Ohm : numpy.ndarray, shape (n_cells,)
    g_bleed_S : numpy.ndarray, shape (n_cells,)
        Bleed conductance, 0 = switch open.
    r_sw_Ohm : numpy.ndarray, shape (n_cells + 1,)
    r_bb_Ohm : numpy.ndarray, shape (n_cells,)
        ``r_bb[0]`` must be 0.

    Returns
    -------
    numpy.ndarray, shape (n_cells,)
        Bleed current of each cell, A.
    """
    g = g_bleed_S
    r_series = r0_Ohm + r_bb_Ohm
    s = r_series + r_sw_Ohm[:-1] + r_sw_Ohm[1:]
    rhs = g * (emf_V - current_A * r_series)
    diag = 1.0 + g * s
    on = g > 0.0
    if not np.any(on[1:] & on[:-1]):
        # no two neighbours balance: the off-diagonal terms multiply a zero current
        return rhs / diag
    # banded storage replaces a per-cell Thomas loop: row 0 upper, 1 diagonal, 2 lower
    n = g.size
    ab = np.zeros((3, n))
    ab[0, 1:] = -g[:-1] * r_sw_Ohm[1:-1]  # row i, column i+1: -G_i r_sw[i+1]
    ab[1] = diag
    ab[2, :-1] = -g[1:] * r_sw_Ohm[1:-1]  # row i, column i-1: -G_i r_sw[i]
    return np.asarray(solve_banded((1, 1), ab, rhs, check_finite=False))


def sense_voltages_V(
    v_terminal_V: np.ndarray,
    current_A: float,
    i_bal_A: np.ndarray,
    r_sw_Ohm: np.ndarray,
    r_bb_Ohm: np.ndarray,
) -> np.ndarray:
    """Differential voltage between sense pins ``C_{i+1}`` and ``C_i``.

    Parameters
    ----------
    v_terminal_V : numpy.ndarray, shape (n_cells,)
        Cell terminal voltages (already including ``J R0``).
    current_A : float
        Pack current, + = discharge.
    i_bal_A : numpy.ndarray, shape (n_cells,)
    r_sw_Ohm : numpy.ndarray, shape (n_cells + 1,)
    r_bb_Ohm : numpy.ndarray, shape (n_cells,)

    Returns
    -------
    numpy.ndarray, shape (n_cells,)
    """
    # wire w current from node to pin: I_b[w-1] - I_b[w], zero-padded at both ends
    padded = np.concatenate(([0.0], i_bal_A, [0.0]))
    wire_A = padded[:-1] - padded[1:]
    wire_drop_V = wire_A * r_sw_Ohm  # V(node) - V(pin), shape (n_cells + 1,)
    return v_terminal_V - (current_A + i_bal_A) * r_bb_Ohm - wire_drop_V[1:] + wire_drop_V[:-1]
