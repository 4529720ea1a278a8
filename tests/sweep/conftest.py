"""Small sweep configs written per test (absolute chip paths, so they work from tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CHIPS = Path(__file__).resolve().parents[2] / "configs" / "chips"


def tiny_sweep(tmp: Path, *, name: str = "tiny", chip: Path | None = None, n: int = 600,
               chunk: int = 200, **extra) -> Path:
    """A sweep of two studies on a coarse grid; returns the YAML path."""
    doc = {
        "kind": "sweep",
        "name": name,
        "seed": 3,
        "population": {
            "dies_per_wafer": 100,
            "wafers_per_lot": 3,
            "spread": {"reference.a1": {"lot_fraction": 0.3, "wafer_fraction": 0.2},
                       "frontend.gain": {"lot_fraction": 0.2, "wafer_fraction": 0.2}},
        },
        "conditions": {
            "temp_C": {"start": 0.0, "stop": 65.0, "n": 4},
            "chemistries": {"lfp": {"v_cell_V": {"start": 2.5, "stop": 3.65, "n": 2}},
                            "nmc": {"v_cell_V": {"start": 3.0, "stop": 4.2, "n": 2}}},
            "lifetime_points": ["as_trimmed", "after_reflow", "10y"],
        },
        "studies": [
            {"name": "target", "chip": str(chip or CHIPS / "bmic_target_1mV.yaml"),
             "n_devices": n, "strategies": ["two_point", "two_point_board"]},
            {"name": "baseline", "chip": str(CHIPS / "bmic_baseline_3mV.yaml"),
             "n_devices": 250, "lifetime_points": ["after_reflow"], "chemistries": ["lfp"]},
        ],
        "requirements": [
            {"name": "baseline fails 1 mV", "study": "baseline", "chemistry": "lfp",
             "limit_mV": 1.0, "max_fallout_ppm": 1.0, "expect": "fail"},
            {"name": "target within 3 mV", "study": "target", "strategy": "two_point_board",
             "chemistry": "lfp", "limit_mV": 3.0, "max_fallout_ppm": 10000.0},
        ],
        "execution": {"chunk_devices": chunk},
        **extra,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _fixed_code_version(monkeypatch):
    """Other engineers commit while tests run: pin the commit so summaries compare by bytes."""
    monkeypatch.setenv("BMS_EMU_GIT_COMMIT", "test")


@pytest.fixture()
def make_sweep():
    """The :func:`tiny_sweep` factory."""
    return tiny_sweep
