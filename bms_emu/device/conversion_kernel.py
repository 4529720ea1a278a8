"""One cell conversion of one chip, compiled: front end -> ADC -> trim -> 16-bit code -> volts.

:meth:`ChipAnalog.measure_cells <bms_emu.device.chip_analog.ChipAnalog.measure_cells>` spent
most of a conversion in ~40 small numpy calls on 16-element arrays. This kernel runs the same
element-wise arithmetic in one compiled loop over the channels, operation for operation and in
the same order as the array models it stands for (numba without fastmath neither reorders nor
fuses floating-point operations), so the results are bit-identical:

* :func:`bms_emu.afe.frontend.adc_input_V` (per-channel constants from :func:`fe_terms`),
  then the injected path gain/offset faults and the path's own gain/offset error;
* :func:`bms_emu.afe.conversion.convert_dc`: ``u = G_IN v / v_ref``, plus ``sd * z`` with the
  normals ``z`` drawn by the caller from the same generator, quantised to the sinc3 code;
* :func:`bms_emu.afe.adc_params.raw_code_from_sinc3`, :func:`bms_emu.afe.trim.correct_code`
  (trim constants folded into the multiplier ``m`` and offset term by the caller),
  :func:`~bms_emu.afe.adc_params.cell_code_from_raw`,
  :func:`~bms_emu.afe.adc_params.cell_volts_from_code`.

``tests/device/test_conversion_identity.py`` compares it with that chain of array models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bms_emu.afe.adc_params import (
    CODE_MAX,
    CODE_MIN,
    G_IN,
    LSB_V,
    RAW_BITS,
    RAW_CODE_ZERO,
    RAW_PER_U,
    V_CODE_ZERO_V,
)
from bms_emu.afe.frontend import FrontEndParams
from bms_emu.afe.iir import IIR_FRAC_BITS, IIR_K_BITS

try:  # optional accelerator; the numpy models are the reference
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "convert_cells", "fe_terms", "iir_step"]

FloatArray = npt.NDArray[np.float64]


def fe_terms(params: FrontEndParams, i: int = 0) -> FloatArray:
    """Per-channel constants of :func:`~bms_emu.afe.frontend.adc_input_V` for device ``i``.

    Returns shape (5, n_channels): full scale, INL factor ``inl_uV * 1e-6 * 4``, offset
    ``(offset_uV + cm_error_uV) * 1e-6``, leakage drop and gain ``1 + gain_ppm * 1e-6``, each
    rounded exactly as ``adc_input_V`` rounds its intermediate values.
    """
    n = params.gain_ppm.shape[1]
    leak_V = (params.leakage_nA[:, 1:] - params.leakage_nA[:, :-1]) * 1e-9 * params.r_filter_Ohm
    return np.ascontiguousarray(np.stack([
        np.broadcast_to(np.asarray(params.v_full_scale_V, dtype=np.float64), (n,)),
        params.inl_uV[i] * 1e-6 * 4.0,
        (params.offset_uV + params.cm_error_uV)[i] * 1e-6,
        leak_V[i],
        1.0 + params.gain_ppm[i] * 1e-6,
    ]))


def _convert_cells_kernel(v_diff: Any, fe: Any, f_gain_ppm: Any, f_off_uV: Any, g_path: float,
                          o_path: float, v_ref: float, sd: float, z: Any, r3: int, m: int,
                          off_t: int, half: int, f: int, lo: int, hi: int,
                          out: Any) -> None:  # pragma: no cover - compiled by numba
    lim = (1 << (RAW_BITS - 1)) - 1
    for j in range(v_diff.shape[0]):
        v = v_diff[j]
        # adc_input_V
        x = min(max(v / fe[0, j], 0.0), 1.0)
        inl_V = fe[1, j] * x * (1.0 - x)
        v_err = fe[2, j] + inl_V - fe[3, j]
        a = (v + v_err) * fe[4, j]
        # injected faults, then the path's gain / offset error
        a = a * (1.0 + 1e-6 * f_gain_ppm[j]) + 1e-6 * f_off_uV[j]
        a = a * g_path + o_path
        # convert_dc and its _quantise
        u = G_IN * a / v_ref
        d = np.floor(r3 * (1.0 + (u + sd * z[j])) * 0.5 + 0.5)
        d = min(max(d, 0.0), float(r3))
        di = np.int64(d)
        # raw_code_from_sinc3
        xr = (2 * di - r3) * RAW_PER_U
        raw = (xr + r3 // 2) // r3
        raw = min(max(raw, -lim - 1), lim)
        # correct_code with the trim constants folded in
        acc = raw * m + off_t
        corr = min(max((acc + half) >> f, lo), hi)
        # cell_code_from_raw, cell_volts_from_code
        code = min(max((corr - RAW_CODE_ZERO + 8) >> 4, CODE_MIN), CODE_MAX)
        out[j] = V_CODE_ZERO_V + np.float64(code) * LSB_V


if HAVE_NUMBA:
    _convert_cells_nb = numba.njit(cache=True, error_model="numpy")(_convert_cells_kernel)


def convert_cells(v_diff: FloatArray, fe: FloatArray, f_gain_ppm: FloatArray,
                  f_off_uV: FloatArray, g_path: float, o_path: float, v_ref: float, sd: float,
                  z: FloatArray, r3: int, m: int, off_t: int, half: int, f: int, lo: int,
                  hi: int) -> FloatArray:
    """Measured volts of each channel, shape of ``v_diff`` ``(n_channels,)``; see the module.

    ``g_path = 1 + 1e-6 gain_ppm`` and ``o_path = 1e-6 offset_uV`` of the path; ``sd`` the
    noise sigma in ``u`` units, ``z`` its standard normals; ``r3 = R**3``; ``m``, ``off_t``,
    ``half``, ``f``, ``lo``, ``hi`` the trim multiplier, offset term, rounding constant,
    shift and saturation limits of :func:`~bms_emu.afe.trim.correct_code`.
    """
    out = np.empty(v_diff.shape[0])
    _convert_cells_nb(v_diff, fe, f_gain_ppm, f_off_uV, g_path, o_path, v_ref, sd, z, r3, m,
                      off_t, half, f, lo, hi, out)
    return out


def _iir_step_kernel(codes: Any, y: Any, k: int, out: Any) -> None:  # pragma: no cover
    half_k = np.int64(1 << (IIR_K_BITS - 1))
    half_y = np.int64(1 << (IIR_FRAC_BITS - 1))
    for j in range(codes.shape[0]):
        d = (np.int64(codes[j]) << IIR_FRAC_BITS) - y[j]
        yj = y[j] + ((d * k + half_k) >> IIR_K_BITS)
        y[j] = yj
        out[j] = min(max((yj + half_y) >> IIR_FRAC_BITS, CODE_MIN), CODE_MAX)


if HAVE_NUMBA:
    _iir_step_nb = numba.njit(cache=True)(_iir_step_kernel)


def iir_step(codes: npt.NDArray[np.int16], y: npt.NDArray[np.int64], k: int
             ) -> npt.NDArray[np.int16]:
    """One sample of :func:`~bms_emu.afe.iir.iir_filter` (``FC != 0``, coefficient ``k`` of
    ``IIR_K_Q16``) for codes (n,): the state ``y`` (n,) int64 is updated in place, the
    filtered codes returned. The same int64 arithmetic in one compiled loop instead of ~15
    numpy calls per conversion; tests/device/test_device_fast_paths.py compares the two.
    """
    out = np.empty(codes.shape[0], dtype=np.int16)
    _iir_step_nb(codes, y, k, out)
    return out
