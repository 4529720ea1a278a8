"""Reference BMS master: the device under test the HIL scenarios run against.

:class:`ReferenceMaster` reads the chain over any transport (a ``transfer(mosi) -> miso``
callable plus a ``delay(s)`` callable: ``DaisyChain.transfer``/``delay`` in process, the lock-step
pipe of :mod:`hil.lockstep` from a subprocess, or a TCP SIL client), applies

- over/under-voltage limits to the C-ADC cell voltages,
- the open-wire procedure :func:`bms_emu.host.open_wire_check` every ``ow_every_n_cycles``,
- the chip's C-vs-S comparison (CSxFLT in status group C, read then cleared each cycle),
- a communication fault after ``comm_fault_after`` consecutive failed cycles (PEC, command
  counter, wrong length),

and publishes its state by ``configs/can/reference_bms.dbc`` through a ``publish(name, signals)``
callable. One :meth:`ReferenceMaster.step` is one cycle of ``cycle_s`` of link time.

Run as a program (``python -m hil.master --lockstep ...``) it is the DUT process of a
cross-process scenario: link over stdin/stdout (lock-step with the emulator), CAN over the bus
given on the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bms_emu.host import HostDriver, open_wire_check
from bms_emu.host.driver import ProtocolError
from bms_emu.scenario_config import CanBusConfig, ReferenceMasterConfig

__all__ = ["ReferenceMaster", "main"]

Publish = Callable[[str, Mapping[str, Any]], Any]

_NONE = 255  # "no fault" value of the *Device / *Index fields of BMS_FaultDetail


class ReferenceMaster:
    """A minimal BMS master over one daisy chain.

    Parameters
    ----------
    transfer : callable
        ``transfer(mosi) -> miso``, one chip-select window.
    delay : callable
        ``delay(seconds)``: time passing on the link (emulated or real).
    n_devices : int
    config : ReferenceMasterConfig
    publish : callable
        ``publish(message_name, signals)``; called once per frame.

    Attributes
    ----------
    cycles, comm_errors : int
    flags : dict of str to bool
        ``OV``, ``UV``, ``OW``, ``CS``, ``COMM`` after the latest cycle.
    """

    def __init__(
        self,
        transfer: Callable[[bytes], bytes],
        delay: Callable[[float], None],
        n_devices: int,
        config: ReferenceMasterConfig,
        publish: Publish,
    ) -> None:
        self.cfg = config
        self.n_devices = n_devices
        self.host = HostDriver(transfer, n_devices, delay=delay, raise_on_counter_mismatch=True)
        self.publish = publish
        self.cycles = 0
        self.comm_errors = 0
        self._consecutive = 0
        self._need_init = True
        self.flags = dict.fromkeys(("OV", "UV", "OW", "CS", "COMM"), False)
        self.cells_V = np.full(16 * n_devices, np.nan)
        self.cells_s_V = np.full(16 * n_devices, np.nan)
        self.ow_pins: list[list[int]] = [[] for _ in range(n_devices)]
        self.cs_flags = [0] * n_devices
        self.last_error = ""

    def _init_chain(self) -> None:
        h = self.host
        h.wakeup()
        h.rstcc()
        h.write_config_a({"REFON": 1, "CTH": self.cfg.cth_code})
        h.wait(5e-3)  # REFUP <= 5 ms (REFERENCE 2.1, unverified)
        h.clear_flags({"CSFLT": 0xFFFF})
        self._need_init = False

    def _measure(self) -> None:
        h = self.host
        if self._need_init:
            self._init_chain()
        h.start_cell_conversion(rd=True)  # C and S together, single shot
        h.wait(self.cfg.conversion_wait_s)
        self.cells_V = h.read_cells("C").reshape(-1)
        self.cells_s_V = h.read_cells("S").reshape(-1)
        self.cs_flags = [int(s["CSFLT"]) for s in h.read_status("C")]
        if any(self.cs_flags):
            h.clear_flags({"CSFLT": 0xFFFF})
        n = self.cfg.ow_every_n_cycles
        if n and self.cycles % n == 0:
            self.ow_pins = open_wire_check(h, threshold_V=self.cfg.ow_threshold_V)

    def step(self) -> int:
        """One cycle: measure, evaluate, publish, wait out the cycle. Returns frames sent."""
        try:
            self._measure()
            self._consecutive = 0
        except (ProtocolError, OSError) as exc:  # OSError: transport errors (hil.transport)
            self.comm_errors += 1
            self._consecutive += 1
            self.last_error = str(exc)
            self._need_init = True  # wake and reconfigure next cycle (counters resynchronised)
        self.cycles += 1
        v = self.cells_V
        finite = v[np.isfinite(v)]
        comm = self._consecutive >= self.cfg.comm_fault_after
        self.flags = {
            "OV": bool(np.any(finite > self.cfg.ov_V)),
            "UV": bool(np.any(finite < self.cfg.uv_V)),
            "OW": any(self.ow_pins),
            "CS": any(self.cs_flags),
            "COMM": comm,
        }
        sent = self._publish(finite)
        self.host.wait(self._rest_s())
        return sent

    def _rest_s(self) -> float:
        # the measurement took conversion_wait_s (+ 45 ms for an open-wire check) of link time;
        # wait the rest of the cycle so cycles start every cycle_s on average
        n = self.cfg.ow_every_n_cycles
        used = self.cfg.conversion_wait_s
        if n and (self.cycles - 1) % n == 0:
            used += 3 * 0.015
        return max(self.cfg.cycle_s - used, 1e-3)

    def _publish(self, finite: np.ndarray) -> int:
        v = self.cells_V
        f = self.flags
        sent = 0
        self.publish(
            "BMS_Status",
            {
                "CellVmin_V": float(finite.min()) if finite.size else 0.0,
                "CellVmax_V": float(finite.max()) if finite.size else 0.0,
                "OV_Flag": int(f["OV"]),
                "UV_Flag": int(f["UV"]),
                "OW_Flag": int(f["OW"]),
                "CSMismatch_Flag": int(f["CS"]),
                "CommFault_Flag": int(f["COMM"]),
                "AliveCounter": self.cycles % 256,
                "CommErrors": min(self.comm_errors, 65535),
            },
        )
        sent += 1
        ow = next(((d, p[0]) for d, p in enumerate(self.ow_pins) if p), (_NONE, _NONE))
        cs = next(
            ((d, int(np.log2(c & -c))) for d, c in enumerate(self.cs_flags) if c), (_NONE, _NONE)
        )
        over = np.flatnonzero(np.nan_to_num(v, nan=0.0) > self.cfg.ov_V)
        under = np.flatnonzero(np.nan_to_num(v, nan=0.0) < self.cfg.uv_V)
        self.publish(
            "BMS_FaultDetail",
            {
                "OwDevice": ow[0],
                "OwPin": ow[1],
                "CsDevice": cs[0],
                "CsChannel": cs[1],
                "OvCellIndex": int(over[0]) if over.size else _NONE,
                "UvCellIndex": int(under[0]) if under.size else _NONE,
            },
        )
        sent += 1
        for i in range(v.size):
            self.publish(
                "BMS_CellVoltage",
                {
                    "CellIndex": i,
                    "CellVoltage_V": float(np.nan_to_num(v[i], nan=0.0)),
                    "CellVoltageS_V": float(np.nan_to_num(self.cells_s_V[i], nan=0.0)),
                },
            )
            sent += 1
        return sent


# ------------------------------------------------------------------------------------------
# DUT process: python -m hil.master --lockstep | --spi URL
# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the reference master as its own process.

    ``--lockstep``: the link is stdin/stdout, lock-step with a scenario runner (see
    :mod:`hil.lockstep`); the runner ends it. ``--spi URL``: any :mod:`hil.transport` URL, e.g.
    ``tcp://127.0.0.1:5075`` of ``bms-emu serve``; runs ``--cycles`` cycles (0: until SIGTERM or
    Ctrl-C). Either way the state goes out on the CAN bus given by ``--can``; a JSON summary
    (CAN counters, cycles, link errors) goes to stderr at the end.
    """
    import signal

    from hil.can_bus import CanPort

    p = argparse.ArgumentParser(prog="python -m hil.master")
    link = p.add_mutually_exclusive_group(required=True)
    link.add_argument("--lockstep", action="store_true", help="link on stdin/stdout")
    link.add_argument("--spi", metavar="URL", help="SPI transport URL (tcp://HOST:PORT)")
    p.add_argument("--n-devices", type=int, required=True)
    p.add_argument("--dbc", required=True)
    p.add_argument("--master", default="{}", help="ReferenceMasterConfig as JSON")
    p.add_argument("--can", default="{}", help="CanBusConfig as JSON")
    p.add_argument("--timeout-s", type=float, default=10.0, help="deadline of every link reply")
    p.add_argument("--cycles", type=int, default=0, help="--spi: cycles to run (0: until stopped)")
    args = p.parse_args(argv)
    cfg = ReferenceMasterConfig.model_validate(json.loads(args.master))
    can_cfg = CanBusConfig.model_validate(json.loads(args.can))
    stop = {"now": False}

    def _stop(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    with CanPort.open(can_cfg, args.dbc) as port:
        publish: Publish = lambda n, s: port.send(n, s)  # noqa: E731
        if args.lockstep:
            from hil.lockstep import LockstepClient, Stop

            client = LockstepClient(sys.stdin.buffer, sys.stdout.buffer, timeout_s=args.timeout_s)
            master = ReferenceMaster(client.transfer, client.delay, args.n_devices, cfg, publish)
            try:
                while not stop["now"]:
                    client.sync(master.step())
            except Stop:
                pass
        else:
            from hil.transport import open_transport

            with open_transport(args.spi, timeout_s=args.timeout_s) as t:
                master = ReferenceMaster(t.transfer, t.delay, args.n_devices, cfg, publish)
                try:
                    while not stop["now"] and (args.cycles <= 0 or master.cycles < args.cycles):
                        master.step()
                except KeyboardInterrupt:
                    pass
        summary = {
            "dut_stats": port.stats.as_dict(),
            "cycles": master.cycles,
            "comm_errors": master.comm_errors,
            "last_error": master.last_error,
        }
        print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
