"""Benchmark: scenario event timing jitter and CAN frames/s through hil's stack (virtual bus).

Run: ``python -m benchmarks.bench_can``. Prints JSON (see ``benchmarks/machine.py``).

1. Jitter: a 1-device scenario with 21 timed events (a temperature ramp in 0.1 s steps, a
   current step, faults on and off) and the reference master inline, run in emulated time and
   paced to the wall clock. Jitter = applied - scheduled, in emulated time (the event waits for
   the end of an SPI window at most) and, paced, in wall time (sleep overshoot + work). Also the
   detection latency of the OV expectation (fault -> OV_Flag frame), a property of the master's
   100 ms cycle rather than of the rig.
2. Throughput: frames/s of ``CanPort.send`` (cantools encode by name + ``bus.send``) and of
   send + ``CanPort.recv`` (receive + decode) of the multiplexed EMU_CellTelemetry message on
   python-can's virtual bus, next to raw ``can.Bus`` send/recv for reference.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import can
import numpy as np

from benchmarks.machine import emit
from bms_emu.scenario_config import CanBusConfig, ScenarioConfig
from hil.can_bus import CanPort
from hil.emu_node import EMU_DBC
from hil.scenario import ScenarioRunner

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _scenario(pace: str) -> tuple[ScenarioConfig, dict[str, Path]]:
    data: dict[str, Any] = {
        "name": f"jitter_{pace}",
        "emulator": {"chip": "c", "pack": "p", "n_devices": 1, "seed": 7},
        "dut": {"dbc": "d", "master": {"ow_every_n_cycles": 0}},
        "can": {"channel": f"bench-{random.getrandbits(32)}"},
        "duration_s": 2.0,
        "pace": pace,
        "stimuli": [
            {"at_s": 0.05, "type": "current", "current_A": 50.0},
            {"at_s": 0.2, "type": "temperature_ramp", "to_C": 35.0, "duration_s": 1.6},
        ],
        "faults": [
            {
                "name": "ov",
                "at_s": 0.733,
                "until_s": 1.237,
                "type": "cell_overvoltage",
                "device": 0,
                "channel": 2,
                "voltage_V": 3.8,
            },
            {
                "name": "gain",
                "at_s": 1.311,
                "until_s": 1.5,
                "type": "c_adc_gain",
                "device": 0,
                "channel": 5,
                "ppm": 2000.0,
            },
        ],
        "expectations": [
            {
                "name": "ov",
                "signal": "BMS_Status.OV_Flag",
                "op": "==",
                "value": 1,
                "after": "ov",
                "within_s": 0.3,
            },
        ],
    }
    files = {
        "emulator.chip": CONFIGS / "chips" / "adbms6830_like.yaml",
        "emulator.pack": CONFIGS / "packs" / "lfp_16s_280Ah.yaml",
        "dut.dbc": CONFIGS / "can" / "reference_bms.dbc",
    }
    return ScenarioConfig.model_validate(data), files


def _stats_us(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x) * 1e6
    return {
        "median_us": float(np.median(x)),
        "p90_us": float(np.percentile(x, 90)),
        "max_us": float(np.max(x)),
    }


def bench_jitter() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pace in ("emulated", "wall_clock"):
        cfg, files = _scenario(pace)
        with tempfile.TemporaryDirectory() as tmp:
            res = ScenarioRunner(cfg, files, tmp).run()
        ev = res.events
        emu = np.array([e.jitter_s for e in ev if e.jitter_s is not None])
        entry: dict[str, Any] = {
            "events": len(ev),
            "emulated_s": res.emulated_s,
            "wall_s": res.wall_s,
            "emulated_jitter": _stats_us(emu),
            "ov_detect_latency_ms": 1e3 * (res.expectations[0].latency_s or float("nan")),
            "passed": res.passed,
        }
        if pace == "wall_clock":
            wall = np.array([e.wall_s - e.scheduled_s for e in ev if e.wall_s is not None])
            entry["wall_jitter"] = _stats_us(wall)
        out[pace] = entry
    return out


def bench_frames(n: int = 20000) -> dict[str, float]:
    cfg = CanBusConfig(channel=f"bench-{random.getrandbits(32)}")
    signals = [
        {"TlmCellIndex": i % 64, "TrueCellVoltage_V": 3.3, "MeasCellVoltage_V": 3.3001,
         "CellTemp_degC": 25.0}
        for i in range(n)
    ]  # fmt: skip
    out: dict[str, float] = {}
    with CanPort.open(cfg, EMU_DBC) as tx, CanPort.open(cfg, EMU_DBC) as rx:
        t0 = time.perf_counter()
        for s in signals:
            tx.send("EMU_CellTelemetry", s)
        t_send = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = 0
        while got < n and rx.recv(1.0) is not None:
            got += 1
        t_recv = time.perf_counter() - t0
        out["port_send_frames_per_s"] = n / t_send
        out["port_recv_decode_frames_per_s"] = got / t_recv
        out["port_send_plus_recv_frames_per_s"] = got / (t_send + t_recv)
        out["received"] = got
    with (
        can.Bus(interface="virtual", channel=cfg.channel) as a,
        can.Bus(interface="virtual", channel=cfg.channel) as b,
    ):
        msg = can.Message(arbitration_id=0x200, data=bytes(8), is_extended_id=False)
        t0 = time.perf_counter()
        for _ in range(n):
            a.send(msg)
        t_send = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = 0
        while got < n and b.recv(1.0) is not None:
            got += 1
        t_recv = time.perf_counter() - t0
        out["raw_bus_send_frames_per_s"] = n / t_send
        out["raw_bus_recv_frames_per_s"] = got / t_recv
    return out


def main() -> None:
    emit("bench_can", {"jitter": bench_jitter(), "frames": bench_frames()})


if __name__ == "__main__":
    main()
