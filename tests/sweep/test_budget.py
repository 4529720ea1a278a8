"""Failure-rate budget arithmetic against hand calculations (bms_emu.sweep.budget).

Truth: REFERENCE.md 7 (1 FIT = 1e-9 / h; 8.77 ppm per year), ISO 26262-5 metric definitions,
the rule of three, and an independent exact binomial interval (scipy.stats.binomtest).
"""

from __future__ import annotations

import math
from itertools import pairwise
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import binomtest

from bms_emu.config import BudgetConfig
from bms_emu.sweep.budget import (
    budget_section,
    campaign_designs,
    design_budget,
    fit_to_ppm,
    injections_to_bound,
    mode_budget,
)


def test_fit_to_ppm_matches_the_reference_figures():
    # REFERENCE.md 7: 1 FIT = 8.77 ppm per year (8766 h), 87.7 ppm over 10 years
    assert fit_to_ppm(1.0, 8766.0) == pytest.approx(8.766, abs=1e-3)
    assert fit_to_ppm(1.0, 87_660.0) == pytest.approx(87.66, rel=1e-3)
    # small rates are linear; large ones saturate as 1 - exp(-lambda t)
    assert fit_to_ppm(1e-3, 1e5) == pytest.approx(0.1, rel=1e-6)
    assert fit_to_ppm(1e6, 1e4) == pytest.approx(1e6 * (1 - math.exp(-10.0)))


def test_zero_failure_injections_follow_the_rule_of_three():
    # 0 events in n: one-sided 95 % upper bound 1 - 0.05^(1/n) ~ 3/n
    assert injections_to_bound(1e-3) == 2995
    assert injections_to_bound(1e-6) == pytest.approx(3.0e6, rel=2e-3)


def _rows():
    a = mode_budget("A", 10.0, 100, 90, 5, 5, hours=87_660.0)  # covered, residual 0.5 FIT
    b = mode_budget("B", 2.0, 50, 0, 10, 40, hours=87_660.0)  # no diagnostic: SPF 0.4 FIT
    c = mode_budget("C", 1.0, 10, 0, 0, 10, latent=True, hours=87_660.0)  # latent 1.0 FIT
    return a, b, c


def test_mode_rows_by_hand():
    a, b, c = _rows()
    assert a["coverage"] == pytest.approx(90 / 95)
    assert a["residual_fit"] == pytest.approx(0.5) and not a["single_point"]
    assert b["coverage"] == 0.0 and b["single_point"] and b["residual_fit"] == pytest.approx(0.4)
    assert c["coverage"] is None and c["latent_fit"] == pytest.approx(1.0)
    # CP on the coverage: an independent exact interval
    ci = binomtest(90, 95).proportion_ci(confidence_level=0.95, method="exact")
    assert a["coverage_cp95"] == pytest.approx([ci.low, ci.high], rel=1e-9)
    # zero undetected dangerous in 10: residual bound = fit x (1 - 0.05^(1/10))
    assert c["residual_fit_cp95_upper"] == pytest.approx(1.0 * (1 - 0.05 ** 0.1))
    with pytest.raises(ValueError, match="counts"):
        mode_budget("bad", 1.0, 10, 5, 5, 5)


def test_chip_and_pack_totals_spfm_lfm_by_hand():
    rows = list(_rows())
    d = design_budget("d", "chip", rows, chips_per_pack=12, hours=87_660.0, cell_fit=1.0)
    t = d["totals"]
    assert t["chip_fit_total"] == pytest.approx(13.0)
    assert t["lambda_spf_fit"] == pytest.approx(0.4)
    assert t["lambda_rf_fit"] == pytest.approx(0.5)
    assert t["chip_residual_fit"] == pytest.approx(0.9)
    assert t["pack_residual_fit"] == pytest.approx(10.8)
    # 10.8 FIT x 87660 h = 9.46728e-4 -> 1 - exp(-x) = 946.28 ppm
    assert t["pack_residual_ppm_mission"] == pytest.approx(946.28, abs=0.01)
    assert t["spfm"] == pytest.approx(1 - 0.9 / 13)  # 0.9308
    assert t["lfm"] == pytest.approx(1 - 1.0 / (13 - 0.9))  # 0.9174
    assert t["chip_residual_vs_cell"] == pytest.approx(0.9)
    # the conservative totals add the per-mode upper bounds, so they are never better
    assert t["chip_residual_fit_cp95"] > t["chip_residual_fit"]
    assert t["spfm_cp95"] < t["spfm"] and t["lfm_cp95"] < t["lfm"]


def _budget(**req) -> BudgetConfig:
    return BudgetConfig.model_validate({
        "pack": "p.yaml", "chips_per_pack": 12, "cell_fit": 1.0, "cell_fit_source": "test",
        "dangerous_error_mV": 10.0, "injections": 100,
        "designs": [{"name": "d", "chip": "c.yaml"}],
        "modes": [{"name": "A", "kind": "c_gain_drift", "fit": 10.0, "fit_source": "t"}],
        "requirements": [{"name": "r", "design": "d", **req}],
    })


@pytest.mark.parametrize("req, verdict", [
    ({"metric": "pack_residual_ppm", "limit": 1000.0, "basis": "point"}, "pass"),  # 946 ppm
    ({"metric": "pack_residual_ppm", "limit": 900.0, "basis": "point"}, "fail"),
    ({"metric": "pack_residual_ppm", "limit": 1000.0}, "fail"),  # the cp95 bound is larger
    ({"metric": "spfm", "limit": 0.93, "basis": "point"}, "pass"),  # 0.9308
    ({"metric": "spfm", "limit": 0.99, "basis": "point"}, "fail"),
    ({"metric": "lfm", "limit": 0.9, "basis": "point"}, "pass"),  # 0.9174
    ({"metric": "chip_residual_fit_vs_cell", "limit": 1.0, "basis": "point"}, "pass"),
])
def test_requirement_verdicts(req, verdict):
    d = design_budget("d", "chip", list(_rows()), chips_per_pack=12, hours=87_660.0,
                      cell_fit=1.0)
    sec = budget_section(_budget(**req), [d])
    (r,) = sec["requirements"]
    assert r["verdict"] == verdict and r["ok"] == (verdict == "pass")
    assert sec["totals"] is d["totals"] and sec["notes"]


def test_campaign_counts_do_not_depend_on_the_chunking():
    rng = np.random.default_rng(5)
    n = 30
    arrays = {"detected": rng.integers(0, 2, n).astype(np.int8),
              "dangerous": rng.integers(0, 2, n).astype(np.int8),
              "diag_mask": rng.integers(0, 8, n), "magnitude": rng.random(n)}
    budget = _budget(metric="spfm", limit=0.9)

    def run(cuts):
        tasks, chunks = [], {}
        for lo, hi in pairwise(cuts):
            t = SimpleNamespace(design_index=0, mode_index=0, lo=lo, key=f"k{lo}")
            tasks.append(t)
            chunks[t.key] = {k: v[lo:hi] for k, v in arrays.items()}
        return campaign_designs(budget, [("d", "chip")], ("pec", "cs", "vref2"), chunks,
                                tasks[::-1])

    a, b = run([0, 30]), run([0, 7, 19, 30])
    assert a == b
    m = a[0]["modes"][0]
    det, dang = arrays["detected"].astype(bool), arrays["dangerous"].astype(bool)
    assert m["detected"] == det.sum() and m["undetected_dangerous"] == (~det & dang).sum()
    assert m["detected_by"]["pec"] == np.count_nonzero(arrays["diag_mask"] & 1)
