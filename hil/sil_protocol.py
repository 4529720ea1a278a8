"""SIL frame format: one request/response frame per chip-select window (``docs/sil-protocol.md``).

Every frame, in both directions, is a 12-byte header followed by ``length`` payload bytes::

    offset size field
    0      2    magic   0x42 0x45 ("BE")
    2      1    version 1
    3      1    type    (request types below; a reply has type | 0x80; ERROR is 0x7F)
    4      4    seq     request sequence number, echoed by the reply (u32, big-endian)
    8      4    length  payload bytes (u32, big-endian, <= MAX_PAYLOAD)

All integers are big-endian (network order). This module is pure: no sockets, only bytes.

Examples
--------
>>> f = encode_frame(TRANSFER, 7, b"\\x00\\x04\\x07\\xc2")
>>> f.hex()
'424501010000000700000004000407c2'
>>> parse_header(f[:HEADER_LEN])
(1, 7, 4)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "ADVANCE_TIME",
    "ERROR",
    "ERROR_NAMES",
    "E_BAD_MAGIC",
    "E_BAD_PAYLOAD",
    "E_BAD_VERSION",
    "E_BUSY",
    "E_INTERNAL",
    "E_MODE",
    "E_TIMEOUT",
    "E_TOO_LARGE",
    "E_UNKNOWN_TYPE",
    "FATAL_ERRORS",
    "HEADER_LEN",
    "INFO",
    "INFO_FMT",
    "MAGIC",
    "MAX_ADVANCE_US",
    "MAX_PAYLOAD",
    "PACE_LOCKSTEP",
    "PACE_WALL",
    "REPLY",
    "TRANSFER",
    "VERSION",
    "WAKEUP",
    "FrameError",
    "Info",
    "decode_error",
    "encode_error",
    "encode_frame",
    "parse_header",
]

MAGIC = b"BE"
VERSION = 1
HEADER_LEN = 12
_HEADER = struct.Struct(">2sBBII")
#: Largest payload either side accepts (a 64-device RDCSALL window is 4 + 64 * 66 = 4228 bytes).
MAX_PAYLOAD = 8192
#: Largest single ADVANCE_TIME request (1 h of emulated time, in us).
MAX_ADVANCE_US = 3_600_000_000

# request types; the reply to type t has type t | REPLY
TRANSFER = 0x01
ADVANCE_TIME = 0x02
WAKEUP = 0x03
INFO = 0x04
REPLY = 0x80
ERROR = 0x7F

# error codes (u16 in the ERROR payload)
E_BAD_MAGIC = 1
E_BAD_VERSION = 2
E_UNKNOWN_TYPE = 3
E_TOO_LARGE = 4
E_BAD_PAYLOAD = 5
E_TIMEOUT = 6
E_INTERNAL = 7
E_BUSY = 8
E_MODE = 9
ERROR_NAMES = {
    E_BAD_MAGIC: "BAD_MAGIC",
    E_BAD_VERSION: "BAD_VERSION",
    E_UNKNOWN_TYPE: "UNKNOWN_TYPE",
    E_TOO_LARGE: "TOO_LARGE",
    E_BAD_PAYLOAD: "BAD_PAYLOAD",
    E_TIMEOUT: "TIMEOUT",
    E_INTERNAL: "INTERNAL",
    E_BUSY: "BUSY",
    E_MODE: "MODE",
}
#: Errors after which the server closes the connection: the byte stream cannot be resynchronised.
FATAL_ERRORS = frozenset({E_BAD_MAGIC, E_BAD_VERSION, E_TOO_LARGE, E_TIMEOUT, E_BUSY})

PACE_WALL = 0
PACE_LOCKSTEP = 1
#: INFO reply payload: version, pace, n_devices, f_spi_Hz, emulated time in ns.
INFO_FMT = struct.Struct(">BBHIQ")


class FrameError(ValueError):
    """A header that cannot be accepted; ``code`` is the SIL error code to send back."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Info:
    """Decoded INFO reply."""

    version: int
    lockstep: bool
    n_devices: int
    f_spi_Hz: int
    t_s: float

    @classmethod
    def decode(cls, payload: bytes) -> Info:
        """Parse an INFO reply payload (``INFO_FMT``)."""
        if len(payload) != INFO_FMT.size:
            raise FrameError(E_BAD_PAYLOAD, f"INFO reply has {len(payload)} bytes, not 16")
        ver, pace, n, f, t_ns = INFO_FMT.unpack(payload)
        return cls(ver, pace == PACE_LOCKSTEP, n, f, t_ns * 1e-9)


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    """Header + payload for one frame.

    Raises
    ------
    FrameError
        If the payload exceeds :data:`MAX_PAYLOAD`.
    """
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(E_TOO_LARGE, f"payload {len(payload)} > {MAX_PAYLOAD} bytes")
    return _HEADER.pack(MAGIC, VERSION, ftype, seq & 0xFFFFFFFF, len(payload)) + payload


def parse_header(header: bytes) -> tuple[int, int, int]:
    """``(type, seq, length)`` of a 12-byte header.

    Raises
    ------
    FrameError
        Bad magic, unsupported version, or a length above :data:`MAX_PAYLOAD` (all fatal for
        the connection: the stream cannot be resynchronised).
    """
    magic, version, ftype, seq, length = _HEADER.unpack(header)
    if magic != MAGIC:
        raise FrameError(E_BAD_MAGIC, f"bad magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise FrameError(E_BAD_VERSION, f"protocol version {version} not supported (need 1)")
    if length > MAX_PAYLOAD:
        raise FrameError(E_TOO_LARGE, f"frame payload {length} > {MAX_PAYLOAD} bytes")
    return ftype, seq, length


def encode_error(seq: int, code: int, message: str) -> bytes:
    """An ERROR frame: u16 code, then a UTF-8 message (truncated to 200 bytes)."""
    return encode_frame(ERROR, seq, struct.pack(">H", code) + message.encode()[:200])


def decode_error(payload: bytes) -> tuple[int, str]:
    """``(code, message)`` of an ERROR payload."""
    if len(payload) < 2:
        return E_INTERNAL, "short ERROR frame"
    return struct.unpack(">H", payload[:2])[0], payload[2:].decode("utf-8", "replace")
