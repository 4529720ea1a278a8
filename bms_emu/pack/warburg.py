"""Finite-length (transmissive) Warburg diffusion element and its RC-ladder realisation.

The element is

.. math:: Z_W(s) = R \\frac{\\tanh\\sqrt{s\\tau}}{\\sqrt{s\\tau}},

which has the exact partial-fraction (Foster) expansion

.. math:: \\frac{\\tanh\\sqrt{x}}{\\sqrt{x}} = \\sum_{k\\ge1} \\frac{2}{x + \\lambda_k},
   \\qquad \\lambda_k = \\left(\\frac{(2k-1)\\pi}{2}\\right)^2,

so term k is a parallel RC section with :math:`R_k = 2R/\\lambda_k` and
:math:`\\tau_k = \\tau/\\lambda_k`. Since :math:`\\sum_k 1/(2k-1)^2 = \\pi^2/8`, the sections sum
to R at DC. The time-domain model keeps the sections whose corners lie inside the band of
interest (sparse at low k) exactly and merges neighbouring sections where their corners crowd
together (high k), so a dozen sections cover 0.005-10 Hz. Every merge keeps the DC resistance,
so the ladder still sums to exactly R.
"""

from __future__ import annotations

import numpy as np

__all__ = ["foster_ladder", "foster_terms", "ladder_impedance", "warburg_impedance"]

#: Lower and upper edge of the band the ladder must match (EIS band with margin), in Hz.
F_LO_HZ = 0.005
F_HI_HZ = 10.0


def warburg_impedance(f_Hz: np.ndarray | float, r_Ohm: float, tau_s: float) -> np.ndarray:
    """Analytic transmissive Warburg impedance ``R tanh(sqrt(j w tau)) / sqrt(j w tau)``.

    Parameters
    ----------
    f_Hz : array_like, shape (n_f,) or scalar
        Frequencies; 0 Hz gives R.
    r_Ohm : float
        DC resistance of the element.
    tau_s : float
        Diffusion time constant ``L^2 / D``.

    Returns
    -------
    numpy.ndarray, shape (n_f,), complex
        Impedance in Ohm.
    """
    f = np.atleast_1d(np.asarray(f_Hz, dtype=float))
    x = np.sqrt(2j * np.pi * f * tau_s)
    out = np.empty(f.shape, dtype=complex)
    small = np.abs(x) < 1e-6
    # tanh(x)/x -> 1 - x^2/3 near 0; avoids 0/0 at DC
    out[small] = 1.0 - x[small] ** 2 / 3.0
    out[~small] = np.tanh(x[~small]) / x[~small]
    return r_Ohm * out


def foster_terms(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resistance and time-constant weights of Foster terms ``k`` (1-based).

    Parameters
    ----------
    k : numpy.ndarray, shape (n,), int
        Term indices, >= 1.

    Returns
    -------
    r_rel, tau_rel : numpy.ndarray, shape (n,)
        ``R_k / R = 2 / lambda_k`` and ``tau_k / tau = 1 / lambda_k``.
    """
    lam = ((2.0 * np.asarray(k, dtype=float) - 1.0) * np.pi / 2.0) ** 2
    return 2.0 / lam, 1.0 / lam


def _tail_moments(k_last: int) -> tuple[float, float]:
    """Sum of ``R_k/R`` and of ``R_k tau_k/(R tau)`` over all terms k > k_last (closed forms).

    Uses sum_{k>=1} 1/(2k-1)^2 = pi^2/8 and sum_{k>=1} 1/(2k-1)^4 = pi^4/96, minus the partial sums.
    """
    odd = 2.0 * np.arange(1, k_last + 1) - 1.0
    s2 = np.pi**2 / 8.0 - np.sum(1.0 / odd**2)
    s4 = np.pi**4 / 96.0 - np.sum(1.0 / odd**4)
    # R_k/R = 8/(pi^2 (2k-1)^2); R_k tau_k/(R tau) = 32/(pi^4 (2k-1)^4)
    return 8.0 / np.pi**2 * s2, 32.0 / np.pi**4 * s4


def foster_ladder(
    r_Ohm: float,
    tau_s: float,
    n_elements: int = 12,
    f_lo_Hz: float = F_LO_HZ,
    f_hi_Hz: float = F_HI_HZ,
) -> tuple[np.ndarray, np.ndarray]:
    """RC ladder (Foster form) of ``n_elements`` sections approximating the Warburg element.

    Terms with corners below ``f_lo_Hz / 3`` act as pure capacitors in band and are merged into
    one section that keeps their summed capacitive asymptote; terms above ``3 f_hi_Hz`` act as
    resistors in band and, together with the infinite remainder (closed form), form the last
    section. The in-band terms are merged pairwise, always joining the adjacent pair whose merged
    corner span is narrowest (in log frequency), until the budget is met.

    Parameters
    ----------
    r_Ohm : float
        DC resistance R; the returned resistances sum to it exactly.
    tau_s : float
        Diffusion time constant.
    n_elements : int
        Number of RC sections, >= 1.
    f_lo_Hz, f_hi_Hz : float
        Band the ladder must match.

    Returns
    -------
    r_Ohm, tau_s : numpy.ndarray, shape (n_elements,)
        Section resistances and time constants, slowest first.
    """
    if n_elements < 1:
        raise ValueError(f"n_elements must be >= 1, got {n_elements}")
    if n_elements == 1:
        # all terms in one section: first moment gives tau/3 (sum 1/(2k-1)^4 = pi^4/96)
        return np.array([r_Ohm]), np.array([tau_s / 3.0])

    two_pi_tau = 2.0 * np.pi * tau_s

    # corner of term k: f_k = lambda_k / (2 pi tau); lambda_k = ((2k-1) pi/2)^2
    def k_at(f: float) -> float:
        return (np.sqrt(f * two_pi_tau) * 2.0 / np.pi + 1.0) / 2.0

    k_low = max(0, int(np.floor(k_at(f_lo_Hz / 3.0))))  # terms 1..k_low are below band
    k_high = max(k_low + n_elements - 1 - (k_low > 0), int(np.ceil(k_at(3.0 * f_hi_Hz))))
    budget = n_elements - 1 - (1 if k_low > 0 else 0)  # sections for the in-band terms

    ks = np.arange(k_low + 1, k_high + 1)
    r_rel, tau_rel = foster_terms(ks)
    # groups of consecutive in-band terms: [start, stop) indices into ks
    starts = np.arange(len(ks))
    stops = starts + 1
    log_f = -np.log(tau_rel)  # log corner frequency up to a constant
    while len(starts) > budget:
        # span of each adjacent pair if merged: last corner of the right minus first of the left
        spans = log_f[stops[1:] - 1] - log_f[starts[:-1]]
        g = int(np.argmin(spans))
        stops = np.delete(stops, g)
        starts = np.delete(starts, g + 1)
    groups = list(zip(starts.tolist(), stops.tolist(), strict=True))

    r_out: list[float] = []
    tau_out: list[float] = []
    if k_low > 0:
        # below band each term is ~ 1/(j w C_k) with C_k = tau_k/R_k: keep sum R and sum 1/C
        r_lo, tau_lo = foster_terms(np.arange(1, k_low + 1))
        r_sum = float(np.sum(r_lo))
        inv_c = float(np.sum(r_lo / tau_lo))
        r_out.append(r_sum)
        tau_out.append(r_sum / inv_c)
    for a, b in groups:
        r_g = float(np.sum(r_rel[a:b]))
        # weighted geometric mean of the member corners: centre of the merged relaxation
        tau_g = float(np.exp(np.sum(r_rel[a:b] * np.log(tau_rel[a:b])) / r_g))
        r_out.append(r_g)
        tau_out.append(tau_g)
    r_tail, rt_tail = _tail_moments(k_high)
    r_out.append(r_tail)
    tau_out.append(rt_tail / r_tail)  # first moment: resistive in band

    r_arr = np.asarray(r_out) * r_Ohm
    tau_arr = np.asarray(tau_out) * tau_s
    return r_arr, tau_arr


def ladder_impedance(f_Hz: np.ndarray | float, r_Ohm: np.ndarray, tau_s: np.ndarray) -> np.ndarray:
    """Impedance of parallel-RC sections in series, ``sum_j R_j / (1 + j w tau_j)``.

    Parameters
    ----------
    f_Hz : array_like, shape (n_f,) or scalar
    r_Ohm, tau_s : numpy.ndarray, shape (m,)

    Returns
    -------
    numpy.ndarray, shape (n_f,), complex
    """
    f = np.atleast_1d(np.asarray(f_Hz, dtype=float))
    w_tau = 2.0 * np.pi * f[:, None] * np.asarray(tau_s)[None, :]
    return np.sum(np.asarray(r_Ohm)[None, :] / (1.0 + 1j * w_tau), axis=1)
