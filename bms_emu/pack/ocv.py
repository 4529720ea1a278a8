"""Open-circuit voltage and entropic coefficient tables (built-in, per chemistry).

``OCV(SOC, T) = OCV25(SOC) + (T - 25 C) dU/dT(SOC)``; both tables are piecewise linear in SOC and
held constant outside 0..1 (``numpy.interp`` clamps).

Sources
-------
LFP OCV
    Anchored on the A123 cell points in REFERENCE.md section 6 (3.59 V @ 100 %, 3.32 @ 95.7 %,
    3.272 @ 52.7 %, 3.22 @ 22.6 %, 3.12 @ 5.35 %, 2.90 @ 1 %), which the table passes through
    exactly. The points in between are our own refinement giving the familiar LFP shape: a steep
    knee below ~10 % SOC, a flat plateau with a small step near 60-65 % (graphite staging) and a
    steep rise above ~97 %; plateau slopes are 0.4-1.2 mV/% (REFERENCE.md: ~0.6 mV/%).
    0 % is set to the 2.5 V discharge cut-off of LFP cells (assumption).
NMC OCV
    Full cell = positive minus negative electrode potential of the LG M50 (NMC811/graphite-SiOx)
    fits of Chen et al., J. Electrochem. Soc. 167 (2020) 080534 (positive fit quoted in REFERENCE.md
    section 6; the graphite fit is the one shipped with PyBaMM/BattMo for that paper), with the
    stoichiometry windows of that paper: positive 0.9084 (0 %) -> 0.2661 (100 %), negative 0.0279
    (0 %) -> 0.9014 (100 %). The result runs 2.50 V at 0 % to 4.19 V at 100 %, matching the M50's
    2.5 / 4.2 V cut-offs. Sampled on 101 points.
Entropic coefficients (mV/K)
    Magnitudes and shapes typical of published full-cell measurements (tens of uV/K; LFP/graphite
    e.g. Forgez et al., J. Power Sources 195 (2010) 2961; NMC/graphite e.g. Viswanathan et al.,
    J. Power Sources 195 (2010) 3720). Not digitised from those papers: an approximation of the
    literature range, unverified point by point. Override per pack in YAML when measured data exist.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ENTROPIC_MV_PER_K",
    "OCV25_V",
    "SocTable",
    "nmc_full_cell_ocv_V",
]


class SocTable:
    """A piecewise-linear table over SOC, clamped outside its range.

    Parameters
    ----------
    soc : array_like, shape (n_points,)
        Strictly increasing SOC breakpoints (0..1).
    value : array_like, shape (n_points,)
        Table values.
    """

    def __init__(self, soc: np.ndarray | tuple[float, ...], value: np.ndarray | tuple[float, ...]):
        self.soc = np.asarray(soc, dtype=float)
        self.value = np.asarray(value, dtype=float)
        if self.soc.shape != self.value.shape or self.soc.ndim != 1 or self.soc.size < 2:
            raise ValueError("soc and value must be 1-D with the same length >= 2")
        if np.any(np.diff(self.soc) <= 0):
            raise ValueError("soc must be strictly increasing")

    def __call__(self, soc: np.ndarray) -> np.ndarray:
        """Interpolate at ``soc``, shape (n_cells,) -> (n_cells,)."""
        return np.interp(soc, self.soc, self.value)


def _chen2020_positive_V(x: np.ndarray) -> np.ndarray:
    """NMC811 (LG M50) positive-electrode OCP vs Li, Chen 2020 fit; x = stoichiometry."""
    return (
        -0.809 * x
        + 4.4875
        - 0.0428 * np.tanh(18.5138 * (x - 0.5542))
        - 17.7326 * np.tanh(15.789 * (x - 0.3117))
        + 17.5842 * np.tanh(15.9308 * (x - 0.312))
    )


def _chen2020_negative_V(y: np.ndarray) -> np.ndarray:
    """Graphite-SiOx (LG M50) negative-electrode OCP vs Li, Chen 2020 fit; y = stoichiometry."""
    return (
        1.9793 * np.exp(-39.3631 * y)
        + 0.2482
        - 0.0909 * np.tanh(29.8538 * (y - 0.1234))
        - 0.04478 * np.tanh(14.9159 * (y - 0.2769))
        - 0.0205 * np.tanh(30.4444 * (y - 0.6103))
    )


def nmc_full_cell_ocv_V(soc: np.ndarray) -> np.ndarray:
    """Full-cell OCV of the Chen 2020 LG M50 model at 25 C.

    Parameters
    ----------
    soc : numpy.ndarray, shape (n,)
        State of charge 0..1.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Positive minus negative electrode potential in V.
    """
    soc = np.asarray(soc, dtype=float)
    x = 0.9084 + (0.2661 - 0.9084) * soc  # positive stoichiometry, Chen 2020 Table
    y = 0.0279 + (0.9014 - 0.0279) * soc  # negative stoichiometry, Chen 2020 Table
    return _chen2020_positive_V(x) - _chen2020_negative_V(y)


# LFP: A123 anchors (marked *) plus our plateau refinement (see module docstring)
_LFP_SOC = (0.0, 0.01, 0.02, 0.035, 0.0535, 0.08, 0.12, 0.17, 0.226, 0.30, 0.40, 0.527,
            0.60, 0.65, 0.70, 0.80, 0.90, 0.957, 0.975, 0.99, 1.0)  # fmt: skip
_LFP_V = (2.50, 2.90, 3.00, 3.07, 3.12, 3.16, 3.19, 3.205, 3.22, 3.245, 3.262, 3.272,
          3.280, 3.295, 3.303, 3.309, 3.314, 3.32, 3.34, 3.42, 3.59)  # fmt: skip
#   anchors:  * at 0.01 (2.90), 0.0535 (3.12), 0.226 (3.22), 0.527 (3.272), 0.957 (3.32), 1.0 (3.59)

_NMC_SOC = np.linspace(0.0, 1.0, 101)

#: Built-in OCV at 25 C per chemistry.
OCV25_V: dict[str, SocTable] = {
    "lfp": SocTable(_LFP_SOC, _LFP_V),
    "nmc": SocTable(_NMC_SOC, nmc_full_cell_ocv_V(_NMC_SOC)),
}

#: Built-in entropic coefficient dOCV/dT in mV/K per chemistry (see module docstring).
ENTROPIC_MV_PER_K: dict[str, SocTable] = {
    "lfp": SocTable(
        (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0),
        (0.10, 0.05, -0.02, -0.05, -0.06, -0.03, -0.02, -0.02),
    ),
    "nmc": SocTable(
        (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0),
        (-0.30, -0.20, -0.10, -0.02, 0.03, 0.05, 0.02, 0.0),
    ),
}
