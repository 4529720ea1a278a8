"""Statistics of a TME population: exact binomial bounds, capability, tail extrapolation.

Conventions (used by the summary, the report and the verdicts)

* Fallout beyond a limit ``L``: ``k`` devices with ``TME > L`` out of ``n``; ``ppm = 1e6 k / n``.
* Exact Clopper-Pearson bounds from the beta distribution:
  one-sided 95 % upper bound ``U = B^-1(0.95; k + 1, n - k)`` (``1 - 0.05^(1/n)`` for ``k = 0``,
  the "rule of three": 0 failures in 3.0e6 devices gives 0.9986 ppm), one-sided 95 % lower
  bound ``B^-1(0.05; k, n - k + 1)``, and the two-sided 95 % interval with 2.5 % in each tail.
  Verdicts use the one-sided upper bound ("fallout is at most U with 95 % confidence").
* Cpk of a one-sided, non-negative quantity (TME has only an upper limit):
  ``Cpu = (L - mean) / (3 std)``. It assumes normality, which a maximum of absolute errors does not
  have; it is reported because people ask for it, the counts are the real measure.
* Tail extrapolation (labelled as such everywhere): when fewer than ``tail_min_count`` devices
  exceed a limit, the rate is also estimated from the upper tail: a generalised Pareto
  distribution fitted by maximum likelihood to the ``n_tail`` largest values over the threshold
  ``u`` (the next largest value), ``P(TME > L) = (n_tail / n) GPD.sf(L - u)``
  (peaks-over-threshold; assumes the tail beyond ``u`` is GPD and the devices are independent).
  With a negative shape the fitted tail ends at ``u - scale / shape``; beyond it the estimate is 0.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "clopper_pearson",
    "cpk_upper",
    "fallout",
    "gpd_tail",
    "percentiles",
]

PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> dict[str, float]:
    """Exact binomial bounds of a rate from ``k`` events in ``n`` trials.

    Returns
    -------
    dict
        ``lower``/``upper``: one-sided bounds at ``confidence``; ``two_sided_lower`` /
        ``two_sided_upper``: the two-sided interval at ``confidence``. All as fractions.

    >>> round(clopper_pearson(0, 3_000_000)["upper"] * 1e6, 4)
    0.9986
    """
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    a = 1.0 - confidence

    def lo(q: float) -> float:
        return 0.0 if k == 0 else float(stats.beta.ppf(q, k, n - k + 1))

    def hi(q: float) -> float:
        return 1.0 if k == n else float(stats.beta.ppf(1.0 - q, k + 1, n - k))

    return {
        "lower": lo(a),
        "upper": hi(a),
        "two_sided_lower": lo(a / 2),
        "two_sided_upper": hi(a / 2),
    }


def cpk_upper(mean: float, std: float, limit: float) -> float | None:
    """One-sided capability ``(limit - mean) / (3 std)``; None when ``std`` is 0."""
    return None if not std > 0 else float((limit - mean) / (3.0 * std))


def percentiles(x: NDArray[np.float64], qs: tuple[float, ...] = PERCENTILES) -> dict[str, float]:
    """Named percentiles (``"p99.9"``) plus ``max``, by linear interpolation of the sorted data."""
    vals = np.percentile(x, qs)
    out = {f"p{q:g}": float(v) for q, v in zip(qs, vals, strict=True)}
    out["max"] = float(np.max(x))
    return out


def gpd_tail(x_sorted: NDArray[np.float64], limits: ArrayLike, n_tail: int = 1000
             ) -> dict[str, Any] | None:
    """Peaks-over-threshold estimate of ``P(X > limit)`` (see module docstring).

    Parameters
    ----------
    x_sorted : array, shape (n,)
        The sample, ascending.
    limits : array_like, shape (n_limits,)
    n_tail : int
        Exceedances used (capped at n / 10); fewer than 50 gives None (no fit).

    Returns
    -------
    dict or None
        ``threshold``, ``n_tail``, ``shape``, ``scale``, ``endpoint`` (None if unbounded) and
        ``rate`` per limit (fractions).
    """
    n = x_sorted.size
    m = min(n_tail, n // 10)
    if m < 50:
        return None
    u = float(x_sorted[n - m - 1])
    exc = x_sorted[n - m :] - u
    if not np.any(exc > 0):
        return None
    with warnings.catch_warnings():
        # the optimiser may probe invalid shapes on the way (RuntimeWarning); the fit is checked
        warnings.simplefilter("ignore", RuntimeWarning)
        shape, _, scale = stats.genpareto.fit(exc, floc=0.0)
    lim = np.asarray(limits, dtype=float)
    sf = stats.genpareto.sf(np.maximum(lim - u, 0.0), shape, 0.0, scale)
    rate = np.where(lim <= u, np.nan, m / n * sf)  # below the threshold: use the counts
    endpoint = u - scale / shape if shape < 0 else None
    return {
        "method": "GPD peaks-over-threshold (MLE)",
        "threshold": u,
        "n_tail": int(m),
        "shape": float(shape),
        "scale": float(scale),
        "endpoint": None if endpoint is None else float(endpoint),
        "rate": [None if np.isnan(r) else float(r) for r in rate],
    }


def fallout(k: int, n: int) -> dict[str, Any]:
    """Count, ppm and Clopper-Pearson 95 % bounds in ppm (keys used by the summary schema)."""
    cp = clopper_pearson(k, n)
    return {
        "k": int(k),
        "n": int(n),
        "ppm": 1e6 * k / n,
        "cp95_upper_ppm": 1e6 * cp["upper"],
        "cp95_lower_ppm": 1e6 * cp["lower"],
        "cp95_two_sided_ppm": [1e6 * cp["two_sided_lower"], 1e6 * cp["two_sided_upper"]],
    }
