"""Scenarios end to end in one process: shipped scenarios pass, reports are right, bad YAML fails.

Truth: the faults' documented effects (forced cell voltage, open pin, C gain above CTH, silent
device) and the reference master's documented cycle (100 ms), so detection latencies have known
bounds; JUnit XML is parsed with ElementTree, the CAN log with python-can's reader.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from pathlib import Path

import can
import pytest
import yaml

from bms_emu.config import ConfigError, load_config
from hil.cli import main as hil_main
from hil.scenario import load_scenario, run_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "configs" / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def _junit(path: Path) -> dict[str, str | None]:
    """testcase name -> failure message (None when it passed)."""
    root = ET.parse(path).getroot()
    out = {}
    for case in root.iter("testcase"):
        fail = case.find("failure")
        out[case.get("name")] = None if fail is None else fail.get("message")
    return out


def test_at_least_the_four_required_scenarios_ship() -> None:
    names = {load_config(p).name for p in SHIPPED}  # type: ignore[attr-defined]
    assert {"overvoltage_detection", "open_wire_detection", "c_adc_gain_detection",
            "chip_silent_comm_fault"} <= names  # fmt: skip


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_passes_end_to_end(path: Path, tmp_path: Path) -> None:
    cfg, _ = load_scenario(path)
    res = run_scenario(path, tmp_path, can={"channel": f"t-{random.getrandbits(32)}"})
    assert res.passed, [e.message for e in res.expectations if not e.passed] + res.notes
    cases = _junit(tmp_path / "junit.xml")
    assert list(cases) == [e.name for e in cfg.expectations]
    assert all(v is None for v in cases.values())
    for e in res.expectations:  # 'within' detections come within 3 master cycles of the fault
        if e.latency_s is not None and e.name.endswith("ms"):
            assert 0.0 < e.latency_s <= 0.3
    # every fault landed exactly on time in emulated time (or within one SPI window)
    for r in res.events:
        assert r.jitter_s is not None and 0.0 <= r.jitter_s < 1e-3
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(cfg.expectations)
    frames = list(can.LogReader(str(tmp_path / cfg.can_log)))
    assert len(frames) == res.can_stats["log_frames"] > res.dut_frames > 0
    assert res.can_stats["unknown_id"] == res.can_stats["malformed"] == 0
    assert res.can_stats["log_errors"] == 0


def test_impossible_expectation_fails_with_a_message(tmp_path: Path) -> None:
    """OV within 1 ms of the fault cannot happen with a 100 ms cycle: a JUnit failure."""
    data = yaml.safe_load((SCENARIOS / "overvoltage.yaml").read_text())
    data["emulator"]["n_devices"] = 1
    data["faults"][0]["device"] = 0
    data["duration_s"] = 1.3
    data["expectations"] = [
        {"name": "ov_within_1ms", "signal": "BMS_Status.OV_Flag", "op": "==", "value": 1,
         "after": "ov", "within_s": 0.001},
        {"name": "ov_never", "signal": "BMS_Status.OV_Flag", "op": "==", "value": 1,
         "kind": "never"},
        {"name": "ov_within_200ms", "signal": "BMS_Status.OV_Flag", "op": "==", "value": 1,
         "after": "ov", "within_s": 0.2},
    ]  # fmt: skip
    path = tmp_path / "impossible.yaml"
    path.write_text(yaml.safe_dump(data))
    for k in ("chip", "pack"):
        data["emulator"][k] = str((SCENARIOS / data["emulator"][k]).resolve())
    data["dut"]["dbc"] = str((SCENARIOS / data["dut"]["dbc"]).resolve())
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    rc = hil_main(["run", str(path), "-o", str(out), "--can-channel", "impossible",
                   "--can-log", "trace.asc"])  # fmt: skip
    assert rc == 1
    cases = _junit(out / "junit.xml")
    assert cases["ov_within_200ms"] is None
    assert "not seen in [1.000, 1.001] s" in str(cases["ov_within_1ms"])
    assert "(expected never)" in str(cases["ov_never"])
    assert (out / "trace.asc").stat().st_size > 0


BASE = {
    "kind": "scenario", "name": "x", "duration_s": 1.0,
    "emulator": {"chip": "../chips/adbms6830_like.yaml", "pack": "../packs/lfp_16s_280Ah.yaml"},
    "dut": {"dbc": "../can/reference_bms.dbc"},
    "expectations": [{"name": "e", "signal": "BMS_Status.OV_Flag", "op": "==", "value": 1,
                      "kind": "never"}],
}  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda d: d.update(duration_s=-1), "duration_s: got -1"),
        (
            lambda d: d.update(stimuli=[{"at_s": 0, "type": "current"}]),
            "stimuli[0].current_A: got null: required for type 'current'",
        ),
        (
            lambda d: d.update(faults=[{"at_s": 0.1, "type": "open_wire"}]),
            "faults[0].pin: got null: required for type 'open_wire'",
        ),
        (
            lambda d: d.update(faults=[{"at_s": 0.1, "type": "open_wire", "pin": 3, "device": 4}]),
            "faults[0].device: got 4: must be 0..0 (emulator.n_devices)",
        ),
        (
            lambda d: d.update(faults=[{"at_s": 0.1, "type": "melt", "pin": 3}]),
            'faults[0].type: got "melt"',
        ),
        (
            lambda d: d["expectations"][0].update(after="nothing"),
            'expectations[0].after: got "nothing": must name a fault',
        ),
        (
            lambda d: d["expectations"][0].update(signal="OV_Flag"),
            'expectations[0].signal: got "OV_Flag": must be Message.Signal',
        ),
        (
            lambda d: d["expectations"][0].update(kind="within"),
            "expectations[0].within_s: got null: required for kind 'within'",
        ),
        (lambda d: d["expectations"][0].update(op="~"), 'expectations[0].op: got "~"'),
        (lambda d: d["dut"].update(procss="inline"), "dut.procss: unknown key"),
        (lambda d: d.update(can_log="x.txt"), 'can_log: got "x.txt"'),
        (
            lambda d: d["emulator"].update(chip="nope.yaml"),
            "emulator.chip: got 'nope.yaml': no such file",
        ),
    ],
)
def test_bad_scenario_names_the_key(tmp_path: Path, edit, expect) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    edit(data)
    path = SCENARIOS / "x.yaml"  # resolve relative paths like a shipped scenario
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    for k in ("chip", "pack"):
        if data["emulator"][k] != "nope.yaml":
            data["emulator"][k] = str((path.parent / data["emulator"][k]).resolve())
    data["dut"]["dbc"] = str((path.parent / data["dut"]["dbc"]).resolve())
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_scenario(bad)
    assert expect in str(err.value) and str(bad) in str(err.value)


def test_cli_reports_bad_yaml_with_exit_code_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("kind: scenario\nname: [unclosed\n")
    assert hil_main(["run", str(bad)]) == 2
    assert "invalid YAML" in capsys.readouterr().err


def test_wall_clock_pace_holds_events_back_to_real_time(tmp_path: Path) -> None:
    """Paced: no event is applied before its wall time; a loaded machine may make it late."""
    res = run_scenario(SCENARIOS / "chip_silent.yaml", tmp_path, pace="wall_clock",
                       can={"channel": f"paced-{random.getrandbits(32)}"})  # fmt: skip
    assert res.passed
    assert res.wall_s >= 0.99 * res.emulated_s
    for r in res.events:
        assert r.wall_s is not None and r.wall_s >= r.scheduled_s - 1e-3
