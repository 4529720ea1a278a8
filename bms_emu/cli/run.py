"""``bms-emu run``: run the virtual pack (and, once it exists, the chip) and write a trace.

With no arguments it runs the embedded defaults: the 16-cell 280 Ah LFP pack through the shipped
storage cycle for one hour, writing ``bms-emu-out/trace.csv``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bms_emu.config import load_pack, load_profile
from bms_emu.paths import DEFAULT_PACK, DEFAULT_PROFILE, shipped_config
from bms_emu.profile import CurrentProfile
from bms_emu.sources import VirtualPackSource
from bms_emu.trace import TraceFormatError, TraceWriter, read_trace_csv, trace_header


def add_subparser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "run",
        help="run the virtual pack and write a trace (no arguments: the embedded defaults)",
        description=__doc__,
    )
    p.add_argument("--pack", type=Path, help=f"pack YAML (default: configs/{DEFAULT_PACK})")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--current-A", type=float, help="constant pack current, + discharges")
    src.add_argument(
        "--profile",
        type=Path,
        help=f"current profile: YAML (kind: current_profile) or CSV with t_s,current_A "
        f"(default: configs/{DEFAULT_PROFILE})",
    )
    p.add_argument("--seconds", type=float, default=3600.0, help="emulated time (default 3600)")
    p.add_argument("--dt-s", type=float, default=1.0, help="integration step (default 1 s)")
    p.add_argument("--record-every-s", type=float, default=None, help="trace row interval "
                   "(default: --dt-s)")
    p.add_argument("--seed", type=int, default=None, help="spread seed (default: the pack's)")
    p.add_argument("--out", type=Path, default=Path("bms-emu-out/trace.csv"), help="trace CSV")
    p.set_defaults(func=run)


def load_profile_file(path: Path) -> CurrentProfile:
    """A profile from YAML (validated config) or CSV (columns t_s, current_A; hold between rows)."""
    if path.suffix.lower() == ".csv":
        header, data = read_trace_csv(path, ["t_s", "current_A"])
        t = data[:, header.index("t_s")]
        if t[0] != 0.0:
            raise TraceFormatError(f"{path}: line 2, column t_s: the profile must start at 0")
        return CurrentProfile(t, data[:, header.index("current_A")], "hold")
    return CurrentProfile.from_config(load_profile(path))


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    for name in ("seconds", "dt_s"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            console.print(f"[red]error:[/] --{name.replace('_', '-')} must be > 0, got {value}")
            return 2
    record_s = args.record_every_s or args.dt_s
    pack_cfg = load_pack(args.pack or shipped_config(DEFAULT_PACK))
    if args.current_A is not None:
        profile = CurrentProfile.constant(args.current_A)
    else:
        profile = load_profile_file(args.profile or shipped_config(DEFAULT_PROFILE))
    source = VirtualPackSource.from_config(pack_cfg, profile, seed=args.seed)
    source.max_step_s = args.dt_s
    n = source.n_cells

    n_rows = int(math.floor(args.seconds / record_s + 1e-9)) + 1
    v_min = np.full(n, np.inf)
    v_max = np.full(n, -np.inf)
    t_max = np.full(n, -np.inf)
    soc_start = source.pack.soc().copy()
    wall0 = time.perf_counter()
    interrupted = False
    try:
        with TraceWriter(args.out, trace_header(n)) as writer, Progress(
            TextColumn("[bold]run[/]"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=n_rows < 2000,
        ) as progress:
            task = progress.add_task("run", total=args.seconds)
            for k in range(n_rows):
                t = min(k * record_s, args.seconds)
                s = source.sample(t)
                soc = source.pack.soc()
                writer.write_row(
                    np.concatenate(
                        ([s.t_s, s.current_A], s.cell_voltage_V, s.sense_voltage_V, soc,
                         s.temperature_C)
                    )
                )
                np.minimum(v_min, s.cell_voltage_V, out=v_min)
                np.maximum(v_max, s.cell_voltage_V, out=v_max)
                np.maximum(t_max, s.temperature_C, out=t_max)
                if k % 500 == 0:
                    progress.update(task, completed=t)
    except KeyboardInterrupt:
        interrupted = True
    wall = time.perf_counter() - wall0
    if interrupted:
        console.print(f"[yellow]interrupted at t = {source.t_s:.1f} s; no trace written[/]")
        return 130

    table = Table(title=f"{pack_cfg.name}: {args.seconds:g} s emulated in {wall:.2f} s wall")
    for col in ("cell", "V min", "V max", "SOC start", "SOC end", "T max C"):
        table.add_column(col, justify="right")
    soc_end = source.pack.soc()
    for i in range(n):
        table.add_row(str(i), f"{v_min[i]:.4f}", f"{v_max[i]:.4f}", f"{soc_start[i]:.4f}",
                      f"{soc_end[i]:.4f}", f"{t_max[i]:.2f}")
    Console().print(table)
    print(f"trace: {args.out} ({n_rows} rows x {len(trace_header(n))} columns)")
    return 0
