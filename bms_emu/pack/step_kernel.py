"""Compiled pack step without balancing (the hot path of long runs).

``bench_pack`` measured the numpy step at ~29 us on a 2-core Xeon (44 numpy calls of ~0.66 us
on 16-element arrays), i.e. 2.8 s for 24 h at 1 s steps against a 2 s target: the cost is call
overhead, not arithmetic, so the same equations run here as one compiled loop over steps and
cells. :meth:`bms_emu.pack.VirtualPack.step` uses it whenever no bleed resistor is switched
on; ``tests/pack/test_reference_step.py`` checks both paths against a plain per-cell reference.

:func:`terminal_and_sense_no_balancing` is the same idea for a sample (cell and sense voltages
without bleed currents): ~10 numpy calls on 16 cells, once per conversion per device. It
repeats numpy's own operations (``np.interp``'s formula, a row-by-row sum) so the result is the
same to the bit; ``tests/pack/test_sample_kernel.py`` compares it with the numpy path.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["steps_no_balancing", "terminal_and_sense_no_balancing"]


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


@njit(cache=True)
def _np_interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """``np.interp(x, xp, fp)`` for one point, numpy's steps and formula (``len(xp) >= 2``)."""
    n = xp.size
    if x != x:
        return x
    if x < xp[0]:
        return fp[0]
    if x >= xp[n - 1]:
        return fp[n - 1]
    lo, hi = 0, n - 1  # xp[lo] <= x < xp[hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if xp[mid] <= x:
            lo = mid
        else:
            hi = mid
    if xp[lo] == x:
        return fp[lo]
    slope = (fp[lo + 1] - fp[lo]) / (xp[lo + 1] - xp[lo])
    y = slope * (x - xp[lo]) + fp[lo]
    if y != y:  # numpy retries from the right end, then takes a flat segment's value
        y = slope * (x - xp[lo + 1]) + fp[lo + 1]
        if y != y and fp[lo] == fp[lo + 1]:
            y = fp[lo]
    return y


@njit(cache=True)
def terminal_and_sense_no_balancing(
    f_arrhenius: np.ndarray,
    soc: np.ndarray,
    temp_K: np.ndarray,
    v_el_V: np.ndarray,
    r0_nom_Ohm: np.ndarray,
    r_bb_Ohm: np.ndarray,
    current_A: float,
    t_ref_K: float,
    ocv_soc: np.ndarray,
    ocv_val: np.ndarray,
    dudt_soc: np.ndarray,
    dudt_val: np.ndarray,
    sf_soc: np.ndarray,
    sf_val: np.ndarray,
    v_term_V: np.ndarray,
    v_sense_V: np.ndarray,
) -> None:
    """Terminal and sense voltages (n,) of ``VirtualPack.cell_and_sense_voltage_V`` without
    balancing, into ``v_term_V`` and ``v_sense_V``.

    ``f_arrhenius`` (n,) is the temperature factor from ``np.exp`` (numpy's exp may differ from
    a compiled one in the last bit, so it stays outside); an empty ``sf_soc`` means no SOC
    factor table. ``v_el_V`` is (m, n), summed over m row by row as numpy's axis-0 sum does.
    """
    n = soc.size
    m = v_el_V.shape[0]
    for c in range(n):
        s = soc[c]
        ocv = _np_interp(s, ocv_soc, ocv_val) + (temp_K[c] - t_ref_K) * _np_interp(
            s, dudt_soc, dudt_val
        )
        v_rc = v_el_V[0, c] if m > 0 else 0.0
        for e in range(1, m):
            v_rc = v_rc + v_el_V[e, c]
        f = f_arrhenius[c]
        if sf_soc.size > 0:
            f = f * _np_interp(s, sf_soc, sf_val)
        r0 = r0_nom_Ohm[c] * f
        vt = (ocv - v_rc) - current_A * r0
        v_term_V[c] = vt
        v_sense_V[c] = vt - current_A * r_bb_Ohm[c]
