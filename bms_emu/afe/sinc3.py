"""Bit-true integer sinc3 (CIC, N = 3 stages, differential delay M = 1) decimator.

Structure (Hogenauer), per channel::

    b[n] in {0, 1}  ->  I1 += b ; I2 += I1 ; I3 += I2      (modulator rate)
    every R-th sample: C0 = I3
                       C1 = C0 - z1 ; z1 = C0
                       C2 = C1 - z2 ; z2 = C1
                       D  = C2 - z3 ; z3 = C2              (output rate f_mod / R)

Transfer function ``H(z) = [(1 - z**-R) / (1 - z**-1)]**3``; the impulse response is the
integer "triangle squared" kernel of length ``3R - 2`` summing to ``R**3`` (see
:func:`sinc3_impulse_response`). Magnitude ``|H(f)| / R**3 = |sin(pi f R / f_mod) /
(R sin(pi f / f_mod))|**3`` with notches at multiples of ``f_mod / R``.

Bit widths (for the RTL)
------------------------
* Input: 1 bit, unsigned: the modulator bit ``b = (v + 1) / 2``.
* All six registers (I1, I2, I3, z1, z2, z3) and the output: ``W = 1 + 3*log2(R)`` bits
  (``(R**3).bit_length()`` for a general R), unsigned, wrapping modulo ``2**W``.
  C-ADC, R = 1024: **W = 31**. S-ADC, R = 8192: **W = 40**.
* Why that is enough: the output ``D`` lies in ``[0, R**3]``, ``R**3 + 1 <= 2**W`` distinct
  values, and every register computes its true value modulo ``2**W`` (the integrators overflow
  freely; the combs undo the overflow). Interpreting the W-bit output as unsigned recovers ``D``
  exactly. One bit fewer fails for an all-ones input (``D = R**3`` wraps to 0); the tests check
  both facts.
* Signed view: ``2*D - R**3`` (``2 + 3*log2(R)`` bits signed) is ``R**3`` times the bitstream's
  weighted mean of ``v in {-1, +1}``; :func:`sinc3_code_to_u` converts.

Modelling of wrap-around: Python ints and ``np.int64`` registers are masked with ``2**W - 1``
after every add. numpy's int64 adds wrap modulo ``2**64`` silently; since ``2**W`` divides
``2**64`` the masked result equals the W-bit register exactly, so the block form may use
``cumsum`` over long blocks.

Settling: after a reset (all registers 0) or an input step, outputs 0 and 1 are partial sums;
output 2 (the third) is the first whose window holds only post-step samples.

Arrays: bitstreams are ``(n_samples, n_ch)`` (int8 +-1 or uint8 0/1), states are
``(3, n_ch)`` int64, output codes are ``(n_out, n_ch)`` int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Sinc3Decimator",
    "Sinc3State",
    "sinc3_block",
    "sinc3_code_to_V",
    "sinc3_code_to_u",
    "sinc3_impulse_response",
    "sinc3_magnitude",
    "sinc3_width_bits",
]

IntArray = NDArray[np.int64]


def sinc3_width_bits(R: int) -> int:
    """Register width W of the sinc3 decimator: ``1 + 3*log2(R)`` for a power-of-two ``R``.

    >>> sinc3_width_bits(1024), sinc3_width_bits(8192)
    (31, 40)
    """
    if R < 2:
        raise ValueError(f"decimation ratio R must be >= 2, got {R}")
    w = (R**3).bit_length()
    if w > 62:
        raise ValueError(f"R = {R} needs {w}-bit registers; int64 modelling allows at most 62")
    return w


def sinc3_impulse_response(R: int) -> IntArray:
    """Integer impulse response of the sinc3 filter, shape ``(3R - 2,)``, summing to ``R**3``.

    It is the 3-fold convolution of a length-R boxcar (a quadratic B-spline, "triangle
    squared"). ``h[k]`` weights the bit ``k`` samples before the decimation instant.

    >>> sinc3_impulse_response(2).tolist()
    [1, 3, 3, 1]
    """
    box = np.ones(R, dtype=np.int64)
    return np.convolve(np.convolve(box, box), box)


def sinc3_magnitude(f_Hz: ArrayLike, f_mod_Hz: float, R: int) -> NDArray[np.float64]:
    """Analytic DC-normalised magnitude ``|sin(pi f R/f_mod) / (R sin(pi f/f_mod))|**3``.

    >>> float(sinc3_magnitude(1000.0, 1.024e6, 1024))
    0.0
    """
    f = np.asarray(f_Hz, dtype=np.float64)
    x = np.pi * f / f_mod_Hz
    den = R * np.sin(x)
    safe = np.abs(den) > 1e-300
    ratio = np.where(safe, np.sin(R * x) / np.where(safe, den, 1.0), 1.0)
    # exact zeros at the notches (sin(k pi) evaluates to ~1e-13, not 0)
    k = f * R / f_mod_Hz
    k_int = np.round(k)
    notch = (np.abs(k - k_int) < 1e-9) & (np.mod(k_int, R) != 0)
    return np.where(notch, 0.0, np.abs(ratio) ** 3)


def sinc3_code_to_u(d: ArrayLike, R: int) -> NDArray[np.float64]:
    """sinc3 output ``D`` in ``[0, R**3]`` -> weighted bitstream mean ``u = 2D/R**3 - 1``.

    Multiply by the reference voltage of the conversion to get the modulator input in volts.

    >>> sinc3_code_to_u([0, 2**29, 2**30], 1024).tolist()
    [-1.0, 0.0, 1.0]
    """
    return 2.0 * np.asarray(d, dtype=np.float64) / float(R**3) - 1.0


def sinc3_code_to_V(d: ArrayLike, R: int, v_ref_V: ArrayLike) -> NDArray[np.float64]:
    """sinc3 output ``D`` -> modulator input in volts, ``v_ref_V * (2D/R**3 - 1)``.

    ``v_ref_V`` is the reference the conversion actually used (broadcast with ``d``); the
    digital path instead assumes the nominal one (see :mod:`bms_emu.afe.adc_params`).

    >>> sinc3_code_to_V([3 * 2**28], 1024, 3.0).tolist()
    [1.5]
    """
    return np.asarray(v_ref_V, dtype=np.float64) * sinc3_code_to_u(d, R)


def _as_unipolar(bits: ArrayLike) -> IntArray:
    """+-1 or 0/1 bitstream -> 0/1 int64, shape kept (``(b + 1) >> 1``: -1, 0 -> 0; 1 -> 1)."""
    return (np.asarray(bits).astype(np.int64) + 1) >> 1


@dataclass
class Sinc3State:
    """Registers of a bank of sinc3 decimators (all channels share the decimation phase).

    Attributes
    ----------
    integ : ndarray, shape (3, n_ch), int64
        Integrators I1, I2, I3, each in ``[0, 2**W)``.
    comb : ndarray, shape (3, n_ch), int64
        Comb delays z1, z2, z3, each in ``[0, 2**W)``.
    phase : int
        Modulator samples consumed since the last output, ``0 <= phase < R``.
    """

    integ: IntArray
    comb: IntArray
    phase: int = 0

    @classmethod
    def zeros(cls, n_ch: int) -> Sinc3State:
        """Reset state for ``n_ch`` channels."""
        return cls(np.zeros((3, n_ch), np.int64), np.zeros((3, n_ch), np.int64), 0)

    def copy(self) -> Sinc3State:
        """Independent copy."""
        return Sinc3State(self.integ.copy(), self.comb.copy(), self.phase)


def _sinc3_numpy(b: IntArray, R: int, state: Sinc3State) -> IntArray:
    """Vectorised streaming step: cumsum integrators, decimate, combs. Updates ``state``."""
    mask = np.int64((1 << sinc3_width_bits(R)) - 1)
    n, n_ch = b.shape
    # integrators: cumsum replaces the per-sample loop; int64 wrap is harmless (see module doc)
    i1 = (np.cumsum(b, axis=0) + state.integ[0]) & mask
    i2 = (np.cumsum(i1, axis=0) + state.integ[1]) & mask
    i3 = (np.cumsum(i2, axis=0) + state.integ[2]) & mask
    if n:
        state.integ[:] = np.stack([i1[-1], i2[-1], i3[-1]])
    first = R - 1 - state.phase  # index of the first sample that completes an output period
    taps = i3[first::R] if first < n else np.empty((0, n_ch), np.int64)
    state.phase = (state.phase + n) % R
    out = np.empty_like(taps)
    z1, z2, z3 = state.comb
    for m in range(taps.shape[0]):  # combs run at the output rate: few iterations
        c0 = taps[m]
        c1 = (c0 - z1) & mask
        c2 = (c1 - z2) & mask
        out[m] = (c2 - z3) & mask
        z1, z2, z3 = c0, c1, c2
    state.comb[:] = np.stack([z1, z2, z3])
    return out


class Sinc3Decimator:
    """Streaming bank of ``n_ch`` sinc3 decimators; state is kept between calls.

    Parameters
    ----------
    R : int
        Decimation ratio.
    n_ch : int
        Number of channels.

    Examples
    --------
    >>> dec = Sinc3Decimator(R=4, n_ch=1)
    >>> ones = np.ones((12, 1), np.int8)
    >>> dec.process(ones[:5]).ravel().tolist(), dec.process(ones[5:]).ravel().tolist()
    ([20], [60, 64])
    """

    def __init__(self, R: int, n_ch: int) -> None:
        self.R = int(R)
        self.width_bits = sinc3_width_bits(self.R)
        self.state = Sinc3State.zeros(n_ch)

    def reset(self) -> None:
        """Clear all registers (the first two outputs after a reset are partial)."""
        self.state = Sinc3State.zeros(self.state.integ.shape[1])

    def process(self, bits: ArrayLike) -> IntArray:
        """Feed a bitstream chunk, return the outputs completed within it.

        Parameters
        ----------
        bits : array_like, shape (n_samples, n_ch)
            int8 +-1 or 0/1 modulator bits.

        Returns
        -------
        ndarray, shape (n_out, n_ch), int64
            Codes ``D`` in ``[0, R**3]``; ``n_out = (phase + n_samples) // R``.
        """
        b = _as_unipolar(bits)
        if b.ndim != 2 or b.shape[1] != self.state.integ.shape[1]:
            n_ch = self.state.integ.shape[1]
            raise ValueError(f"bits must be (n_samples, {n_ch}), got {b.shape}")
        return _sinc3_numpy(b, self.R, self.state)


def sinc3_block(bits: ArrayLike, R: int) -> IntArray:
    """Block form: decimate a whole bitstream from the reset state.

    Parameters
    ----------
    bits : array_like, shape (n_samples, n_ch)
    R : int

    Returns
    -------
    ndarray, shape (n_samples // R, n_ch), int64
        Same as a fresh :class:`Sinc3Decimator` fed the whole stream at once. Outputs 0 and 1
        are partial (settling).
    """
    b = _as_unipolar(bits)
    return _sinc3_numpy(b, R, Sinc3State.zeros(b.shape[1]))
