"""Serial bridge link layer (``docs/bridge-protocol.md``): COBS framing, CRC-16, go-back-N.

Pure bytes and bookkeeping, shared by both ends (the reference bridge MCU
:mod:`hil.bridge_ref` and the PC :mod:`hil.bridge_pc`); no I/O here.

Frame on the wire: ``COBS(type u8 | seq u16 LE | payload | CRC-16 LE) 0x00``; the CRC is
CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout) over type, seq and
payload.

Examples
--------
>>> crc16_ccitt(b"123456789") == 0x29B1
True
>>> cobs_encode(b"\\x11\\x00\\x00\\x22")
b'\\x02\\x11\\x01\\x02"'
>>> cobs_decode(cobs_encode(b"\\x00abc\\x00")) == b"\\x00abc\\x00"
True
>>> frame = encode_frame(HEARTBEAT, 0, b"\\x01\\x02")
>>> FrameDecoder().feed(frame)
[(18, 0, b'\\x01\\x02')]
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "ACK",
    "AT",
    "CC_RULES",
    "CHAIN_STATE",
    "CMD_FORWARD",
    "EFFECT_INC",
    "EFFECT_NONE",
    "EFFECT_POLL",
    "EFFECT_RESET",
    "HEARTBEAT",
    "MAX_FRAME",
    "NACK",
    "RELIABLE",
    "RESET",
    "RESET_DONE",
    "SHADOW_UPDATE",
    "FrameDecoder",
    "LinkEnd",
    "LinkStats",
    "ReliableReceiver",
    "ReliableSender",
    "cobs_decode",
    "cobs_encode",
    "crc16_ccitt",
    "encode_frame",
    "us_after",
]

# reliable (sequenced, acknowledged) types
CMD_FORWARD = 0x01  # bridge -> PC
SHADOW_UPDATE = 0x02  # PC -> bridge
CC_RULES = 0x03  # PC -> bridge
CHAIN_STATE = 0x04  # PC -> bridge
AT = 0x05  # PC -> bridge: a SHADOW_UPDATE or CHAIN_STATE to apply at a bridge clock time
LINK_FAULT = 0x06  # PC -> bridge: injected reply bit errors (applies at once)
RELIABLE = frozenset({CMD_FORWARD, SHADOW_UPDATE, CC_RULES, CHAIN_STATE, AT, LINK_FAULT})
# link control (seq field 0, never acknowledged)
ACK = 0x10
NACK = 0x11
HEARTBEAT = 0x12
RESET = 0x13  # PC -> bridge
RESET_DONE = 0x14  # bridge -> PC

# command effects in CC_RULES
EFFECT_NONE = 0
EFFECT_INC = 1
EFFECT_RESET = 2
EFFECT_POLL = 3

#: Largest decoded frame (type + seq + payload + CRC); longer input is discarded as garbage.
MAX_FRAME = 2048
SEQ_MOD = 1 << 16


def us_after(a_us: int, b_us: int) -> int:
    """Signed microseconds from ``b_us`` to ``a_us`` on a u32 clock that wraps (|gap| < 2**31).

    >>> us_after(5, 0xFFFFFFFE), us_after(0xFFFFFFFE, 5)
    (7, -7)
    """
    d = (a_us - b_us) & 0xFFFFFFFF
    return d - (1 << 32) if d & 0x80000000 else d


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC = _crc_table()


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (check value 0x29B1)."""
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC[(crc >> 8) ^ b]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """Consistent-overhead byte stuffing: the result has no 0x00 byte."""
    out = bytearray()
    for block in data.split(b"\x00"):
        # Runs longer than 254 non-zero bytes are split with a 0xFF code (no implied zero).
        while len(block) >= 254:
            out += b"\xff" + block[:254]
            block = block[254:]
        out += bytes([len(block) + 1]) + block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`.

    Raises
    ------
    ValueError
        On a zero byte or a code that runs past the end.
    """
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            raise ValueError("bad COBS code")
        block = data[i + 1 : end]
        if 0 in block:
            raise ValueError("zero byte inside a COBS frame")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    """One wire frame, delimiter included."""
    body = struct.pack("<BH", ftype, seq % SEQ_MOD) + payload
    body += struct.pack("<H", crc16_ccitt(body))
    if len(body) > MAX_FRAME:
        raise ValueError(f"frame of {len(body)} bytes > MAX_FRAME {MAX_FRAME}")
    return cobs_encode(body) + b"\x00"


@dataclass
class LinkStats:
    """Counters of one link end (for tests, logs and the heartbeat)."""

    frames_rx: int = 0
    frames_tx: int = 0
    bad_frames: int = 0  # COBS or CRC failure, or too short/long: garbage or dropped bytes
    gaps: int = 0  # sequence gaps seen (NACKs sent)
    duplicates: int = 0
    retransmits: int = 0


class FrameDecoder:
    """Split a byte stream at 0x00 delimiters, check COBS and CRC; garbage is counted, skipped.

    Resynchronisation is implicit: the next 0x00 ends whatever garbage came before it.
    """

    def __init__(self, stats: LinkStats | None = None) -> None:
        self.stats = stats or LinkStats()
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """Bytes in, complete good frames ``(type, seq, payload)`` out."""
        frames = []
        for chunk_end in _split_keep(data):
            piece, done = chunk_end
            if not self._overflow:
                self._buf += piece
                if len(self._buf) > 2 * MAX_FRAME:  # runaway garbage with no delimiter
                    self._buf.clear()
                    self._overflow = True
            if done:
                if self._overflow:
                    self.stats.bad_frames += 1
                elif self._buf:
                    f = self._decode(bytes(self._buf))
                    if f is None:
                        self.stats.bad_frames += 1
                    else:
                        self.stats.frames_rx += 1
                        frames.append(f)
                self._buf.clear()
                self._overflow = False
        return frames

    @staticmethod
    def _decode(raw: bytes) -> tuple[int, int, bytes] | None:
        try:
            body = cobs_decode(raw)
        except ValueError:
            return None
        if len(body) < 5 or struct.unpack("<H", body[-2:])[0] != crc16_ccitt(body[:-2]):
            return None
        ftype, seq = struct.unpack("<BH", body[:3])
        return ftype, seq, body[3:-2]


def _split_keep(data: bytes) -> list[tuple[bytes, bool]]:
    parts = data.split(b"\x00")
    return [(p, i < len(parts) - 1) for i, p in enumerate(parts)]


class ReliableSender:
    """Go-back-N sender: numbers reliable frames, keeps them until ACKed, resends on demand.

    Parameters
    ----------
    write : callable
        ``write(frame_bytes)``: put bytes on the line (may lose them).
    rto_s : float
        Resend everything unacknowledged if the oldest frame waited this long.
    window : int
        Most frames kept unacknowledged; beyond it the oldest is given up (``overflowed``).
    """

    def __init__(self, write: Callable[[bytes], None], stats: LinkStats, *, rto_s: float = 0.05,
                 window: int = 1024) -> None:
        self._write = write
        self.stats = stats
        self.rto_s = rto_s
        self.window = window
        self.next_seq = 0
        self._unacked: deque[tuple[int, bytes]] = deque()
        self._sent_at_s = 0.0
        self.overflowed = False

    @property
    def oldest_unacked(self) -> int:
        """Sequence number of the oldest frame not yet acknowledged (``next_seq`` if none)."""
        return self._unacked[0][0] if self._unacked else self.next_seq

    @property
    def pending(self) -> int:
        """Frames not yet acknowledged."""
        return len(self._unacked)

    def send(self, ftype: int, payload: bytes, now_s: float) -> int:
        """Number, keep and write one reliable frame; returns its sequence number."""
        seq = self.next_seq
        self.next_seq = (seq + 1) % SEQ_MOD
        frame = encode_frame(ftype, seq, payload)
        if not self._unacked:
            self._sent_at_s = now_s
        self._unacked.append((seq, frame))
        if len(self._unacked) > self.window:
            self._unacked.popleft()
            self.overflowed = True
        self.stats.frames_tx += 1
        self._write(frame)
        return seq

    def on_ack(self, seq: int, now_s: float) -> None:
        """Cumulative ACK: every frame up to and including ``seq`` arrived."""
        dropped = False
        while self._unacked and _seq_le(self._unacked[0][0], seq, self.next_seq):
            self._unacked.popleft()
            dropped = True
        if dropped:
            self._sent_at_s = now_s

    def on_nack(self, expected: int, now_s: float) -> None:
        """The peer misses ``expected``: everything before it arrived, resend from it."""
        self.on_ack((expected - 1) % SEQ_MOD, now_s)
        self.resend_all(now_s)

    def resend_all(self, now_s: float) -> None:
        """Write every unacknowledged frame again, oldest first."""
        for _, frame in self._unacked:
            self.stats.retransmits += 1
            self._write(frame)
        self._sent_at_s = now_s

    def poll(self, now_s: float) -> None:
        """Retransmission timer: call regularly."""
        if self._unacked and now_s - self._sent_at_s >= self.rto_s:
            self.resend_all(now_s)

    def reset(self, next_seq: int = 0) -> None:
        """Forget everything (link reset)."""
        self._unacked.clear()
        self.next_seq = next_seq
        self.overflowed = False


def _seq_le(a: int, b: int, limit: int) -> bool:
    """``a`` is at or before ``b`` in the window that ends before ``limit`` (mod 2**16)."""
    return (limit - a) % SEQ_MOD >= (limit - b) % SEQ_MOD and (limit - a) % SEQ_MOD != 0


class ReliableReceiver:
    """Accepts reliable frames strictly in order; tells the caller what to send back.

    ``accept(seq)`` returns ``"ok"`` (deliver, then ACK seq), ``"dup"`` (already delivered:
    re-ACK ``expected - 1``), or ``"gap"`` (drop it; NACK ``expected``, at most once per
    ``nack_holdoff_s`` so a burst of out-of-order frames costs one resend).
    """

    def __init__(self, stats: LinkStats, nack_holdoff_s: float = 0.02) -> None:
        self.stats = stats
        self.expected = 0
        self.nack_holdoff_s = nack_holdoff_s
        self._last_nack_s = -1e9

    def accept(self, seq: int, now_s: float) -> str:
        """Classify one incoming reliable frame (see the class docstring)."""
        if seq == self.expected:
            self.expected = (seq + 1) % SEQ_MOD
            return "ok"
        if 0 < (self.expected - seq) % SEQ_MOD < SEQ_MOD // 2:
            self.stats.duplicates += 1
            return "dup"
        self.stats.gaps += 1
        if now_s - self._last_nack_s >= self.nack_holdoff_s:
            self._last_nack_s = now_s
            return "gap"
        return "gap-quiet"

    def reset(self, expected: int = 0) -> None:
        """Expect ``expected`` next (link reset)."""
        self.expected = expected
        self._last_nack_s = -1e9


class LinkEnd:
    """One end of the link: decoder, go-back-N sender and receiver, ACK/NACK handling.

    :meth:`receive` answers ACK/NACK itself and hands the owner what it must act on: reliable
    frames in order, and control frames (HEARTBEAT, RESET, RESET_DONE).

    Parameters
    ----------
    write : callable
        ``write(frame_bytes)`` onto the line.
    """

    def __init__(self, write: Callable[[bytes], None], *, rto_s: float = 0.05) -> None:
        self.stats = LinkStats()
        self.write = write
        self.decoder = FrameDecoder(self.stats)
        self.tx = ReliableSender(write, self.stats, rto_s=rto_s)
        self.rx = ReliableReceiver(self.stats)

    def send(self, ftype: int, payload: bytes, now_s: float) -> int:
        """Send one reliable frame."""
        return self.tx.send(ftype, payload, now_s)

    def control(self, ftype: int, payload: bytes = b"") -> None:
        """Send one control frame (not sequenced, not acknowledged)."""
        self.write(encode_frame(ftype, 0, payload))

    def receive(
        self,
        data: bytes,
        now_s: float,
        deliver: Callable[[int, bytes], None],
        accept_reliable: Callable[[], bool] = lambda: True,
    ) -> None:
        """Bytes from the line in; ``deliver(type, payload)`` for each frame the owner handles.

        ``accept_reliable()`` is asked before each reliable frame; while it is False (not
        synchronised yet) reliable frames are dropped unacknowledged and the sender resends
        them later.
        """
        for ftype, seq, payload in self.decoder.feed(data):
            if ftype in (ACK, NACK):
                if len(payload) == 2:
                    s = struct.unpack("<H", payload)[0]
                    (self.tx.on_ack if ftype == ACK else self.tx.on_nack)(s, now_s)
            elif ftype in RELIABLE:
                if not accept_reliable():
                    continue
                verdict = self.rx.accept(seq, now_s)
                if verdict == "ok":
                    self.control(ACK, struct.pack("<H", seq))
                    deliver(ftype, payload)
                elif verdict == "dup":
                    self.control(ACK, struct.pack("<H", (self.rx.expected - 1) % SEQ_MOD))
                elif verdict == "gap":
                    self.control(NACK, struct.pack("<H", self.rx.expected))
            else:
                deliver(ftype, payload)

    def resync(self) -> None:
        """Drop a partial frame (the line was reopened)."""
        self.decoder = FrameDecoder(self.stats)
