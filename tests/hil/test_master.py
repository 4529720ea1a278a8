"""hil.master.ReferenceMaster on its own: over the in-process chain and over the TCP SIL link.

Truth: the faults' documented effects (open pin, forced cell, silent device) and the master's
documented cycle logic (flags per cycle, COMM after comm_fault_after failed cycles).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import build_emulator
from bms_emu.paths import shipped_config
from bms_emu.scenario_config import ReferenceMasterConfig
from hil.master import ReferenceMaster
from hil.rig import Rig


def _emu(n: int = 2):  # type: ignore[no-untyped-def]
    return build_emulator(
        load_chip(shipped_config("chips/adbms6830_like.yaml")),
        load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), n, seed=11,
    )  # fmt: skip


def _status(frames: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return [s for name, s in frames if name == "BMS_Status"][-1]


def test_comm_fault_needs_consecutive_failed_cycles_and_clears_after_recovery() -> None:
    rig = Rig(_emu(2), seed=1)
    frames: list[tuple[str, dict[str, Any]]] = []
    cfg = ReferenceMasterConfig(ow_every_n_cycles=0, comm_fault_after=2)
    m = ReferenceMaster(rig.link, rig.chain.delay, 2, cfg, lambda n, s: frames.append((n, s)))
    m.step()
    assert _status(frames)["CommFault_Flag"] == 0 and len(frames) == 2 + 32
    rig.apply_fault("chip_silent", True, device=1)
    m.step()
    assert _status(frames)["CommFault_Flag"] == 0  # one bad cycle may be a transient
    m.step()
    st = _status(frames)
    assert st["CommFault_Flag"] == 1 and st["CommErrors"] == 2
    rig.apply_fault("chip_silent", False, device=1)
    m.step()  # re-wakes and reconfigures the chain, counters resynchronised by RSTCC
    assert _status(frames)["CommFault_Flag"] == 0 and m.comm_errors == 2


def test_master_over_the_tcp_sil_link_finds_an_open_wire() -> None:
    """Same master, other transport: hil.sil_client over hil.server (lock-step pace)."""
    from hil.server import EmulatorHost, SilServer
    from hil.sil_client import SilClient

    emu = _emu(1)
    emu.analogs[0].faults.open_pins.add(9)
    frames: list[tuple[str, dict[str, Any]]] = []
    with SilServer(EmulatorHost(emu, pace="lockstep")).start() as server:
        with SilClient("127.0.0.1", server.port, timeout_s=10.0) as client:
            cfg = ReferenceMasterConfig(ow_every_n_cycles=1)
            m = ReferenceMaster(client.transfer, client.delay, 1, cfg,
                                lambda n, s: frames.append((n, s)))  # fmt: skip
            m.step()
    detail = [s for name, s in frames if name == "BMS_FaultDetail"][-1]
    assert _status(frames)["OW_Flag"] == 1 and (detail["OwDevice"], detail["OwPin"]) == (0, 9)
    assert emu.chain.t_s == pytest.approx(0.1, abs=0.02)  # one 100 ms cycle of link time


def test_lockstep_frames_have_deadlines_and_a_size_limit() -> None:
    """A timeout is fatal to the link (bytes already read are gone), so one pipe per case."""
    import os
    import struct

    from hil.lockstep import MAX_PAYLOAD, LinkClosed, LinkTimeout, read_frame

    cases: list[tuple[bytes, bool, type[Exception], str]] = [
        (b"T\x00\x00", False, LinkTimeout, "got 3 of 5 bytes"),  # half a header, silence
        (struct.pack(">cI", b"T", 16) + b"x", False, LinkTimeout, "got 1 of 16"),
        (struct.pack(">cI", b"T", MAX_PAYLOAD + 1), False, ValueError, "max"),
        (b"T\x00", True, LinkClosed, "closed"),  # peer exits mid-frame
    ]
    for data, close, exc, text in cases:
        r, w = os.pipe()
        try:
            os.write(w, data)
            if close:
                os.close(w)
                w = -1
            t0 = time.monotonic()
            with pytest.raises(exc, match=text):
                read_frame(r, 0.05)
            assert time.monotonic() - t0 < 1.0
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)


def test_master_process_over_bms_emu_serve_publishes_on_udp_multicast(serve_process) -> None:
    """Three processes' worth of rig: bms-emu serve (TCP SIL), the master, this listener."""
    import json
    import random
    import subprocess
    import sys

    from bms_emu.scenario_config import CanBusConfig
    from hil.can_bus import CanPort

    dbc = shipped_config("can/reference_bms.dbc")
    can_cfg = CanBusConfig(interface="udp_multicast", channel="239.74.163.2",
                           options={"port": random.randint(40000, 60000)})  # fmt: skip
    srv = serve_process(["--chain", "1", "--seed", "3", "--pace", "lockstep"])
    with CanPort.open(can_cfg, dbc) as listen:
        r = subprocess.run(
            [sys.executable, "-m", "hil.master", "--spi", f"tcp://127.0.0.1:{srv.port}",
             "--n-devices", "1", "--dbc", str(dbc), "--can", can_cfg.model_dump_json(),
             "--cycles", "3", "--master", '{"ow_every_n_cycles": 0}'],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        status = []
        while (f := listen.recv(2.0)) is not None:
            if f.name == "BMS_Status":
                status.append(f.signals)
    summary = json.loads(r.stderr.strip().splitlines()[-1])
    assert summary["cycles"] == 3 and summary["comm_errors"] == 0
    assert [s["AliveCounter"] for s in status] == [1, 2, 3]
    assert all(s["CommFault_Flag"] == 0 and s["OV_Flag"] == 0 for s in status)
    assert all(2.5 < s["CellVmin_V"] <= s["CellVmax_V"] < 3.65 for s in status)  # LFP window
