"""The emulator's own CAN node: control frames in, telemetry out (``configs/can/bms_emu.dbc``).

Control: ``EMU_Control`` (string current, ambient temperature), ``EMU_SocOffset`` (per-cell SOC
offset, multiplexed by cell index), ``EMU_FaultInject`` (fault id, device, channel, magnitude,
on/off). Telemetry: ``EMU_Status`` (emulated time, current, active faults, die temperature) and
``EMU_CellTelemetry`` (true and measured voltage and temperature per cell, multiplexed).

:class:`EmulatorCanNode` is the node's logic (the scenario runner calls it in emulated time);
:class:`CanNodeService` runs it as a thread beside ``bms-emu serve --can`` on the wall clock.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bms_emu.paths import configs_dir
from bms_emu.scenario_config import CanBusConfig
from hil.can_bus import CanLogWriter, CanPort, DecodedFrame, load_dbc, open_bus
from hil.rig import FAULT_IDS, Rig

__all__ = ["CONTROL_MESSAGES", "EMU_DBC", "CanNodeService", "EmulatorCanNode", "start_can_node"]

EMU_DBC = configs_dir() / "can" / "bms_emu.dbc"
CONTROL_MESSAGES = frozenset({"EMU_Control", "EMU_SocOffset", "EMU_FaultInject"})
_KIND_BY_ID = {v: k for k, v in FAULT_IDS.items()}
_CHANNEL_KINDS = frozenset({"cell_overvoltage", "cell_undervoltage", "c_adc_gain"})
#: Accepted FaultMagnitude per kind while switching on (the scenario config's own limits:
#: forced voltage 0..6.5 V, a probability 0..1).
_MAGNITUDE_RANGE = {
    "cell_overvoltage": (0.0, 6.5),
    "cell_undervoltage": (0.0, 6.5),
    "spi_bit_errors": (0.0, 1.0),
}
#: Ambient temperatures accepted from EMU_Control (the scenario config's -40..125 C).
AMBIENT_RANGE_C = (-40.0, 125.0)


class EmulatorCanNode:
    """Apply control frames to a :class:`~hil.rig.Rig` and publish its telemetry on ``port``.

    Bad control values (unknown fault id, device out of range) are counted in ``rejected`` and
    ignored; the node never raises on bus content.
    """

    def __init__(self, rig: Rig, port: CanPort) -> None:
        self.rig = rig
        self.port = port
        self.applied = 0
        self.rejected = 0
        self.last_reject = ""

    def handle(self, frame: DecodedFrame) -> bool:
        """Apply one decoded control frame; False if it was not one or was rejected."""
        s: Mapping[str, Any] = frame.signals
        try:
            if frame.name == "EMU_Control":
                temp_C = float(s["AmbientTemp_degC"])
                if not AMBIENT_RANGE_C[0] <= temp_C <= AMBIENT_RANGE_C[1]:
                    raise ValueError(f"AmbientTemp_degC {temp_C:g} outside {AMBIENT_RANGE_C}")
                self.rig.set_current_A(float(s["PackCurrent_A"]))
                self.rig.set_ambient_C(temp_C)
            elif frame.name == "EMU_SocOffset":
                cell = int(s["SocCellIndex"])
                if cell >= 16 * self.rig.n_devices:
                    raise ValueError(f"cell {cell} beyond the string")
                self.rig.add_soc_pct(cell, float(s["SocOffset_pct"]))
            elif frame.name == "EMU_FaultInject" and int(s["FaultId"]) == 0:
                if s["FaultActive"]:
                    raise ValueError("FaultId 0 (none) with FaultActive 1: nothing to inject")
                self.rig.clear_faults()  # FaultId 0, inactive: every fault off
            elif frame.name == "EMU_FaultInject":
                kind, kwargs = self._fault_args(s)
                self.rig.apply_fault(kind, bool(s["FaultActive"]), **kwargs)
            else:
                return False
        except (ValueError, KeyError, AssertionError) as exc:
            self.rejected += 1
            self.last_reject = f"{frame.name}: {exc}"
            return False
        self.applied += 1
        return True

    def _fault_args(self, s: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Fault kind and :meth:`Rig.apply_fault` arguments; ValueError names a bad field."""
        kind = _KIND_BY_ID.get(int(s["FaultId"]))
        if kind is None:
            raise ValueError(f"unknown FaultId {s['FaultId']}: one of {sorted(_KIND_BY_ID)}")
        ch, mag = int(s["FaultChannel"]), float(s["FaultMagnitude"])
        if kind == "open_wire" and ch > 16:
            raise ValueError(f"FaultChannel {ch}: open_wire needs a sense pin 0..16")
        if kind in _CHANNEL_KINDS and ch > 15:
            raise ValueError(f"FaultChannel {ch}: {kind} needs a channel 0..15")
        lo, hi = _MAGNITUDE_RANGE.get(kind, (-math.inf, math.inf))
        if bool(s["FaultActive"]) and not lo <= mag <= hi:
            raise ValueError(f"FaultMagnitude {mag:g}: {kind} needs {lo:g}..{hi:g}")
        return kind, {
            "device": int(s["FaultDevice"]),
            "channel": ch if kind in _CHANNEL_KINDS else None,
            "pin": ch if kind == "open_wire" else None,
            "magnitude": mag,
        }

    def telemetry(self) -> list[tuple[str, dict[str, Any]]]:
        """EMU_Status and one EMU_CellTelemetry per cell, as ``(message, signals)``.

        Only reads the rig (quick; call it under the emulator's lock and send outside).
        """
        rig = self.rig
        true_V = rig.true_cells_V()
        meas_V = rig.measured_cells_V()
        temps = rig.cell_temps_C()
        die = max(a.temp_die_C for a in rig.emu.analogs)
        current = rig.current_A()
        out: list[tuple[str, dict[str, Any]]] = [(
            "EMU_Status",
            {
                "EmuTime_s": rig.t_s,
                "EmuPackCurrent_A": current if current == current else 0.0,
                "ActiveFaults": rig.active_fault_bits(),
                "DieTempMax_degC": round(die),
            },
        )]  # fmt: skip
        for i in range(true_V.size):
            out.append((
                "EMU_CellTelemetry",
                {
                    "TlmCellIndex": i,
                    "TrueCellVoltage_V": float(true_V[i]) if true_V[i] == true_V[i] else 0.0,
                    "MeasCellVoltage_V": float(meas_V[i]) if meas_V[i] == meas_V[i] else 0.0,
                    "CellTemp_degC": float(temps[i]) if temps[i] == temps[i] else 0.0,
                },
            ))  # fmt: skip
        return out

    def publish_telemetry(self) -> int:
        """Send EMU_Status and one EMU_CellTelemetry per cell; returns frames sent."""
        frames = self.telemetry()
        for name, signals in frames:
            self.port.send(name, signals)
        return len(frames)


#: Telemetry period when the DBC gives no GenMsgCycleTime (ms): a common BMS CAN cycle.
DEFAULT_CYCLE_MS = 100


class CanNodeService:
    """The node running beside a served emulator: a thread on a wall-clock schedule.

    Control frames are applied as they arrive, at the emulated "now" (``sync()`` first, all
    under ``lock``, the lock the SPI transports take too). Telemetry goes out at the cycle time
    of ``EMU_Status`` in the DBC (``GenMsgCycleTime``), each cycle one ``EMU_Status`` and one
    ``EMU_CellTelemetry`` per cell. Nothing on the bus stops the thread: unknown IDs and
    malformed frames are counted by the port, rejected values by the node, bus errors by the
    port (then the loop backs off ``tick_s`` so a dead adapter does not spin a core).

    Parameters
    ----------
    node : EmulatorCanNode
    lock : context manager
        Held while the rig is read or changed (``EmulatorHost.lock``).
    sync : callable
        Brings the emulation to "now" (``EmulatorHost.sync``; wall pace advances the chain).
    log : callable, optional
        ``log(line)`` for rejected control frames, bus and send errors and emulator errors
        (first 20 of each, then every 1000th); late telemetry cycles are only counted.
    tick_s : float
        Longest receive wait: bounds how long :meth:`shutdown` takes.
    """

    def __init__(
        self,
        node: EmulatorCanNode,
        lock: AbstractContextManager[Any],
        sync: Callable[[], Any],
        *,
        log: Callable[[str], None] | None = None,
        tick_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.lock = lock
        self.sync = sync
        self.log = log or (lambda line: None)
        self.tick_s = tick_s
        self.clock = clock
        cycle_ms = node.port.db.get_message_by_name("EMU_Status").cycle_time
        self.period_s = (cycle_ms or DEFAULT_CYCLE_MS) / 1000.0
        self.cycles = 0
        self.late_cycles = 0
        self.max_late_s = 0.0
        self.other_frames = 0  # decodable but not control (e.g. another emulator's telemetry)
        self.internal_errors = 0  # the emulator raised while applying or reading
        self.can_log: CanLogWriter | None = None  # closed by shutdown() when set
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CanNodeService:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="can-node", daemon=True)
            self._thread.start()
        return self

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop and join the thread, shut the bus down, close the log, log the summary.

        Idempotent (the summary is logged once).
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError("CAN node thread did not stop")
            self._thread = None
        if self.node.port.bus is None:
            return
        self.node.port.shutdown()
        if self.can_log is not None:
            self.can_log.stop()
        self.log("can node stopped " + json.dumps(self.summary()))

    def summary(self) -> dict[str, Any]:
        """Counters for the final report (JSON-ready)."""
        return {
            "applied": self.node.applied,
            "rejected": self.node.rejected,
            "last_reject": self.node.last_reject,
            "other_frames": self.other_frames,
            "internal_errors": self.internal_errors,
            "telemetry_cycles": self.cycles,
            "late_cycles": self.late_cycles,
            "max_late_s": round(self.max_late_s, 6),
            "period_s": self.period_s,
            "can": self.node.port.stats.as_dict(),
            "log_frames": self.can_log.n_frames if self.can_log is not None else 0,
        }

    def _run(self) -> None:
        port = self.node.port
        due = self.clock()
        while not self._stop.is_set():
            now = self.clock()
            if now >= due:
                try:
                    self._publish(now - due)
                except Exception as exc:  # as above: one bad cycle, not a dead node
                    self._internal(exc)
                # next cycle on the grid; a cycle missed entirely is skipped, not sent twice
                due += self.period_s * max(1, math.ceil((now - due) / self.period_s))
            errors = port.stats.bus_errors
            msg = port.recv_raw(min(self.tick_s, max(0.0, due - self.clock())))
            if port.stats.bus_errors != errors:
                self._report("bus error", port.stats.bus_errors, port.stats.last_error)
                self._stop.wait(self.tick_s)
                continue
            if msg is None:
                continue
            frame = port.decode(msg)
            if frame is None:
                continue
            if frame.name not in CONTROL_MESSAGES:
                self.other_frames += 1
                continue
            try:
                with self.lock:
                    self.sync()
                    ok = self.node.handle(frame)
            except Exception as exc:  # the emulator raised: report it, keep the node alive
                self._internal(exc)
                continue
            if not ok:
                self._report("rejected", self.node.rejected, self.node.last_reject)

    def _internal(self, exc: Exception) -> None:
        self.internal_errors += 1
        self._report("emulator error", self.internal_errors, f"{type(exc).__name__}: {exc}")

    def _publish(self, late_s: float) -> None:
        with self.lock:
            self.sync()
            frames = self.node.telemetry()
        errors = self.node.port.stats.send_errors
        for name, signals in frames:
            self.node.port.send(name, signals)
        if self.node.port.stats.send_errors != errors:
            self._report("send error", self.node.port.stats.send_errors,
                         self.node.port.stats.last_error)  # fmt: skip
        self.cycles += 1
        self.max_late_s = max(self.max_late_s, late_s)
        if late_s > self.period_s:
            self.late_cycles += 1

    def _report(self, what: str, count: int, detail: str) -> None:
        if count <= 20 or count % 1000 == 0:
            self.log(f"can node: {what} #{count}: {detail}")


def start_can_node(
    host: Any,
    rig: Rig,
    bus: CanBusConfig,
    *,
    can_log: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> CanNodeService:
    """Open ``bus`` with ``bms_emu.dbc`` and run the node beside ``host`` (an EmulatorHost).

    ``can_log``: every frame sent and received also goes to this file (.log/.asc/.blf). On
    :meth:`CanNodeService.shutdown` the log is closed and the summary goes to ``log``.

    Raises
    ------
    hil.can_bus.CanBackendError
        The bus cannot be opened (names interface and channel).
    """
    writer = CanLogWriter(can_log) if can_log is not None else None
    try:
        port = CanPort(open_bus(bus), load_dbc(EMU_DBC), log=writer)
    except BaseException:
        if writer is not None:
            writer.stop()
        raise
    service = CanNodeService(EmulatorCanNode(rig, port), host.lock, host.sync, log=log)
    service.can_log = writer
    return service.start()
