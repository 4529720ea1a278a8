"""``bms-emu eis``: impedance spectroscopy of a pack module with an emulated chip's EIS engine.

Builds one chip (``--chip``) in front of one pack module (``--pack``), runs the EIS engine
(:mod:`bms_emu.device.eis_engine`) over the frequencies and writes to ``--out``:

* ``eis.json``: settings, the record's emulated time, and per cell and frequency: ``f_Hz``,
  measured and true Z (``[re, im]`` in Ohm), ``|Z|`` error in %, phase error in degrees, the
  95 % uncertainty radius (Ohm and % of |Z_true|), whether it covers the error; for balancing
  excitation also the crosstalk Z seen by the neighbours and the self-heating common mode;
* ``cell_NN.csv``: one per cell, header-less rows ``f_Hz,Z_real_Ohm,Z_imag_Ohm`` (Im signed,
  negative = capacitive): the layout ``impedance.preprocessing.readCSV`` of impedance.py reads
  (``np.genfromtxt(..., delimiter=',')``, columns f, Re, Im; a header line would become a NaN
  row there, hence none); pyimpspec and most fitting tools import it too;
* ``nyquist_bode.png``: Nyquist (-Im vs Re, mOhm) and Bode (|Z|, phase) of the measured cells
  with the truth (matplotlib, Agg backend).

Files are written atomically (temporary file in the folder, then rename). Ctrl-C stops cleanly
(nothing partial is left).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bms_emu.config import ConfigError, load_chip, load_pack
from bms_emu.device.eis_engine import EisResult, EisSettings, run_eis, sweep_duration_s
from bms_emu.emulator import build_emulator

__all__ = ["add_subparser", "parse_cells", "result_to_json", "run"]


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eis",
        help="impedance spectroscopy with the chip's EIS engine (eis.json, CSV per cell, PNG)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--chip", type=Path, required=True, help="chip YAML")
    p.add_argument("--pack", type=Path, required=True, help="pack YAML")
    p.add_argument(
        "--freqs",
        default="0.01,0.02,0.05,0.1,0.2,0.5,1",
        help="comma-separated frequencies, Hz (each must divide the 16 Hz sample rate)",
    )
    p.add_argument(
        "--excitation",
        choices=("external", "balance", "multisine"),
        default="external",
        help="external sine per frequency, the cell's bleed switch, or all tones at once",
    )
    p.add_argument(
        "--amplitude-A",
        type=float,
        default=1.0,
        help="external sine amplitude (A; per tone for multisine)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--cells", default=None, help="cells to measure, e.g. 0-15 or 0,3,5-7")
    p.add_argument("--seed", type=int, default=0, help="chip population / noise seed")
    p.add_argument("--no-detrend", action="store_true", help="plain single-bin DFT")
    p.add_argument("--dc-offset-A", type=float, default=0.0, help="DC pack current (drift)")
    p.add_argument(
        "--preroll-s", type=float, default=0.0, help="time at the DC offset before the sweep"
    )
    p.add_argument("--periods", type=int, default=3, help="minimum integration periods")
    p.add_argument(
        "--min-integration-s", type=float, default=60.0, help="integration span floor (s)"
    )
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.set_defaults(func=run)


def parse_cells(text: str | None, n: int) -> tuple[int, ...] | None:
    """``"0-3,7"`` -> (0, 1, 2, 3, 7); None -> None (all).

    >>> parse_cells("0-3,7", 16)
    (0, 1, 2, 3, 7)
    """
    if text is None:
        return None
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise ValueError(f"--cells: {part!r} is not N or N-M") from None
        if not 0 <= a <= b < n:
            raise ValueError(f"--cells: {part!r} outside 0-{n - 1}")
        out.update(range(a, b + 1))
    if not out:
        raise ValueError("--cells selects no cell")
    return tuple(sorted(out))


def _c(z: complex) -> list[float]:
    return [float(np.real(z)), float(np.imag(z))]


def result_to_json(r: EisResult, meta: dict[str, Any]) -> dict[str, Any]:
    """The ``eis.json`` document for a result."""
    cells = []
    for j, c in enumerate(r.cells):
        pts = []
        for i, f in enumerate(r.f_Hz):
            zt = r.z_true_Ohm[i, j]
            pt = {
                "f_Hz": float(f),
                "z_Ohm": _c(r.z_Ohm[i, j]),
                "z_true_Ohm": _c(zt),
                "mag_error_pct": float(r.mag_error_pct[i, j]),
                "phase_error_deg": float(r.phase_error_deg[i, j]),
                "u95_Ohm": float(r.u95_Ohm[i, j]),
                "u95_pct": float(100 * r.u95_Ohm[i, j] / abs(zt)),
                "covered": bool(r.covered[i, j]),
                "i_amplitude_A": float(r.i_amplitude_A[i, j]),
            }
            if np.isfinite(r.z_crosstalk_Ohm[i, j]):
                pt["z_crosstalk_Ohm"] = _c(r.z_crosstalk_Ohm[i, j])
            pts.append(pt)
        cells.append({"cell": int(c), "points": pts})
    summary = {
        "max_abs_mag_error_pct": [float(x) for x in np.max(np.abs(r.mag_error_pct), axis=1)],
        "max_abs_phase_error_deg": [float(x) for x in np.max(np.abs(r.phase_error_deg), axis=1)],
        "coverage_u95": float(np.mean(r.covered)),
    }
    if np.isfinite(r.common_mode_ppm).any():
        summary["common_mode_ppm"] = [_c(x) for x in r.common_mode_ppm]
    s = r.settings
    return {
        **meta,
        "settings": {
            "freqs_Hz": list(s.freqs_Hz),
            "excitation": s.excitation,
            "amplitude_A": s.amplitude_A,
            "n_periods": s.n_periods,
            "settle_periods": s.settle_periods,
            "min_integration_s": s.min_integration_s,
            "f_sample_Hz": s.f_sample_Hz,
            "n_avg": s.n_avg,
            "detrend_degree": s.detrend_degree,
            "dc_offset_A": s.dc_offset_A,
            "preroll_s": s.preroll_s,
        },
        "emulated_s": [r.t_start_s, r.t_end_s],
        "summary": summary,
        "cells": cells,
    }


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_text(f_Hz: np.ndarray, z: np.ndarray) -> str:
    return "".join(f"{f:.9g},{zz.real:.9e},{zz.imag:.9e}\n" for f, zz in zip(f_Hz, z, strict=True))


def _plot(r: EisResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    for j, c in enumerate(r.cells):
        z, zt = r.z_Ohm[:, j] * 1e3, r.z_true_Ohm[:, j] * 1e3
        (line,) = ax[0].plot(z.real, -z.imag, "o", ms=4, label=f"cell {c}")
        ax[0].plot(zt.real, -zt.imag, "-", color=line.get_color(), lw=0.8)
        ax[1].loglog(r.f_Hz, np.abs(z), "o", ms=4, color=line.get_color())
        ax[1].loglog(r.f_Hz, np.abs(zt), "-", color=line.get_color(), lw=0.8)
        ax[2].semilogx(r.f_Hz, np.degrees(np.angle(z)), "o", ms=4, color=line.get_color())
        ax[2].semilogx(r.f_Hz, np.degrees(np.angle(zt)), "-", color=line.get_color(), lw=0.8)
    ax[0].set(xlabel="Re Z (mOhm)", ylabel="-Im Z (mOhm)", title="Nyquist (o measured, - true)")
    ax[0].set_aspect("equal", adjustable="datalim")
    ax[1].set(xlabel="f (Hz)", ylabel="|Z| (mOhm)", title="Bode magnitude")
    ax[2].set(xlabel="f (Hz)", ylabel="phase (deg)", title="Bode phase")
    if r.cells.size <= 8:
        ax[0].legend(fontsize=7)
    fig.tight_layout()
    _atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110), mode="wb")
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    chip = load_chip(args.chip)
    pack = load_pack(args.pack)
    try:
        freqs = tuple(float(x) for x in args.freqs.split(",") if x.strip())
        cells = parse_cells(args.cells, chip.n_channels)
        settings = EisSettings(
            freqs_Hz=freqs,
            excitation=args.excitation,
            amplitude_A=args.amplitude_A,
            detrend_degree=0 if args.no_detrend else 2,
            dc_offset_A=args.dc_offset_A,
            preroll_s=args.preroll_s,
            n_periods=args.periods,
            min_integration_s=args.min_integration_s,
            cells=cells,
        )
    except ValueError as exc:
        raise ConfigError("bms-emu eis", [str(exc)]) from None
    args.out.mkdir(parents=True, exist_ok=True)
    emu = build_emulator(chip, pack, 1, seed=args.seed)
    total = sweep_duration_s(settings) + settings.preroll_s
    t0 = time.perf_counter()
    with Progress(
        TextColumn("EIS"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} emulated s"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("eis", total=total)
        bar.update(task, completed=settings.preroll_s)
        result = run_eis(
            emu.analogs[0],
            settings,
            progress=lambda s: bar.update(task, completed=settings.preroll_s + s),
        )
    wall = time.perf_counter() - t0
    meta = {
        "chip": str(args.chip),
        "pack": str(args.pack),
        "seed": args.seed,
        "wall_s": wall,
        "csv_columns": ["f_Hz", "Z_real_Ohm", "Z_imag_Ohm"],
    }
    doc = result_to_json(result, meta)
    _atomic_write(args.out / "eis.json", lambda fh: json.dump(doc, fh, indent=1))
    for j, c in enumerate(result.cells):
        text = _csv_text(result.f_Hz, result.z_Ohm[:, j])

        def write_text(fh: Any, t: str = text) -> None:
            fh.write(t)

        _atomic_write(args.out / f"cell_{int(c):02d}.csv", write_text)
    if not args.no_plot:
        _plot(result, args.out / "nyquist_bode.png")
    s = doc["summary"]
    console.print(
        f"EIS {settings.excitation}: {len(freqs)} frequencies x {result.cells.size} cells, "
        f"{result.t_end_s - result.t_start_s:.0f} emulated s in {wall:.1f} s wall; worst "
        f"|Z| error {max(s['max_abs_mag_error_pct']):.2f} %, phase "
        f"{max(s['max_abs_phase_error_deg']):.2f} deg; u95 covers {100 * s['coverage_u95']:.0f} %"
        f" -> {args.out}"
    )
    return 0
