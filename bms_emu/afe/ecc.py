"""Hamming SECDED (22,16) code protecting the trim memory, vectorised over any number of words.

Code: extended Hamming, k = 16 data bits, n = 22 code bits, minimum distance 4: every single-bit
error is corrected, every double-bit error is detected (never mis-corrected). Triple and higher
errors are outside the guarantee (they may be reported as corrected to a wrong word).

Bit layout of a code word (stored in the low 22 bits of a ``uint32``; bits 22-31 are zero)::

    bit  0            overall parity: XOR of code bits 1..21 (makes the whole word even parity)
    bits 1, 2, 4, 8, 16   Hamming parity p0..p4: p_j = XOR of code bits i (1 <= i <= 21) with
                          bit j of i set, so the syndrome of an error at bit i is i itself
    bits 3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 20, 21
                          data bits d0..d15 in that order (d0 = data LSB at code bit 3)

Decoding: s = syndrome (5 bits, XOR of the indices of the set bits 1..21), q = parity of all
22 bits.

    ====== ====== ===========================================================
    s      q      result
    ====== ====== ===========================================================
    0      0      OK, no error
    any    1      single error at bit s (s = 0: the overall parity bit) -> CORRECTED
                  (s > 21 cannot come from one error -> UNCORRECTABLE)
    != 0   0      double error -> UNCORRECTABLE (data returned unchanged)
    ====== ====== ===========================================================
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CODE_BITS",
    "DATA_BITS",
    "DATA_POSITIONS",
    "EccStatus",
    "decode",
    "encode",
    "flip_random_bits",
]

DATA_BITS = 16
CODE_BITS = 22
#: Code-word bit index of data bit d0..d15 (the non-powers of two in 3..21).
DATA_POSITIONS = tuple(i for i in range(1, CODE_BITS) if i & (i - 1))
assert len(DATA_POSITIONS) == DATA_BITS

# Mask of code bits covered by Hamming parity p_j (positions 1..21 whose index has bit j set).
_PARITY_MASKS = tuple(sum(1 << i for i in range(1, CODE_BITS) if i >> j & 1) for j in range(5))
_WORD_MASK = (1 << CODE_BITS) - 1


class EccStatus(IntEnum):
    """Per-word decode outcome (ordered: a larger value is worse)."""

    OK = 0
    CORRECTED = 1
    UNCORRECTABLE = 2


def _parity(x: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """Parity (XOR of all bits) of each 32-bit element, by folding (no popcount needed)."""
    x = x ^ (x >> np.uint32(16))
    x = x ^ (x >> np.uint32(8))
    x = x ^ (x >> np.uint32(4))
    x = x ^ (x >> np.uint32(2))
    x = x ^ (x >> np.uint32(1))
    return x & np.uint32(1)


def encode(data: ArrayLike) -> NDArray[np.uint32]:
    """Encode 16-bit words into 22-bit SECDED code words.

    Parameters
    ----------
    data : array_like of int, any shape
        Unsigned 16-bit data words (0..65535).

    Returns
    -------
    ndarray of uint32, same shape as ``data``
        Code words (layout in the module docstring).

    >>> hex(int(encode(0x0001)))        # d0 sits at bit 3, covered by p0, p1 and overall parity
    '0xf'
    >>> int(decode(encode(0xBEEF))[0])
    48879
    """
    d = np.asarray(data)
    if np.any((d < 0) | (d > 0xFFFF)):
        raise ValueError("data words must be in 0..65535")
    d = d.astype(np.uint32)
    cw = np.zeros(d.shape, dtype=np.uint32)
    # Scatter the data bits (16 fixed shifts replace a loop over words).
    for k, pos in enumerate(DATA_POSITIONS):
        cw |= ((d >> np.uint32(k)) & np.uint32(1)) << np.uint32(pos)
    for j, mask in enumerate(_PARITY_MASKS):
        cw |= _parity(cw & np.uint32(mask)) << np.uint32(1 << j)
    cw |= _parity(cw)  # bit 0 is still 0 here, so this is the parity of bits 1..21
    return cw


def decode(
    codewords: ArrayLike,
) -> tuple[NDArray[np.uint16], NDArray[np.uint8], NDArray[np.uint32]]:
    """Decode 22-bit SECDED code words, correcting single errors.

    Parameters
    ----------
    codewords : array_like of int, any shape
        Received code words; bits above 21 are ignored.

    Returns
    -------
    data : ndarray of uint16, same shape
        Data words (corrected where possible; as received when uncorrectable).
    status : ndarray of uint8, same shape
        :class:`EccStatus` value per word.
    corrected : ndarray of uint32, same shape
        Code words after correction (scrub value to write back).
    """
    cw = np.asarray(codewords).astype(np.uint32) & np.uint32(_WORD_MASK)
    syndrome = np.zeros(cw.shape, dtype=np.uint32)
    for j, mask in enumerate(_PARITY_MASKS):
        syndrome |= _parity(cw & np.uint32(mask)) << np.uint32(j)
    odd = _parity(cw).astype(bool)
    single = odd & (syndrome < CODE_BITS)
    status = np.full(cw.shape, EccStatus.OK, dtype=np.uint8)
    status[single] = EccStatus.CORRECTED
    status[(odd & ~single) | (~odd & (syndrome != 0))] = EccStatus.UNCORRECTABLE
    flip = np.where(single, np.uint32(1) << np.minimum(syndrome, CODE_BITS - 1), np.uint32(0))
    fixed = cw ^ flip.astype(np.uint32)
    data = np.zeros(cw.shape, dtype=np.uint32)
    for k, pos in enumerate(DATA_POSITIONS):
        data |= ((fixed >> np.uint32(pos)) & np.uint32(1)) << np.uint32(k)
    return data.astype(np.uint16), status, fixed


def flip_random_bits(
    codewords: ArrayLike, p_flip: float, rng: np.random.Generator
) -> NDArray[np.uint32]:
    """Flip each of the 22 code bits independently with probability ``p_flip`` (SEU injection).

    Parameters
    ----------
    codewords : array_like of int, any shape
    p_flip : float
        Per-bit flip probability.
    rng : numpy.random.Generator
        Source of randomness (draws ``codewords.shape + (22,)`` uniforms).

    Returns
    -------
    ndarray of uint32, same shape as ``codewords``
    """
    cw = np.asarray(codewords).astype(np.uint32)
    hits = rng.random((*cw.shape, CODE_BITS)) < p_flip
    weights = np.uint32(1) << np.arange(CODE_BITS, dtype=np.uint32)
    return cw ^ (hits * weights).sum(axis=-1, dtype=np.uint32)
