"""``bms-emu eis``: files written, formats other tools read, errors reported by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bms_emu.cli.eis import parse_cells
from bms_emu.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CHIP = str(CONFIGS / "chips" / "bmic_target_1mV.yaml")
PACK = str(CONFIGS / "packs" / "lfp_16s_280Ah.yaml")


def test_eis_cli_writes_json_csv_per_cell_and_png(tmp_path, capsys):
    out = tmp_path / "eis"
    rc = main(["eis", "--chip", CHIP, "--pack", PACK, "--freqs", "0.5,1", "--cells", "2-3,9",
               "--min-integration-s", "10", "--out", str(out), "--seed", "4"])  # fmt: skip
    assert rc == 0
    doc = json.loads((out / "eis.json").read_text())
    assert [c["cell"] for c in doc["cells"]] == [2, 3, 9]
    pt = doc["cells"][0]["points"][1]
    assert pt["f_Hz"] == 1.0
    assert set(pt) >= {"z_Ohm", "z_true_Ohm", "mag_error_pct", "phase_error_deg", "u95_Ohm"}
    assert abs(pt["mag_error_pct"]) < 5 and abs(pt["phase_error_deg"]) < 3
    # impedance.py's readCSV: np.genfromtxt(delimiter=','), columns f, Re Z, Im Z, no header
    data = np.genfromtxt(out / "cell_09.csv", delimiter=",")
    assert data.shape == (2, 3) and np.isfinite(data).all()
    z9 = doc["cells"][2]["points"][0]["z_Ohm"]
    assert data[0, 1] == pytest.approx(z9[0]) and data[0, 2] == pytest.approx(z9[1])
    assert data[0, 2] < 0  # capacitive: Im Z negative
    png = (out / "nyquist_bode.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temporaries
    assert "worst |Z| error" in " ".join(capsys.readouterr().err.split())


def test_eis_cli_balance_reports_crosstalk(tmp_path):
    out = tmp_path / "bal"
    rc = main(["eis", "--chip", CHIP, "--pack", PACK, "--freqs", "1", "--excitation",
               "balance", "--cells", "4", "--min-integration-s", "5", "--out", str(out),
               "--no-plot"])  # fmt: skip
    assert rc == 0
    pt = json.loads((out / "eis.json").read_text())["cells"][0]["points"][0]
    assert pt["z_crosstalk_Ohm"][0] == pytest.approx(-0.05, rel=0.01)
    assert not (out / "nyquist_bode.png").exists()


def test_eis_cli_bad_arguments_are_reported(tmp_path, capsys):
    assert main(["eis", "--chip", CHIP, "--pack", PACK, "--freqs", "0.03",
                 "--out", str(tmp_path)]) == 2  # fmt: skip
    assert "integer" in capsys.readouterr().err
    assert main(["eis", "--chip", CHIP, "--pack", PACK, "--cells", "3-20",
                 "--out", str(tmp_path)]) == 2  # fmt: skip
    assert "outside" in capsys.readouterr().err


def test_parse_cells():
    assert parse_cells(None, 16) is None
    assert parse_cells("0-15", 16) == tuple(range(16))
    with pytest.raises(ValueError):
        parse_cells("a", 16)
