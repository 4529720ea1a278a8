"""``bms-hil``: run HIL scenarios (``bms-hil run SCENARIO.yaml``) and check their files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

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
    run.add_argument("--dut", "--process", dest="process", default=None,
                     choices=["inline", "subprocess", "external"],
                     help="where the DUT runs: the reference master in this process or a "
                     "subprocess (lock-step), or external: a DUT on its own clock against a "
                     "running 'bms-emu serve --can' on the scenario's bus")  # fmt: skip
    run.add_argument("--can-interface", default=None, help="python-can interface, e.g. virtual")
    run.add_argument("--can-channel", default=None)
    run.add_argument("--can-option", action="append", default=[], metavar="KEY=VALUE",
                     help="extra can.Bus keyword argument, repeatable (e.g. port=43113 for "
                     "udp_multicast); VALUE is read as YAML")
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
        if args.process == "external" and not args.pace:
            over["pace"] = "wall_clock"  # an external DUT runs on its own (wall) clock
    can = {k: v for k, v in (("interface", args.can_interface), ("channel", args.can_channel)) if v}
    if args.can_option:
        try:
            can["options"] = _options(args.can_option)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
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


def _options(items: list[str]) -> dict[str, object]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise ValueError(f"--can-option: got {item!r}: must be KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
