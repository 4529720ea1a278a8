"""The fast TME kernel equals the golden model (bms_emu.afe.chip.tme_V) bit for bit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bms_emu.afe.chip import make_population, tme_V
from bms_emu.config import load_chip
from bms_emu.sweep.kernel import tme_fast_V, tme_groups_V

CHIPS = Path(__file__).resolve().parents[2] / "configs" / "chips"
POINTS = ("as_trimmed", "after_reflow", "1000h", "10y")


@pytest.mark.parametrize("name", ["adbms6830_like", "bmic_baseline_3mV", "bmic_target_1mV"])
@pytest.mark.parametrize("strategy", ["none", "one_point", "two_point", "two_point_board"])
def test_fast_tme_is_bit_identical_to_the_golden_model(name, strategy):
    spec = load_chip(CHIPS / f"{name}.yaml")
    pop = make_population(spec, 150, seed=41, strategy=strategy)
    v = np.linspace(2.5, 4.2, 5)
    temps = np.array([-40.0, 0.0, 23.7, 65.0, 125.0])
    for path in ("C", "S"):
        golden = tme_V(pop, v, temps, POINTS, path=path)
        np.testing.assert_array_equal(tme_fast_V(pop, v, temps, POINTS, path=path), golden)


def test_voltage_groups_equal_separate_golden_calls():
    spec = load_chip(CHIPS / "bmic_target_1mV.yaml")
    pop = make_population(spec, 120, seed=5)
    lfp, nmc = np.linspace(2.5, 3.65, 3), np.linspace(3.0, 4.2, 4)
    temps = np.linspace(0, 65, 5)
    got = tme_groups_V(pop, np.r_[lfp, nmc], temps, ("after_reflow", "10y"),
                       np.array([0, 0, 0, 1, 1, 1, 1]), block=50)
    np.testing.assert_array_equal(got[:, :, 0], tme_V(pop, lfp, temps, ("after_reflow", "10y")))
    np.testing.assert_array_equal(got[:, :, 1], tme_V(pop, nmc, temps, ("after_reflow", "10y")))


def test_saturating_codes_match_too():
    """Huge errors drive the raw and register codes into saturation: still identical."""
    spec = load_chip(CHIPS / "bmic_baseline_3mV.yaml")
    spec = replace(spec, reference=replace(spec.reference, e0_sigma_ppm=3e5))
    pop = make_population(spec, 60, seed=2, strategy="none")
    v = np.array([0.01, 2.5, 6.0])
    temps = np.array([0.0, 65.0])
    np.testing.assert_array_equal(tme_fast_V(pop, v, temps, POINTS), tme_V(pop, v, temps, POINTS))
