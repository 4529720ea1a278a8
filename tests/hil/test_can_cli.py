"""Bad CAN options of ``bms-emu serve`` and ``bms-hil run``: exit status 2, a message naming the
option and the bad value, nothing started (in process: the CLIs' own entry points)."""

from __future__ import annotations

import random

import pytest

from bms_emu.cli.main import main as bms_emu_main
from bms_emu.paths import shipped_config
from hil.cli import main as bms_hil_main

SERVE = ["serve", "--spi", "tcp://127.0.0.1:0", "--pace", "lockstep"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--can", "socketcan"], "--can: got 'socketcan': must be INTERFACE:CHANNEL"),
        (["--can", "virtual:x", "--can-option", "port"], "--can-option: got 'port': must be"),
        (["--can", "virtual:x", "--can-log", "trace.txt"], "must end in .log, .asc or .blf"),
        (["--can-bitrate", "500000"], "need --can INTERFACE:CHANNEL"),
        (["--can", "no_such_interface:ch0"], "cannot open CAN interface 'no_such_interface'"),
        (["--pack-can", str(shipped_config("can/example_pack_mapping.yaml")), "--can",
          "virtual:x"], "--pack-can needs --pace wall"),
    ],
)
def test_serve_rejects_bad_can_options(args: list[str], message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert bms_emu_main([*SERVE, *args]) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_serve_pack_can_checks_the_mapping_size_against_the_chain(capsys) -> None:  # type: ignore[no-untyped-def]
    mapping = str(shipped_config("can/example_pack_mapping.yaml"))
    rc = bms_emu_main(["serve", "--spi", "tcp://127.0.0.1:0", "--chain", "2", "--pack-can",
                       mapping, "--can", f"virtual:size-{random.getrandbits(32)}"])  # fmt: skip
    assert rc == 2
    assert "n_cells is 16, the chain of 2 device(s) measures 32" in capsys.readouterr().err


def test_hil_run_rejects_a_bad_can_option(capsys) -> None:  # type: ignore[no-untyped-def]
    scenario = str(shipped_config("scenarios/external/open_wire.yaml"))
    assert bms_hil_main(["run", scenario, "--dut", "external", "--can-option", "port"]) == 2
    assert "--can-option: got 'port': must be KEY=VALUE" in capsys.readouterr().err
