"""Bit-true first-order IIR post-filter on the 16-bit cell codes (the "filtered" results).

``y[n] = y[n-1] + k (x[n] - y[n-1])``, i.e. ``H(z) = k / (1 - (1 - k) z**-1)``, unity DC gain.
Settings ``FC = 1..7`` give -3 dB at 110, 45, 21, 10, 5, 1.25, 0.625 Hz at the C-ADC output
data rate of 1 kHz (REFERENCE.md 2.1); ``FC = 0`` bypasses the filter.

Fixed-point formats (for the RTL)
---------------------------------
* Input ``x``: signed 16-bit cell code (:mod:`bms_emu.afe.adc_params`).
* Coefficient ``k``: unsigned Q0.16 (16-bit field, ``k = K / 2**16``), a power of two:
  ``k = 1/2, 1/4, 1/8, 1/16, 1/32, 1/128, 1/256`` for FC = 1..7 (table :data:`IIR_K_Q16`), so
  the multiply is a shift in silicon. Evidence that the chip uses exactly these: the corner of
  ``y += k (x - y)`` in the usual approximation ``f = -ln(1 - k) f_odr / (2 pi)`` is 110.3, 45.8,
  21.3, 10.3, 5.05, 1.25, 0.62 Hz, which is the datasheet's list (REFERENCE.md 2.1) rounded,
  including the odd 110 Hz; foxBMS's ADBMS6830 driver lists the same k values. The exact
  ``|H|**2 = 1/2`` corners (:func:`iir_f3dB_Hz`) are 115.0, 46.1, 21.3, 10.3, 5.05, 1.25,
  0.622 Hz.
* State ``y``: signed Q16.16 (32 bits: 16 integer + 16 fraction bits). The fraction bits keep
  the smallest setting (``K = 257``) from stalling: the dead band is ``|x - y| < 2**15 / K``
  state LSBs, below 0.002 code.
* Update: ``d = (x << 16) - y`` (33 bits signed); ``p = d * K`` (49 bits signed);
  ``y += (p + 2**15) >>> 16`` (arithmetic shift, round half up). ``y`` stays within the range
  of the inputs seen, so 32 bits suffice.
* Output: ``(y + 2**15) >>> 16`` (round half up), saturated to ``[-32767, 32767]``.
* Bypass (``FC = 0``): output = input and ``y = x << 16``, so enabling the filter later starts
  from the last result instead of from zero.

Arrays: codes ``(n_samples, ...)`` with any trailing population shape, e.g.
``(n_samples, n_devices, n_channels)``; the state has the trailing shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bms_emu.afe.adc_params import CODE_MAX, CODE_MIN
from bms_emu.afe.fixed_point import round_shift_right

__all__ = [
    "IIR_FC_HZ",
    "IIR_FRAC_BITS",
    "IIR_K_BITS",
    "IIR_K_Q16",
    "IirState",
    "iir_design_k",
    "iir_f3dB_Hz",
    "iir_filter",
]

#: -3 dB frequency (Hz) of each FC setting at the 1 kHz C-ADC output rate, as the datasheet
#: lists them (rounded; see the module docstring for the exact corners of the shifts).
IIR_FC_HZ: dict[int, float] = {1: 110.0, 2: 45.0, 3: 21.0, 4: 10.0, 5: 5.0, 6: 1.25, 7: 0.625}
#: Fraction bits of the coefficient (Q0.16).
IIR_K_BITS = 16
#: Fraction bits of the state (Q16.16).
IIR_FRAC_BITS = 16
#: Coefficients K (k = K / 2**16): powers of two, k = 1/2 .. 1/256; FC 0 = bypass.
IIR_K_Q16: dict[int, int] = {1: 1 << 15, 2: 1 << 14, 3: 1 << 13, 4: 1 << 12, 5: 1 << 11,
                             6: 1 << 9, 7: 1 << 8}

IntArray = NDArray[np.int64]


def iir_design_k(f3dB_Hz: float, f_odr_Hz: float = 1000.0) -> float:
    """Exact real coefficient ``k`` whose -3 dB point is ``f3dB_Hz`` at rate ``f_odr_Hz``.

    >>> round(iir_design_k(110.0) * 2**16)
    31838
    """
    one_minus_c = 1.0 - np.cos(2 * np.pi * f3dB_Hz / f_odr_Hz)
    return float(-one_minus_c + np.sqrt(one_minus_c**2 + 2 * one_minus_c))


def iir_f3dB_Hz(k: float, f_odr_Hz: float = 1000.0) -> float:
    """Analytic -3 dB frequency of ``k / (1 - (1-k) z**-1)``: solves ``|H|**2 = 1/2``.

    >>> round(iir_f3dB_Hz(1 / 256), 4)
    0.6229
    """
    a = 1.0 - k
    c = (1.0 + a * a - 2.0 * k * k) / (2.0 * a)
    return float(np.arccos(c) * f_odr_Hz / (2 * np.pi))


@dataclass
class IirState:
    """Filter state: ``y`` in Q16.16, int64 array of the population shape (e.g. (n_ch,))."""

    y: IntArray

    @classmethod
    def from_codes(cls, codes: ArrayLike) -> IirState:
        """Start the filter settled at ``codes`` (shape = population shape)."""
        return cls(np.asarray(codes, dtype=np.int64) << IIR_FRAC_BITS)

    def copy(self) -> IirState:
        """Independent copy."""
        return IirState(self.y.copy())


def iir_filter(x_codes: ArrayLike, state: IirState, fc: int) -> IntArray:
    """Filter a block of 16-bit codes; ``state`` is updated in place.

    Parameters
    ----------
    x_codes : array_like of int, shape (n_samples, *pop_shape)
        Unfiltered cell codes at the output data rate, signed 16-bit.
    state : IirState
        ``state.y`` has shape ``pop_shape``.
    fc : int
        Setting 0..7 (0 = bypass).

    Returns
    -------
    ndarray of int64, shape (n_samples, *pop_shape)
        Filtered codes.

    >>> st = IirState.from_codes([0])
    >>> iir_filter([[1000]] * 3, st, 1).ravel().tolist()
    [500, 750, 875]
    """
    x = np.asarray(x_codes, dtype=np.int64)
    if fc not in range(8):
        raise ValueError(f"FC must be 0..7, got {fc}")
    if x.shape[1:] != state.y.shape:
        raise ValueError(f"codes {x.shape} do not match state {state.y.shape}")
    if fc == 0:
        if x.shape[0]:
            state.y[...] = x[-1] << IIR_FRAC_BITS
        return x.copy()
    k = np.int64(IIR_K_Q16[fc])
    y = state.y.copy()
    out = np.empty_like(x)
    for n in range(x.shape[0]):  # recursive in time; numpy over the population
        d = (x[n] << IIR_FRAC_BITS) - y
        y = y + round_shift_right(d * k, IIR_K_BITS)
        out[n] = round_shift_right(y, IIR_FRAC_BITS)
    state.y[...] = y
    return np.clip(out, CODE_MIN, CODE_MAX)
