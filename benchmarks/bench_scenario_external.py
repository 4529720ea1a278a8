"""Benchmark: event timing of a scenario against an external DUT (three processes, real CAN bus).

Run: ``python -m benchmarks.bench_scenario_external``. Prints JSON (see ``benchmarks/machine.py``).

``bms-emu serve --can udp_multicast`` (wall pace, 1 device) and the reference master as its own
process (``python -m hil.master --spi tcp://...``, publishing on the same bus) run while
:class:`hil.scenario_external.ExternalScenarioRunner` plays a 4 s timeline of 47 events: a
temperature ramp in 39 steps of 0.1 s (EMU_Control) and four over-voltage faults switched on and
off (EMU_FaultInject). Figures, all on the wall clock:

- send jitter: time the event's frame went out - its scheduled time;
- ack latency: frame sent -> first EMU_Status showing the fault active (bounded by the
  emulator's 100 ms telemetry cycle, DBC GenMsgCycleTime);
- detection latency: fault sent -> the DUT's OV_Flag frame (the master's 100 ms cycle);
- telemetry: the serve CAN node's own count of cycles and how late its worst cycle went out.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import emit
from bms_emu.scenario_config import ScenarioConfig
from hil.scenario import load_scenario
from hil.scenario_external import ExternalScenarioRunner

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GROUP = "239.74.163.2"  # python-can's default udp_multicast IPv4 group


def _stats_ms(x: list[float]) -> dict[str, float]:
    a = np.asarray(x, dtype=float) * 1e3
    return {"n": int(a.size), "median_ms": float(np.median(a)),
            "p90_ms": float(np.quantile(a, 0.9)), "max_ms": float(a.max())}  # fmt: skip


def _scenario(can_cfg: dict[str, Any]) -> tuple[ScenarioConfig, dict[str, Path]]:
    _, files = load_scenario(CONFIGS / "scenarios" / "external" / "open_wire.yaml")
    faults, expectations = [], []
    for k in range(4):  # 3.80 V: LFP cut-off 3.65 V + 150 mV, as configs/scenarios/overvoltage
        at = 0.4 + 0.9 * k + 0.037 * k  # off the 100 ms grids of the DUT and the telemetry
        faults.append({"name": f"ov{k}", "at_s": at, "until_s": at + 0.45,
                       "type": "cell_overvoltage", "device": 0, "channel": 5, "voltage_V": 3.8})
        expectations.append({"name": f"ov{k}_detected", "signal": "BMS_Status.OV_Flag",
                             "op": "==", "value": 1, "after": f"ov{k}", "within_s": 0.4})
    data = {
        "name": "external_jitter",
        "emulator": {"chip": str(files["emulator.chip"]), "pack": str(files["emulator.pack"]),
                     "n_devices": 1},
        "dut": {"dbc": str(files["dut.dbc"]), "process": "external", "start_timeout_s": 60.0},
        "can": can_cfg,
        "duration_s": 4.0,
        "pace": "wall_clock",
        "stimuli": [{"at_s": 0.0, "type": "temperature_ramp", "to_C": 35.0, "duration_s": 3.9,
                     "step_s": 0.1}],
        "faults": faults,
        "expectations": expectations,
    }  # fmt: skip
    return ScenarioConfig.model_validate(data), files


def bench() -> dict[str, Any]:
    port = random.randint(40000, 60000)
    can_cfg = {"interface": "udp_multicast", "channel": GROUP, "options": {"port": port}}
    serve = subprocess.Popen(
        [sys.executable, "-m", "bms_emu.cli.main", "serve", "--spi", "tcp://127.0.0.1:0",
         "--chip", str(CONFIGS / "chips" / "adbms6830_like.yaml"), "--chain", "1",
         "--can", f"udp_multicast:{GROUP}", "--can-option", f"port={port}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    dut = None
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()  # "listening spi tcp://127.0.0.1:PORT ..."
        spi = line.split()[2]
        dut = subprocess.Popen(
            [sys.executable, "-m", "hil.master", "--spi", spi, "--n-devices", "1",
             "--dbc", str(CONFIGS / "can" / "reference_bms.dbc"), "--can", json.dumps(can_cfg),
             "--master", json.dumps({"ow_every_n_cycles": 0})],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        cfg, files = _scenario(can_cfg)
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            res = ExternalScenarioRunner(cfg, files, out).run()
            wall = time.perf_counter() - t0
    finally:
        if dut is not None:
            dut.terminate()
            dut.wait(15)
        serve.terminate()
        rest, _ = serve.communicate(timeout=15)  # ends with "can node stopped {summary}"
    node = next((json.loads(line.removeprefix("can node stopped "))
                 for line in rest.splitlines() if line.startswith("can node stopped ")), {})
    jitter = [r.jitter_s for r in res.events if r.jitter_s is not None]
    acks = [r.acked_s - r.applied_s for r in res.events
            if r.acked_s is not None and r.applied_s is not None]  # fmt: skip
    det = [e.latency_s for e in res.expectations if e.latency_s is not None]
    return {
        "events": len(res.events),
        "passed": res.passed,
        "failed": [e.message for e in res.expectations if not e.passed],
        "send_jitter": _stats_ms(jitter),
        "ack_latency": _stats_ms(acks) if acks else None,
        "detection_latency": _stats_ms(det) if det else None,
        "telemetry": {k: node.get(k) for k in ("telemetry_cycles", "late_cycles", "max_late_s",
                                                "applied", "rejected", "internal_errors")},
        "dut_frames": res.dut_frames,
        "run_wall_s": wall,
        "notes": res.notes,
    }


def main() -> None:
    emit("bench_scenario_external", bench())


if __name__ == "__main__":
    main()
