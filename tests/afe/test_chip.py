"""Chip populations: error chain vs closed form, life cycle, strategies, profile classes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bms_emu.afe.chip import (
    AccuracyClass,
    ChipSpec,
    TrimPlan,
    cell_error_V,
    make_population,
    register_quantise_V,
    tme_V,
)
from bms_emu.afe.die_thermal import DieThermalSpec, TempSensorSpec
from bms_emu.afe.frontend import FrontEndSpec
from bms_emu.afe.reference import ReferenceSpec
from bms_emu.afe.trim import PathSpec
from bms_emu.config import load_chip

CHIPS = Path(__file__).resolve().parents[2] / "configs" / "chips"

ZERO_REF = ReferenceSpec(
    e0_sigma_ppm=0, a1_sigma_ppm_per_C=0, a2_sigma_ppm_per_C2=0, hyst_mean_ppm=0,
    hyst_sigma_ppm=0, reflow_mean_ppm=0, reflow_sigma_ppm=0, reflow_recovery_frac_sigma=0,
    drift_mean_ppm_per_sqrt_kh=0, drift_sigma_ppm_per_sqrt_kh=0,
)
IDEAL = ChipSpec(
    name="ideal",
    reference=ZERO_REF,
    path=PathSpec(0, 0),
    s_path=PathSpec(0, 0),
    sensor=TempSensorSpec(0, 0, 0),
    die_thermal=DieThermalSpec(p_quiescent_W=1e-12, p_quiescent_rel_sigma=0, r_th_rel_sigma=0),
    trim=TrimPlan(strategy="none", tester_noise_uV=0, board_ref_noise_uV=0),
)


def test_ideal_chip_error_is_only_the_register_quantisation():
    pop = make_population(IDEAL, 3, seed=0)
    v = np.array([2.5, 3.2999, 3.31234, 4.2])
    err = cell_error_V(pop, v, np.array([0.0, 65.0]), 0.0)
    expected = register_quantise_V(np.round(v / (150e-6 / 16)) * (150e-6 / 16)) - v
    np.testing.assert_allclose(err, np.broadcast_to(expected, err.shape), atol=1e-12)
    assert np.abs(err).max() <= 75e-6 + 1e-12


def test_linear_tempco_untrimmed_matches_closed_form():
    """Only a1: reading = v / (1 + a1 (T_die - 25)), T_die = T_amb + R_th P_q."""
    spec = replace(IDEAL, reference=replace(ZERO_REF, a1_mean_ppm_per_C=40.0))
    pop = make_population(spec, 2, seed=0)
    temps = np.array([0.0, 25.0, 65.0])
    v = np.array([3.3])
    err = cell_error_V(pop, v, temps, 0.0)
    t_die = temps + 40.0 * 1e-12
    raw = np.round(3.3 / (1 + 40e-6 * (t_die - 25.0)) / (150e-6 / 16))
    expected = register_quantise_V(raw * 150e-6 / 16) - 3.3
    np.testing.assert_allclose(err[0, 0, :, 0], expected, atol=1e-12)
    assert err[0, 0, 0, 0] > 3e-3 and err[0, 0, 2, 0] < -4e-3  # -25 C: +3.3 mV; +40 C: -5.3 mV


def test_two_point_trim_removes_the_linear_tempco():
    spec = replace(IDEAL, reference=replace(ZERO_REF, a1_sigma_ppm_per_C=20.0, e0_sigma_ppm=2000),
                   trim=replace(IDEAL.trim, strategy="two_point"))
    pop = make_population(spec, 200, seed=3)
    tme = tme_V(pop, np.linspace(2.5, 4.2, 5), np.linspace(0, 65, 8), ("as_trimmed",))
    # residual: quantisation of the codes (< 2 ppm, REFERENCE: trim LSBs) + 75 uV register LSB
    assert tme.max() < 75e-6 + 2e-6 * 4.2 + 1e-9
    untrimmed = make_population(spec, 200, seed=3, strategy="none")
    assert tme_V(untrimmed, np.array([3.3]), np.array([0.0, 65.0]), ("as_trimmed",)).max() > 5e-3


def test_board_trim_removes_reflow_shift():
    ref = replace(ZERO_REF, reflow_mean_ppm=200.0, reflow_recovery_frac=0.0,
                  reflow_recovery_frac_sigma=0.0)
    spec = replace(IDEAL, reference=ref, trim=replace(IDEAL.trim, strategy="two_point"))
    v, temps = np.array([3.3]), np.array([25.0])
    factory_only = make_population(spec, 50, seed=1)
    board = make_population(spec, 50, seed=1, strategy="two_point_board")
    t = factory_only.lifetime_h("after_reflow")
    e_factory = cell_error_V(factory_only, v, temps, t)
    e_board = cell_error_V(board, v, temps, t)
    # +200 ppm reference shift reads 200 ppm low: -0.66 mV, quantised
    np.testing.assert_allclose(e_factory, register_quantise_V(np.array(3.3 / 1.0002)) - 3.3,
                               atol=20e-6)
    assert np.abs(e_board).max() <= 75e-6 + 5e-6
    # before assembly there is no shift for either
    assert np.abs(cell_error_V(factory_only, v, temps, 0.0)).max() <= 80e-6


def test_strategies_rank_as_expected_on_the_target_chip():
    spec = load_chip(CHIPS / "bmic_target_1mV.yaml")
    v, temps = np.linspace(2.5, 3.65, 5), np.linspace(0, 65, 8)
    med = {}
    for strategy in ("none", "one_point", "two_point", "two_point_board"):
        pop = make_population(spec, 300, seed=5, strategy=strategy)
        med[strategy] = np.median(tme_V(pop, v, temps, ("after_reflow",)).max(axis=1))
    assert med["none"] > med["one_point"] > med["two_point"] > med["two_point_board"]


def test_shared_reference_cancels_in_the_c_minus_s_difference():
    """A shared reference is a common cause: its error does not show in C - S."""
    noisy_ref = replace(ZERO_REF, e0_sigma_ppm=3000.0)
    fe = FrontEndSpec(offset_uV_sigma=50.0)
    shared = replace(IDEAL, reference=noisy_ref, frontend=fe, s_frontend=fe)
    separate = replace(shared, s_reference=noisy_ref)
    v, temps = np.array([3.3]), np.array([25.0])
    diffs = {}
    for name, spec in (("shared", shared), ("separate", separate)):
        pop = make_population(spec, 400, seed=2)
        c = cell_error_V(pop, v, temps, 0.0, path="C")
        s = cell_error_V(pop, v, temps, 0.0, path="S")
        diffs[name] = np.std(c - s)
    assert diffs["shared"] < 150e-6  # front-end offsets and quantisation only
    assert diffs["separate"] > 5 * diffs["shared"]  # 3000 ppm x 3.3 V x sqrt(2) ~ 14 mV


def test_population_is_deterministic_and_blockwise_equal():
    spec = load_chip(CHIPS / "bmic_target_1mV.yaml")
    v, temps = np.array([3.0, 3.6]), np.array([10.0, 50.0])
    a = tme_V(make_population(spec, 100, seed=9), v, temps, ("after_reflow", "10y"))
    b = tme_V(make_population(spec, 100, seed=9), v, temps, ("after_reflow", "10y"), block=7)
    np.testing.assert_array_equal(a, b)
    c = tme_V(make_population(spec, 100, seed=10), v, temps, ("after_reflow", "10y"))
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["adbms6830_like", "bmic_baseline_3mV", "bmic_target_1mV"])
def test_profile_population_lands_in_its_accuracy_class(name):
    spec = load_chip(CHIPS / f"{name}.yaml")
    acc = spec.accuracy
    assert isinstance(acc, AccuracyClass)
    pop = make_population(spec, 1000, seed=2026)
    temps = np.linspace(*acc.temp_C, 14)
    volts = np.linspace(*acc.v_cell_V, 6)
    tme_mV = 1e3 * tme_V(pop, volts, temps, acc.lifetime_points).max(axis=1)
    assert np.mean(tme_mV <= acc.tme_mV) >= acc.fraction, np.percentile(tme_mV, [50, 99, 100])
    # and the class is not trivially loose: the median device uses a real share of it
    assert np.median(tme_mV) > 0.25 * acc.tme_mV


def test_profiles_are_distinct_classes():
    """The baseline chip does not hold +-1 mV over 0-65 C; the target chip does."""
    temps, volts = np.linspace(0, 65, 14), np.linspace(2.5, 3.65, 6)
    frac = {}
    for name in ("bmic_baseline_3mV", "bmic_target_1mV"):
        pop = make_population(load_chip(CHIPS / f"{name}.yaml"), 500, seed=11)
        tme = tme_V(pop, volts, temps, ("after_reflow",)).max(axis=1)
        frac[name] = np.mean(tme <= 1e-3)
    assert frac["bmic_baseline_3mV"] < 0.5
    assert frac["bmic_target_1mV"] == 1.0
