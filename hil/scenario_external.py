"""Run a scenario against an external DUT: the emulator and the DUT are separate, running systems.

``dut.process: external`` (``bms-hil run SCENARIO.yaml --dut external``). The device under test
runs on its own clock (a dev board over the serial bridge, a host build over the SIL TCP
server, or ``python -m hil.master --spi tcp://...``) against a running
``bms-emu serve --can ...``. This runner is the rack computer: it talks to both over CAN only,

- it waits (``dut.start_timeout_s``) until the emulator's ``EMU_Status`` and a DUT frame have
  been heard, then starts the timeline at wall time 0;
- it sends each stimulus and fault as a frame of ``configs/can/bms_emu.dbc`` when the wall
  clock reaches it (``EMU_Control`` carries current and ambient together, so the runner keeps
  both; the run starts with 0 A at ``emulator.temp_ambient_C``);
- it stamps every DUT frame with its wall time since the start, and evaluates the expectations
  on them exactly like the in-process runner.

Jitter of an event = time its frame went out - its scheduled time (wall clock). A fault's
``acked_s`` is the first ``EMU_Status`` that shows its ``ActiveFaults`` bit (the emulator
applied it). DUT silence longer than ``dut.frame_timeout_s`` is noted; the emulator's own
rejections show as unacknowledged faults. Reports: as :mod:`hil.scenario` (JUnit XML, HTML with
plots, ``result.json``) plus the CAN log of everything heard and sent after the start.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

from bms_emu.scenario_config import ScenarioConfig
from hil.can_bus import CanLogWriter, CanPort, DecodedFrame, load_dbc, open_bus
from hil.emu_node import EMU_DBC
from hil.rig import FAULT_IDS
from hil.scenario import EventRecord, ScenarioBase, ScenarioResult, write_reports

__all__ = ["ExternalScenarioRunner"]

#: Longest single receive wait of the loop: bounds how late an event can be sent because the
#: loop sat in ``recv`` (the wait is also cut at the next event's time).
TICK_S = 0.01


@dataclasses.dataclass
class _Send:
    t_s: float
    record: EventRecord
    frames: list[tuple[str, dict[str, Any]]]
    fault: str | None = None  # label, for "on" events
    fault_bit: int = 0


class ExternalScenarioRunner(ScenarioBase):
    """Drive a running emulator over CAN, judge a running DUT by its CAN frames (wall clock).

    Parameters
    ----------
    config, files, out_dir
        As for :class:`hil.scenario.ScenarioRunner`; ``files["emulator.*"]`` are not used (the
        served emulator was built from its own command line).
    clock : callable, optional
        Monotonic seconds (``time.monotonic``).
    """

    def __init__(
        self, config: ScenarioConfig, files: dict[str, Path], out_dir: str | Path,
        clock: Any = time.monotonic,
    ) -> None:  # fmt: skip
        super().__init__(config, files, out_dir)
        self.clock = clock
        self._t0 = clock()
        self._current_A = 0.0
        self._ambient_C = config.emulator.temp_ambient_C
        self._counter = 0
        self._sends = self._timeline()
        self.records = [s.record for s in self._sends]
        self._emu_times: list[float] = []
        self._pending_ack: list[_Send] = []

    # -- timeline -> frames ----------------------------------------------------------------

    def _control(self) -> tuple[str, dict[str, Any]]:
        self._counter = (self._counter + 1) % 256
        return ("EMU_Control", {"PackCurrent_A": self._current_A,
                                "AmbientTemp_degC": self._ambient_C,
                                "ControlCounter": self._counter})  # fmt: skip

    def _timeline(self) -> list[_Send]:
        out: list[_Send] = []
        for st in self.cfg.stimuli:
            if st.type == "current":
                out.append(_Send(st.at_s, EventRecord(f"current {st.current_A:g} A", st.at_s),
                                 [("current", {"current_A": st.current_A})]))  # fmt: skip
            elif st.type == "soc_offset":
                out.append(_Send(
                    st.at_s, EventRecord(f"soc cell {st.cell} {st.offset_pct:+g} %", st.at_s),
                    [("EMU_SocOffset", {"SocCellIndex": st.cell, "SocOffset_pct": st.offset_pct})],
                ))  # fmt: skip
            else:  # temperature ramp: same steps as the in-process runner
                t0_C, to_C = self.cfg.emulator.temp_ambient_C, float(st.to_C)  # type: ignore[arg-type]
                n = max(1, math.ceil(st.duration_s / st.step_s))
                for k in range(1, n + 1):
                    temp = t0_C + (to_C - t0_C) * k / n
                    t = st.at_s + st.duration_s * k / n
                    out.append(_Send(t, EventRecord(f"ambient {temp:.2f} C", t),
                                     [("ambient", {"temp_C": temp})]))  # fmt: skip
        for f in self.cfg.faults:
            mag = {
                "cell_overvoltage": f.voltage_V, "cell_undervoltage": f.voltage_V,
                "reference_drift": f.ppm, "c_adc_gain": f.ppm, "spi_bit_errors": f.probability,
            }.get(f.type) or 0.0  # fmt: skip
            where = f.pin if f.type == "open_wire" else f.channel
            sig = {"FaultId": FAULT_IDS[f.type], "FaultDevice": f.device,
                   "FaultChannel": where or 0, "FaultMagnitude": mag}  # fmt: skip
            bit = 1 << (FAULT_IDS[f.type] - 1)
            out.append(_Send(f.at_s, EventRecord(f"fault on: {f.label}", f.at_s),
                             [("EMU_FaultInject", {**sig, "FaultActive": 1})], f.label, bit))
            if f.until_s is not None:
                out.append(_Send(f.until_s, EventRecord(f"fault off: {f.label}", f.until_s),
                                 [("EMU_FaultInject", {**sig, "FaultActive": 0})]))
        out.sort(key=lambda s: s.t_s)
        return out

    def _send(self, port: CanPort, s: _Send) -> None:
        for name, signals in s.frames:
            if name == "current":
                self._current_A = float(signals["current_A"])
                name, signals = self._control()
            elif name == "ambient":
                self._ambient_C = float(signals["temp_C"])
                name, signals = self._control()
            if not port.send(name, signals):
                self.notes.append(f"{s.record.label}: CAN send failed: {port.stats.last_error}")
        t = self.now_s()
        s.record.applied_s = s.record.wall_s = t
        if s.fault is not None:
            self.fault_applied_s[s.fault] = t
            self._pending_ack.append(s)

    def now_s(self) -> float:
        """Wall seconds since the timeline started."""
        return float(self.clock() - self._t0)

    # -- bus -------------------------------------------------------------------------------

    def _take(self, frame: DecodedFrame) -> bool:
        """Keep a DUT frame; note emulator status. True if it was a DUT frame."""
        if frame.name in self._dut_names:
            self.frames.append(frame)
            return True
        if frame.name == "EMU_Status":
            self._emu_times.append(float(frame.signals["EmuTime_s"]))
            bits = int(frame.signals["ActiveFaults"])
            for s in [p for p in self._pending_ack if bits & p.fault_bit]:
                s.record.acked_s = frame.t_s
                self._pending_ack.remove(s)
        return False

    def _wait_ready(self, port: CanPort) -> bool:
        """Both the emulator and the DUT heard within ``start_timeout_s``."""
        deadline = self.clock() + self.cfg.dut.start_timeout_s
        emu = dut = False
        active = 0
        while not (emu and dut):
            left = deadline - self.clock()
            frame = _recv(port, max(0.0, min(left, 0.2))) if left > 0 else None
            if frame is not None:
                if frame.name == "EMU_Status":
                    emu = True
                    active = int(frame.signals["ActiveFaults"])
                dut = dut or frame.name in self._dut_names
            elif left <= 0:
                missing = [w for w, ok in (("emulator (EMU_Status)", emu), ("DUT", dut)) if not ok]
                self.notes.append(
                    f"not heard within {self.cfg.dut.start_timeout_s:g} s on "
                    f"{self.cfg.can.interface}:{self.cfg.can.channel}: {', '.join(missing)}"
                )
                return False
        if active:
            self.notes.append(f"emulator had faults active before the start (ActiveFaults "
                              f"0x{active:02X}): left over from an earlier run?")  # fmt: skip
        return True

    # -- run -------------------------------------------------------------------------------

    def run(self) -> ScenarioResult:
        """Wait for both sides, play the timeline on the wall clock, evaluate, write reports."""
        db = load_dbc(EMU_DBC)
        db.add_dbc_file(str(self.files["dut.dbc"]))
        if self.cfg.pace != "wall_clock":
            self.notes.append(f"pace {self.cfg.pace!r} ignored: an external DUT runs on the "
                              "wall clock")  # fmt: skip
        log = CanLogWriter(self.out_dir / self.cfg.can_log)
        port = None
        wall0 = time.perf_counter()
        ran = False
        try:
            port = CanPort(open_bus(self.cfg.can), db, clock=self.now_s)
            if self._wait_ready(port):
                port.log = log  # the log starts with the timeline (time 0 = start)
                self._t0 = self.clock()
                self._send(port, _Send(0.0, EventRecord("baseline", 0.0), [("current",
                           {"current_A": 0.0})]))  # fmt: skip
                self._loop(port)
                ran = True
        finally:
            stats = port.stats.as_dict() if port is not None else {}
            if port is not None:
                port.shutdown()
            log.stop()
        if ran:
            for s in self._pending_ack:
                self.notes.append(f"{s.record.label}: the emulator never showed it active "
                                  "(EMU_Status.ActiveFaults): rejected?")  # fmt: skip
            for s in self._sends:
                if s.record.applied_s is None:
                    self.notes.append(f"event {s.record.label!r} at {s.t_s:g} s not reached")
        stats["log_frames"] = log.n_frames
        stats["log_errors"] = log.errors
        emulated = self._emu_times[-1] - self._emu_times[0] if len(self._emu_times) > 1 else 0.0
        results = [self.evaluate(e) for e in self.cfg.expectations]
        res = ScenarioResult(
            self.cfg.name, results, self.records, stats, emulated,
            time.perf_counter() - wall0, len(self.frames), self.out_dir, self.notes,
        )  # fmt: skip
        write_reports(res, self)
        return res

    def _loop(self, port: CanPort) -> None:
        sends = list(self._sends)
        last_dut = self.now_s()
        silent = False
        while (now := self.now_s()) < self.cfg.duration_s:
            while sends and sends[0].t_s <= now:
                self._send(port, sends.pop(0))
            nxt = min(sends[0].t_s if sends else math.inf, self.cfg.duration_s)
            frame = _recv(port, max(0.0, min(TICK_S, nxt - self.now_s())))
            if frame is not None and self._take(frame):
                last_dut, silent = frame.t_s, False
            elif not silent and self.now_s() - last_dut > self.cfg.dut.frame_timeout_s:
                silent = True
                self.notes.append(f"t={self.now_s():.3f} s: no DUT frame for more than "
                                  f"{self.cfg.dut.frame_timeout_s:g} s")  # fmt: skip


def _recv(port: CanPort, timeout_s: float) -> DecodedFrame | None:
    """One decodable frame or None: an idle wait is normal here, not a counted timeout."""
    msg = port.recv_raw(timeout_s)
    return None if msg is None else port.decode(msg)
