"""Sweep execution: bit-identical summaries whatever the chunking / workers, checkpoint and
resume, outputs, requirements, history and regression detection, the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from bms_emu.cli.main import main
from bms_emu.config import ConfigError
from bms_emu.sweep.execute import load_sweep, run_sweep

CHIPS = Path(__file__).resolve().parents[2] / "configs" / "chips"


def _run(cfg: Path, out: Path, **kw):
    kw.setdefault("report", False)
    return run_sweep(cfg, out, progress=False, **kw)


def test_summary_is_bit_identical_for_any_chunking(tmp_path, make_sweep):
    cfg = make_sweep(tmp_path)
    a = _run(cfg, tmp_path / "a", chunk_devices=100)
    b = _run(cfg, tmp_path / "b", chunk_devices=300)
    assert a.chunks_computed != b.chunks_computed
    assert (tmp_path / "a/summary.json").read_bytes() == (tmp_path / "b/summary.json").read_bytes()
    s = a.summary
    assert s["schema"] == "bms-emu.sweep.summary/1" and len(s["config_sha256"]) == 64
    ids = [r["id"] for r in s["results"]]
    assert ids == ["target/two_point", "target/two_point_board", "baseline/two_point"]
    r = s["results"][1]
    assert set(r["chemistries"]) == {"lfp", "nmc"} and r["n_devices"] == 600
    assert r["n_wafers"] == 6 and r["n_lots"] == 2
    f = r["chemistries"]["lfp"]["device"]["fallout"]
    assert [x["limit_mV"] for x in f] == [1.0, 1.2, 2.0, 3.0]
    assert all(x["cp95_lower_ppm"] <= x["ppm"] <= x["cp95_upper_ppm"] for x in f)
    # the checkpoint is removed after a successful run unless asked to keep it
    assert not (tmp_path / "a/checkpoint").exists()


def test_interrupted_run_resumes_without_redoing_chunks(tmp_path, make_sweep):
    cfg = make_sweep(tmp_path)
    ref = _run(cfg, tmp_path / "ref", curves=False)

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(cfg, tmp_path / "run", on_chunk=stop_after_two, curves=False)
    assert not (tmp_path / "run/summary.json").exists()  # no half-written outputs
    assert len(list((tmp_path / "run/checkpoint").rglob("*.npz"))) == 2
    res = _run(cfg, tmp_path / "run", curves=False)
    assert res.chunks_resumed == 2 and res.chunks_computed == ref.chunks_computed - 2
    assert (tmp_path / "run/summary.json").read_bytes() == (
        tmp_path / "ref/summary.json").read_bytes()


def test_killed_subprocess_resumes(tmp_path, make_sweep):
    """SIGKILL a CLI run once a chunk is checkpointed; the rerun reuses it, same summary."""
    cfg = make_sweep(tmp_path, n=1500, chunk=100)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "bms_emu.cli.main", "sweep", str(cfg), "--out", str(out),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if list((out / "checkpoint").rglob("*.npz")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (out / "summary.json").exists()
    n_saved = len(list((out / "checkpoint").rglob("*.npz")))
    assert n_saved >= 1
    res = _run(cfg, out)
    assert res.chunks_resumed == n_saved
    ref = _run(cfg, tmp_path / "ref")
    assert (out / "summary.json").read_bytes() == (tmp_path / "ref/summary.json").read_bytes()
    assert ref.chunks_resumed == 0


def test_local_dask_cluster_gives_the_same_bytes(tmp_path, make_sweep):
    pytest.importorskip("distributed", reason="dask[distributed] not installed (the cluster extra)")
    cfg = make_sweep(tmp_path)
    _run(cfg, tmp_path / "numpy")
    # In a subprocess: the cluster's threads and processes stay out of this test process.
    done = subprocess.run(
        [sys.executable, "-m", "bms_emu.cli.main", "sweep", str(cfg), "--workers", "2",
         "--out", str(tmp_path / "dask"), "--no-progress", "--chunk-devices", "100"],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "local x2" in (tmp_path / "dask/run.json").read_text()
    assert (tmp_path / "dask/summary.json").read_bytes() == (
        tmp_path / "numpy/summary.json").read_bytes()


def test_outputs_requirements_and_junit(tmp_path, make_sweep):
    cfg = make_sweep(tmp_path)
    res = _run(cfg, tmp_path / "o", report=True)
    reqs = {q["name"]: q for q in res.summary["requirements"]}
    # the baseline 3 mV chip does not hold +-1 mV: the expected failure is confirmed
    assert reqs["baseline fails 1 mV"]["verdict"] == "fail" and reqs["baseline fails 1 mV"]["ok"]
    assert reqs["target within 3 mV"]["verdict"] == "pass"
    assert res.exit_code == 0
    suite = ET.parse(tmp_path / "o/junit.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    html = (tmp_path / "o/report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "src=\"http" not in html
    assert "Trim-strategy comparison" in html and "extrapolated" in html.lower()


def test_target_chip_board_level_has_no_fallout_at_1mV(tmp_path, make_sweep):
    """Scaled-down version of the nightly verdict (the 3e6 run is in BENCHMARKS.md)."""
    cfg = make_sweep(tmp_path, n=20000, chunk=5000)
    doc = yaml.safe_load(cfg.read_text())
    doc["studies"] = [{"name": "board", "chip": str(CHIPS / "bmic_target_1mV.yaml"),
                       "n_devices": 20000, "strategies": ["two_point_board"],
                       "lifetime_points": ["after_reflow"], "chemistries": ["lfp"]}]
    doc["conditions"]["temp_C"]["n"] = 14
    doc["conditions"]["chemistries"]["lfp"]["v_cell_V"]["n"] = 6
    doc["requirements"] = [{"name": "1 mV, 3/n", "study": "board", "chemistry": "lfp",
                            "limit_mV": 1.0, "max_fallout_ppm": 150.0}]
    cfg.write_text(yaml.safe_dump(doc))
    res = run_sweep(cfg, tmp_path / "o", progress=False, curves=False, report=False)
    f = res.summary["results"][0]["chemistries"]["lfp"]["device"]["fallout"][0]
    assert f["k"] == 0 and f["cp95_upper_ppm"] == pytest.approx(1e6 * (1 - 0.05 ** (1 / 20000)))
    assert res.summary["requirements"][0]["verdict"] == "pass"


def test_worsened_profile_is_flagged_as_a_regression(tmp_path, make_sweep):
    hist = tmp_path / "history.sqlite"
    cfg = make_sweep(tmp_path)
    args = ["sweep", str(cfg), "--history", str(hist), "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "n1")]) == 0
    assert main([*args, "--out", str(tmp_path / "n2")]) == 0  # same again: no regression
    worse = yaml.safe_load((CHIPS / "bmic_target_1mV.yaml").read_text())
    worse["reference"]["drift_mean_ppm_per_sqrt_kh"] = 40.0  # twice the drift
    worse_path = tmp_path / "worse_chip.yaml"
    worse_path.write_text(yaml.safe_dump(worse))
    cfg2 = make_sweep(tmp_path, chip=worse_path)  # same sweep name, worse chip
    code = main(["sweep", str(cfg2), "--history", str(hist), "--no-progress",
                 "--out", str(tmp_path / "n3")])
    assert code == 3
    run = json.loads((tmp_path / "n3/run.json").read_text())
    flagged = {r["metric"] for r in run["regressions"]}
    assert "target/two_point_board/lfp/tme_max" in flagged
    suite = ET.parse(tmp_path / "n3/junit.xml").getroot()
    assert suite.get("failures") == "1"
    assert "History" in (tmp_path / "n3/report.html").read_text()


def test_config_errors_name_the_key(tmp_path, make_sweep):
    cfg = make_sweep(tmp_path)
    doc = yaml.safe_load(cfg.read_text())
    doc["studies"][1]["chemistries"] = ["lfp", "lto"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"studies\[1\]\.chemistries\[1\]: got \"lto\""):
        load_sweep(bad)
    del doc["conditions"]["chemistries"]["nmc"]
    doc["studies"][1]["chemistries"] = ["nmc"]
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"studies\[1\]\.chemistries: got \[\"nmc\"\]"):
        load_sweep(bad)
    doc["studies"][1]["chemistries"] = ["lfp"]
    doc["requirements"][0]["study"] = "nope"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"requirements\[0\]\.study"):
        load_sweep(bad)


def test_shipped_sweep_configs_load():
    root = Path(__file__).resolve().parents[2] / "configs" / "sweeps"
    for name in ("smoke.yaml", "nightly.yaml"):
        _, studies, digest = load_sweep(root / name)
        assert studies and len(digest) == 64
    _, studies, _ = load_sweep(root / "nightly.yaml")
    assert studies[0].n_devices >= 3_000_000


def test_cli_without_dask_says_so(monkeypatch, tmp_path, make_sweep):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    monkeypatch.setitem(sys.modules, "dask", None)
    assert main(["sweep", str(make_sweep(tmp_path)), "--workers", "2", "--no-progress",
                 "--out", str(tmp_path / "x")]) == 2
