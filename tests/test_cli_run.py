"""``bms-emu run`` end to end, in process and as the installed console script."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bms_emu.cli.main import main
from bms_emu.trace import read_trace_csv, trace_header

REPO = Path(__file__).resolve().parent.parent


def test_run_with_constant_current_writes_trace(tmp_path, capsys, nmc_pack_path):
    out = tmp_path / "t.csv"
    rc = main(["run", "--pack", str(nmc_pack_path), "--current-A", "50", "--seconds", "600",
               "--dt-s", "1", "--record-every-s", "10", "--out", str(out)])
    assert rc == 0
    header, data = read_trace_csv(out)
    assert header == trace_header(16)
    assert data.shape == (61, len(header))
    np.testing.assert_allclose(data[:, 0], np.arange(0, 601, 10.0))
    assert np.all(data[:, 1] == 50.0)
    soc = data[:, [header.index(f"soc_{i:02d}") for i in range(16)]]
    assert np.all(np.diff(soc, axis=0) < 0)  # discharging
    assert "600 s emulated" in capsys.readouterr().out


def test_run_with_csv_profile(tmp_path):
    out = tmp_path / "p.csv"
    rc = main(["run", "--profile", str(REPO / "configs" / "profiles" / "hppc_pulse.csv"),
               "--seconds", "180", "--dt-s", "0.5", "--out", str(out)])
    assert rc == 0
    header, data = read_trace_csv(out)
    i = data[:, header.index("current_A")]
    t = data[:, 0]
    assert i[t == 65.0][0] == 280.0 and i[t == 115.0][0] == -210.0


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
    header, data = read_trace_csv(tmp_path / "bms-emu-out" / "trace.csv")
    assert data.shape[0] == 121
