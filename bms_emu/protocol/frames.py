"""One chip-select window on a daisy chain: build and split command, write and read frames.

Chain order (device index 0 = the device nearest the host):

* write: ``CMD(2) PEC15(2)`` then one ``data + PEC10`` block per device, **farthest device
  first**: the first block shifted in travels to the far end of the chain, so device ``N-1``'s
  block comes first and device 0's block last.
* read: the host sends ``CMD PEC15`` and then dummy ``0xFF`` bytes; MISO is ``0xFF`` during the
  4 command bytes, then device 0 (nearest) answers first, device ``N-1`` last.

Sources: ADI adBms6830 library ``spiWriteData`` / ``spiReadData`` (NU-Formula-Racing/adbms),
Linduino ``LTC681x.cpp`` ``write_68`` / ``read_68``, foxBMS 2 ``adi_ades1830_balancing.c``
(``reverseModuleNumber``). See ``docs/protocol.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bms_emu.protocol.pec import append_data_pec, append_pec15, check_pec15, pec10, split_data_pec

__all__ = [
    "CMD_LEN",
    "DUMMY",
    "DeviceReply",
    "WriteBlock",
    "build_command_frame",
    "build_read_frame",
    "build_read_reply",
    "build_write_frame",
    "parse_command",
    "split_read_reply",
    "split_write_frame",
]

#: Bytes of a command frame (2 opcode bytes + 2 PEC15 bytes).
CMD_LEN = 4
#: Byte the host clocks out for dummy/read phases and MISO idles at.
DUMMY = 0xFF


@dataclass(frozen=True)
class DeviceReply:
    """One device's share of a read response.

    Attributes
    ----------
    data : bytes
        Register data.
    command_counter : int
        6-bit command counter from the top of the first PEC byte.
    pec_ok : bool
        True if the received PEC10 matches data and counter.
    received_pec : int
        The 10-bit PEC as received.
    """

    data: bytes
    command_counter: int
    pec_ok: bool
    received_pec: int


@dataclass(frozen=True)
class WriteBlock:
    """One device's share of a write frame, as the device receives it.

    ``command_counter`` is whatever the top 6 bits of the first PEC byte carried (0 from a
    well-behaved host); ``pec_ok`` covers data and those bits.
    """

    data: bytes
    command_counter: int
    pec_ok: bool


def build_command_frame(opcode: int) -> bytes:
    """``CMD0 CMD1 PEC15hi PEC15lo`` for an 11-bit opcode.

    Examples
    --------
    >>> build_command_frame(0x001).hex()
    '00013d6e'
    """
    if not 0 <= opcode <= 0x7FF:
        raise ValueError(f"opcode must be 0..0x7FF, got {opcode:#x}")
    return append_pec15(bytes((opcode >> 8, opcode & 0xFF)))


def parse_command(frame: bytes) -> tuple[int, bool]:
    """Opcode and PEC15 validity of the first 4 bytes of a window.

    Examples
    --------
    >>> parse_command(bytes.fromhex("00013d6e"))
    (1, True)
    """
    if len(frame) < CMD_LEN:
        raise ValueError(f"a command needs {CMD_LEN} bytes, got {len(frame)}")
    return (frame[0] << 8) | frame[1], check_pec15(frame[:CMD_LEN])


def build_write_frame(opcode: int, payloads: Sequence[bytes]) -> bytes:
    """Command plus one ``data + PEC10`` block per device, farthest device first.

    Parameters
    ----------
    opcode : int
        11-bit opcode of a write command.
    payloads : sequence of bytes
        ``payloads[i]`` is the data for device ``i`` (0 = nearest the host). All the same length.

    Examples
    --------
    >>> f = build_write_frame(0x001, [b"\\x00" * 6, b"\\x11" * 6])
    >>> len(f), f[4:10].hex(), f[12:18].hex()
    (20, '111111111111', '000000000000')
    """
    if not payloads:
        raise ValueError("need at least one device payload")
    size = len(payloads[0])
    parts = [build_command_frame(opcode)]
    for i in range(len(payloads) - 1, -1, -1):
        if len(payloads[i]) != size:
            raise ValueError(f"payload {i} has {len(payloads[i])} bytes, expected {size}")
        parts.append(append_data_pec(payloads[i], 0))
    return b"".join(parts)


def split_write_frame(
    mosi: bytes, n_devices: int, data_len: int = 6
) -> tuple[int, bool, list[WriteBlock]]:
    """Device-side view of a write window: ``(opcode, cmd_pec_ok, blocks)``.

    ``blocks[i]`` is what device ``i`` (0 = nearest the host) ends up holding.

    Examples
    --------
    >>> f = build_write_frame(0x001, [b"\\x00" * 6, b"\\x11" * 6])
    >>> op, ok, blocks = split_write_frame(f, 2)
    >>> op, ok, blocks[1].data.hex(), blocks[1].pec_ok
    (1, True, '111111111111', True)
    """
    expected = CMD_LEN + n_devices * (data_len + 2)
    if len(mosi) != expected:
        raise ValueError(
            f"write window for {n_devices} devices needs {expected} bytes, got {len(mosi)}"
        )
    opcode, cmd_ok = parse_command(mosi)
    step = data_len + 2
    blocks: list[WriteBlock] = []
    for i in range(n_devices):
        start = CMD_LEN + (n_devices - 1 - i) * step
        data, cc, received = split_data_pec(mosi[start : start + step])
        blocks.append(WriteBlock(data, cc, pec10(data, cc) == received))
    return opcode, cmd_ok, blocks


def build_read_frame(opcode: int, n_devices: int, data_len: int = 6) -> bytes:
    """MOSI for a read: the command, then ``0xFF`` for every response byte.

    Examples
    --------
    >>> build_read_frame(0x004, 2).hex()
    '000407c2ffffffffffffffffffffffffffffffff'
    """
    return build_command_frame(opcode) + bytes([DUMMY]) * (n_devices * (data_len + 2))


def build_read_reply(payloads: Sequence[bytes], command_counters: Sequence[int]) -> bytes:
    """MISO of a read window: ``0xFF`` x 4, then each device's ``data + PEC10``, nearest first.

    Meant for device models and test stubs; ``payloads[i]`` / ``command_counters[i]`` belong to
    device ``i`` (0 = nearest the host).

    Examples
    --------
    >>> r = build_read_reply([bytes(6)], [3])
    >>> r[:4].hex(), split_read_reply(r, 1)[0].command_counter
    ('ffffffff', 3)
    """
    if len(payloads) != len(command_counters):
        raise ValueError("need one command counter per payload")
    return bytes([DUMMY]) * CMD_LEN + b"".join(
        append_data_pec(p, cc) for p, cc in zip(payloads, command_counters, strict=True)
    )


def split_read_reply(miso: bytes, n_devices: int, data_len: int = 6) -> list[DeviceReply]:
    """Split the MISO bytes of a whole read window into per-device replies (nearest first).

    Parameters
    ----------
    miso : bytes
        Everything received during the window, including the 4 command-phase bytes.
    n_devices : int
        Devices in the chain.
    data_len : int, optional
        Register bytes per device (6; 32/64/68 for the ``*ALL`` reads).

    Returns
    -------
    list of DeviceReply
        ``[i]`` is device ``i`` (0 = nearest the host).

    Examples
    --------
    >>> miso = build_read_reply([b"\\x01" * 6, b"\\x02" * 6], [1, 2])
    >>> [(r.data[0], r.command_counter, r.pec_ok) for r in split_read_reply(miso, 2)]
    [(1, 1, True), (2, 2, True)]
    """
    step = data_len + 2
    expected = CMD_LEN + n_devices * step
    if len(miso) != expected:
        raise ValueError(
            f"read window for {n_devices} devices needs {expected} bytes, got {len(miso)}"
        )
    out: list[DeviceReply] = []
    for i in range(n_devices):
        start = CMD_LEN + i * step
        data, cc, received = split_data_pec(miso[start : start + step])
        out.append(DeviceReply(data, cc, pec10(data, cc) == received, received))
    return out
