"""Run a HIL scenario: timeline of stimuli and faults, expectations on the DUT's CAN signals.

The runner owns the emulator and its clock. The device under test (the reference master, in this
process or in a subprocess in lock-step) reads the chain through :class:`~hil.rig.FaultyLink` and
waits through :meth:`ScenarioRunner.delay`; both apply timeline events whose time has come, so
in emulated time every event lands exactly at its scheduled time unless it falls inside an SPI
window (then at the window's end: that lateness is the reported emulated-time jitter). With
``pace: wall_clock`` emulated time is held back to the wall clock.

DUT frames are received from the bus after every DUT cycle (the DUT says how many it sent),
with a deadline, and stamped with the emulated time; the emulator's own telemetry goes out on
the same bus. Every frame is logged. After the run each expectation is evaluated on the decoded
signal series; the results go to JUnit XML, an HTML report with plots, and ``result.json``.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import html
import io
import json
import math
import operator
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bms_emu.config import ConfigError, load_chip, load_config, load_pack
from bms_emu.emulator import build_emulator
from bms_emu.scenario_config import SIGNAL_REF, ExpectationConfig, ScenarioConfig
from hil.can_bus import CanLogWriter, CanPort, DecodedFrame, load_dbc, open_bus
from hil.emu_node import CONTROL_MESSAGES, EMU_DBC, EmulatorCanNode
from hil.lockstep import LinkClosed, LinkTimeout, LockstepServer
from hil.master import ReferenceMaster
from hil.rig import Rig

__all__ = [
    "EventRecord",
    "ExpectationResult",
    "ScenarioBase",
    "ScenarioResult",
    "ScenarioRunner",
    "load_scenario",
    "prepare_scenario",
    "run_scenario",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip

#: Longest wait for the DUT subprocess's first request (interpreter start + imports of numpy,
#: numba, cantools on a loaded 2-core machine: measured ~2-4 s, 10x margin).
FIRST_REQUEST_TIMEOUT_S = 40.0


def load_scenario(path: str | Path) -> tuple[ScenarioConfig, dict[str, Path]]:
    """Load and validate a scenario; resolve its files (relative to it) or name the bad key."""
    p = Path(path)
    cfg = load_config(p, "scenario")
    assert isinstance(cfg, ScenarioConfig)
    files = {
        "emulator.chip": cfg.emulator.chip,
        "emulator.pack": cfg.emulator.pack,
        "dut.dbc": cfg.dut.dbc,
    }
    resolved: dict[str, Path] = {}
    problems = []
    for key, rel in files.items():
        f = (p.parent / rel).resolve()
        if not f.is_file():
            problems.append(f"{key}: got {rel!r}: no such file (relative to the scenario)")
        resolved[key] = f
    if problems:
        raise ConfigError(str(p), problems)
    return cfg, resolved


@dataclasses.dataclass
class EventRecord:
    """One timeline event: when it was due and when it was applied."""

    label: str
    scheduled_s: float
    applied_s: float | None = None
    wall_s: float | None = None
    acked_s: float | None = None  # external DUT runs: the emulator showed the fault active

    @property
    def jitter_s(self) -> float | None:
        return None if self.applied_s is None else self.applied_s - self.scheduled_s


@dataclasses.dataclass
class _Event:
    t_s: float
    label: str
    action: Callable[[], None]
    record: EventRecord
    fault: str | None = None  # fault label, for the "on" event of a fault


@dataclasses.dataclass
class ExpectationResult:
    name: str
    passed: bool
    message: str
    t0_s: float | None
    t_end_s: float
    t_hit_s: float | None = None
    n_samples: int = 0

    @property
    def latency_s(self) -> float | None:
        if self.t_hit_s is None or self.t0_s is None:
            return None
        return self.t_hit_s - self.t0_s


@dataclasses.dataclass
class ScenarioResult:
    name: str
    expectations: list[ExpectationResult]
    events: list[EventRecord]
    can_stats: dict[str, Any]
    emulated_s: float
    wall_s: float
    dut_frames: int
    out_dir: Path
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.expectations)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "emulated_s": self.emulated_s,
            "wall_s": self.wall_s,
            "dut_frames": self.dut_frames,
            "can_stats": self.can_stats,
            "notes": self.notes,
            "expectations": [
                {**dataclasses.asdict(e), "latency_s": e.latency_s} for e in self.expectations
            ],
            "events": [{**dataclasses.asdict(e), "jitter_s": e.jitter_s} for e in self.events],
        }


class ScenarioBase:
    """What every runner shares: the config, the DUT's DBC, the DUT frames it collected, the
    timeline records and the evaluation of the expectations on them.

    Parameters
    ----------
    config : ScenarioConfig
    files : dict
        Resolved ``emulator.chip``, ``emulator.pack``, ``dut.dbc`` paths.
    out_dir : path
        Where ``junit.xml``, ``report.html``, ``result.json`` and the CAN log go.
    """

    def __init__(self, config: ScenarioConfig, files: dict[str, Path], out_dir: str | Path) -> None:
        self.cfg = config
        self.files = files
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.dut_db = load_dbc(files["dut.dbc"])
        self._dut_names = {m.name for m in self.dut_db.messages}
        self.records: list[EventRecord] = []
        self.fault_applied_s: dict[str, float] = {}
        self.frames: list[DecodedFrame] = []
        self.notes: list[str] = []

    def series(self, ref: str) -> list[tuple[float, float]]:
        """``(t_s, value)`` of a ``Message.Signal[mux]`` over the run."""
        m = SIGNAL_REF.match(ref)
        assert m is not None
        msg, sig, mux = m.group(1), m.group(2), m.group(3)
        mux_name = None
        if mux is not None:
            message = self.dut_db.get_message_by_name(msg)
            muxers = [s.name for s in message.signals if s.is_multiplexer]
            mux_name = muxers[0] if muxers else None
        out = []
        for f in self.frames:
            if f.name != msg or sig not in f.signals:
                continue
            if mux_name is not None and int(f.signals[mux_name]) != int(mux):
                continue
            out.append((f.t_s, float(f.signals[sig])))
        return out

    def evaluate(self, e: ExpectationConfig) -> ExpectationResult:
        """One expectation on the frames collected (see ``docs/hil-can-scenarios.md``)."""
        return _evaluate(self, e)


class ScenarioRunner(ScenarioBase):
    """Run one scenario; :meth:`run` returns a :class:`ScenarioResult` and writes the reports.

    The emulator runs in this process, on the runner's clock; see the module docstring.
    """

    def __init__(self, config: ScenarioConfig, files: dict[str, Path], out_dir: str | Path) -> None:
        super().__init__(config, files, out_dir)
        emu = build_emulator(
            load_chip(files["emulator.chip"]),
            load_pack(files["emulator.pack"]),
            config.emulator.n_devices,
            seed=config.emulator.seed,
            temp_ambient_C=config.emulator.temp_ambient_C,
        )
        self.rig = Rig(emu, seed=config.emulator.seed)
        self._events = self._timeline()
        self.records = [e.record for e in self._events]
        self._wall0 = time.perf_counter()
        self._next_tlm = 0.0
        self.port: CanPort | None = None
        self.node: EmulatorCanNode | None = None
        #: the DUT process (``process: subprocess``): program and first-request deadline
        self.dut_command = [sys.executable, "-m", "hil.master"]
        self.first_request_timeout_s = FIRST_REQUEST_TIMEOUT_S

    # -- timeline --------------------------------------------------------------------------

    def _timeline(self) -> list[_Event]:
        rig = self.rig
        ev: list[_Event] = []

        def add(t: float, label: str, action: Callable[[], None], fault: str | None = None) -> None:
            ev.append(_Event(t, label, action, EventRecord(label, t), fault))

        for s in self.cfg.stimuli:
            if s.type == "current":
                i_A = float(s.current_A)  # type: ignore[arg-type]
                add(s.at_s, f"current {i_A:g} A", functools.partial(rig.set_current_A, i_A))
            elif s.type == "soc_offset":
                c, d = int(s.cell), float(s.offset_pct)  # type: ignore[arg-type]
                add(s.at_s, f"soc cell {c} {d:+g} %", functools.partial(rig.add_soc_pct, c, d))
            else:  # temperature ramp in steps of step_s
                t0_C = self.cfg.emulator.temp_ambient_C
                to_C = float(s.to_C)  # type: ignore[arg-type]
                n = max(1, math.ceil(s.duration_s / s.step_s))
                for k in range(1, n + 1):
                    temp = t0_C + (to_C - t0_C) * k / n
                    t = s.at_s + s.duration_s * k / n
                    add(t, f"ambient {temp:.2f} C", functools.partial(rig.set_ambient_C, temp))
        for f in self.cfg.faults:
            mag = {
                "cell_overvoltage": f.voltage_V, "cell_undervoltage": f.voltage_V,
                "reference_drift": f.ppm, "c_adc_gain": f.ppm, "spi_bit_errors": f.probability,
            }.get(f.type) or 0.0  # fmt: skip

            args = (f.device, f.channel, f.pin, float(mag))
            on = functools.partial(rig.apply_fault, f.type, True, *args)
            add(f.at_s, f"fault on: {f.label}", on, fault=f.label)
            if f.until_s is not None:
                off = functools.partial(rig.apply_fault, f.type, False, *args)
                add(f.until_s, f"fault off: {f.label}", off)
        ev.sort(key=lambda e: e.t_s)
        return ev

    def _apply_due(self, t_s: float) -> None:
        while self._events and self._events[0].t_s <= t_s + 1e-12:
            e = self._events.pop(0)
            self.rig.chain.advance_to(max(e.t_s, self.rig.t_s))
            e.action()
            e.record.applied_s = self.rig.t_s
            e.record.wall_s = time.perf_counter() - self._wall0
            if e.fault is not None:
                self.fault_applied_s[e.fault] = self.rig.t_s

    def _pace(self, t_s: float) -> None:
        if self.cfg.pace != "wall_clock":
            return
        wait = self._wall0 + t_s - time.perf_counter()
        if wait > 0:
            time.sleep(min(wait, 10.0))  # bounded: emulated steps are short

    # -- what the DUT calls ------------------------------------------------------------------

    def transfer(self, mosi: bytes) -> bytes:
        """One SPI window of the DUT; due events first."""
        self._apply_due(self.rig.t_s)
        self._pace(self.rig.t_s)
        return self.rig.link(mosi)

    def delay(self, dt_s: float) -> None:
        """Time passing on the DUT's link, with the events that fall inside it."""
        target = self.rig.t_s + max(0.0, dt_s)
        while self._events and self._events[0].t_s <= target:
            t_ev = max(self._events[0].t_s, self.rig.t_s)
            self.rig.chain.advance_to(t_ev)  # the emulation work first, then the wait
            self._pace(t_ev)
            self._apply_due(t_ev)
        self.rig.chain.advance_to(target)
        self._pace(target)

    # -- CAN -------------------------------------------------------------------------------

    def _collect(self, n_frames: int) -> None:
        """Receive the ``n_frames`` the DUT just sent (deadline per frame), stamp, keep."""
        assert self.port is not None and self.node is not None
        got = 0
        deadline = time.monotonic() + self.cfg.dut.frame_timeout_s
        while got < n_frames:
            frame = self.port.recv(max(0.0, deadline - time.monotonic()))
            if frame is None:
                self.notes.append(
                    f"t={self.rig.t_s:.3f} s: CAN timeout: {got} of {n_frames} DUT frames "
                    f"within {self.cfg.dut.frame_timeout_s:g} s"
                )
                break
            if frame.name in self._dut_names:
                self.frames.append(frame)
                got += 1
            elif frame.name in CONTROL_MESSAGES:
                self.node.handle(frame)
        every = self.cfg.telemetry_every_s
        if every is not None and self.rig.t_s >= self._next_tlm:
            self.node.publish_telemetry()
            self._next_tlm = self.rig.t_s + every

    # -- run -------------------------------------------------------------------------------

    def run(self) -> ScenarioResult:
        db = load_dbc(EMU_DBC)
        db.add_dbc_file(str(self.files["dut.dbc"]))
        log = CanLogWriter(self.out_dir / self.cfg.can_log)
        dut_port: CanPort | None = None
        self._wall0 = time.perf_counter()
        try:
            self.port = CanPort(open_bus(self.cfg.can), db, log=log, clock=lambda: self.rig.t_s)
            self.node = EmulatorCanNode(self.rig, self.port)
            self._apply_due(0.0)
            if self.cfg.dut.process == "external":
                raise ValueError("dut.process external: use hil.scenario_external")
            if self.cfg.dut.process == "inline":
                dut_port = CanPort(open_bus(self.cfg.can), self.dut_db, clock=lambda: self.rig.t_s)
                self._run_inline(dut_port)
            else:
                self._run_subprocess()
        finally:
            if dut_port is not None:
                dut_port.shutdown()
            if self.port is not None:
                self.port.shutdown()
            log.stop()
        wall = time.perf_counter() - self._wall0
        for e in self._events:  # never reached (beyond the end)
            self.notes.append(f"event {e.label!r} at {e.t_s:g} s not reached")
        results = [self.evaluate(e) for e in self.cfg.expectations]
        stats = self.port.stats.as_dict() if self.port else {}
        stats["log_frames"] = log.n_frames
        stats["log_errors"] = log.errors
        stats["control_applied"] = self.node.applied if self.node else 0
        res = ScenarioResult(
            self.cfg.name, results, self.records, stats, self.rig.t_s, wall,
            len(self.frames), self.out_dir, self.notes,
        )  # fmt: skip
        write_reports(res, self)
        return res

    def _run_inline(self, dut_port: CanPort) -> None:
        master = ReferenceMaster(
            self.transfer, self.delay, self.rig.n_devices, self.cfg.dut.master,
            lambda name, sig: dut_port.send(name, sig),
        )  # fmt: skip
        while self.rig.t_s < self.cfg.duration_s:
            n = master.step()
            self._collect(n)

    def _run_subprocess(self) -> None:
        cmd = [
            *self.dut_command, "--lockstep",
            "--n-devices", str(self.rig.n_devices),
            "--dbc", str(self.files["dut.dbc"]),
            "--master", self.cfg.dut.master.model_dump_json(),
            "--can", self.cfg.can.model_dump_json(),
            "--timeout-s", str(max(10.0, 5 * self.cfg.dut.frame_timeout_s)),
        ]  # fmt: skip
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
            assert proc.stdin is not None and proc.stdout is not None
            server = LockstepServer(proc.stdout, proc.stdin, self.first_request_timeout_s)
            try:
                self._serve(server)
                proc.wait(timeout=self.first_request_timeout_s)
            except (LinkTimeout, LinkClosed, ValueError, subprocess.TimeoutExpired) as exc:
                self.notes.append(f"DUT process: {type(exc).__name__}: {exc}")
                proc.kill()
                proc.wait(timeout=10.0)
            finally:
                proc.stdin.close()
                proc.stdout.close()
                err.seek(0)
                tail = err.read().decode(errors="replace").strip().splitlines()[-5:]
                self.notes.extend(f"DUT stderr: {line}" for line in tail)
                if proc.returncode not in (0, None):
                    self.notes.append(f"DUT process exit code {proc.returncode}")

    def _serve(self, server: LockstepServer) -> None:
        first = True
        while True:
            op, payload = server.next_request()
            if first:
                server.timeout_s = max(10.0, 5 * self.cfg.dut.frame_timeout_s)
                first = False
            if op == b"T":
                server.reply(self.transfer(payload))
            elif op == b"D":
                self.delay(struct.unpack(">d", payload)[0])
                server.reply()
            elif op == b"S":
                self._collect(struct.unpack(">I", payload)[0])
                done = self.rig.t_s >= self.cfg.duration_s
                server.reply(stop=done)
                if done:
                    return
            else:
                raise ValueError(f"unknown lock-step request {op!r}")

def _evaluate(runner: ScenarioBase, e: ExpectationConfig) -> ExpectationResult:
    m = SIGNAL_REF.match(e.signal)
    assert m is not None
    try:
        message = runner.dut_db.get_message_by_name(m.group(1))
        if m.group(2) not in [s.name for s in message.signals]:
            raise KeyError(m.group(2))
    except KeyError:
        return ExpectationResult(
            e.name, False, f"{e.signal}: not in the DUT's DBC", None, runner.cfg.duration_s
        )
    if e.after is not None:
        t0 = runner.fault_applied_s.get(e.after)
        if t0 is None:
            return ExpectationResult(
                e.name, False, f"fault {e.after!r} was never applied", None,
                runner.cfg.duration_s,
            )  # fmt: skip
    else:
        t0 = e.after_s
    if e.kind == "within":
        assert e.within_s is not None
        t1 = t0 + e.within_s
    else:
        t1 = e.until_s if e.until_s is not None else runner.cfg.duration_s
    pred = _OPS[e.op]
    window = [(t, v) for t, v in runner.series(e.signal) if t0 - 1e-12 <= t <= t1 + 1e-12]
    text = f"{e.signal} {e.op} {e.value:g}"
    res = ExpectationResult(e.name, False, "", t0, t1, n_samples=len(window))
    hits = [t for t, v in window if pred(v, e.value)]
    if e.kind == "within":
        if hits:
            res.passed, res.t_hit_s = True, hits[0]
            res.message = f"{text} at t={hits[0]:.3f} s, {hits[0] - t0:.3f} s after t0"
        else:
            res.message = (
                f"{text} not seen in [{t0:.3f}, {t1:.3f}] s ({len(window)} frames in window)"
            )
    elif not window:
        res.message = f"no {m.group(1)} frame in [{t0:.3f}, {t1:.3f}] s (DUT silent?)"
    elif e.kind == "never":
        if hits:
            res.t_hit_s = hits[0]
            res.message = f"{text} at t={hits[0]:.3f} s (expected never)"
        else:
            res.passed = True
            res.message = f"{text} never in [{t0:.3f}, {t1:.3f}] s ({len(window)} frames)"
    else:  # always
        misses = [t for t, v in window if not pred(v, e.value)]
        if misses:
            res.t_hit_s = misses[0]
            res.message = f"{text} false at t={misses[0]:.3f} s (expected always)"
        else:
            res.passed = True
            res.message = f"{text} in all {len(window)} frames of [{t0:.3f}, {t1:.3f}] s"
    return res


def prepare_scenario(path: str | Path, **overrides: Any) -> tuple[ScenarioConfig, dict[str, Path]]:
    """Load ``path`` and apply ``overrides`` (top-level keys; ``dut``/``can`` dicts merge)."""
    cfg, files = load_scenario(path)
    if overrides:
        data = cfg.model_dump()
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(data.get(k), dict):
                data[k] = {**data[k], **v}
            else:
                data[k] = v
        cfg = ScenarioConfig.model_validate(data)
    return cfg, files


def run_scenario(path: str | Path, out_dir: str | Path, **overrides: Any) -> ScenarioResult:
    """Load ``path``, apply ``overrides`` (see :func:`prepare_scenario`), run it.

    ``dut.process: external`` runs :class:`hil.scenario_external.ExternalScenarioRunner`.
    """
    cfg, files = prepare_scenario(path, **overrides)
    if cfg.dut.process == "external":
        from hil.scenario_external import ExternalScenarioRunner

        return ExternalScenarioRunner(cfg, files, out_dir).run()
    return ScenarioRunner(cfg, files, out_dir).run()


# ------------------------------------------------------------------------------------------
# reports
# ------------------------------------------------------------------------------------------


def write_reports(res: ScenarioResult, runner: ScenarioBase) -> None:
    """``junit.xml``, ``report.html`` and ``result.json`` in ``res.out_dir``."""
    (res.out_dir / "result.json").write_text(json.dumps(res.to_json(), indent=2, default=str))
    write_junit(res, res.out_dir / "junit.xml")
    write_html(res, runner, res.out_dir / "report.html")


def write_junit(res: ScenarioResult, path: Path) -> None:
    """One ``testcase`` per expectation; a failed one carries a ``failure`` element."""
    suites = ET.Element("testsuites")
    failures = sum(not e.passed for e in res.expectations)
    suite = ET.SubElement(
        suites, "testsuite", name=res.name, tests=str(len(res.expectations)),
        failures=str(failures), errors="0", skipped="0", time=f"{res.wall_s:.3f}",
    )  # fmt: skip
    props = ET.SubElement(suite, "properties")
    for k, v in (("emulated_s", f"{res.emulated_s:.3f}"), ("dut_frames", str(res.dut_frames))):
        ET.SubElement(props, "property", name=k, value=v)
    for e in res.expectations:
        case = ET.SubElement(
            suite, "testcase", classname=f"hil.scenario.{res.name}", name=e.name,
            time=f"{e.latency_s or 0.0:.6f}",
        )  # fmt: skip
        if not e.passed:
            ET.SubElement(
                case, "failure", message=e.message, type="ExpectationFailed"
            ).text = e.message
        ET.SubElement(case, "system-out").text = e.message
    if res.notes:
        ET.SubElement(suite, "system-err").text = "\n".join(res.notes)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def _plot_png(runner: ScenarioBase, e: ExpectationResult, signal: str) -> str:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    t0 = e.t0_s if e.t0_s is not None else 0.0
    lo, hi = max(0.0, t0 - 0.5), min(runner.cfg.duration_s, e.t_end_s + 0.5)
    pts = [(t, v) for t, v in runner.series(signal) if lo <= t <= hi]
    fig = Figure(figsize=(7, 2.6))
    ax = fig.add_subplot()
    if pts:
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", marker=".")
    ax.axvspan(t0, e.t_end_s, color="tab:green" if e.passed else "tab:red", alpha=0.12)
    for r in runner.records:
        if r.applied_s is not None and lo <= r.applied_s <= hi and r.label.startswith("fault"):
            ax.axvline(r.applied_s, color="k", ls="--", lw=0.8)
    if e.t_hit_s is not None:
        ax.axvline(e.t_hit_s, color="tab:blue", lw=1)
    ax.set_xlabel("emulated time (s)")
    ax.set_ylabel(signal.split(".")[-1])
    ax.set_title(f"{e.name}: {'pass' if e.passed else 'FAIL'}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return base64.b64encode(buf.getvalue()).decode()


def write_html(res: ScenarioResult, runner: ScenarioBase, path: Path) -> None:
    """Self-contained HTML: verdicts, plots (base64 PNG), event timing, CAN counters."""
    esc = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(res.name)}</title>",
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px}.pass{color:green}"
        ".fail{color:#b00}</style></head><body>",
        f"<h1>Scenario {esc(res.name)}: "
        f"<span class='{'pass' if res.passed else 'fail'}'>"
        f"{'PASS' if res.passed else 'FAIL'}</span></h1>",
        f"<p>{esc(runner.cfg.description)}</p>",
        f"<p>emulated {res.emulated_s:.3f} s in {res.wall_s:.2f} s wall; pace "
        f"{esc(runner.cfg.pace)}; DUT {esc(runner.cfg.dut.process)}; CAN "
        f"{esc(runner.cfg.can.interface)}:{esc(str(runner.cfg.can.channel))}; "
        f"{res.dut_frames} DUT frames</p>",
        "<h2>Expectations</h2>",
    ]
    for cfg_e, e in zip(runner.cfg.expectations, res.expectations, strict=True):
        png = _plot_png(runner, e, cfg_e.signal)
        parts.append(
            f"<h3 class='{'pass' if e.passed else 'fail'}'>{esc(e.name)}: "
            f"{'pass' if e.passed else 'FAIL'}</h3><p>{esc(cfg_e.kind)}: {esc(e.message)}</p>"
            f"<img alt='{esc(e.name)}' src='data:image/png;base64,{png}'>"
        )
    parts.append("<h2>Timeline</h2><table><tr><th>event</th><th>scheduled (s)</th>"
                 "<th>applied, emulated (s)</th><th>applied, wall (s)</th>"
                 "<th>seen active (s)</th></tr>")  # fmt: skip
    for r in res.events:
        a = "-" if r.applied_s is None else f"{r.applied_s:.6f}"
        w = "-" if r.wall_s is None else f"{r.wall_s:.4f}"
        k = "-" if r.acked_s is None else f"{r.acked_s:.4f}"
        parts.append(f"<tr><td>{esc(r.label)}</td><td>{r.scheduled_s:.6f}</td><td>{a}</td>"
                     f"<td>{w}</td><td>{k}</td></tr>")  # fmt: skip
    parts.append("</table><h2>CAN</h2><pre>" + esc(json.dumps(res.can_stats, indent=1)) + "</pre>")
    if res.notes:
        parts.append("<h2>Notes</h2><pre>" + esc("\n".join(res.notes)) + "</pre>")
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")
