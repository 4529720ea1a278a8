"""Reference serial bridge: the MCU side of ``docs/bridge-protocol.md``, in Python.

The bridge is the SPI target of a dev board. It answers every chip-select window at once from a
shadow register image the PC keeps current, computes the command counters and PEC10 of its
replies itself, and forwards every window (command + write data, reads trimmed to the command)
to the PC with a microsecond timestamp. Here it talks to the PC through a file descriptor (the
master side of a pty in tests; a UART on a real MCU) and the dev board calls
:meth:`BridgeRef.spi_window` (an SPI peripheral's interrupt on a real MCU).

Firmware writers: this file is the executable form of the spec; every state variable below
maps to a few bytes of MCU RAM (shadow: one entry per read opcode the PC pushed; pending: the
timed updates (AT) whose time has not come yet, applied in order before any window is answered).
"""

from __future__ import annotations

import errno
import os
import random
import select
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bms_emu.protocol.pec import data_pec_bytes, pec15
from hil import bridge_link as bl

__all__ = ["MAX_PENDING", "BridgeRef", "ShadowStamp"]

_CC_MAX = 63
#: Timed updates held at most (docs/bridge-protocol.md, 4): beyond it the oldest is applied
#: early and counted (status bit 3). The PC's lookahead keeps far fewer in flight.
MAX_PENDING = 1024


@dataclass(frozen=True)
class ShadowStamp:
    """When a read opcode's new data reached the bridge (bridge clock, seconds).

    ``late_s``: arrival minus the completion time the update was tagged with (AT); negative
    when it arrived early and was held; None for an untimed update (applied on arrival).
    """

    arrived_s: float
    late_s: float | None

    @property
    def exposed_s(self) -> float:
        """First instant a read could return the data: arrival, or the tagged time if later."""
        return self.arrived_s - min(self.late_s or 0.0, 0.0)


def _next_cc(cc: int) -> int:
    return 1 if cc >= _CC_MAX else cc + 1


class BridgeRef:
    """The bridge MCU.

    Parameters
    ----------
    fd : int
        Byte link to the PC (the caller owns and closes it).
    clock : callable
        Monotonic seconds; timestamps are ``int(clock() * 1e6) mod 2**32`` microseconds.
    line_fault : callable, optional
        ``line_fault(bytes) -> bytes`` applied to everything the bridge writes (fault
        injection: dropped or corrupted bytes on the line).
    heartbeat_s, tick_s : float
        Heartbeat period; longest wait of the service loop.
    seed : int
        Seeds the draws of injected reply bit errors (LINK_FAULT).
    """

    def __init__(
        self,
        fd: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        line_fault: Callable[[bytes], bytes] | None = None,
        heartbeat_s: float = 0.1,
        tick_s: float = 0.005,
        seed: int = 0,
    ) -> None:
        self.fd = fd
        os.set_blocking(fd, False)  # every write below has its own deadline
        self.clock = clock
        self.line_fault = line_fault
        self.heartbeat_s = heartbeat_s
        self.tick_s = tick_s
        self.lock = threading.RLock()
        self.link = bl.LinkEnd(self._write)
        self.stats = self.link.stats
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_hb_s = -1e9
        self.fwd_count = 0  # windows forwarded since power-on (u32 on the MCU)
        self.resets = 0
        self.write_drops = 0
        self.early_applies = 0  # timed updates applied before their time (pending overflow)
        self._rng = random.Random(seed)
        self.injected_bit_errors = 0  # reply bits flipped on the PC's LINK_FAULT order
        self._clear_image()
        #: clock() when each read opcode's shadow data last changed (latency measurements)
        self.shadow_changed_s: dict[int, float] = {}
        #: arrival and lateness of the update that changed each read opcode's data last
        self.shadow_stamps: dict[int, ShadowStamp] = {}

    def _clear_image(self) -> None:
        self.rules: list[tuple[int, int, int]] = []
        self.shadow: dict[int, list[bytes]] = {}
        self.flags: list[int] = []
        self.cc: list[int] = []
        self.bit_error_ppm = 0  # LINK_FAULT: chance per window (ppm) that one reply bit flips
        # (forward index, effect) of forwards the PC's last CHAIN_STATE does not cover yet
        self._effects: deque[tuple[int, int]] = deque(maxlen=4096)
        # (apply at t_us or None = behind the others, type, payload, arrival clock s)
        self._pending: deque[tuple[int | None, int, bytes, float]] = deque()

    def t_us(self) -> int:
        """Bridge timestamp (us, wraps at 2**32)."""
        return int(self.clock() * 1e6) & 0xFFFFFFFF

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> BridgeRef:
        """Run the service loop (link receive, ACKs, retransmits, heartbeat) in a thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="bridge-ref", daemon=True)
            self._thread.start()
        return self

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop and join the loop. Idempotent; the fd stays open (the caller owns it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError("bridge thread did not stop")
            self._thread = None

    def __enter__(self) -> BridgeRef:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # --- SPI side (the dev board) ---------------------------------------------------------
    def classify(self, opcode: int) -> int:
        """Effect of a command with a good PEC15 (first matching CC_RULES entry)."""
        for mask, value, effect in self.rules:
            if opcode & mask == value:
                return effect
        return bl.EFFECT_NONE

    def spi_window(self, mosi: bytes) -> bytes:
        """One chip-select window from the dev board: MISO now, forward to the PC after."""
        mosi = bytes(mosi)
        n = len(mosi)
        if not n:
            return b""
        t_us = self.t_us()
        with self.lock:
            self._apply_due(t_us)  # a conversion completed by now shows in this very window
            miso = bytearray(b"\xff" * n)
            effect = bl.EFFECT_NONE
            is_read = False
            if n >= 4 and pec15(mosi[:2]) == (mosi[2] << 8 | mosi[3]):
                opcode = (mosi[0] << 8 | mosi[1]) & 0x7FF
                effect = self.classify(opcode)
                datas = self.shadow.get(opcode)
                if datas is not None:
                    is_read = True
                    self._answer_read(datas, miso)
                elif effect == bl.EFFECT_POLL and any(f & 0x02 for f in self.flags):
                    miso[4:] = bytes(n - 4)  # polls read 0x00 while a converter is busy
            self._inject_bit_error(miso)
            self._apply_effect(effect)
            self._effects.append((self.fwd_count, effect))
            self.fwd_count = (self.fwd_count + 1) & 0xFFFFFFFF
            # Reads: the data phase is only dummies, so the command and the length are enough.
            part = mosi[:4] if is_read else mosi
            self.link.send(bl.CMD_FORWARD, struct.pack("<IH", t_us, n) + part, self.clock())
        return bytes(miso)

    def _answer_read(self, datas: list[bytes], miso: bytearray) -> None:
        n = len(miso)
        for d, data in enumerate(datas):
            if d >= len(self.flags) or not self.flags[d] & 0x01:
                break  # an asleep device drives nothing and passes nothing on
            step = len(data) + 2
            pos = 4 + d * step
            if pos >= n:
                break
            block = data + data_pec_bytes(data, self.cc[d])
            miso[pos : pos + step] = block[: n - pos]

    def _inject_bit_error(self, miso: bytearray) -> None:
        """LINK_FAULT: one random bit after the command bytes flips, with the ordered chance."""
        if self.bit_error_ppm and len(miso) > 4 and self._rng.random() * 1e6 < self.bit_error_ppm:
            bit = self._rng.randrange(32, len(miso) * 8)
            miso[bit // 8] ^= 0x80 >> (bit % 8)
            self.injected_bit_errors += 1

    def _apply_effect(self, effect: int) -> None:
        # Only devices that take part (awake, bit 0 of their flags) count commands.
        pairs = zip(self.cc, self.flags, strict=True)
        if effect == bl.EFFECT_INC:
            self.cc = [_next_cc(c) if f & 1 else c for c, f in pairs]
        elif effect == bl.EFFECT_RESET:
            self.cc = [0 if f & 1 else c for c, f in pairs]

    # --- link side (the PC) ---------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.line_fault is not None:
            data = self.line_fault(data)
        deadline = time.monotonic() + 0.5
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
                continue
            except BlockingIOError:
                pass
            except OSError:
                self.write_drops += 1  # PC side closed: the reliable layer resends later
                return
            left = deadline - time.monotonic()
            if left <= 0:
                self.write_drops += 1  # PC not reading: give up this frame, resend later
                return
            select.select([], [self.fd], [], min(left, self.tick_s))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready = select.select([self.fd], [], [], self._wait_s())[0]
                data = os.read(self.fd, 4096) if ready else b""
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.EAGAIN):
                    raise
                data = b""
                self._stop.wait(self.tick_s)  # PC side closed: wait for it to come back
            now = self.clock()
            with self.lock:
                self.feed(data)
                self.link.tx.poll(now)
                if now - self._last_hb_s >= self.heartbeat_s:
                    self._last_hb_s = now
                    status = (bool(self.rules) | bool(self.shadow) << 1
                              | self.link.tx.overflowed << 2 | bool(self.early_applies) << 3)
                    self.link.control(bl.HEARTBEAT, struct.pack("<IB", self.t_us(), status))

    def feed(self, data: bytes) -> None:
        """Bytes from the PC: frames handled in order, then the timed updates now due."""
        with self.lock:
            self.link.receive(data, self.clock(), self._on_frame)
            self._apply_due(self.t_us())

    @property
    def pending(self) -> int:
        """Updates received but not applied yet (waiting for their completion time)."""
        return len(self._pending)

    def _on_frame(self, ftype: int, payload: bytes) -> None:
        if ftype == bl.RESET:
            self._reset()
        elif ftype in bl.RELIABLE:
            self._apply(ftype, payload)
        # HEARTBEAT from the PC and unknown types: nothing to do

    def _reset(self) -> None:
        """PC (re)connected: drop the image and the PC->bridge stream; keep unacked forwards.

        The counter effects of forwards no chain state covers yet, and the counter rules (they
        describe the chip, not the connection), are kept: the PC's first chain state after a
        reconnect may predate its replay of a window the board sent while it was away, and the
        bridge must still count that window on top of it.
        """
        self.resets += 1
        self.shadow = {}
        self._pending.clear()  # the PC resends its image
        self.flags = []
        self.cc = []
        self.bit_error_ppm = 0
        tx = self.link.tx
        self.link.rx.reset(0)
        oldest_fwd = (self.fwd_count - tx.pending) & 0xFFFFFFFF
        self.link.control(bl.RESET_DONE, struct.pack("<IHI", self.t_us(), tx.oldest_unacked,
                                                     oldest_fwd))
        tx.resend_all(self.clock())

    def _wait_s(self) -> float:
        """Loop wait: the tick, or less when the oldest timed update falls due sooner."""
        with self.lock:
            at = self._pending[0][0] if self._pending else None
            if at is None:
                return self.tick_s if not self._pending else 0.0
            return min(max(bl.us_after(at, self.t_us()), 0) * 1e-6, self.tick_s)

    def _apply(self, ftype: int, p: bytes) -> None:
        """A reliable frame from the PC, in order: queue it behind timed ones, or apply it."""
        now = self.clock()
        if ftype == bl.LINK_FAULT:  # a fault acts now, not behind the timed results
            if len(p) == 4:
                self.bit_error_ppm = min(struct.unpack("<I", p)[0], 1_000_000)
        elif ftype == bl.AT:
            if len(p) < 5 or p[4] not in (bl.SHADOW_UPDATE, bl.CHAIN_STATE):
                return  # malformed (the CRC was right, so it is a PC bug)
            (at_us,) = struct.unpack_from("<I", p)
            self._enqueue((at_us, p[4], p[5:], now))
            self._apply_due(self.t_us())
        elif self._pending and ftype in (bl.SHADOW_UPDATE, bl.CHAIN_STATE):
            # The PC sent it after a timed update: it describes a later state, so it waits.
            self._enqueue((None, ftype, p, now))
        else:
            self._apply_now(None, ftype, p, now)

    def _enqueue(self, item: tuple[int | None, int, bytes, float]) -> None:
        self._pending.append(item)
        if len(self._pending) > MAX_PENDING:  # full: the oldest goes early, and it is said
            self.early_applies += 1
            self._apply_now(*self._pending.popleft())

    def _apply_due(self, t_us: int) -> None:
        """Apply the timed updates whose time has come (and the untimed ones queued behind)."""
        q = self._pending
        while q and (q[0][0] is None or bl.us_after(t_us, q[0][0]) >= 0):
            self._apply_now(*q.popleft())

    def _apply_now(self, at_us: int | None, ftype: int, p: bytes, arrived_s: float) -> None:
        try:
            if ftype == bl.SHADOW_UPDATE:
                opcode, data_len, n = struct.unpack_from("<HBB", p)
                if len(p) != 4 + data_len * n:
                    return
                datas = [p[4 + d * data_len : 4 + (d + 1) * data_len] for d in range(n)]
                if self.shadow.get(opcode) != datas:
                    self.shadow_changed_s[opcode] = self.clock()
                    late = None
                    if at_us is not None:
                        late = bl.us_after(int(arrived_s * 1e6) & 0xFFFFFFFF, at_us) * 1e-6
                    self.shadow_stamps[opcode] = ShadowStamp(arrived_s, late)
                self.shadow[opcode] = datas
            elif ftype == bl.CHAIN_STATE:
                fwd, n = struct.unpack_from("<IB", p)
                if len(p) != 5 + 2 * n:
                    return
                self.flags = list(p[5::2])
                self.cc = list(p[6::2])
                # Forwards the PC had not applied yet still count on top of its state.
                while self._effects and (self._effects[0][0] - fwd) & 0x80000000:
                    self._effects.popleft()
                for _, effect in self._effects:
                    self._apply_effect(effect)
            elif ftype == bl.CC_RULES:
                (n,) = struct.unpack_from("<B", p)
                if len(p) == 1 + 5 * n:
                    self.rules = [struct.unpack_from("<HHB", p, 1 + 5 * i) for i in range(n)]
        except struct.error:
            pass  # malformed payload: ignored (the CRC was right, so it is a PC bug)
