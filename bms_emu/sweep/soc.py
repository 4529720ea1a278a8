"""What accuracy buys: cell-voltage error -> SOC uncertainty -> usable-capacity reserve.

A BMS that corrects its SOC from the rested OCV reads ``OCV + e`` with ``|e| <= TME``, so its
SOC estimate is off by up to ``dSOC = TME / |dOCV/dSOC|``. Where the OCV curve is flattest the
error is largest; the estimator is assumed to correct only inside ``soc_window`` (the region the
pack actually sits in), so the slope used is the smallest ``|dOCV/dSOC|`` in that window
(conservative) and, for reference, its median. The pack must then keep ``dSOC`` in reserve at
the top and at the bottom: usable-capacity reserve = ``2 dSOC`` (assumption: symmetric
reserve, no other SOC error sources; coulomb counting drift adds to it).

OCV curves: :data:`bms_emu.pack.ocv.OCV25_V` (LFP plateau ~0.6 mV/%SOC, REFERENCE.md 1, 6).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bms_emu.pack.ocv import OCV25_V

__all__ = ["ocv_slope_mV_per_pct", "soc_translation"]


def ocv_slope_mV_per_pct(chemistry: str, soc_window: tuple[float, float]) -> dict[str, float]:
    """Smallest and median ``|dOCV/dSOC|`` in mV per % SOC inside ``soc_window``.

    The tables are piecewise linear, so the slope is evaluated per table segment (weighted by the
    segment's length inside the window for the median).
    """
    table = OCV25_V[chemistry]
    lo, hi = soc_window
    grid = np.union1d(table.soc[(table.soc > lo) & (table.soc < hi)], [lo, hi])
    v = table(grid)
    slope = np.abs(np.diff(v) / np.diff(grid)) * 1e3 / 100.0  # mV per % SOC
    w = np.diff(grid)
    order = np.argsort(slope)
    cum = np.cumsum(w[order]) / w.sum()
    median = float(slope[order][np.searchsorted(cum, 0.5)])
    return {"min": float(slope.min()), "median": median}


def soc_translation(
    chemistry: str, soc_window: tuple[float, float], tme_mV: dict[str, float]
) -> dict[str, Any]:
    """SOC uncertainty and reserve for each named TME figure (e.g. percentiles, limits).

    Returns
    -------
    dict
        ``slope_mV_per_pct`` (min, median), and per figure name: ``tme_mV``,
        ``soc_uncertainty_pct`` (at the smallest slope), ``soc_uncertainty_median_slope_pct``,
        ``reserve_pct`` (``2 x`` the uncertainty at the smallest slope).
    """
    slope = ocv_slope_mV_per_pct(chemistry, soc_window)
    rows = {}
    for name, t in tme_mV.items():
        d = t / slope["min"]
        rows[name] = {
            "tme_mV": t,
            "soc_uncertainty_pct": d,
            "soc_uncertainty_median_slope_pct": t / slope["median"],
            "reserve_pct": 2.0 * d,
        }
    return {"soc_window": list(soc_window), "slope_mV_per_pct": slope, "by_tme": rows}
