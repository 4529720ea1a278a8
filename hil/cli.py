"""``bms-hil``: run HIL scenarios (``bms-hil run SCENARIO.yaml``) and check their files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bms_emu import __version__
from bms_emu.cli.main import dispatch


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bms-hil", description="HIL scenarios against bms-emu.")
    p.add_argument("--version", action="version", version=f"bms-hil {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run a scenario; exit 0 if every expectation passed")
    run.add_argument("scenario", metavar="SCENARIO.yaml")
    run.add_argument("-o", "--out", default=None, help="output folder (default hil-out/NAME)")
    run.add_argument("--pace", choices=["emulated", "wall_clock"], default=None)
    run.add_argument("--process", choices=["inline", "subprocess"], default=None,
                     help="where the reference master runs")  # fmt: skip
    run.add_argument("--can-interface", default=None, help="python-can interface, e.g. virtual")
    run.add_argument("--can-channel", default=None)
    run.add_argument("--can-log", default=None, help="CAN log file name (.log, .asc, .blf)")
    run.set_defaults(func=cmd_run)
    return p


def cmd_run(args: argparse.Namespace) -> int:
    from hil.scenario import load_scenario, run_scenario

    cfg, _ = load_scenario(args.scenario)
    over: dict[str, object] = {}
    if args.pace:
        over["pace"] = args.pace
    if args.process:
        over["dut"] = {"process": args.process}
    can = {k: v for k, v in (("interface", args.can_interface), ("channel", args.can_channel)) if v}
    if can:
        over["can"] = can
    if args.can_log:
        over["can_log"] = args.can_log
    out = Path(args.out) if args.out else Path("hil-out") / cfg.name
    res = run_scenario(args.scenario, out, **over)
    for e in res.expectations:
        print(f"{'PASS' if e.passed else 'FAIL'}  {e.name}: {e.message}")
    for n in res.notes:
        print(f"note: {n}", file=sys.stderr)
    print(f"{res.name}: {'PASS' if res.passed else 'FAIL'} "
          f"({res.emulated_s:.2f} s emulated in {res.wall_s:.2f} s); reports in {out}")  # fmt: skip
    return 0 if res.passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
