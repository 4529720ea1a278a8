"""Run the emulator behind real interfaces: pacing, the SIL TCP server, process lifecycle.

:class:`EmulatorHost` owns the emulator and its clock. In ``wall`` pace emulated time follows
``time.monotonic`` from the start (the chain is advanced to "now" before every window and on
idle ticks); in ``lockstep`` pace emulated time moves only by SPI window durations and explicit
ADVANCE_TIME requests, so a SIL run is deterministic. All access goes through one lock, so the
TCP server and the serial bridge may share one emulator from their own threads.

:class:`SilServer` speaks the frame format of :mod:`hil.sil_protocol` (``docs/sil-protocol.md``)
on a TCP socket: one selector loop in one thread, clients served one frame at a time
(serialised), every read of a partial frame bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import copy
import math
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bms_emu.emulator import Emulator
from bms_emu.host import HostDriver
from bms_emu.protocol.frames import DUMMY
from hil import sil_protocol as sp

__all__ = ["PACES", "EmulatorHost", "SilServer", "warm_up"]

PACES = ("wall", "lockstep")
#: t_WAKE per device used by the WAKEUP request (foxBMS ADI_T_WAKE_us, docs/protocol.md).
T_WAKE_S = 500e-6


def warm_up(emulator: Emulator) -> None:
    """Run each kind of conversion once on a copy, so compiled kernels are loaded before pacing.

    The first conversion of a process loads or compiles numba kernels (over a second). Under
    wall pace that stall would let the chips' 2 s sleep watchdog fire behind a dev board's back;
    the copy keeps the served emulator's state untouched.
    """
    twin = copy.deepcopy(emulator)
    host = HostDriver(twin.chain.transfer, twin.chain.n_devices, delay=twin.chain.delay)
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    host.start_cell_conversion(cont=True, rd=True)
    host.command("ADSV")
    host.command("ADAX")
    host.wait(20e-3)


class EmulatorHost:
    """The emulator, its pace and one lock around both.

    Parameters
    ----------
    emulator : Emulator
        Built by :func:`bms_emu.emulator.build_emulator`.
    pace : {"wall", "lockstep"}
        Who moves emulated time (see the module docstring).
    clock : callable, optional
        Monotonic clock in seconds (``time.monotonic``).
    link : callable, optional
        ``link(mosi) -> miso`` the windows go through (default ``chain.transfer``); a
        :class:`hil.rig.FaultyLink` around it injects link faults (bit errors, silent chips).
    """

    def __init__(
        self, emulator: Emulator, pace: str = "wall", clock: Callable[[], float] = time.monotonic,
        link: Callable[[bytes], bytes] | None = None,
    ) -> None:
        if pace not in PACES:
            raise ValueError(f"pace must be one of {PACES}, got {pace!r}")
        self.emulator = emulator
        self.chain = emulator.chain
        self.pace = pace
        self.clock = clock
        self.link = link or self.chain.transfer
        self.lock = threading.RLock()
        # wall pace: emulated t = clock() - epoch, so t = chain.t_s now
        self.epoch_s = clock() - self.chain.t_s

    @property
    def lockstep(self) -> bool:
        """True in lock-step pace."""
        return self.pace == "lockstep"

    @property
    def n_devices(self) -> int:
        """Devices on the chain."""
        return self.chain.n_devices

    def wall_of(self, t_emu_s: float) -> float:
        """Clock reading at which emulated time ``t_emu_s`` is reached (wall pace)."""
        return self.epoch_s + t_emu_s

    def link_faults(self) -> tuple[int | None, float]:
        """Injected link faults ``(silent_from, bit_error_probability)``: device index from
        which on replies read all ones (None: none), and the chance per window that one MISO
        bit flips. ``(None, 0.0)`` unless :attr:`link` is a :class:`hil.rig.FaultyLink`."""
        return (getattr(self.link, "silent_from", None),
                float(getattr(self.link, "bit_error_probability", 0.0)))

    def sync(self) -> float:
        """Wall pace: bring the chain up to the wall clock. Returns the chain time."""
        with self.lock:
            if not self.lockstep:
                now = self.clock() - self.epoch_s
                if now > self.chain.t_s:
                    self.chain.advance_to(now)
            return self.chain.t_s

    def transfer(self, mosi: bytes) -> bytes:
        """One chip-select window, starting now."""
        with self.lock:
            self.sync()
            return self.link(mosi)

    def advance_s(self, dt_s: float) -> float:
        """Lock-step: let ``dt_s`` pass. Returns the chain time.

        Raises
        ------
        RuntimeError
            In wall pace (time passes by itself there).
        """
        if not self.lockstep:
            raise RuntimeError("ADVANCE_TIME needs --pace lockstep; in wall pace time runs itself")
        with self.lock:
            self.chain.delay(dt_s)
            return self.chain.t_s

    def wakeup(self) -> None:
        """Wake the chain like a host: one dummy byte per device, t_WAKE apart."""
        with self.lock:
            for _ in range(self.n_devices):
                self.transfer(bytes([DUMMY]))
                # Wall pace: this runs up to 0.5 ms per device ahead of the clock; later
                # windows simply start at the chain time until the clock catches up.
                self.chain.delay(T_WAKE_S)

    def next_event_s(self) -> float:
        """Earliest next internal event of any device (emulated time; ``inf`` if none)."""
        return min(d.next_event_s for d in self.chain.devices)

    def info(self) -> sp.Info:
        """INFO contents."""
        with self.lock:
            t = self.sync()
        return sp.Info(sp.VERSION, self.lockstep, self.n_devices, int(self.chain.f_spi_Hz), t)


@dataclass
class _Conn:
    sock: socket.socket
    peer: str
    rx: bytearray = field(default_factory=bytearray)
    tx: bytearray = field(default_factory=bytearray)
    frame_start_s: float = math.inf  # clock when the first byte of the pending frame arrived
    last_rx_s: float = 0.0
    closing: bool = False  # close once tx has drained (after a fatal error)


class SilServer:
    """TCP server for the SIL frame protocol.

    Parameters
    ----------
    host : EmulatorHost
        The emulator to serve.
    bind : str
        Address to bind (``127.0.0.1`` unless told otherwise).
    port : int
        TCP port; 0 picks a free one (see :attr:`port`).
    max_clients : int
        Connections served at once (serialised frame by frame); more are refused with BUSY.
    frame_timeout_s : float
        Deadline for the rest of a frame once its first byte has arrived.
    idle_timeout_s : float
        A connection with no traffic for this long is closed.
    tick_s : float
        Longest selector wait; idle ticks also keep the wall-paced chain current.
    log : callable, optional
        ``log(message)`` for connection events (default: silent).
    """

    def __init__(
        self,
        host: EmulatorHost,
        bind: str = "127.0.0.1",
        port: int = 0,
        *,
        max_clients: int = 4,
        frame_timeout_s: float = 2.0,
        idle_timeout_s: float = 600.0,
        tick_s: float = 0.05,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self.max_clients = max_clients
        self.frame_timeout_s = frame_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.tick_s = tick_s
        self._log = log or (lambda msg: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conns: dict[int, _Conn] = {}
        self._sel = selectors.DefaultSelector()
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._lsock.bind((bind, port))
            self._lsock.listen(8)
            self._lsock.setblocking(False)
            self._sel.register(self._lsock, selectors.EVENT_READ, None)
        except BaseException:
            self._lsock.close()
            self._sel.close()
            raise
        self.address: tuple[str, int] = self._lsock.getsockname()[:2]
        self.frames_served = 0

    @property
    def port(self) -> int:
        """The TCP port actually bound."""
        return self.address[1]

    @property
    def url(self) -> str:
        """``tcp://HOST:PORT`` for clients."""
        return f"tcp://{self.address[0]}:{self.address[1]}"

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> SilServer:
        """Serve in a background thread (stop with :meth:`shutdown`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, name="sil-server",
                                            daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Run the selector loop until :meth:`stop`; closes every socket on the way out."""
        try:
            while not self._stop.is_set():
                for key, events in self._sel.select(timeout=self.tick_s):
                    if key.data is None:
                        self._accept()
                    else:
                        self._service(key.data, events)
                self._housekeeping()
        finally:
            self._close_all()

    def stop(self) -> None:
        """Ask the loop to stop (returns at once; safe from signal handlers)."""
        self._stop.set()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop, join the thread and close every socket. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError("SIL server thread did not stop")
            self._thread = None
        else:
            self._close_all()

    def __enter__(self) -> SilServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _close_all(self) -> None:
        for c in list(self._conns.values()):
            self._drop(c, "server stopping")
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self._lsock)
        self._lsock.close()
        self._sel.close()

    # --- connections ----------------------------------------------------------------------
    def _accept(self) -> None:
        try:
            sock, addr = self._lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        peer = f"{addr[0]}:{addr[1]}"
        if len(self._conns) >= self.max_clients:
            # Refuse politely: one error frame with a short blocking deadline, then close.
            with contextlib.suppress(OSError):
                sock.settimeout(0.5)
                sock.sendall(sp.encode_error(0, sp.E_BUSY, f"{self.max_clients} clients "
                                             "already connected"))
            sock.close()
            self._log(f"refused {peer}: busy")
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock, peer, last_rx_s=time.monotonic())
        self._conns[sock.fileno()] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn)
        self._log(f"client {peer} connected")

    def _drop(self, conn: _Conn, why: str) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(conn.sock)
        self._conns.pop(conn.sock.fileno(), None)
        conn.sock.close()
        self._log(f"client {conn.peer} closed: {why}")

    def _service(self, conn: _Conn, events: int) -> None:
        if events & selectors.EVENT_WRITE:
            self._flush(conn)
        if events & selectors.EVENT_READ and conn.sock.fileno() >= 0:
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._drop(conn, f"recv failed: {exc}")
                return
            if not data:
                self._drop(conn, "peer closed")
                return
            now = time.monotonic()
            conn.last_rx_s = now
            if not conn.rx:
                conn.frame_start_s = now
            conn.rx += data
            self._process(conn)

    def _process(self, conn: _Conn) -> None:
        rx = conn.rx
        while not conn.closing and not conn.tx and len(rx) >= sp.HEADER_LEN:
            try:
                ftype, seq, length = sp.parse_header(bytes(rx[: sp.HEADER_LEN]))
            except sp.FrameError as exc:
                seq = struct.unpack(">I", bytes(rx[4:8]))[0]
                self._fatal(conn, seq, exc.code, str(exc))
                return
            end = sp.HEADER_LEN + length
            if len(rx) < end:
                break
            payload = bytes(rx[sp.HEADER_LEN : end])
            del rx[:end]
            conn.frame_start_s = time.monotonic() if rx else math.inf
            self._send(conn, self._handle(ftype, seq, payload))
            self.frames_served += 1
        # Backpressure: a client that does not read its replies stops being read.
        if conn.sock.fileno() >= 0 and not conn.closing:
            want = selectors.EVENT_WRITE if conn.tx else selectors.EVENT_READ
            self._sel.modify(conn.sock, want, conn)

    def _handle(self, ftype: int, seq: int, payload: bytes) -> bytes:
        """Reply frame for one request; never raises (errors become ERROR frames)."""
        host = self.host
        try:
            if ftype == sp.TRANSFER:
                if not payload:
                    return sp.encode_error(seq, sp.E_BAD_PAYLOAD, "TRANSFER needs >= 1 MOSI byte")
                return sp.encode_frame(sp.TRANSFER | sp.REPLY, seq, host.transfer(payload))
            if ftype == sp.ADVANCE_TIME:
                if len(payload) != 8:
                    return sp.encode_error(
                        seq, sp.E_BAD_PAYLOAD, f"ADVANCE_TIME needs 8 bytes, got {len(payload)}")
                us = struct.unpack(">Q", payload)[0]
                if us > sp.MAX_ADVANCE_US:
                    return sp.encode_error(seq, sp.E_BAD_PAYLOAD,
                                           f"ADVANCE_TIME {us} us > {sp.MAX_ADVANCE_US} us")
                if not host.lockstep:
                    return sp.encode_error(seq, sp.E_MODE, "ADVANCE_TIME needs --pace lockstep; "
                                           "in wall pace time passes by itself")
                t = host.advance_s(us * 1e-6)
                return sp.encode_frame(sp.ADVANCE_TIME | sp.REPLY, seq,
                                       struct.pack(">Q", round(t * 1e9)))
            if ftype == sp.WAKEUP:
                if payload:
                    return sp.encode_error(seq, sp.E_BAD_PAYLOAD, "WAKEUP takes no payload")
                host.wakeup()
                return sp.encode_frame(sp.WAKEUP | sp.REPLY, seq)
            if ftype == sp.INFO:
                if payload:
                    return sp.encode_error(seq, sp.E_BAD_PAYLOAD, "INFO takes no payload")
                i = host.info()
                return sp.encode_frame(sp.INFO | sp.REPLY, seq, sp.INFO_FMT.pack(
                    i.version, sp.PACE_LOCKSTEP if i.lockstep else sp.PACE_WALL, i.n_devices,
                    i.f_spi_Hz, round(i.t_s * 1e9)))
            return sp.encode_error(seq, sp.E_UNKNOWN_TYPE, f"unknown frame type 0x{ftype:02x}")
        except Exception as exc:  # the emulator must never take the server down
            return sp.encode_error(seq, sp.E_INTERNAL, f"{type(exc).__name__}: {exc}")

    def _fatal(self, conn: _Conn, seq: int, code: int, message: str) -> None:
        self._log(f"client {conn.peer}: {sp.ERROR_NAMES.get(code, code)}: {message}")
        conn.rx.clear()
        conn.closing = True
        self._send(conn, sp.encode_error(seq, code, message))
        if conn.sock.fileno() >= 0:
            self._sel.modify(conn.sock, selectors.EVENT_WRITE, conn)

    def _send(self, conn: _Conn, frame: bytes) -> None:
        conn.tx += frame
        self._write_out(conn)

    def _write_out(self, conn: _Conn) -> bool:
        """Send what the socket takes now; True once ``tx`` is empty (False: dropped/pending)."""
        try:
            while conn.tx:
                n = conn.sock.send(conn.tx)
                del conn.tx[:n]
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._drop(conn, f"send failed: {exc}")
            return False
        if conn.closing:
            self._drop(conn, "closed after a fatal error")
            return False
        return True

    def _flush(self, conn: _Conn) -> None:
        """The socket became writable: finish the reply, then serve requests that waited."""
        if self._write_out(conn):
            self._sel.modify(conn.sock, selectors.EVENT_READ, conn)
            if conn.rx:
                self._process(conn)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        for conn in list(self._conns.values()):
            if conn.rx and now - conn.frame_start_s > self.frame_timeout_s:
                self._fatal(conn, 0, sp.E_TIMEOUT,
                            f"incomplete frame for more than {self.frame_timeout_s} s")
            elif conn.tx and now - conn.last_rx_s > self.frame_timeout_s + self.idle_timeout_s:
                self._drop(conn, "client stopped reading")
            elif not conn.rx and now - conn.last_rx_s > self.idle_timeout_s:
                self._drop(conn, f"idle for more than {self.idle_timeout_s} s")
        if not self.host.lockstep:
            try:
                self.host.sync()
            except Exception as exc:  # e.g. a real pack's stale data: requests report it too
                self._log(f"emulator: {type(exc).__name__}: {exc}")


def parse_tcp_url(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``tcp://HOST:PORT`` (``PORT`` 0 picks a free port).

    Examples
    --------
    >>> parse_tcp_url("tcp://127.0.0.1:0")
    ('127.0.0.1', 0)
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ValueError(f"--spi must look like tcp://127.0.0.1:PORT, got {url!r}")
    return parts.hostname, parts.port


def run_serve(
    emulator: Emulator,
    *,
    pace: str = "wall",
    spi_url: str | None = "tcp://127.0.0.1:0",
    serial_port: str | None = None,
    announce: Callable[[str], None] = print,
    stop: threading.Event | None = None,
    link: Callable[[bytes], bytes] | None = None,
    services: Sequence[Callable[[EmulatorHost], Any]] = (),
    warm: bool = True,
) -> int:
    """Serve ``emulator`` until ``stop`` is set (SIGINT/SIGTERM set it in ``bms-emu serve``).

    Parameters
    ----------
    spi_url : str or None
        ``tcp://HOST:PORT`` for the SIL server (port 0 picks a free one).
    serial_port : str or None
        Serial device of a bridge MCU (``docs/bridge-protocol.md``).
    announce : callable
        Gets one line per listening endpoint, e.g. ``listening spi tcp://127.0.0.1:40711``.
    link : callable, optional
        What SIL windows go through (see :class:`EmulatorHost`).
    services : sequence of callables
        ``make(host) -> service`` started after the transports (e.g. the CAN node); each
        service's ``shutdown()`` is called on the way out, last started first.
    warm : bool
        Wall pace: run :func:`warm_up` first (off for a real pack: it cannot be copied).
    """
    bind, port = parse_tcp_url(spi_url) if spi_url else ("", 0)
    if pace == "wall" and warm:
        warm_up(emulator)
    host = EmulatorHost(emulator, pace, link=link)
    stop = stop or threading.Event()
    server: SilServer | None = None
    bridge = None
    running: list[Any] = []
    try:
        if spi_url:
            server = SilServer(host, bind, port).start()
            announce(f"listening spi {server.url} pace={pace} devices={host.n_devices}")
        if serial_port:
            from hil.bridge_pc import BridgePC

            bridge = BridgePC.open(host, serial_port).start()
            announce(f"listening serial {serial_port} pace={pace} devices={host.n_devices}")
        for make in services:
            running.append(make(host))
        while not stop.wait(0.2):
            pass
    finally:
        for service in reversed(running):
            service.shutdown()
        if bridge is not None:
            bridge.shutdown()
        if server is not None:
            server.shutdown()
    return 0
