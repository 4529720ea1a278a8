"""Benchmark of the virtual pack step: prints JSON.

Measures the time per ``VirtualPack.step`` for the 16-cell LFP config, with and without balancing,
and the emulated seconds per wall second for 24 h at 1 s steps under a varying current profile.
Target: 24 h of a 16-cell pack in < 2 s wall.

Run: ``python benchmarks/bench_pack.py``
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from bms_emu.config import load_pack
from bms_emu.pack import VirtualPack

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "packs" / "lfp_16s_280Ah.yaml"


def _per_step_us(pack: VirtualPack, n: int, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            pack.step(1.0, 50.0)
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def _numpy_op_ns() -> float:
    """Time of one 16-element numpy multiply: a load gauge (shared CPUs can double it)."""
    a = np.ones(16)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(20_000):
            a * a  # the bare op being timed
        best = min(best, time.perf_counter() - t0)
    return best / 20_000 * 1e9


def main() -> None:
    op_ns = _numpy_op_ns()
    cfg = load_pack(CONFIG)
    pack = VirtualPack(cfg)
    step_us = _per_step_us(pack, 5000)

    bal = VirtualPack(cfg)
    r = np.full(bal.n_cells, np.inf)
    r[[1, 5, 9]] = 30.0  # isolated cells: diagonal fast path
    bal.set_balance_resistance(r)
    step_bal_us = _per_step_us(bal, 2000)
    r[[2, 3]] = 30.0  # neighbours: coupled tridiagonal solve
    bal.set_balance_resistance(r)
    step_bal_adj_us = _per_step_us(bal, 2000)

    # 24 h at 1 s steps: a daily storage profile (charge, rest, discharge) plus a 0.1 Hz ripple
    n_steps = 86_400
    t = np.arange(n_steps)
    base = np.select([t < 14_400, t < 43_200, t < 57_600], [-140.0, 0.0, 140.0], 0.0)
    current = (base + 5.0 * np.sin(2 * np.pi * 0.1 * t)).tolist()
    day = VirtualPack(cfg)
    t0 = time.perf_counter()
    for i_A in current:
        day.step(1.0, i_A)
    wall_s = time.perf_counter() - t0

    print(
        json.dumps(
            {
                "benchmark": "bench_pack",
                "machine": {
                    "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                },
                "numpy_16_elem_mul_ns": round(op_ns, 1),
                "config": cfg.name,
                "n_cells": day.n_cells,
                "n_rc_elements": int(day.cell_parameters()["element_r_Ohm"].size),
                "step_us": round(step_us, 2),
                "step_balancing_isolated_us": round(step_bal_us, 2),
                "step_balancing_adjacent_us": round(step_bal_adj_us, 2),
                "day_1s_steps_wall_s": round(wall_s, 3),
                "emulated_s_per_wall_s": round(n_steps / wall_s, 1),
                "target_day_wall_s": 2.0,
                "target_met": wall_s < 2.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
