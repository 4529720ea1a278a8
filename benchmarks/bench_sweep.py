"""Benchmark of the accuracy sweep: prints JSON.

1. Kernel: devices/s of the fast TME kernel vs the golden ``chip.tme_V`` (16 channels,
   14 temperatures x 6 voltages, 4 lifetime points, both hysteresis extremes), same result.
2. The nightly sweep end to end (``configs/sweeps/nightly.yaml``: 3e6 target chips at board
   level plus the lifetime / strategy / baseline studies): wall time and device-evaluations/s.
   Target: <= 10 min on a 2-core machine.

Run: ``python benchmarks/bench_sweep.py [--skip-nightly] [--workers N]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import emit
from bms_emu.afe.chip import make_population, tme_V
from bms_emu.config import load_chip
from bms_emu.sweep.execute import run_sweep
from bms_emu.sweep.kernel import tme_fast_V

ROOT = Path(__file__).resolve().parents[1]
POINTS = ("as_trimmed", "after_reflow", "1000h", "10y")


def kernel_figures() -> dict[str, float]:
    spec = load_chip(ROOT / "configs/chips/bmic_target_1mV.yaml")
    v, temps = np.linspace(2.5, 3.65, 6), np.linspace(0, 65, 14)
    small = make_population(spec, 2000, seed=1)
    t0 = time.perf_counter()
    golden = tme_V(small, v, temps, POINTS)
    t_golden = time.perf_counter() - t0
    tme_fast_V(small, v, temps, POINTS)  # compile / load the cache
    big = make_population(spec, 100_000, seed=1)
    t0 = time.perf_counter()
    tme_fast_V(big, v, temps, POINTS)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    make_population(spec, 100_000, seed=2)
    t_pop = time.perf_counter() - t0
    assert np.array_equal(golden, tme_fast_V(small, v, temps, POINTS))
    points = 16 * 14 * 6 * 4 * 2
    return {
        "golden_devices_per_s": 2000 / t_golden,
        "fast_devices_per_s": 100_000 / t_fast,
        "fast_grid_points_per_s": 100_000 * points / t_fast,
        "speedup": (100_000 / t_fast) / (2000 / t_golden),
        "make_population_devices_per_s": 100_000 / t_pop,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-nightly", action="store_true")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    results: dict[str, object] = {"kernel": kernel_figures()}
    if not args.skip_nightly:
        with tempfile.TemporaryDirectory() as tmp:
            res = run_sweep(ROOT / "configs/sweeps/nightly.yaml", tmp, workers=args.workers,
                            progress=False)
        s = res.summary
        evals = s["population"]["n_devices_total"]
        results["nightly"] = {
            "wall_s": res.wall_s,
            "workers": args.workers,
            "device_evaluations": evals,
            "device_evaluations_per_s": evals / res.wall_s,
            "requirements": [(q["name"], q["verdict"], q["ok"]) for q in s["requirements"]],
        }
    emit("bench_sweep", results)


if __name__ == "__main__":
    main()
