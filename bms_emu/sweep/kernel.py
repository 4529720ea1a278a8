"""Fast, exact TME of a chip population: the golden :func:`bms_emu.afe.chip.tme_V`, restructured.

The golden model evaluates every reading on the full grid
``devices x channels x temperatures x voltages x lifetime points x hysteresis extremes``.
This module gives bit-identical TME with far less work, by two exact facts:

1. **Separation.** Of the analog chain ``raw = (v_path v_nom) / V_ref / raw_lsb``, the numerator
   ``v_path v_nom`` depends on (device, channel, voltage) only and ``V_ref`` on
   (device, temperature, lifetime, hysteresis) only; the correction multiplier depends on
   (device, temperature) only. Each factor is computed once on its own small grid with the
   golden model's own functions and the same floating-point operations in the same order.
2. **Monotonicity.** For a fixed (device, channel, voltage, temperature) the reading is a
   monotone function of ``V_ref``: every step (IEEE division, round-half-even, integer multiply
   by a constant, round-shift, saturation, the register rounding) is monotone in its input, and
   the correction multiplier does not depend on ``V_ref``. So ``|reading - v|`` over the lifetime
   points and hysteresis extremes is largest at the smallest or the largest ``V_ref`` among them:
   only those two are evaluated. This is exact, not an approximation
   (``tests/sweep/test_kernel.py`` pins it to the golden model bit for bit).

What is left, ``n_dev x n_ch x n_T x n_v x 2`` readings, runs in one fused numba loop
(no ``fastmath``: the operations are IEEE-exact and in the golden model's order), parallel over
devices (each device's result depends on that device only, so threads cannot change it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numba
import numpy as np
from numpy.typing import NDArray

from bms_emu.afe.chip import CELL_LSB_V, CELL_OFFSET_V, ChipPopulation
from bms_emu.afe.die_thermal import (
    DieThermalParams,
    TempSensorParams,
    die_temp_code,
    steady_state_die_temp_C,
)
from bms_emu.afe.frontend import adc_input_V
from bms_emu.afe.reference import ReferenceState, v_ref_V

__all__ = ["TmeFactors", "tme_factors", "tme_fast_V", "tme_groups_V"]


@dataclass(frozen=True)
class TmeFactors:
    """The separated factors of one population's readings (see module docstring).

    Attributes
    ----------
    num : (n_devices, n_channels, n_v)  ``v_path * v_nom`` (the golden expression).
    vref_lo, vref_hi : (n_devices, n_T)  smallest / largest V_ref over lifetime x hysteresis.
    mult : (n_devices, n_T) int64  correction multiplier ``m`` of :func:`correct_code`.
    off : (n_devices,) int64  offset term ``offset_code << (f - offset_frac_bits)``.
    """

    num: NDArray[np.float64]
    vref_lo: NDArray[np.float64]
    vref_hi: NDArray[np.float64]
    mult: NDArray[np.int64]
    off: NDArray[np.int64]


def tme_factors(
    pop: ChipPopulation,
    v_cell_V: NDArray[np.float64],
    temp_ambient_C: NDArray[np.float64],
    lifetime_points: tuple[str, ...],
    *,
    path: str = "C",
    device_slice: slice | None = None,
) -> TmeFactors:
    """Compute the separated factors with the golden model's own functions.

    Mirrors :func:`bms_emu.afe.chip.cell_error_V` operation for operation; only the grid each
    factor lives on is smaller.
    """
    sl = device_slice or slice(None)
    devs = pop.devices if path == "C" else pop.s_devices
    codes = pop.codes if path == "C" else pop.s_codes
    fe = pop.frontend if path == "C" else pop.s_frontend
    fmt = pop.spec.trim_format
    ref = devs.reference.take(sl)
    sensor = TempSensorParams(
        devs.sensor.offset_C[sl], devs.sensor.gain_error_ppm[sl], devs.sensor.noise_C_rms[sl]
    )
    fe = replace(fe, offset_uV=fe.offset_uV[sl], gain_ppm=fe.gain_ppm[sl], inl_uV=fe.inl_uV[sl],
                 cm_error_uV=fe.cm_error_uV[sl], leakage_nA=fe.leakage_nA[sl])
    die = DieThermalParams(pop.die.r_th_C_per_W[sl], pop.die.tau_s[sl], pop.die.p_quiescent_W[sl])
    v = np.asarray(v_cell_V, dtype=float)
    temps = np.asarray(temp_ambient_C, dtype=float)
    n, m = ref.n_devices, fe.n_channels

    v_adc = adc_input_V(fe, np.broadcast_to(v, (n, m, v.size)))  # (n, m, n_v)
    gain = devs.path.gain_error_ppm[sl][:, None, None]
    offset = devs.path.offset_uV[sl][:, None, None]
    v_path = v_adc * (1 + 1e-6 * gain) + 1e-6 * offset
    num = v_path * ref.v_nom_V[:, None, None]

    t_die = steady_state_die_temp_C(die, temps[np.newaxis, :])  # (n, n_T)
    lo = np.full((n, temps.size), np.inf)
    hi = np.full((n, temps.size), -np.inf)
    for point in lifetime_points:
        t_h = pop.lifetime_h(point)
        state = pop.state_at(t_h, path)
        state = ReferenceState(state.hyst_m[sl].copy(), state.t_assembly_h[sl].copy())
        for hm in (-1.0, 1.0):
            state.hyst_m[:] = hm
            vr = v_ref_V(ref, state, t_die, t_h)
            np.minimum(lo, vr, out=lo)
            np.maximum(hi, vr, out=hi)

    d = die_temp_code(t_die, sensor, lsb_C=fmt.die_temp_lsb_C, bits=fmt.die_temp_bits)
    f = fmt.acc_frac_bits
    g = (codes.gain[sl] + codes.board[sl])[:, None]
    mult = (
        np.int64(1 << f)
        + (g << np.int64(f - fmt.gain_frac_bits))
        + codes.tempco[sl][:, None] * (d - np.int64(fmt.t_ref_code))
    )
    off = codes.offset[sl] << np.int64(f - fmt.offset_frac_bits)
    return TmeFactors(num, lo, hi, mult.astype(np.int64), off.astype(np.int64))


#: 1.5 * 2**52: ``(x + _RND) - _RND`` is round-half-even (``np.rint``) for ``|x| < 2**51`` in IEEE
#: double arithmetic (no fastmath, so the compiler must keep both operations).
_RND = 6755399441055744.0


@numba.njit(parallel=True, cache=True, nogil=True)
def _tme_kernel(num, vref, mult, off, v, group_of_v, n_groups,
                raw_lsb, f, raw_lo, raw_hi, cell_off, cell_lsb):  # pragma: no cover - jitted
    """Fused readings -> TME. ``vref``/``mult``: (n, n_te) with the temperature x extreme axis.

    The corrected code is monotone in ``raw`` (a constant multiplier per temperature) and the
    register reading monotone in the corrected code, so only the largest and smallest corrected
    code over the temperature x extreme axis are taken to the register format: the inner loop is
    integer min/max reductions, which vectorise.
    """
    n, m, nv = num.shape
    nte = vref.shape[1]
    out = np.zeros((n, m, n_groups))
    half = np.int64(1) << np.int64(f - 1)
    sh = np.int64(f)
    for i in numba.prange(n):
        vr = vref[i]
        mm = mult[i]
        o = off[i] + half
        for k in range(m):
            for j in range(nv):
                x = num[i, k, j]
                cmax = np.int64(-(1 << 62))
                cmin = np.int64(1 << 62)
                for t in range(nte):
                    raw = x / vr[t] / raw_lsb
                    raw_i = np.int64((raw + _RND) - _RND)
                    corr = (raw_i * mm[t] + o) >> sh
                    cmax = max(cmax, corr)
                    cmin = min(cmin, corr)
                worst = 0.0
                for c in (cmin, cmax):
                    c = min(max(c, raw_lo), raw_hi)
                    code = np.rint((c * raw_lsb - cell_off) / cell_lsb)
                    code = min(max(code, -32768.0), 32767.0)
                    worst = max(worst, abs(cell_off + code * cell_lsb - v[j]))
                g = group_of_v[j]
                if worst > out[i, k, g]:
                    out[i, k, g] = worst
    return out


def tme_groups_V(
    pop: ChipPopulation,
    v_cell_V: NDArray[np.float64],
    temp_ambient_C: NDArray[np.float64],
    lifetime_points: tuple[str, ...],
    group_of_v: NDArray[np.int64] | None = None,
    *,
    path: str = "C",
    block: int = 8192,
) -> NDArray[np.float64]:
    """TME per device, channel and voltage group (e.g. one group per chemistry's range).

    Parameters
    ----------
    pop : ChipPopulation
    v_cell_V : array, shape (n_v,)
    temp_ambient_C : array, shape (n_T,)
    lifetime_points : tuple of str
    group_of_v : array of int, shape (n_v,), optional
        Group index of each voltage (0..n_groups-1); default: one group.
    path : {"C", "S"}
    block : int
        Devices per factor block (memory).

    Returns
    -------
    array, shape (n_devices, n_channels, n_groups)
        ``max |reading - v|`` over the temperatures, the group's voltages, the lifetime points
        and both hysteresis extremes: per group, equal bit for bit to :func:`tme_V` on that
        group's voltages.
    """
    v = np.ascontiguousarray(v_cell_V, dtype=np.float64)
    grp = np.zeros(v.size, np.int64) if group_of_v is None else np.asarray(group_of_v, np.int64)
    n_groups = int(grp.max()) + 1
    fmt = pop.spec.trim_format
    lo, hi = -(1 << (fmt.raw_bits - 1)), (1 << (fmt.raw_bits - 1)) - 1
    n = pop.n_devices
    out = np.empty((n, pop.spec.n_channels, n_groups))
    for start in range(0, n, block):
        sl = slice(start, min(start + block, n))
        fac = tme_factors(pop, v, temp_ambient_C, lifetime_points, path=path, device_slice=sl)
        # temperature x extreme axis, (n, 2 n_T): [lo T0, hi T0, lo T1, ...]
        vref = np.stack([fac.vref_lo, fac.vref_hi], axis=2).reshape(fac.vref_lo.shape[0], -1)
        mult = np.repeat(fac.mult, 2, axis=1)
        out[sl] = _tme_kernel(
            fac.num, vref, mult, fac.off, v, grp, n_groups,
            fmt.raw_lsb_V, fmt.acc_frac_bits, lo, hi, CELL_OFFSET_V, CELL_LSB_V,
        )
    return out


def tme_fast_V(
    pop: ChipPopulation,
    v_cell_V: NDArray[np.float64],
    temp_ambient_C: NDArray[np.float64],
    lifetime_points: tuple[str, ...],
    *,
    path: str = "C",
) -> NDArray[np.float64]:
    """Drop-in for :func:`bms_emu.afe.chip.tme_V`: shape (n_devices, n_channels), bit-identical."""
    return tme_groups_V(pop, v_cell_V, temp_ambient_C, lifetime_points, path=path)[:, :, 0]

