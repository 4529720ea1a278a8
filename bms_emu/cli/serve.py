"""``bms-emu serve``: run the emulated chain behind a SIL TCP socket and/or a serial bridge.

Thin glue: the server lives in :mod:`hil.server`. Prints one ``listening ...`` line per endpoint
(with the real port when ``:0`` asked for a free one) and stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import build_emulator
from bms_emu.paths import DEFAULT_PACK, shipped_config

DEFAULT_CHIP = "chips/bmic_target_1mV.yaml"


def add_subparser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = subparsers.add_parser(
        "serve", help="serve the emulated chain over TCP (SIL) and/or a serial bridge",
        description=__doc__,
    )
    p.add_argument("--chip", type=Path, help=f"chip YAML (default: configs/{DEFAULT_CHIP})")
    p.add_argument("--pack", type=Path, help=f"pack YAML (default: configs/{DEFAULT_PACK})")
    p.add_argument("--chain", type=int, default=1, help="devices on the daisy chain (default 1)")
    p.add_argument("--seed", type=int, default=0, help="chip population seed (default 0)")
    p.add_argument("--spi", default="tcp://127.0.0.1:5075",
                   help="SIL endpoint tcp://HOST:PORT; port 0 picks a free one "
                   "(default tcp://127.0.0.1:5075; 'none' disables)")
    p.add_argument("--serial", help="serial device of a bridge MCU, e.g. /dev/ttyACM0")
    p.add_argument("--pace", choices=("wall", "lockstep"), default="wall",
                   help="wall: emulated time follows the clock; lockstep: only SPI windows and "
                   "ADVANCE_TIME requests move it (deterministic SIL)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hil.server import run_serve  # hil (sockets, pyserial) only when serving

    if args.chain < 1:
        print(f"error: --chain must be >= 1, got {args.chain}", file=sys.stderr)
        return 2
    chip = load_chip(args.chip or shipped_config(DEFAULT_CHIP))
    pack = load_pack(args.pack or shipped_config(DEFAULT_PACK))
    emulator = build_emulator(chip, pack, args.chain, seed=args.seed)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_serve(
            emulator,
            pace=args.pace,
            spi_url=None if args.spi == "none" else args.spi,
            serial_port=args.serial,
            announce=lambda line: print(line, flush=True),
            stop=stop,
        )
    except (OSError, ValueError) as exc:  # port in use, no such serial device, bad --spi
        print(f"bms-emu serve: {exc}", file=sys.stderr)
        return 2
    finally:
        for s, h in old.items():
            signal.signal(s, h)
