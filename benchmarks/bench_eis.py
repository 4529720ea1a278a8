"""Benchmark of the EIS engine (issue 5): prints JSON.

1. Speed: the 7-frequency sweep (0.01 ... 1 Hz, >= 3 integration periods and >= 60 s each, 1
   settling period) for 16 cells of the 280 Ah LFP pack, target-1mV chip, 1 A external
   excitation, in conversion mode (ChipAnalog.measure_record, averaged path). Target <= 5 s wall
   (> 300x real time for its 938 emulated s). Best of ``--repeats`` warm runs, plus the first
   run of the process (numba compile of the pack kernel included).
2. Accuracy of that sweep: worst |Z| and phase error over the 16 cells per frequency, with a
   10 A DC offset (OCV drift) and detrending on / off.
3. Balancing excitation: coverage of the reported 95 % uncertainty over ``--runs`` seeded runs
   (default 200) of the full 16-cell sweep at ``--balance-freqs`` (the CI test uses a small
   version; this is the full one).

Run: ``python -m benchmarks.bench_eis [--quick]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import emit
from bms_emu.config import load_chip, load_pack
from bms_emu.device.eis_engine import EisSettings, run_eis, sweep_duration_s
from bms_emu.emulator import build_emulator

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FREQS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--runs", type=int, default=200, help="balance coverage runs")
    ap.add_argument("--balance-freqs", default="0.1,0.5,1")
    ap.add_argument("--balance-tmin-s", type=float, default=30.0)
    ap.add_argument("--quick", action="store_true", help="10 coverage runs, 1 repeat")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.repeats = 10, 1
    chip = load_chip(CONFIGS / "chips" / "bmic_target_1mV.yaml")
    pack = load_pack(CONFIGS / "packs" / "lfp_16s_280Ah.yaml")

    speed = EisSettings(freqs_Hz=FREQS)
    emulated = sweep_duration_s(speed)
    walls = []
    for k in range(a.repeats + 1):
        emu = build_emulator(chip, pack, 1, seed=k)
        t0 = time.perf_counter()
        run_eis(emu.analogs[0], speed)
        walls.append(time.perf_counter() - t0)
    warm = min(walls[1:]) if len(walls) > 1 else walls[0]

    accuracy = {}
    for name, deg in (("detrend_on", 2), ("detrend_off", 0)):
        emu = build_emulator(chip, pack, 1, seed=1)
        s = EisSettings(freqs_Hz=FREQS, detrend_degree=deg, dc_offset_A=10.0, preroll_s=600.0)
        r = run_eis(emu.analogs[0], s)
        accuracy[name] = {
            "f_Hz": list(FREQS),
            "worst_abs_mag_error_pct": np.round(np.max(np.abs(r.mag_error_pct), 1), 3).tolist(),
            "worst_abs_phase_error_deg": np.round(np.max(np.abs(r.phase_error_deg), 1), 3).tolist(),
            "median_u95_pct": np.round(
                100 * np.median(r.u95_Ohm / np.abs(r.z_true_Ohm), 1), 3
            ).tolist(),
            "coverage_u95": float(np.mean(r.covered)),
        }

    bf = tuple(float(x) for x in a.balance_freqs.split(","))
    bs = EisSettings(freqs_Hz=bf, excitation="balance", min_integration_s=a.balance_tmin_s)
    cov, rel_u, rel_e = [], [], []
    t0 = time.perf_counter()
    for seed in range(a.runs):
        emu = build_emulator(chip, pack, 1, seed=1000 + seed)
        r = run_eis(emu.analogs[0], bs)
        cov.append(r.covered)
        rel_u.append(r.u95_Ohm / np.abs(r.z_true_Ohm))
        rel_e.append(np.abs(r.z_Ohm - r.z_true_Ohm) / np.abs(r.z_true_Ohm))
    cov_a = np.array(cov)
    emit(
        "bench_eis",
        {
            "sweep": {
                "freqs_Hz": list(FREQS),
                "cells": 16,
                "emulated_s": emulated,
                "wall_first_run_s": round(walls[0], 3),
                "wall_warm_best_s": round(warm, 3),
                "realtime_factor_warm": round(emulated / warm, 1),
                "target_wall_s": 5.0,
                "pass": warm <= 5.0,
            },
            "accuracy_10A_dc_offset": accuracy,
            "balance_coverage": {
                "runs": a.runs,
                "freqs_Hz": list(bf),
                "min_integration_s": a.balance_tmin_s,
                "points": int(cov_a.size),
                "coverage_u95": float(cov_a.mean()),
                "coverage_per_f": np.round(cov_a.mean(axis=(0, 2)), 3).tolist(),
                "median_u95_pct_per_f": np.round(
                    100 * np.median(np.array(rel_u), axis=(0, 2)), 1
                ).tolist(),
                "median_abs_error_pct_per_f": np.round(
                    100 * np.median(np.array(rel_e), axis=(0, 2)), 1
                ).tolist(),
                "wall_s": round(time.perf_counter() - t0, 1),
                "target": ">= 0.90",
            },
        },
    )


if __name__ == "__main__":
    main()
