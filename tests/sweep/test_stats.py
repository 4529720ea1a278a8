"""Statistics oracles: exact binomial bounds, their coverage, a Gaussian population's tail."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from bms_emu.config import SweepConfig
from bms_emu.sweep import stats
from bms_emu.sweep.engine import _result
from bms_emu.sweep.soc import ocv_slope_mV_per_pct, soc_translation


def test_clopper_pearson_closed_forms():
    # k = 0: upper = 1 - alpha^(1/n) (rule of three); k = n: lower = alpha^(1/n)
    n = 3_000_000
    cp = stats.clopper_pearson(0, n)
    assert cp["upper"] == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)
    assert cp["upper"] * 1e6 <= 1.0  # 3e6 devices with no failure demonstrate 1 ppm at 95 %
    assert cp["lower"] == 0.0
    full = stats.clopper_pearson(20, 20)
    assert full["lower"] == pytest.approx(0.05 ** (1 / 20), rel=1e-9) and full["upper"] == 1.0
    # symmetry: bounds of k in n mirror those of n - k
    a, b = stats.clopper_pearson(3, 50), stats.clopper_pearson(47, 50)
    assert a["upper"] == pytest.approx(1 - b["lower"], rel=1e-9)
    assert a["two_sided_lower"] == pytest.approx(1 - b["two_sided_upper"], rel=1e-9)


@pytest.mark.parametrize("p", [1e-3, 0.01, 0.05, 0.3])
def test_clopper_pearson_coverage_is_at_least_95_percent(p):
    """Over many seeds, the one-sided upper bound and the two-sided interval cover the true p."""
    n, trials = 400, 4000
    ks = np.random.default_rng(int(p * 1e6)).binomial(n, p, trials)
    table = {k: stats.clopper_pearson(int(k), n) for k in np.unique(ks)}
    upper_ok = np.mean([p <= table[k]["upper"] for k in ks])
    two_ok = np.mean([table[k]["two_sided_lower"] <= p <= table[k]["two_sided_upper"]
                      for k in ks])
    # exact coverage is >= 95 % for every p (CP is conservative); allow the Monte Carlo error of
    # 4000 trials (sd 0.34 %) by 3 sd below 95 %
    assert upper_ok >= 0.95 - 0.01 and two_ok >= 0.95 - 0.01, (upper_ok, two_ok)
    # and the exact coverage, from the binomial pmf (no Monte Carlo), is >= 95 %
    k = np.arange(n + 1)
    pmf = sps.binom.pmf(k, n, p)
    cover = np.array([p <= stats.clopper_pearson(int(i), n)["upper"] if pmf[i] > 1e-12 else True
                      for i in k])
    assert pmf[cover].sum() >= 0.95


def test_gaussian_population_fallout_matches_the_analytic_tail():
    """16 channels with |N(0, sigma)| errors: P(device TME > L) = 1 - (1 - 2 Q(L/sigma))^16."""
    sigma_mV, n, n_ch = 0.3, 200_000, 16
    rng = np.random.default_rng(123)
    ch = np.abs(rng.standard_normal((n, n_ch))) * sigma_mV * 1e-3  # V
    cfg = SweepConfig(name="oracle", studies=[{"chip": "x", "n_devices": n}],
                      limits_mV=(0.9, 1.0, 1.2, 1.5, 1.6))
    exceed = (ch[:, :, None] > np.array(cfg.limits_mV) * 1e-3).sum(axis=0)
    hist = np.zeros((n_ch, 301), np.int64)
    res = _result(cfg, ch.max(axis=1), exceed, hist, ch.sum(axis=0)[None],
                  (ch * ch).sum(axis=0)[None], "lfp")
    for f in res["device"]["fallout"]:
        q = 2 * sps.norm.sf(f["limit_mV"] / sigma_mV)
        p_dev = 1 - (1 - q) ** n_ch
        lo, hi = f["cp95_two_sided_ppm"]
        assert lo <= 1e6 * p_dev <= hi, (f, 1e6 * p_dev)
    for f in res["channel"]["fallout"]:
        q = 2 * sps.norm.sf(f["limit_mV"] / sigma_mV)
        lo, hi = f["cp95_two_sided_ppm"]
        assert lo <= 1e6 * q <= hi, (f, 1e6 * q)
    # channel statistics: mean and std of |N(0, s)| = s sqrt(2/pi), s sqrt(1 - 2/pi)
    assert np.allclose(res["channel"]["mean_mV"], sigma_mV * np.sqrt(2 / np.pi), rtol=0.01)
    assert np.allclose(res["channel"]["std_mV"], sigma_mV * np.sqrt(1 - 2 / np.pi), rtol=0.02)
    # the deep limit (1.6 mV = 5.3 sigma: ~2 expected in 2e5) gets a labelled extrapolation
    # within a factor 3 of the analytic rate
    deep = res["device"]["fallout"][-1]
    assert deep["k"] < cfg.tail_min_count and deep["extrapolated"] is not None
    p_true = 1e6 * (1 - (1 - 2 * sps.norm.sf(1.6 / sigma_mV)) ** n_ch)
    assert p_true / 3 < deep["extrapolated"]["ppm"] < 3 * p_true
    assert "GPD" in deep["extrapolated"]["method"]


def test_cpk_and_percentiles():
    assert stats.cpk_upper(0.4, 0.1, 1.0) == pytest.approx(2.0)
    assert stats.cpk_upper(0.4, 0.0, 1.0) is None
    p = stats.percentiles(np.arange(1001.0))
    assert p["p50"] == 500.0 and p["p99.9"] == pytest.approx(999.0) and p["max"] == 1000.0


def test_soc_translation_uses_the_ocv_slope():
    lfp = ocv_slope_mV_per_pct("lfp", (0.2, 0.9))
    assert 0.3 <= lfp["min"] <= 0.8  # LFP plateau ~0.6 mV/%SOC (REFERENCE.md 1)
    nmc = ocv_slope_mV_per_pct("nmc", (0.2, 0.9))
    assert nmc["min"] > 2 * lfp["min"]  # NMC is much steeper: accuracy matters less
    t = soc_translation("lfp", (0.2, 0.9), {"one": 1.0})["by_tme"]["one"]
    assert t["soc_uncertainty_pct"] == pytest.approx(1.0 / lfp["min"])
    assert t["reserve_pct"] == pytest.approx(2.0 / lfp["min"])
