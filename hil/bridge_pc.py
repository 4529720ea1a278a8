"""PC side of the serial bridge (``docs/bridge-protocol.md``): runs the emulator, feeds the MCU.

The loop applies every CMD_FORWARD to the emulated chain at its (mapped) timestamp, and keeps
the bridge's shadow image current: after applied windows, when the emulator's next internal
event (a conversion result, a wake-up, sleep) is due on the wall clock, and every 100 ms, it
pushes each read group whose bytes changed (SHADOW_UPDATE) and the devices' awake/busy flags and
command counters (CHAIN_STATE).

Conversions are computed ahead: a result due within ``lookahead_s`` of the wall clock is
computed at once (the chain runs ahead to it) and its updates go out tagged with the
completion time on the bridge's clock (AT), so they are there when the conversion completes
and the bridge shows them no earlier. The chain computes exactly what it would at the
completion instant (the same model calls, in the same order, at the same emulated times); a
window whose timestamp falls inside a stretch already computed is applied at the chain's time
instead, as any window arriving later than the chain's time already is.
pyserial is imported here only.
"""

from __future__ import annotations

import math
import select
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from bms_emu.device.device import POLL_SOURCES
from bms_emu.protocol.opcodes import COMMANDS, POLL, READ, CommandSpec, decode_opcode
from bms_emu.protocol.pec import pec15
from hil import bridge_link as bl
from hil.server import EmulatorHost

__all__ = ["BridgePC", "cc_rules"]

_BUSY_SOURCES = tuple(sorted(set().union(*POLL_SOURCES.values())))


def cc_rules() -> list[tuple[int, int, int]]:
    """CC_RULES entries ``(mask, value, effect)`` from the command table.

    Parameter bits of an opcode are masked out, so ``ADCV`` with any options matches one entry.

    Examples
    --------
    >>> rules = {v: (m, e) for m, v, e in cc_rules()}
    >>> hex(rules[0x260][0]), rules[0x260][1], rules[0x004][1], rules[0x02E][1]
    ('0x668', 1, 0, 2)
    """
    out = []
    for spec in COMMANDS.values():
        mask = 0x7FF
        for p in spec.params:
            for lsb, width in p.segments:
                mask &= ~(((1 << width) - 1) << lsb)
        if spec.kind == POLL:
            effect = bl.EFFECT_POLL
        elif spec.resets_cc:
            effect = bl.EFFECT_RESET
        elif spec.increments_cc:
            effect = bl.EFFECT_INC
        else:
            effect = bl.EFFECT_NONE
        out.append((mask, spec.opcode, effect))
    # Exact opcodes first: a masked entry must not shadow a fixed one it overlaps.
    out.sort(key=lambda r: -bin(r[0]).count("1"))
    return out


class BridgePC:
    """The PC end of the bridge link.

    Parameters
    ----------
    host : EmulatorHost
        The emulator (wall pace for a dev board).
    port : serial.Serial
        An open port (non-blocking reads); :meth:`open` makes one from a device path.
    line_fault : callable, optional
        ``line_fault(bytes) -> bytes`` applied to everything the PC writes (fault injection).
    heartbeat_s, link_timeout_s, refresh_s : float
        Heartbeat period; silence after which the link counts as down (RESET until the bridge
        answers); longest interval between two shadow refreshes.
    lookahead_s : float
        Conversion results due within this of the wall clock are computed at once and sent
        tagged with their completion time (0 turns it off: computed when due, sent untimed).
        The default covers an S conversion (8 ms) and REFUP + a C conversion (5.5 ms).
    record : bool
        Keep ``(emulated t, MOSI)`` of every applied window in :attr:`applied_log` (tests
        replay it on a fresh emulator).
    """

    def __init__(
        self,
        host: EmulatorHost,
        port: serial.Serial,
        *,
        line_fault: Callable[[bytes], bytes] | None = None,
        heartbeat_s: float = 0.1,
        link_timeout_s: float = 1.0,
        refresh_s: float = 0.1,
        lookahead_s: float = 0.01,
        record: bool = False,
    ) -> None:
        if not lookahead_s >= 0:
            raise ValueError(f"lookahead_s must be >= 0, got {lookahead_s}")
        self.host = host
        self.lookahead_s = float(lookahead_s)
        self.applied_log: list[tuple[float, bytes]] | None = [] if record else None
        self.port: serial.Serial | None = port
        self.path = port.port
        self.line_fault = line_fault
        self.heartbeat_s = heartbeat_s
        self.link_timeout_s = link_timeout_s
        self.refresh_s = refresh_s
        self.clock = host.clock
        self.link = bl.LinkEnd(self._write)
        self.stats = self.link.stats
        self._stop = threading.Event()
        self._reopen = threading.Event()
        self._reopen_down_s = 0.0
        self._thread: threading.Thread | None = None
        self.synced = threading.Event()  # set after RESET_DONE + the full image was sent
        self._last_rx_s = -math.inf
        self._last_reset_s = -math.inf
        self._last_hb_s = -math.inf
        self._last_refresh_s = -math.inf
        self._fwd_applied: int | None = None  # bridge forward index of the next window
        self._t_offset_s: float | None = None  # emulated t = t_us * 1e-6 + offset
        self._t_us_last = 0
        self._t_us_wraps = 0
        self._next_event_s = math.inf
        self._sent: dict[int, list[bytes]] = {}
        self._sent_state: bytes | None = None
        self._sent_fwd: int | None = None
        self._link_faults: tuple[int | None, float] | None = None  # as the bridge has them
        # Result groups first (RDCVA at the front): a refresh sends them within microseconds,
        # the slower status and configuration groups trail.
        self._reads = sorted((s for s in COMMANDS.values() if s.kind == READ and s.group),
                             key=_refresh_rank)
        self.windows_applied = 0
        self.write_errors = 0
        self.frame_errors = 0
        self._applied = False
        self._regs_touched = False  # an applied window may have changed a register group
        self._out: list[bytes] | None = None  # frames held to go out in one write
        #: emulated time of the event that made each read opcode's bytes change last
        self.changed_at_emu_s: dict[int, float] = {}
        #: clock() when the PC had those bytes (the emulator's compute done) and began sending
        self.changed_wall_s: dict[int, float] = {}
        #: clock() when the last CMD_FORWARD was applied to the chain
        self.forward_wall_s = -math.inf
        self.timed_updates = 0  # updates sent tagged with a completion time (AT)
        self.ahead_cpu_s = 0.0  # CPU time of the last result computed ahead (this thread)

    @classmethod
    def open(cls, host: EmulatorHost, path: str, baudrate: int = 1_000_000,
             **kwargs: Any) -> BridgePC:
        """Open the serial device at ``path`` and wrap it."""
        return cls(host, _open_port(path, baudrate), **kwargs)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> BridgePC:
        """Run the loop in a thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="bridge-pc", daemon=True)
            self._thread.start()
        return self

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop, join, close the port. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError("bridge PC thread did not stop")
            self._thread = None
        self._close_port()

    def __enter__(self) -> BridgePC:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def unacked(self) -> int:
        """Frames sent to the bridge and not yet acknowledged (0: its image is current)."""
        return self.link.tx.pending

    def reconnect(self, down_s: float = 0.0) -> None:
        """Close the port, stay away ``down_s``, reopen and resynchronise (returns at once)."""
        self._reopen_down_s = down_s
        self.synced.clear()
        self._reopen.set()

    def _close_port(self) -> None:
        if self.port is not None:
            self.port.close()
            self.port = None

    # --- loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                if self._reopen.is_set():
                    self._do_reopen()
                    continue
                if self.port is None:
                    self._try_open()
                    continue
                data = self._read(self._wait_s())
                now = self.clock()
                with self.host.lock:
                    self._applied = False
                    good = self.stats.frames_rx
                    self.link.receive(data, now, self._on_frame, self.synced.is_set)
                    if self.stats.frames_rx != good:
                        self._last_rx_s = now
                    self._service(now, self._applied)
        finally:
            self._close_port()

    def _wait_s(self) -> float:
        now = self.clock()
        due = min(self._last_hb_s + self.heartbeat_s, self._last_refresh_s + self.refresh_s,
                  self.host.wall_of(self._next_event_s) if not self.host.lockstep else math.inf)
        with self.host.lock:  # other transports' threads move the devices too
            ahead = self._ahead_due()
            t_result = min(d.next_result_s for d in self.host.chain.devices)
        if ahead is not None:
            return 0.0  # a result to compute ahead: read what is waiting, then compute it
        if not self.host.lockstep and self.lookahead_s > 0:  # wake when one comes in range
            due = min(due, self.host.wall_of(t_result - self.lookahead_s))
        return min(max(due - now, 0.0), 0.05)

    def _wall_emu_s(self) -> float:
        """Emulated time by the wall clock (the chain may be ahead of it after a lookahead)."""
        if self.host.lockstep:
            return self.host.chain.t_s
        return self.clock() - self.host.epoch_s

    def _ahead_due(self) -> float | None:
        """The next conversion result to compute ahead now, if any (emulated time)."""
        if self.host.lockstep or self._t_offset_s is None or not self.synced.is_set():
            return None
        t_next = min(d.next_result_s for d in self.host.chain.devices)
        if t_next <= self.host.chain.t_s or t_next > self._wall_emu_s() + self.lookahead_s:
            return None
        return t_next

    def bridge_us_of(self, t_emu_s: float) -> int | None:
        """The bridge's clock (u32 microseconds) at emulated time ``t_emu_s``; None before the
        first forwarded window anchors the mapping. Rounded up: never before that instant."""
        if self._t_offset_s is None:
            return None
        us = math.ceil((t_emu_s - self._t_offset_s) * 1e6 - 1e-3)
        return (us - (self._t_us_wraps << 32)) & 0xFFFFFFFF

    def _read(self, timeout_s: float) -> bytes:
        assert self.port is not None
        try:
            if select.select([self.port.fileno()], [], [], timeout_s)[0]:
                return bytes(self.port.read(4096))
        except (OSError, serial.SerialException):
            self._close_port()  # unplugged: _try_open brings it back
        return b""

    def _try_open(self) -> None:
        try:
            self.port = _open_port(self.path)
            self._start_sync()
        except (OSError, serial.SerialException):
            self._stop.wait(0.2)

    def _do_reopen(self) -> None:
        self._reopen.clear()
        self._close_port()
        self._stop.wait(self._reopen_down_s)
        self._try_open()

    def _start_sync(self) -> None:
        assert self.port is not None
        self.port.reset_input_buffer()  # stale bytes from before: not worth decoding
        self.link.resync()
        self.synced.clear()
        self._send_reset(self.clock())

    def _send_reset(self, now: float) -> None:
        self._last_reset_s = now
        self.link.control(bl.RESET)

    def _service(self, now: float, applied: bool) -> None:
        if not self.synced.is_set():
            if now - self._last_reset_s > 0.5:
                self._send_reset(now)
            return
        if now - self._last_rx_s > self.link_timeout_s:
            self.synced.clear()  # bridge silent: it may have rebooted; start over
            self._send_reset(now)
            return
        self.link.tx.poll(now)
        if now - self._last_hb_s >= self.heartbeat_s:
            self._last_hb_s = now
            self.link.control(bl.HEARTBEAT, struct.pack("<I", int(now * 1e6) & 0xFFFFFFFF))
        t_emu = self.host.sync()
        self._push_link_faults(now)
        event = self._next_event_s if t_emu >= self._next_event_s else None
        touched, self._regs_touched = self._regs_touched, False
        if touched or event is not None or now - self._last_refresh_s >= self.refresh_s:
            self._refresh(now, t_emu if event is None else event)
        elif applied:  # reads, polls, conversion starts: counters and busy flags only
            self._refresh(now, t_emu, groups=False)
        t_ahead = self._ahead_due()
        if t_ahead is not None:  # one result per pass: windows that arrive meanwhile go first
            cpu0_s = time.thread_time()
            self.host.chain.advance_to(t_ahead)
            self.ahead_cpu_s = time.thread_time() - cpu0_s
            self._refresh(now, t_ahead, timed=True)

    def _push_link_faults(self, now: float) -> None:
        """Link faults injected on the host (a :class:`hil.rig.FaultyLink`) go out at once:
        bit errors as LINK_FAULT, a silent chip as its (and later devices') answer flag."""
        faults, before = self.host.link_faults(), self._link_faults
        if faults == before:
            return
        self._link_faults = faults
        ppm = min(max(round(faults[1] * 1e6), 0), 1_000_000)
        self.link.send(bl.LINK_FAULT, struct.pack("<I", ppm), now)
        if before is None or faults[0] != before[0]:  # answer flags changed: chain state now
            self._refresh(now, self.host.chain.t_s, groups=False)

    # --- frames ---------------------------------------------------------------------------
    def _on_frame(self, ftype: int, payload: bytes) -> None:
        """Handle one delivered frame (notes in ``_applied`` if a window reached the chain)."""
        try:
            if ftype == bl.RESET_DONE and len(payload) == 10:
                self._on_reset_done(payload, self.clock())
            elif ftype == bl.CMD_FORWARD:
                self._applied |= self._apply_forward(payload)
        except Exception:  # a CRC-good but nonsensical frame: count it, keep serving
            self.frame_errors += 1

    def _on_reset_done(self, payload: bytes, now: float) -> None:
        _t_us, oldest_seq, oldest_fwd = struct.unpack("<IHI", payload)
        # Windows this PC already applied but whose ACK was lost come again: skip them as dups.
        skip = 0
        if self._fwd_applied is not None:
            skip = (self._fwd_applied - oldest_fwd) & 0xFFFFFFFF
            if skip >= 1 << 31:  # the bridge gave up windows we never saw: carry on after them
                skip = 0
        self._fwd_applied = (oldest_fwd + skip) & 0xFFFFFFFF
        self.link.rx.reset((oldest_seq + skip) % 65536)
        self.link.tx.reset(0)
        self._t_offset_s = None
        self._sent = {}
        self._sent_state = None
        self._sent_fwd = None
        self._link_faults = None  # the bridge cleared them
        rules = cc_rules()
        self.link.send(bl.CC_RULES, bytes([len(rules)]) + b"".join(
            struct.pack("<HHB", *r) for r in rules), now)
        self.synced.set()
        self._refresh(now, self.host.sync())

    def _emu_time_of(self, t_us: int) -> float:
        """Emulated time of a bridge timestamp: never later than now, never before the chain."""
        if t_us < self._t_us_last and self._t_us_last - t_us > 1 << 31:
            self._t_us_wraps += 1
        self._t_us_last = t_us
        t = (t_us + (self._t_us_wraps << 32)) * 1e-6
        self.host.sync()
        now = self._wall_emu_s()
        seen = now - t  # true offset + this window's link latency (>= 0)
        # The smallest offset seen is the tightest mapping (least latency); a jump by more than
        # a second means the bridge clock restarted: anchor again.
        if self._t_offset_s is None or seen < self._t_offset_s or seen > self._t_offset_s + 1.0:
            self._t_offset_s = seen
        return min(t + self._t_offset_s, now)

    def _apply_forward(self, payload: bytes) -> bool:
        if len(payload) < 6:
            return False
        t_us, n = struct.unpack_from("<IH", payload)
        mosi = payload[6:]
        mosi += b"\xff" * (n - len(mosi))  # a read was forwarded as its command only
        chain = self.host.chain
        t = max(self._emu_time_of(t_us), chain.t_s)
        chain.transfer(mosi[:n], t)
        self._regs_touched |= _may_change_registers(mosi)
        if self.applied_log is not None:
            self.applied_log.append((t, mosi[:n]))
        self.forward_wall_s = self.clock()
        self._fwd_applied = ((self._fwd_applied or 0) + 1) & 0xFFFFFFFF
        self.windows_applied += 1
        return True

    # --- shadow ---------------------------------------------------------------------------
    def _refresh(self, now: float, t_cause_emu: float, timed: bool = False,
                 groups: bool = True) -> None:
        """Push changed read groups (unless not ``groups``) and, if changed, the chain state.

        While the chain is ahead of the wall clock the image describes a later instant: every
        update then goes out tagged (AT) with the chain's time on the bridge clock; so do the
        updates of a result computed ahead (``timed``) that took longer than its conversion
        (the bridge applies those on arrival and learns how late they were).
        """
        if groups:  # the periodic full refresh is due 100 ms after the last full one
            self._last_refresh_s = now
        t_ready = self.clock()
        chain = self.host.chain
        at_us = None
        if not self.host.lockstep and (timed or chain.t_s > self._wall_emu_s()):
            at_us = self.bridge_us_of(chain.t_s)
        self._out = []  # one write for the lot (after the first result group: that goes now)
        try:
            self._send_image(now, t_cause_emu, t_ready, at_us, groups)
        finally:
            self._flush()
            self._out = None
        self._next_event_s = self.host.next_event_s()

    def _send_image(self, now: float, t_cause_emu: float, t_ready: float, at_us: int | None,
                    groups: bool) -> None:
        devices = self.host.chain.devices
        first = True
        for spec in self._reads if groups else ():
            assert spec.group is not None
            datas = [d.register(spec.group) for d in devices]
            if self._sent.get(spec.opcode) != datas:
                self._sent[spec.opcode] = datas
                self.changed_at_emu_s[spec.opcode] = t_cause_emu
                self.changed_wall_s[spec.opcode] = t_ready
                self._send_update(bl.SHADOW_UPDATE, struct.pack(
                    "<HBB", spec.opcode, spec.data_len, len(devices)) + b"".join(datas), now,
                    at_us)
                if first:
                    first = False
                    self._flush()
        silent_from = self._link_faults[0] if self._link_faults else None
        state = b"".join(bytes([(not d.asleep and (silent_from is None or i < silent_from))
                                | (d.busy(_BUSY_SOURCES) << 1), d.command_counter])
                         for i, d in enumerate(devices))
        fwd = self._fwd_applied or 0
        # Sent when it changed, and always after windows (so the bridge can forget effects).
        if state != self._sent_state or fwd != self._sent_fwd:
            self._sent_state = state
            self._sent_fwd = fwd
            self._send_update(bl.CHAIN_STATE, struct.pack("<IB", fwd, len(devices)) + state,
                              now, at_us)

    def _send_update(self, ftype: int, payload: bytes, now: float, at_us: int | None) -> None:
        if at_us is None:
            self.link.send(ftype, payload, now)
        else:
            self.timed_updates += 1
            self.link.send(bl.AT, struct.pack("<IB", at_us, ftype) + payload, now)

    def _write(self, data: bytes) -> None:
        if self.port is None:
            return
        if self.line_fault is not None:
            data = self.line_fault(data)
        if self._out is not None:
            self._out.append(data)  # a refresh in progress: one system call for the lot
        else:
            self._put(data)

    def _put(self, data: bytes) -> None:
        try:
            if self.port is not None:
                self.port.write(data)
        except (OSError, serial.SerialException):
            self.write_errors += 1  # the reliable layer resends; a dead port is reopened

    def _flush(self) -> None:
        """Write the frames a refresh held back."""
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self._put(data)


#: Commands whose results land later (as events): applying one changes no register group.
_RESULTS_LATER = frozenset({"ADCV", "ADSV", "ADAX", "ADAX2"})


def _may_change_registers(mosi: bytes) -> bool:
    """False if the window cannot change a register group at once: a read, a poll, a
    conversion start (without RSTF, which clears the filtered registers), or no valid command
    (a wake-up pulse: a sleeping device's registers already hold their reset values)."""
    if len(mosi) < 4 or pec15(mosi[:2]) != (mosi[2] << 8 | mosi[3]):
        return False
    dec = decode_opcode(mosi[0] << 8 | mosi[1])
    if dec is None:
        return False
    spec, params = dec
    if spec.kind in (READ, POLL):
        return False
    return not (spec.name in _RESULTS_LATER and not params.get("RSTF"))


def _refresh_rank(spec: CommandSpec) -> tuple[int, int]:
    group = spec.group or ""
    kind = 0 if group.startswith("CV") else 1 if group[:2] in ("SV", "AC", "FC") else 2
    return kind, spec.data_len


def _open_port(path: str, baudrate: int = 1_000_000) -> serial.Serial:
    # timeout=0: reads never block (the loop waits in select with its own deadline).
    return serial.Serial(path, baudrate=baudrate, timeout=0, write_timeout=1.0)
