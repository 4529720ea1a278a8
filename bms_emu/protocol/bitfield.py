"""A named bit field that may be split over several segments of a word.

Opcode parameters (ADAX's CH is split over bits 3..0 and 6) and register-group fields share
this one piece of bit arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BitField"]


@dataclass(frozen=True)
class BitField:
    """``segments`` are ``(lsb, width)`` pairs in the word, least significant part first.

    >>> f = BitField("CH", ((0, 4), (6, 1)))
    >>> hex(f.scatter(0x13)), f.gather(0x43), f.width
    ('0x43', 19, 5)
    """

    name: str
    segments: tuple[tuple[int, int], ...]

    @property
    def width(self) -> int:
        """Total width of the value in bits."""
        return sum(w for _, w in self.segments)

    @property
    def mask(self) -> int:
        """Bits of the word this field occupies."""
        m = 0
        for lsb, w in self.segments:
            m |= ((1 << w) - 1) << lsb
        return m

    def scatter(self, value: int) -> int:
        """Word bits holding the low :attr:`width` bits of ``value`` (no range check)."""
        out = 0
        shift = 0
        for lsb, w in self.segments:
            out |= ((value >> shift) & ((1 << w) - 1)) << lsb
            shift += w
        return out

    def gather(self, word: int) -> int:
        """Unsigned value of this field in ``word``."""
        out = 0
        shift = 0
        for lsb, w in self.segments:
            out |= ((word >> lsb) & ((1 << w) - 1)) << shift
            shift += w
        return out
