"""Lot -> wafer -> die hierarchy: total variance kept, variance split as configured."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bms_emu.afe.chip import make_population
from bms_emu.config import load_chip
from bms_emu.sweep.population import (
    Hierarchy,
    wafer_population,
    wafer_seed,
    wafer_sizes,
    wafer_spec,
)

CHIPS = Path(__file__).resolve().parents[2] / "configs" / "chips"
SPEC = load_chip(CHIPS / "bmic_target_1mV.yaml")


def test_wafer_sizes_and_seeds():
    assert wafer_sizes(2500, 1000) == [1000, 1000, 500]
    assert wafer_sizes(2000, 1000) == [1000, 1000]
    assert wafer_seed(1, 0) != wafer_seed(1, 1) != wafer_seed(2, 1)
    assert wafer_seed(1, 5) == wafer_seed(1, 5)


def test_no_hierarchy_is_plain_make_population():
    h = Hierarchy(100, 5, ())
    assert wafer_spec(SPEC, 1, 3, h) is SPEC
    a = wafer_population(SPEC, 1, 3, 50, h, "two_point")
    b = make_population(SPEC, 50, wafer_seed(1, 3), "two_point")
    ra, rb = a.devices.reference, b.devices.reference
    np.testing.assert_array_equal(ra.a1_ppm_per_C, rb.a1_ppm_per_C)
    np.testing.assert_array_equal(a.codes.gain, b.codes.gain)


def test_hierarchy_splits_the_variance():
    """a1 with lot 0.3 / wafer 0.3: total sigma stays the chip's, die-level sigma sqrt(0.4)."""
    f_lot, f_wafer = 0.3, 0.3
    h = Hierarchy(40, 10, (("reference.a1", f_lot, f_wafer),))
    sigma = SPEC.reference.a1_sigma_ppm_per_C
    n_wafers = 600
    a1 = np.stack([wafer_population(SPEC, 9, w, 40, h, "none").devices.reference.a1_ppm_per_C
                   for w in range(n_wafers)])  # (wafer, die)
    total = a1.std()
    within = a1.std(axis=1, ddof=1).mean()
    lot_means = a1.reshape(60, 10, 40).mean(axis=(1, 2))
    assert abs(total / sigma - 1) < 0.08, total
    assert abs(within / (sigma * np.sqrt(1 - f_lot - f_wafer)) - 1) < 0.05, within
    # lot means vary with sigma ~ sqrt(f_lot + f_wafer/10 + f_die/400) sigma
    expect = sigma * np.sqrt(f_lot + f_wafer / 10 + (1 - f_lot - f_wafer) / 400)
    assert 0.7 < lot_means.std(ddof=1) / expect < 1.3
    # other parameters keep pure die-level spread
    spec_w = wafer_spec(SPEC, 9, 0, h)
    assert spec_w.reference.drift_mean_ppm_per_sqrt_kh == SPEC.reference.drift_mean_ppm_per_sqrt_kh
