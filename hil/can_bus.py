"""A thin layer over python-can and cantools: open a bus from config, send and receive by name.

Nothing here re-implements CAN. :func:`open_bus` calls ``can.Bus(interface=..., channel=...)``;
python-can imports a backend only when it is asked for, so a missing backend (no PCAN driver, no
socketcan on this OS) fails that bus alone with :class:`CanBackendError` and leaves the others
usable. :class:`CanPort` adds a DBC (encode/decode by message name with cantools), deadlines on
every receive, and counters instead of crashes: frames with IDs the DBC does not know are ignored
and counted, frames that fail to decode are counted, send errors are counted and reported.
:class:`CanLogWriter` writes every frame through python-can's ``can.Logger``, which picks the
format from the extension (``.log`` candump -L, ``.asc``, ``.blf``).
"""

from __future__ import annotations

import copy
import struct
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import can
import cantools

from bms_emu.scenario_config import CanBusConfig

__all__ = [
    "CanBackendError",
    "CanLogWriter",
    "CanPort",
    "CanStats",
    "DecodedFrame",
    "load_dbc",
    "open_bus",
]


class CanBackendError(RuntimeError):
    """A CAN bus could not be opened (backend missing, no such channel, no permission)."""


def open_bus(config: CanBusConfig) -> can.BusABC:
    """Open the bus described by ``config`` through ``can.Bus``.

    Raises
    ------
    CanBackendError
        Naming the interface and channel, when python-can cannot open it.
    """
    kwargs: dict[str, Any] = dict(config.options)
    if config.bitrate is not None:
        kwargs["bitrate"] = config.bitrate
    if config.receive_own_messages:
        kwargs["receive_own_messages"] = True
    try:
        return can.Bus(interface=config.interface, channel=config.channel, **kwargs)
    except (ImportError, can.CanError, OSError, ValueError, NotImplementedError) as exc:
        raise CanBackendError(
            f"cannot open CAN interface {config.interface!r} channel {config.channel!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def load_dbc(path: str | Path) -> cantools.database.can.Database:
    """Load a DBC (strict: overlapping signals are errors)."""
    db = cantools.database.load_file(str(path))
    assert isinstance(db, cantools.database.can.Database)
    return db


@dataclass
class CanStats:
    """What a :class:`CanPort` saw; nothing of this ever raises."""

    sent: int = 0
    received: int = 0
    decoded: int = 0
    unknown_id: int = 0
    malformed: int = 0
    send_errors: int = 0
    bus_errors: int = 0
    timeouts: int = 0
    own_echoes: int = 0
    unknown_ids: set[int] = field(default_factory=set)
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["unknown_ids"] = sorted(f"0x{i:X}" for i in self.unknown_ids)
        return d


@dataclass(frozen=True)
class DecodedFrame:
    """One received frame decoded by the DBC."""

    t_s: float
    name: str
    signals: Mapping[str, Any]


class CanLogWriter:
    """Write frames to ``path`` through ``can.Logger`` (format from the extension).

    Timestamps are written as given on the message, so a run in emulated time logs emulated
    seconds. Idempotent :meth:`stop`; usable as a context manager.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._logger: Any = can.Logger(str(self.path))
        self.n_frames = 0
        self.errors = 0
        self.last_error = ""

    def log(self, msg: can.Message) -> None:
        """Write one frame; a frame the format cannot hold is counted in ``errors``."""
        if self._logger is None:
            return
        if self.path.suffix.lower() == ".blf" and not (
            isinstance(msg.channel, int) and 0 <= msg.channel < 0xFFFF
        ):
            # BLF stores a 16-bit channel number; python-can derives one from the digits of a
            # channel name ("scn-42" -> 42), which overflows for long names: log as channel 1
            msg = copy.copy(msg)
            msg.channel = None
        try:
            self._logger.on_message_received(msg)
        except (struct.error, ValueError, TypeError, OSError) as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        self.n_frames += 1

    def stop(self) -> None:
        if self._logger is not None:
            self._logger.stop()
            self._logger = None

    def __enter__(self) -> CanLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CanPort:
    """A bus plus a DBC: ``send(name, signals)``, ``recv(timeout_s)`` -> decoded or None.

    Parameters
    ----------
    bus : can.BusABC or None
        An open bus; the port owns it and shuts it down in :meth:`shutdown`. None: a
        decoder only (:meth:`decode`), for frames that arrive another way.
    db : cantools Database
        Messages this port sends and decodes.
    log : CanLogWriter, optional
        Every sent and received frame is also logged.
    clock : callable, optional
        ``clock() -> t_s`` stamped on sent frames and on decoded frames (default: the frame's
        own timestamp). A run in emulated time passes the emulator's clock.
    drop_own_echo : bool, optional
        Drop received frames identical to ones this port sent and not yet seen back (counted
        in ``stats.own_echoes``). Default: on for ``udp_multicast``, whose multicast loopback
        hands a bus its own frames although ``receive_own_messages`` is off.
    """

    #: Sent frames remembered for echo suppression at most (a bus that never echoes).
    MAX_PENDING_ECHOES = 10_000

    def __init__(
        self,
        bus: can.BusABC | None,
        db: cantools.database.can.Database,
        *,
        log: CanLogWriter | None = None,
        clock: Any = None,
        drop_own_echo: bool | None = None,
    ) -> None:
        self.bus: can.BusABC | None = bus
        self.db = db
        self.log = log
        self.clock = clock
        self.stats = CanStats()
        self._by_id = {m.frame_id: m for m in db.messages}
        if drop_own_echo is None:
            drop_own_echo = type(bus).__name__ == "UdpMulticastBus"
        self.drop_own_echo = drop_own_echo
        self._pending: Counter[tuple[int, bytes]] = Counter()

    @classmethod
    def open(cls, config: CanBusConfig, dbc: str | Path, **kwargs: Any) -> CanPort:
        """Open the bus of ``config`` with the DBC at ``dbc``."""
        return cls(open_bus(config), load_dbc(dbc), **kwargs)

    # -- sending --------------------------------------------------------------------------

    def encode(self, name: str, signals: Mapping[str, Any]) -> can.Message:
        """The frame of message ``name`` (cantools encodes; values are clipped by the DBC)."""
        m = self.db.get_message_by_name(name)
        data = m.encode(dict(signals), scaling=True, strict=False)
        ts = float(self.clock()) if self.clock is not None else time.time()
        return can.Message(
            arbitration_id=m.frame_id,
            is_extended_id=m.is_extended_frame,
            data=data,
            timestamp=ts,
        )

    def send(self, name: str, signals: Mapping[str, Any], timeout_s: float = 0.1) -> bool:
        """Encode and send; False (counted, ``stats.last_error`` set) if the bus refused it."""
        msg = self.encode(name, signals)
        return self.send_msg(msg, timeout_s)

    def send_msg(self, msg: can.Message, timeout_s: float = 0.1) -> bool:
        if self.bus is None:
            raise RuntimeError("CanPort is shut down")
        try:
            self.bus.send(msg, timeout=timeout_s)
        except (can.CanError, OSError) as exc:
            self.stats.send_errors += 1
            self.stats.last_error = f"send 0x{msg.arbitration_id:X}: {exc}"
            return False
        self.stats.sent += 1
        if self.drop_own_echo:
            if len(self._pending) > self.MAX_PENDING_ECHOES:
                self._pending.clear()
            self._pending[(msg.arbitration_id, bytes(msg.data))] += 1
        if self.log is not None:
            self.log.log(msg)
        return True

    # -- receiving ------------------------------------------------------------------------

    def recv_raw(self, timeout_s: float) -> can.Message | None:
        """One frame within ``timeout_s`` (None on timeout or bus error; both counted)."""
        if self.bus is None:
            raise RuntimeError("CanPort is shut down")
        try:
            msg = self.bus.recv(timeout=max(0.0, timeout_s))
        except (can.CanError, OSError) as exc:
            self.stats.bus_errors += 1
            self.stats.last_error = f"recv: {exc}"
            return None
        if msg is None:
            return None
        if msg.is_error_frame:
            self.stats.bus_errors += 1
            return None
        if self._pending:
            key = (msg.arbitration_id, bytes(msg.data))
            if self._pending[key] > 0:
                self._pending[key] -= 1
                if not self._pending[key]:
                    del self._pending[key]
                self.stats.own_echoes += 1
                return None
        self.stats.received += 1
        if self.clock is not None:
            msg.timestamp = float(self.clock())
        if self.log is not None:
            self.log.log(msg)
        return msg

    def decode(self, msg: can.Message) -> DecodedFrame | None:
        """Decode by the DBC; None for unknown IDs and malformed frames (counted)."""
        m = self._by_id.get(msg.arbitration_id)
        if m is None or msg.is_extended_id != m.is_extended_frame:
            self.stats.unknown_id += 1
            self.stats.unknown_ids.add(msg.arbitration_id)
            return None
        try:
            if len(msg.data) != m.length:
                raise ValueError(f"length {len(msg.data)}, DBC says {m.length}")
            signals = m.decode(bytes(msg.data), decode_choices=False, scaling=True)
        except Exception as exc:  # cantools raises several types; a bad frame must never crash
            self.stats.malformed += 1
            self.stats.last_error = f"0x{msg.arbitration_id:X}: {type(exc).__name__}: {exc}"
            return None
        self.stats.decoded += 1
        return DecodedFrame(float(msg.timestamp), m.name, signals)  # type: ignore[arg-type]

    def recv(self, timeout_s: float) -> DecodedFrame | None:
        """The next frame this DBC knows, within ``timeout_s`` overall (None: timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            msg = self.recv_raw(left)
            if msg is not None:
                frame = self.decode(msg)
                if frame is not None:
                    return frame
                continue
            if left <= 0 or time.monotonic() >= deadline:
                self.stats.timeouts += 1
                return None

    def shutdown(self) -> None:
        """Shut the bus down (idempotent); the log is the caller's."""
        if self.bus is not None:
            self.bus.shutdown()
            self.bus = None

    def __enter__(self) -> CanPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
