"""``bms-emu run`` end to end, in process and as the installed console script."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bms_emu.cli.main import main
from bms_emu.trace import cell_columns, read_trace_csv, trace_header

REPO = Path(__file__).resolve().parent.parent


def test_run_with_constant_current_writes_trace(tmp_path, capsys, nmc_pack_path):
    out = tmp_path / "t.csv"
    rc = main(["run", "--pack", str(nmc_pack_path), "--current-A", "50", "--seconds", "600",
               "--dt-s", "1", "--record-every-s", "10", "--out", str(out),
               "--history", str(tmp_path / "h.sqlite")])
    assert rc == 0
    header, data = read_trace_csv(out)
    assert header == trace_header(16) + cell_columns("v_meas_", "_V", 16)
    assert data.shape == (61, len(header))
    # rows are stamped at the conversion's midpoint, just after each record time (the first
    # after the reference's 5 ms power-up)
    np.testing.assert_allclose(data[:, 0], np.arange(0, 601, 10.0), atol=1e-2)
    assert np.all(data[:, 1] == 50.0)
    soc = data[:, [header.index(f"soc_{i:02d}") for i in range(16)]]
    assert np.all(np.diff(soc, axis=0) < 0)  # discharging
    sense = data[:, [header.index(c) for c in cell_columns("v_sense_", "_V", 16)]]
    meas = data[:, [header.index(c) for c in cell_columns("v_meas_", "_V", 16)]]
    err = np.abs(meas - sense)
    assert err.max() < 1e-3  # the target chip's class
    assert err.max() > 10e-6  # and it is a real chip, not a copy of the truth
    out_text = capsys.readouterr().out
    assert "600 s emulated" in out_text and "bmic_target_1mV" in out_text
    # the run is recorded in the SQLite history (default: next to the trace's default folder)
    import sqlite3

    with sqlite3.connect(tmp_path / "h.sqlite") as db:
        rows = db.execute("SELECT r.sweep, m.key, m.value FROM runs r JOIN metrics m "
                          "USING(run_id) WHERE m.key = 'chip_err_max_mV'").fetchall()
    assert len(rows) == 1 and rows[0][0].endswith("/bmic_target_1mV")
    assert rows[0][2] == pytest.approx(1e3 * err.max())


def test_run_without_chip_writes_the_pack_trace(tmp_path, nmc_pack_path):
    out = tmp_path / "p.csv"
    assert main(["run", "--no-chip", "--pack", str(nmc_pack_path), "--seconds", "60",
                 "--out", str(out), "--no-history"]) == 0
    header, data = read_trace_csv(out)
    assert header == trace_header(16)
    np.testing.assert_array_equal(data[:, 0], np.arange(0, 61, 1.0))


def test_run_with_csv_profile(tmp_path):
    out = tmp_path / "p.csv"
    rc = main(["run", "--profile", str(REPO / "configs" / "profiles" / "hppc_pulse.csv"),
               "--seconds", "180", "--dt-s", "0.5", "--out", str(out), "--no-history"])
    assert rc == 0
    header, data = read_trace_csv(out)
    i = data[:, header.index("current_A")]
    t = data[:, 0]
    assert i[np.argmin(abs(t - 65.0))] == 280.0 and i[np.argmin(abs(t - 115.0))] == -210.0


def test_run_rejects_bad_arguments(tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert main(["run", "--seconds", "-1", "--out", str(out)]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: pack\nname: x\n")
    assert main(["run", "--pack", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "chemistry: required key is missing" in err
    assert not out.exists()


@pytest.mark.skipif(shutil.which("bms-emu") is None, reason="console script not installed")
def test_console_script_default_run(tmp_path):
    """The README's main command: no arguments, embedded defaults."""
    proc = subprocess.run(["bms-emu", "run", "--seconds", "120"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    _header, data = read_trace_csv(tmp_path / "bms-emu-out" / "trace.csv")
    assert data.shape[0] == 121
    assert (tmp_path / "bms-emu-out" / "history.sqlite").is_file()
