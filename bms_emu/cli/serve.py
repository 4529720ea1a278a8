"""``bms-emu serve``: run the emulated chain behind a SIL TCP socket and/or a serial bridge, with
an optional CAN control/telemetry node (``--can``).

Thin glue: the server lives in :mod:`hil.server`. Prints one ``listening ...`` line per endpoint
(with the real port when ``:0`` asked for a free one) and stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pydantic
import yaml

from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import build_emulator
from bms_emu.paths import DEFAULT_PACK, shipped_config

if TYPE_CHECKING:
    from bms_emu.scenario_config import CanBusConfig

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
    can = p.add_argument_group(
        "CAN control/telemetry node (configs/can/bms_emu.dbc)",
        "control frames change the running emulation (current, ambient temperature, SOC, "
        "faults incl. SPI bit errors and silent chips on the TCP link); telemetry is sent at "
        "the DBC cycle time",
    )
    can.add_argument("--can", metavar="INTERFACE:CHANNEL",
                     help="python-can interface and channel, e.g. socketcan:can0, "
                     "pcan:PCAN_USBBUS1, udp_multicast:239.74.163.2, virtual:rig1")
    can.add_argument("--can-bitrate", type=int, help="bit rate (bus interfaces that take one)")
    can.add_argument("--can-option", action="append", default=[], metavar="KEY=VALUE",
                     help="extra can.Bus keyword argument, repeatable (e.g. port=43113 for "
                     "udp_multicast); VALUE is read as YAML (numbers, true/false)")
    can.add_argument("--can-log", type=Path, metavar="FILE",
                     help="log every CAN frame (.log candump, .asc or .blf)")
    can.add_argument("--pack-can", type=Path, metavar="MAPPING.yaml",
                     help="real-pack input instead of --pack: cell voltages, temperatures and "
                     "current from CAN frames described by a can_mapping config (its DBC, its "
                     "'can:' bus or the --can bus); needs --pace wall")
    p.set_defaults(func=run)


def can_config(args: argparse.Namespace) -> CanBusConfig | None:
    """The bus of ``--can``/``--can-bitrate``/``--can-option`` (None without ``--can``).

    Raises
    ------
    ValueError
        Naming the option, the bad value and what is allowed.
    """
    from bms_emu.scenario_config import CanBusConfig

    if args.can is None:
        if args.can_bitrate or args.can_option or args.can_log:
            raise ValueError("--can-bitrate/--can-option/--can-log need --can INTERFACE:CHANNEL")
        return None
    interface, sep, channel = args.can.partition(":")
    if not interface or not sep or not channel:
        raise ValueError(f"--can: got {args.can!r}: must be INTERFACE:CHANNEL, e.g. "
                         "socketcan:can0 or udp_multicast:239.74.163.2")
    options = {}
    for item in args.can_option:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise ValueError(f"--can-option: got {item!r}: must be KEY=VALUE")
        options[key] = yaml.safe_load(value)
    if args.can_log is not None and args.can_log.suffix.lower() not in (".log", ".asc", ".blf"):
        raise ValueError(f"--can-log: got {str(args.can_log)!r}: must end in .log, .asc or .blf")
    try:
        return CanBusConfig(interface=interface, channel=channel, bitrate=args.can_bitrate,
                            options=options)
    except pydantic.ValidationError as exc:
        raise ValueError(f"--can: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None


def run(args: argparse.Namespace) -> int:
    from hil.server import run_serve  # hil (sockets, pyserial) only when serving

    if args.chain < 1:
        print(f"error: --chain must be >= 1, got {args.chain}", file=sys.stderr)
        return 2
    chip = load_chip(args.chip or shipped_config(DEFAULT_CHIP))
    stop = threading.Event()
    link = None
    services = []
    source = None
    try:
        bus = can_config(args)
        if args.pack_can is not None:
            if args.pace != "wall" or args.pack is not None:
                raise ValueError("--pack-can needs --pace wall (a real pack runs on the wall "
                                 "clock) and replaces --pack")
            from hil.can_source import open_real_pack
            from hil.server import warm_up

            # the real pack cannot be copied for run_serve's warm-up: load the compiled
            # kernels on a virtual twin of the same chip instead (same kernels, same types)
            warm_up(build_emulator(chip, load_pack(shipped_config(DEFAULT_PACK)), 1))
            emulator, source, pack_bus = open_real_pack(args.pack_can, bus, chip, args.chain,
                                                        seed=args.seed)
        else:
            pack = load_pack(args.pack or shipped_config(DEFAULT_PACK))
            emulator = build_emulator(chip, pack, args.chain, seed=args.seed)
    except (ValueError, RuntimeError) as exc:  # bad option, bad mapping size, no such bus
        print(f"bms-emu serve: {exc}", file=sys.stderr)
        return 2
    if source is not None:
        real_pack = source

        def pack_input(host):  # type: ignore[no-untyped-def]
            # frames are stamped in emulated time, the time base sample() is called with
            real_pack.clock = lambda: host.clock() - host.epoch_s
            print(f"listening pack-can {pack_bus.interface}:{pack_bus.channel} "
                  f"cells={real_pack.n_cells}", flush=True)
            return real_pack

        services.append(pack_input)
    if bus is not None:
        from hil.emu_node import start_can_node
        from hil.rig import Rig

        rig = Rig(emulator, seed=args.seed)  # link faults: seeded bit-error draws
        link = rig.link

        def can_node(host):  # type: ignore[no-untyped-def]
            node = start_can_node(host, rig, bus, can_log=args.can_log,
                                  log=lambda line: print(line, flush=True))
            print(f"listening can {bus.interface}:{bus.channel} period={node.period_s:g}s "
                  f"devices={host.n_devices}", flush=True)
            return node

        services.append(can_node)

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
            link=link,
            services=services,
            warm=source is None,
        )
    except (OSError, ValueError, RuntimeError) as exc:  # port in use, no serial device, no CAN
        print(f"bms-emu serve: {exc}", file=sys.stderr)
        return 2
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if source is not None:
            source.shutdown()  # idempotent: also when serve stopped before starting it
