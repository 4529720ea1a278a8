"""``bms-hil run --dut external``: a scenario against a DUT that is its own process.

Three real processes and a real bus: ``bms-emu serve --can udp_multicast`` (the emulator, wall
pace), ``python -m hil.master --spi tcp://...`` (the DUT, on its own clock, publishing on the
same bus) and ``bms-hil run`` (the rack: stimuli and faults over CAN, expectations on the DUT's
frames). Each test has its own udp_multicast port. Truth: the open sense wire the emulator
applies is found by the master's open-wire procedure (its documented cycle), and an
expectation no 100 ms-cycle DUT can meet must fail in the JUnit XML with a message.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import can
import pytest
import yaml

from bms_emu.paths import shipped_config

SCENARIO = Path(__file__).resolve().parents[2] / "configs/scenarios/external/open_wire.yaml"
GROUP = "239.74.163.2"  # python-can's default udp_multicast IPv4 group; the port isolates tests
IMPOSSIBLE = {"name": "ow_within_1ms_impossible", "signal": "BMS_Status.OW_Flag", "op": "==",
              "value": 1, "after": "open_c7", "within_s": 0.001}  # fmt: skip


@pytest.fixture()
def rack(serve_process) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Emulator and DUT running, talking over TCP; both on one udp_multicast port."""
    udp_port = random.randint(40000, 60000)
    can_cfg = {"interface": "udp_multicast", "channel": GROUP, "options": {"port": udp_port}}
    srv = serve_process(["--chip", str(shipped_config("chips/adbms6830_like.yaml")),
                         "--chain", "1", "--seed", "2", "--pace", "wall",
                         "--can", f"udp_multicast:{GROUP}", "--can-option", f"port={udp_port}"])
    dut = subprocess.Popen(
        [sys.executable, "-m", "hil.master", "--spi", f"tcp://127.0.0.1:{srv.port}",
         "--n-devices", "1", "--dbc", str(shipped_config("can/reference_bms.dbc")),
         "--master", json.dumps({"ow_every_n_cycles": 2}), "--can", json.dumps(can_cfg),
         "--cycles", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield {"can": can_cfg, "serve": srv, "dut": dut}
    finally:
        if dut.poll() is None:
            dut.send_signal(signal.SIGTERM)
        try:
            _, err = dut.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            dut.kill()
            dut.communicate(timeout=5)
            raise
        assert dut.returncode == 0, err


def _scenario(
    tmp_path: Path, can_cfg: dict[str, object], extra: list[dict[str, object]],
    source: Path = SCENARIO,
) -> Path:
    data = yaml.safe_load(source.read_text())
    data["can"] = can_cfg
    data["expectations"] += extra
    for k in ("chip", "pack"):
        data["emulator"][k] = str((SCENARIO.parent / data["emulator"][k]).resolve())
    data["dut"]["dbc"] = str((SCENARIO.parent / data["dut"]["dbc"]).resolve())
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_external_dut_scenario_over_can_with_junit(rack, tmp_path: Path) -> None:
    path = _scenario(tmp_path, rack["can"], [IMPOSSIBLE])  # type: ignore[arg-type]
    out = tmp_path / "out"
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "hil.cli", "run", str(path), "--dut", "external", "-o", str(out),
         "--can-log", "rack.blf"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert time.monotonic() - t0 < 60
    assert r.returncode == 1, r.stdout + r.stderr  # the impossible expectation fails
    root = ET.parse(out / "junit.xml").getroot()
    verdict = {c.get("name"): c.find("failure") for c in root.iter("testcase")}
    assert list(verdict) == ["ow_flag_within_600ms", "ow_pin_reported", "no_ow_while_healthy",
                             "no_comm_fault", "ow_within_1ms_impossible"]  # fmt: skip
    failed = {k for k, v in verdict.items() if v is not None}
    assert failed == {"ow_within_1ms_impossible"}, r.stdout + r.stderr
    msg = verdict["ow_within_1ms_impossible"].get("message")  # type: ignore[union-attr]
    assert "BMS_Status.OW_Flag == 1 not seen in [1.0" in msg and "frames in window" in msg
    res = json.loads((out / "result.json").read_text())
    hit = next(e for e in res["expectations"] if e["name"] == "ow_flag_within_600ms")
    assert 0.0 < hit["latency_s"] <= 0.6
    events = {e["label"]: e for e in res["events"]}
    on = events["fault on: open_c7"]
    assert 0.0 <= on["jitter_s"] < 0.1  # sent on the wall clock (see BENCHMARKS for figures)
    assert on["acked_s"] is not None and 0.0 <= on["acked_s"] - on["applied_s"] < 0.5
    assert res["dut_frames"] > 100 and res["can_stats"]["malformed"] == 0
    assert res["emulated_s"] > 1.5  # the served emulator's own clock ran along
    frames = list(can.BLFReader(str(out / "rack.blf")))
    ids = {m.arbitration_id for m in frames}
    assert {0x102, 0x201, 0x300, 0x301} <= ids  # fault sent, emulator status, DUT frames
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5


def test_external_link_faults_reach_the_dut_through_serve(rack, tmp_path: Path) -> None:
    """Link faults sent over CAN act on serve's TCP transport: the DUT sees a dead chip."""
    from hil.scenario import run_scenario

    path = _scenario(tmp_path, rack["can"], [], SCENARIO.parent / "link_faults.yaml")  # type: ignore[arg-type]
    res = run_scenario(path, tmp_path / "out")
    assert res.passed, [e.message for e in res.expectations] + res.notes
    hit = res.expectations[2]
    # COMM needs two failed cycles: the second starts 100 ms after the first, which may have
    # met the fault late in its own measurement (12 ms conversion wait + reads): > 50 ms
    assert hit.latency_s is not None and 0.05 < hit.latency_s <= 0.5
    acked = {r.label: r.acked_s for r in res.events}
    assert acked["fault on: bit_errors"] is not None and acked["fault on: dev0_silent"] is not None


def test_external_runner_reports_a_missing_dut_within_its_deadline(serve_process, tmp_path):  # type: ignore[no-untyped-def]
    """Emulator up, no DUT: the runner gives up after start_timeout_s and says what is missing."""
    from hil.scenario import run_scenario

    udp_port = random.randint(40000, 60000)
    can_cfg = {"interface": "udp_multicast", "channel": GROUP, "options": {"port": udp_port}}
    serve_process(["--chain", "1", "--pace", "lockstep",
                   "--can", f"udp_multicast:{GROUP}", "--can-option", f"port={udp_port}"])
    path = _scenario(tmp_path, can_cfg, [])
    t0 = time.monotonic()
    res = run_scenario(path, tmp_path / "out", dut={"start_timeout_s": 1.0})
    assert time.monotonic() - t0 < 5.0
    assert not res.passed and any("not heard within 1 s" in n and ": DUT" in n
                                  for n in res.notes), res.notes  # fmt: skip
    assert "never applied" in res.expectations[0].message
    assert (tmp_path / "out" / "junit.xml").is_file()
