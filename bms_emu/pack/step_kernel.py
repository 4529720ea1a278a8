"""Compiled pack step without balancing (the hot path of long runs).

``bench_pack`` measured the numpy step at ~29 us on a 2-core Xeon (44 numpy calls of ~0.66 us
on 16-element arrays), i.e. 2.8 s for 24 h at 1 s steps against a 2 s target: the cost is call
overhead, not arithmetic, so the same equations run here as one compiled loop over steps and
cells. :meth:`bms_emu.pack.VirtualPack.step` uses it whenever no bleed resistor is switched
on; ``tests/pack/test_reference_step.py`` checks both paths against a plain per-cell reference.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["steps_no_balancing"]


@njit(cache=True)
def _interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """``np.interp`` for one point (linear, clamped at the ends)."""
    n = xp.size
    if x <= xp[0]:
        return fp[0]
    if x >= xp[n - 1]:
        return fp[n - 1]
    lo, hi = 0, n - 1
    while hi - lo > 1:  # bisection: tables are short
        mid = (lo + hi) // 2
        if xp[mid] <= x:
            lo = mid
        else:
            hi = mid
    w = (x - xp[lo]) / (xp[hi] - xp[lo])
    return fp[lo] + w * (fp[hi] - fp[lo])


@njit(cache=True)
def steps_no_balancing(
    currents_A: np.ndarray,
    soc: np.ndarray,
    v_el_V: np.ndarray,
    temp_K: np.ndarray,
    decay: np.ndarray,
    r_gain_Ohm: np.ndarray,
    g_el_S: np.ndarray,
    r0_nom_Ohm: np.ndarray,
    soc_sd: np.ndarray,
    soc_per_A_dis: np.ndarray,
    soc_per_A_chg: np.ndarray,
    coef: np.ndarray,
    sf_soc: np.ndarray,
    sf_val: np.ndarray,
    dudt_soc: np.ndarray,
    dudt_val: np.ndarray,
) -> None:
    """Advance ``soc`` (n,), ``v_el_V`` (m, n) and ``temp_K`` (n,) in place, one step per current.

    ``coef`` packs the scalars: [th_decay, heat_gain_K_per_W, ambient_K, ea_over_r_K,
    ea_over_r_ref]; an empty ``sf_soc`` means no SOC factor table.
    Same equations and order as the numpy step in ``virtual_pack.py``.
    """
    th_decay, gain, ambient_K, ea, ea_ref = coef[0], coef[1], coef[2], coef[3], coef[4]
    n = soc.size
    m = g_el_S.size
    for k in range(currents_A.size):
        i = currents_A[k]
        per_a = soc_per_A_chg if i < 0.0 else soc_per_A_dis
        for c in range(n):
            t = temp_K[c]
            f = math.exp(ea / t - ea_ref) if ea != 0.0 else 1.0
            if sf_soc.size > 0:
                f *= _interp(soc[c], sf_soc, sf_val)
            dtemp = r0_nom_Ohm[c] * (i * i * gain) * f
            jf = i * f
            dudt = _interp(soc[c], dudt_soc, dudt_val)
            soc[c] = soc[c] - (per_a[c] * i + soc_sd[c])
            q = 0.0
            for e in range(m):
                v = v_el_V[e, c] * decay[e] + r_gain_Ohm[e] * jf
                v_el_V[e, c] = v
                q += g_el_S[e] * (v * v)
            dtemp += q * (gain / f)
            dtemp -= (i * gain) * t * dudt
            dtemp += ambient_K * (1.0 - th_decay)
            temp_K[c] = t * th_decay + dtemp
