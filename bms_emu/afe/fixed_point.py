"""Integer helpers shared by the bit-true digital datapaths (trim correction, trim memory).

Every function works element-wise on ``int64`` numpy arrays of any shape and mirrors one RTL
construct exactly, so the Python model and the SystemVerilog agree bit for bit:

* :func:`round_shift_right` - ``(x + 2**(n-1)) >>> n``: arithmetic shift with round-half-up
  (ties go towards +infinity), the cheapest rounding in hardware (one adder, no sign logic).
* :func:`saturate` - clamp to a signed ``bits``-wide two's-complement range.
* :func:`to_field` / :func:`from_field` - signed value <-> unsigned bit field (two's complement).
* :func:`quantize` - real value -> nearest integer code (round-half-up), saturated. This one is
  tester/firmware arithmetic (it starts from a float), not RTL.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["from_field", "quantize", "round_shift_right", "saturate", "signed_range", "to_field"]

IntArray = NDArray[np.int64]


def signed_range(bits: int) -> tuple[int, int]:
    """Inclusive (min, max) of a signed two's-complement ``bits``-wide integer.

    >>> signed_range(16)
    (-32768, 32767)
    """
    if bits < 1 or bits > 63:
        raise ValueError(f"bits must be in 1..63, got {bits}")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def round_shift_right(x: ArrayLike, n: int) -> IntArray:
    """Divide by ``2**n`` rounding half up: ``(x + 2**(n-1)) >> n`` (arithmetic shift).

    Parameters
    ----------
    x : array_like of int, any shape
        Values; must satisfy ``|x| < 2**62`` so the rounding add cannot overflow int64.
    n : int
        Shift, ``n >= 0``; ``n == 0`` returns ``x`` unchanged.

    Returns
    -------
    ndarray of int64, same shape as ``x``

    >>> round_shift_right([5, 6, -5, -6, -7], 2).tolist()   # 1.25, 1.5, -1.25, -1.5, -1.75
    [1, 2, -1, -1, -2]
    """
    xi = np.asarray(x, dtype=np.int64)
    if n < 0:
        raise ValueError(f"shift must be >= 0, got {n}")
    if n == 0:
        return xi.copy()
    return (xi + np.int64(1 << (n - 1))) >> np.int64(n)


def saturate(x: ArrayLike, bits: int) -> IntArray:
    """Clamp to the signed ``bits``-wide range (shape of ``x`` kept).

    >>> saturate([40000, -40000, 5], 16).tolist()
    [32767, -32768, 5]
    """
    lo, hi = signed_range(bits)
    return np.minimum(np.maximum(np.asarray(x, dtype=np.int64), lo), hi)


def to_field(x: ArrayLike, bits: int) -> IntArray:
    """Signed value (already in range) -> unsigned ``bits``-wide two's-complement field.

    >>> to_field([-1, 1, -32768], 16).tolist()
    [65535, 1, 32768]
    """
    xi = np.asarray(x, dtype=np.int64)
    lo, hi = signed_range(bits)
    if np.any((xi < lo) | (xi > hi)):
        raise ValueError(f"value out of the signed {bits}-bit range [{lo}, {hi}]")
    return xi & np.int64((1 << bits) - 1)


def from_field(u: ArrayLike, bits: int) -> IntArray:
    """Unsigned ``bits``-wide field -> signed value (sign bit is bit ``bits-1``).

    >>> from_field([65535, 1, 32768], 16).tolist()
    [-1, 1, -32768]
    """
    ui = np.asarray(u, dtype=np.int64) & np.int64((1 << bits) - 1)
    sign = np.int64(1 << (bits - 1))
    return (ui ^ sign) - sign


def quantize(x: ArrayLike, lsb: float, bits: int) -> IntArray:
    """Real value -> integer code ``floor(x / lsb + 1/2)`` saturated to ``bits`` signed bits.

    Round-half-up (not numpy's half-to-even) so a scalar reference with ``math.floor`` agrees.

    >>> quantize([0.5, 1.49, -0.5, 1e9], 1.0, 8).tolist()
    [1, 1, 0, 127]
    """
    lo, hi = signed_range(bits)
    q = np.floor(np.asarray(x, dtype=np.float64) / lsb + 0.5)
    return np.minimum(np.maximum(q, lo), hi).astype(np.int64)
