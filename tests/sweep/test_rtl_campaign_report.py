"""The RTL fault campaign (``campaign.json``) in the sweep report: validation with clear errors,
the report section, and ``run_sweep`` / ``bms-emu sweep --rtl-campaign`` wiring.

The document producer is tests/rtl/fault_campaign.py; its own test loads the real campaign
output with :func:`load_rtl_campaign`, so producer and reader stay in step.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bms_emu.cli.main import main
from bms_emu.config import ConfigError
from bms_emu.report.rtl_campaign import (
    SCHEMA,
    load_rtl_campaign,
    rtl_campaign_html,
    validate_rtl_campaign,
)
from bms_emu.sweep.execute import run_sweep

DOC = {
    "schema": SCHEMA,
    "design": {"name": "afe_datapath hardened", "toplevel": "afe_datapath_player",
               "n_bits": 10, "parameters": {"N_CH": 2}},
    "n_faults": 30,
    "counts": {"seu": {"detected": 6, "safe": 4}, "sa0": {"detected": 5, "latent": 1, "safe": 4},
               "sa1": {"detected": 9, "residual": 1}},
    "spfm": 0.995, "lfm": 0.93, "residual_fit": 0.002, "residual_ppm_mission": 0.175,
    "pack_residual_ppm_mission": 2.1,
    "mission": {"hours": 87660.0, "profile": "10 years x 100 % duty"},
    "detected_by": {"lockstep": 12, "ecc": 8},
    "gaps": {"residual: sa1 c_res_q": {"n": 1}},
    "danger": {"rule": "a C code off by more than 6 codes with no alarm"},
}


def _write(tmp: Path, doc: object, name: str = "campaign.json") -> Path:
    p = tmp / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return p


def test_valid_document_renders() -> None:
    assert validate_rtl_campaign(DOC) == []
    text = rtl_campaign_html(DOC)
    for want in ("RTL fault-injection campaign", "99.500 %", "93.000 %", "lockstep",
                 "residual: sa1 c_res_q", "87660 h"):
        assert want in text, want


def _bad(**change: object) -> dict:
    d = copy.deepcopy(DOC)
    for k, v in change.items():
        if v is None and k != "lfm":
            d.pop(k)
        else:
            d[k] = v
    return d


@pytest.mark.parametrize(("doc", "message"), [
    ("{not json", "not JSON"),
    ([1, 2], "top level must be a JSON object"),
    (_bad(schema="other/1"), "schema: expected"),
    (_bad(spfm="high"), "spfm: must be a number in [0, 1]"),
    (_bad(spfm=1.5), "spfm: must be a number in [0, 1]"),
    (_bad(residual_fit=-1.0), "residual_fit: must be a number >= 0"),
    (_bad(n_faults=31), "add up to 30, n_faults says 31"),
    (_bad(counts={"seu": {"dangerous": 3}}), "counts.seu: classes must be"),
    (_bad(mission=None), "mission.hours"),
])
def test_malformed_campaign_is_rejected_naming_the_file(tmp_path: Path, doc: object,
                                                        message: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(ConfigError) as err:
        load_rtl_campaign(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_rtl_campaign(tmp_path / "nope.json")


def test_sweep_report_includes_the_campaign(tmp_path: Path, make_sweep) -> None:
    cfg = make_sweep(tmp_path, n=200, chunk=200)
    camp = _write(tmp_path, DOC)
    res = run_sweep(cfg, tmp_path / "out", progress=False, curves=False,
                    rtl_campaign_path=camp)
    assert res.summary["rtl_campaign"] == DOC
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rtl_campaign"]["spfm"] == DOC["spfm"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert "RTL fault-injection campaign" in page and "99.500 %" in page


def test_sweep_without_campaign_has_no_section(tmp_path: Path, make_sweep) -> None:
    res = run_sweep(make_sweep(tmp_path, n=200, chunk=200), tmp_path / "out", progress=False,
                    curves=False)
    assert "rtl_campaign" not in res.summary
    assert "RTL fault-injection campaign" not in (tmp_path / "out" / "report.html").read_text()


def test_cli_rejects_a_malformed_campaign_before_sweeping(tmp_path: Path, make_sweep,
                                                          capsys) -> None:
    bad = _write(tmp_path, _bad(spfm="high"))
    out = tmp_path / "out"
    rc = main(["sweep", str(make_sweep(tmp_path)), "--rtl-campaign", str(bad), "--no-progress",
               "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "spfm" in err
    assert not (out / "summary.json").exists()


def test_cli_prints_the_campaign_line(tmp_path: Path, make_sweep, capsys) -> None:
    camp = _write(tmp_path, DOC)
    rc = main(["sweep", str(make_sweep(tmp_path)), "--rtl-campaign", str(camp),
               "--no-progress", "--out", str(tmp_path / "out")])
    assert rc == 0  # the tiny sweep's own requirements hold at its default size
    out = capsys.readouterr().out
    assert "RTL fault campaign afe_datapath hardened: SPFM 99.50%, LFM 93.00%" in out
