"""Lock-step link between a DUT process and the emulator process, over a pipe pair.

Used when the reference master runs in another process but the scenario runs in emulated time:
the DUT's SPI windows and waits go to the emulator process, which owns the clock, so the run is
deterministic however slow either process is. (A DUT paced to the wall clock uses a real
transport instead: the TCP SIL client.)

Frames, both directions: one op byte, a 4-byte big-endian payload length, the payload.

===========  =====================  ==================================================
request      payload                reply payload
===========  =====================  ==================================================
``T``        MOSI bytes             MISO bytes (same length)
``D``        float64 seconds (BE)   empty
``S``        uint32 frames sent     empty: the runner has received and stamped them
===========  =====================  ==================================================

Reply ops: ``K`` (ok) or ``X`` (stop: the scenario is over; the DUT exits). Every read has a
deadline; a silent peer raises :class:`LinkTimeout`, a closed one :class:`LinkClosed`.
"""

from __future__ import annotations

import os
import select
import struct
import time
from typing import IO

__all__ = ["LinkClosed", "LinkTimeout", "LockstepClient", "LockstepServer", "Stop"]

_HDR = struct.Struct(">cI")
MAX_PAYLOAD = 1 << 16  # far above the longest window (RDCVALL on 32 devices: 1 kB)


class LinkTimeout(TimeoutError):
    """The peer did not answer within the deadline."""


class LinkClosed(EOFError):
    """The peer closed the pipe."""


class Stop(Exception):
    """The runner ended the scenario (reply op ``X``)."""


def _read_exact(fd: int, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LinkTimeout(f"peer silent: got {len(buf)} of {n} bytes before the deadline")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise LinkClosed("peer closed the link")
        buf += chunk
    return bytes(buf)


def read_frame(fd: int, timeout_s: float) -> tuple[bytes, bytes]:
    """One ``(op, payload)`` within ``timeout_s``; oversized frames raise ValueError."""
    deadline = time.monotonic() + timeout_s
    op, n = _HDR.unpack(_read_exact(fd, _HDR.size, deadline))
    if n > MAX_PAYLOAD:
        raise ValueError(f"lock-step frame of {n} bytes (max {MAX_PAYLOAD})")
    return op, _read_exact(fd, n, deadline)


def write_frame(stream: IO[bytes], op: bytes, payload: bytes = b"") -> None:
    stream.write(_HDR.pack(op, len(payload)) + payload)
    stream.flush()


class LockstepClient:
    """DUT side: ``transfer`` and ``delay`` callables that go to the emulator process."""

    def __init__(self, rx: IO[bytes], tx: IO[bytes], timeout_s: float = 10.0) -> None:
        self._rx = rx.fileno()
        self._tx = tx
        self.timeout_s = timeout_s

    def _call(self, op: bytes, payload: bytes) -> bytes:
        write_frame(self._tx, op, payload)
        rop, reply = read_frame(self._rx, self.timeout_s)
        if rop == b"X":
            raise Stop()
        if rop != b"K":
            raise ValueError(f"unexpected reply op {rop!r}")
        return reply

    def transfer(self, mosi: bytes) -> bytes:
        return self._call(b"T", bytes(mosi))

    def delay(self, dt_s: float) -> None:
        self._call(b"D", struct.pack(">d", dt_s))

    def sync(self, n_frames: int) -> None:
        self._call(b"S", struct.pack(">I", n_frames))


class LockstepServer:
    """Runner side over a child's stdout (``rx``) and stdin (``tx``)."""

    def __init__(self, rx: IO[bytes], tx: IO[bytes], timeout_s: float = 10.0) -> None:
        self._rx = rx.fileno()
        self._tx = tx
        self.timeout_s = timeout_s

    def next_request(self) -> tuple[bytes, bytes]:
        return read_frame(self._rx, self.timeout_s)

    def reply(self, payload: bytes = b"", stop: bool = False) -> None:
        write_frame(self._tx, b"X" if stop else b"K", payload)
