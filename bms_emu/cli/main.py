"""``bms-emu`` entry point: collects subcommands from their modules.

Each subcommand module defines ``add_subparser(subparsers)`` which registers its parser and sets
``func``. A module whose optional dependency is missing is reported by name when it is used, so one
missing extra never breaks the whole CLI.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bms_emu import __version__
from bms_emu.config import ConfigError

#: (subcommand name, module) in help order.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("run", "bms_emu.cli.run"),
    ("config", "bms_emu.cli.config_cmd"),
    ("serve", "bms_emu.cli.serve"),
    ("sweep", "bms_emu.cli.sweep"),
    ("eis", "bms_emu.cli.eis"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bms-emu",
        description="Emulator of a 16-channel battery-monitor AFE and its virtual pack.",
    )
    parser.add_argument("--version", action="version", version=f"bms-emu {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = exc.name or str(exc)
            p = subparsers.add_parser(name, help=f"(unavailable: needs {missing})")
            p.set_defaults(func=_unavailable(name, missing))
            continue
        module.add_subparser(subparsers)
    return parser


def _unavailable(name: str, missing: str):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        print(
            f"bms-emu {name}: needs the Python package {missing!r}, which is not installed",
            file=sys.stderr,
        )
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run the chosen subcommand's ``func``: the shared top of every CLI.

    Config errors print one line per problem and give exit status 2; Ctrl-C gives 130.
    """
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
