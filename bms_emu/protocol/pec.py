"""Packet error codes of the ADBMS6830-class SPI protocol: PEC15 on commands, PEC10 on data.

Both codes are MSB-first CRCs computed with the "direct" (non-augmented) shift-register
algorithm, seed ``0x0010``:

* PEC15: generator x^15 + x^14 + x^10 + x^8 + x^7 + x^4 + x^3 + 1 (``0x4599`` with the x^15
  term implied). The 15-bit remainder is sent shifted left by one (LSB = 0), high byte first.
* PEC10: generator x^10 + x^7 + x^3 + x^2 + x + 1 (``0x48F``). It covers the data bytes and
  then the 6 command-counter bits, shifted through the register after the data. For data the
  host writes, the counter bits are taken as 0. On the wire the two PEC bytes of a register
  group are ``[CC[5:0] << 2 | PEC[9:8], PEC[7:0]]``.

Sources: ADI's adBms6830 driver library (``adBms6830GenericType.c``: ``Pec15_Calc``,
``pec10_calc``), foxBMS 2 ``src/app/driver/afe/adi/common/ades183x/pec/adi_ades183x_pec.c``; see
``docs/protocol.md`` for the full citation list.

The implementation is table driven (one 256-entry table per code, plus a 64-entry table that
shifts the 6 counter bits in one step) so one PEC costs about a microsecond in CPython.
"""

from __future__ import annotations

__all__ = [
    "PEC10_POLY",
    "PEC10_SEED",
    "PEC15_POLY",
    "PEC15_SEED",
    "append_data_pec",
    "append_pec15",
    "check_data_pec",
    "check_pec15",
    "data_pec_bytes",
    "pec10",
    "pec15",
    "split_data_pec",
]

#: PEC15 generator without its x^15 term (x^14 + x^10 + x^8 + x^7 + x^4 + x^3 + 1).
PEC15_POLY = 0x4599
#: PEC15 initial register value.
PEC15_SEED = 0x0010
#: PEC10 generator including its x^10 term (x^10 + x^7 + x^3 + x^2 + x + 1).
PEC10_POLY = 0x48F
#: PEC10 initial register value.
PEC10_SEED = 0x0010

_CC_MAX = 0x3F


def _make_table(poly: int, width: int, n_bits: int) -> tuple[int, ...]:
    """Remainder of ``i << (width - n_bits)`` after ``n_bits`` shifts, for every ``i``.

    This is the classic MSB-first table: processing ``n_bits`` input bits ``x`` at once is
    ``crc = (crc << n_bits) ^ table[(crc >> (width - n_bits)) ^ x]`` (masked to ``width``).
    """
    top = 1 << (width - 1)
    mask = (1 << width) - 1
    low_poly = poly & mask
    table = []
    for i in range(1 << n_bits):
        crc = i << (width - n_bits)
        for _ in range(n_bits):
            crc = ((crc << 1) ^ low_poly) if crc & top else (crc << 1)
            crc &= mask
        table.append(crc)
    return tuple(table)


_T15 = _make_table(PEC15_POLY, 15, 8)
_T10 = _make_table(PEC10_POLY, 10, 8)
_T10_CC = _make_table(PEC10_POLY, 10, 6)


def pec15(data: bytes) -> int:
    """PEC15 of ``data`` as sent on the wire (15-bit remainder shifted left by one).

    Parameters
    ----------
    data : bytes
        Bytes covered by the PEC, e.g. the two command bytes (any bytes-like object).

    Returns
    -------
    int
        16-bit value; its LSB is always 0. Send the high byte first.

    Examples
    --------
    >>> hex(pec15(bytes([0x00, 0x01])))  # WRCFGA
    '0x3d6e'
    >>> hex(pec15(b"\\x03\\x60"))
    '0xf46c'
    """
    crc = PEC15_SEED
    table = _T15
    for byte in data:
        crc = ((crc << 8) ^ table[((crc >> 7) ^ byte) & 0xFF]) & 0x7FFF
    return crc << 1


def pec10(data: bytes, command_counter: int = 0) -> int:
    """PEC10 of a register group: the data bytes, then the 6 command-counter bits.

    Parameters
    ----------
    data : bytes
        The data bytes of one device's register group (6 bytes for a group, more for the
        ``*ALL`` reads).
    command_counter : int, optional
        The 6-bit command counter the device sends with read data (0..63). Use 0 for data the
        host writes.

    Returns
    -------
    int
        The 10-bit PEC (0..0x3FF).

    Raises
    ------
    ValueError
        If ``command_counter`` is outside 0..63.

    Examples
    --------
    >>> hex(pec10(bytes(6)))
    '0x3e3'
    >>> pec10(bytes(6), command_counter=5) != pec10(bytes(6))
    True
    """
    if not 0 <= command_counter <= _CC_MAX:
        raise ValueError(f"command_counter must be 0..63, got {command_counter}")
    crc = PEC10_SEED
    table = _T10
    for byte in data:
        crc = ((crc << 8) ^ table[((crc >> 2) ^ byte) & 0xFF]) & 0x3FF
    # Shift the 6 counter bits (MSB first) through the register in one table step.
    return ((crc << 6) ^ _T10_CC[((crc >> 4) ^ command_counter) & 0x3F]) & 0x3FF


def append_pec15(data: bytes) -> bytes:
    """Return ``data`` followed by its PEC15, high byte first.

    Examples
    --------
    >>> append_pec15(b"\\x00\\x01").hex()
    '00013d6e'
    """
    p = pec15(data)
    return bytes(data) + bytes((p >> 8, p & 0xFF))


def check_pec15(frame: bytes) -> bool:
    """True if the last two bytes of ``frame`` are the PEC15 of the bytes before them.

    Examples
    --------
    >>> check_pec15(bytes.fromhex("00013d6e"))
    True
    >>> check_pec15(bytes.fromhex("00013d6f"))
    False
    """
    if len(frame) < 3:
        return False
    return pec15(frame[:-2]) == (frame[-2] << 8 | frame[-1])


def data_pec_bytes(data: bytes, command_counter: int = 0) -> bytes:
    """The two PEC bytes that follow one device's data: ``[CC << 2 | PEC[9:8], PEC[7:0]]``.

    Parameters
    ----------
    data : bytes
        Register data of one device.
    command_counter : int, optional
        Counter to embed (device replies); 0 for host writes.

    Examples
    --------
    >>> data_pec_bytes(bytes(6)).hex()
    '03e3'
    >>> data_pec_bytes(bytes(6), command_counter=1)[0] >> 2
    1
    """
    p = pec10(data, command_counter)
    return bytes(((command_counter << 2) | (p >> 8), p & 0xFF))


def append_data_pec(data: bytes, command_counter: int = 0) -> bytes:
    """Return ``data`` followed by its two PEC bytes (see :func:`data_pec_bytes`).

    Examples
    --------
    >>> append_data_pec(bytes(6)).hex()
    '00000000000003e3'
    """
    return bytes(data) + data_pec_bytes(data, command_counter)


def split_data_pec(group: bytes) -> tuple[bytes, int, int]:
    """Split ``data + 2 PEC bytes`` into ``(data, command_counter, received_pec10)``.

    Examples
    --------
    >>> split_data_pec(bytes.fromhex("000000000000076c"))
    (b'\\x00\\x00\\x00\\x00\\x00\\x00', 1, 876)
    """
    if len(group) < 3:
        raise ValueError(f"a data group needs at least 3 bytes, got {len(group)}")
    hi = group[-2]
    return bytes(group[:-2]), hi >> 2, ((hi & 0x03) << 8) | group[-1]


def check_data_pec(group: bytes) -> tuple[bool, int]:
    """Check ``data + 2 PEC bytes``; return ``(pec_ok, command_counter)``.

    The counter is taken from the top 6 bits of the first PEC byte and is part of the PEC, so a
    corrupted counter fails the check. Host-written groups simply carry counter 0.

    Examples
    --------
    >>> check_data_pec(append_data_pec(b"\\x01\\x02\\x03\\x04\\x05\\x06", command_counter=9))
    (True, 9)
    >>> check_data_pec(bytes.fromhex("00000000000003e4"))
    (False, 0)
    """
    data, cc, received = split_data_pec(group)
    return pec10(data, cc) == received, cc
