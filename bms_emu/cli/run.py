"""``bms-emu run``: run the virtual pack measured by an emulated chip, and write a trace.

With no arguments it runs the embedded defaults: the 16-cell 280 Ah LFP pack through the shipped
storage cycle for one hour, measured by a ``bmic_target_1mV`` chip the way firmware reads it
(host driver -> SPI frames -> device -> analog chain): each trace row holds the pack's truth and
the chip's C-ADC reading, and the summary gives the chip's worst error per cell. ``--no-chip``
runs the pack alone. Output: ``bms-emu-out/trace.csv``.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bms_emu.config import load_chip, load_pack, load_profile
from bms_emu.emulator import build_emulator
from bms_emu.host import HostDriver
from bms_emu.paths import DEFAULT_CHIP, DEFAULT_PACK, DEFAULT_PROFILE, shipped_config
from bms_emu.profile import CurrentProfile
from bms_emu.sources import VirtualPackSource
from bms_emu.sweep.history import History
from bms_emu.trace import (
    TraceFormatError,
    TraceWriter,
    cell_columns,
    read_trace_csv,
    trace_header,
)

#: Longest host silence between records: the chip's watchdog sleeps it after ~2 s.
POLL_S = 1.0
#: Wait after ADCV: a 1 ms conversion plus margin.
CONVERSION_WAIT_S = 1.5e-3


def add_subparser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "run",
        help="run the virtual pack and write a trace (no arguments: the embedded defaults)",
        description=__doc__,
    )
    p.add_argument("--pack", type=Path, help=f"pack YAML (default: configs/{DEFAULT_PACK})")
    p.add_argument("--chip", type=Path, help=f"chip YAML (default: configs/{DEFAULT_CHIP})")
    p.add_argument("--no-chip", action="store_true", help="run the pack alone")
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
    p.add_argument("--history", type=Path, default=Path("bms-emu-out/history.sqlite"),
                   help="SQLite run history to append to (default: next to the trace)")
    p.add_argument("--no-history", action="store_true", help="do not record the run")
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
    seed = pack_cfg.seed if args.seed is None else args.seed
    if args.no_chip:
        source = VirtualPackSource.from_config(pack_cfg, profile, seed=seed)
        measure = None
    else:
        chip = load_chip(args.chip or shipped_config(DEFAULT_CHIP))
        emu = build_emulator(chip, pack_cfg, 1, seed=seed, profile=profile,
                             max_step_s=args.dt_s)
        source = emu.modules[0]
        measure = _ChipReader(emu)
    source.max_step_s = args.dt_s
    n = source.n_cells
    header = trace_header(n) + (cell_columns("v_meas_", "_V", n) if measure else [])

    n_rows = math.floor(args.seconds / record_s + 1e-9) + 1
    v_min = np.full(n, np.inf)
    v_max = np.full(n, -np.inf)
    t_max = np.full(n, -np.inf)
    err_max = np.zeros(n)
    soc_start = source.pack.soc().copy()
    wall0 = time.perf_counter()
    interrupted = False
    try:
        with TraceWriter(args.out, header) as writer, Progress(
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
                if measure is None:
                    s = source.sample(t)
                    extra: tuple[np.ndarray, ...] = ()
                else:
                    v_meas = measure.read_cells_at(t)
                    s = source.sample(source.t_s)  # the state the conversion saw
                    # chip error against what is at its pins (busbar drops are not its error)
                    np.maximum(err_max, np.abs(v_meas - s.sense_voltage_V), out=err_max)
                    extra = (v_meas,)
                soc = source.pack.soc()
                writer.write_row(
                    np.concatenate(
                        ([s.t_s, s.current_A], s.cell_voltage_V, s.sense_voltage_V, soc,
                         s.temperature_C, *extra)
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
    cols = ["cell", "V min", "V max", "SOC start", "SOC end", "T max C"]
    if measure is not None:
        cols.append("chip |err| max mV")
    for col in cols:
        table.add_column(col, justify="right")
    soc_end = source.pack.soc()
    for i in range(n):
        row = [str(i), f"{v_min[i]:.4f}", f"{v_max[i]:.4f}", f"{soc_start[i]:.4f}",
               f"{soc_end[i]:.4f}", f"{t_max[i]:.2f}"]
        if measure is not None:
            row.append(f"{1e3 * err_max[i]:.3f}")
        table.add_row(*row)
    Console().print(table)
    if measure is not None:
        print(f"chip {measure.name}: worst single-reading error {1e3 * err_max.max():.3f} mV "
              f"over {n_rows} conversions x {n} cells")
    print(f"trace: {args.out} ({n_rows} rows x {len(header)} columns)")
    if not args.no_history:
        summary = {
            "pack": pack_cfg.name, "chip": measure.name if measure else None,
            "seconds": args.seconds, "dt_s": args.dt_s, "record_every_s": record_s,
            "seed": seed, "wall_s": wall, "v_min_V": v_min.tolist(), "v_max_V": v_max.tolist(),
            "soc_end": soc_end.tolist(), "temp_max_C": t_max.tolist(),
            "chip_err_max_mV": (1e3 * err_max).tolist() if measure else None,
        }
        metrics = {"wall_s": (wall, "s"), "temp_max_C": (float(t_max.max()), "C")}
        if measure is not None:
            metrics["chip_err_max_mV"] = (float(1e3 * err_max.max()), "mV")
        with History(args.history) as history:
            run_id = history.add_run(f"run/{pack_cfg.name}/{summary['chip']}", summary, metrics,
                                     datetime.now(timezone.utc).isoformat(timespec="seconds"))
        print(f"history: run {run_id} recorded in {args.history}")
    return 0


class _ChipReader:
    """Reads the emulated chip like firmware: ADCV, wait, RDCV*, polling to stay awake."""

    def __init__(self, emu) -> None:  # type: ignore[no-untyped-def]
        self.emu = emu
        self.name = emu.population.spec.name
        self.host = HostDriver(emu.chain.transfer, 1, delay=emu.chain.delay)
        self.host.wakeup()
        self.host.write_config_a({"REFON": 1})
        self.host.wait(5e-3)  # REFUP

    def read_cells_at(self, t_s: float) -> np.ndarray:
        """Start a conversion at ``t_s`` (or now, if later) and return its C-ADC result (V)."""
        chain = self.emu.chain
        while t_s - chain.t_s > POLL_S:
            self.host.wait(POLL_S)
            self.host.read_status("A")  # any traffic keeps the watchdog fed
        if t_s > chain.t_s:
            self.host.wait(t_s - chain.t_s)
        self.host.start_cell_conversion()
        self.host.wait(CONVERSION_WAIT_S)
        return self.host.read_cells("C")[0]
