"""Benchmark: CPU cost of conversions through the full chip model (issue 8 real-time targets).

Run: ``python -m benchmarks.bench_conversion [--repeats N]``. Prints JSON (see
``benchmarks/machine.py``). The emulator is built as ``bms-emu serve`` builds it
(:func:`bms_emu.emulator.build_emulator`, ``bmic_target_1mV`` chip, 16s LFP modules, seed 1,
a +-100 A triangle so every result differs), driven through :class:`~bms_emu.host.HostDriver`.

Cases:

* ``adcv_single_{n}dev``: one single-shot ADCV (command window + waiting out the 1 ms
  conversion), CPU time per ADCV and per device; n = 1 and 4. Target for the serial bridge
  (<= 2 ms end to end on 4 devices): < ~0.4 ms per device.
* ``cont_4dev_1ms_steps``: continuous ADCV on 4 devices, the host advancing the chain in 1 ms
  steps (what a wall-paced server does): every conversion is computed. Real-time factor =
  emulated s / wall s; target >= 1x.
* ``cont_4dev_large_steps``: the same advanced in 0.5 s steps. The device skips continuous
  conversions far behind the requested time (``Device._fast_forward``: only the last >= 64
  C conversions shape the registers), so this computes ~1/8 of them: it is NOT the real-time
  figure for a paced server.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.machine import emit
from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import Emulator, build_emulator
from bms_emu.host import HostDriver
from bms_emu.paths import shipped_config
from bms_emu.profile import CurrentProfile


def _emulator(n_devices: int) -> tuple[Emulator, HostDriver]:
    chip = load_chip(shipped_config("chips/bmic_target_1mV.yaml"))
    profile = CurrentProfile([0.0, 0.5, 1.0], [-100.0, 100.0, -100.0], "linear", repeat=True)
    emu = build_emulator(chip, load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), n_devices,
                         seed=1, profile=profile)
    host = HostDriver(emu.chain.transfer, n_devices, delay=emu.chain.delay)
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    return emu, host


def _single_shot(n_devices: int, n: int) -> dict[str, float]:
    _emu, host = _emulator(n_devices)
    for _ in range(20):  # warm-up: kernels compiled, noise blocks in steady state
        host.start_cell_conversion()
        host.wait(1.2e-3)
    cpu = np.empty(n)
    wall = np.empty(n)
    for i in range(n):
        host.wait(10e-3)  # idle gap: about what the bridge benchmark's board leaves
        w0, c0 = time.perf_counter(), time.process_time()
        host.start_cell_conversion()
        host.wait(1.2e-3)
        cpu[i] = time.process_time() - c0
        wall[i] = time.perf_counter() - w0
    return {
        f"adcv_single_{n_devices}dev_cpu_median_ms": float(np.median(cpu) * 1e3),
        f"adcv_single_{n_devices}dev_wall_median_ms": float(np.median(wall) * 1e3),
        f"adcv_single_{n_devices}dev_wall_p90_ms": float(np.percentile(wall, 90) * 1e3),
        f"adcv_single_{n_devices}dev_cpu_per_device_us": float(np.median(cpu) * 1e6 / n_devices),
    }


def _continuous(step_s: float, total_s: float, label: str) -> dict[str, float]:
    emu, host = _emulator(4)
    host.start_cell_conversion(cont=True)
    host.wait(20e-3)  # warm-up
    n_steps = round(total_s / step_s)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_steps):
        emu.chain.delay(step_s)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {
        f"{label}_emulated_s": n_steps * step_s,
        f"{label}_wall_s": wall,
        f"{label}_cpu_s": cpu,
        f"{label}_realtime_factor": n_steps * step_s / wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200, help="single-shot ADCVs per case")
    args = ap.parse_args()
    results: dict[str, float] = {}
    results.update(_single_shot(1, args.repeats))
    results.update(_single_shot(4, args.repeats))
    results.update(_continuous(1e-3, 0.5, "cont_4dev_1ms_steps"))
    results.update(_continuous(0.5, 0.5, "cont_4dev_large_steps"))
    results["target_adcv_cpu_per_device_us"] = 400.0
    results["target_cont_realtime_factor"] = 1.0
    emit("conversion_cpu", results)


if __name__ == "__main__":
    main()
