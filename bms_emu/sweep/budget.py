"""Failure-rate budget, pure arithmetic: base FIT x measured outcome fractions -> residual rates.

Inputs are the integer outcome counts of the coverage campaigns (:mod:`bms_emu.sweep.coverage`)
and the budget config; nothing here is random, reads files or runs the emulator.

Definitions (per failure mode with base rate ``lambda`` FIT and ``n`` injections, of which
``D`` were detected, ``DU`` undetected dangerous and ``SU`` undetected safe):

* diagnostic coverage ``DC = D / (D + DU)`` (detected faults are not classified further; a
  mode with ``D + DU = 0`` has no coverage figure); exact Clopper-Pearson 95 % bounds;
* residual (undetected dangerous) rate ``lambda_RF = lambda DU / n``, and its conservative
  value ``lambda x CP95upper(DU, n)``; a mode no diagnostic ever caught (``D = 0``) contributes
  single-point faults ``lambda_SPF`` instead;
* latent multi-point faults: modes marked ``latent`` (faults of a safety mechanism) that stay
  undetected without being dangerous: ``lambda_MPF,L = lambda SU / n``;
* ISO 26262-5 metrics over all modes: ``SPFM = 1 - sum(lambda_SPF + lambda_RF) / sum(lambda)``,
  ``LFM = 1 - sum(lambda_MPF,L) / sum(lambda - lambda_SPF - lambda_RF)``;
* chip residual = sum over modes; pack residual = ``chips_per_pack`` x chip; probability over
  the mission ``t``: ``ppm = 1e6 (1 - exp(-lambda 1e-9 t))`` (1 FIT over 8766 h = 8.766 ppm).

The conservative figures add the per-mode one-sided 95 % upper bounds: a bound on the sum that
is at least 95 % (each term is), not an exact joint 95 % bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bms_emu.sweep.stats import clopper_pearson

__all__ = [
    "budget_section",
    "campaign_designs",
    "design_budget",
    "fit_to_ppm",
    "injections_to_bound",
    "mode_budget",
]


def fit_to_ppm(fit: float, hours: float) -> float:
    """Probability (ppm) of at least one failure at a constant ``fit`` over ``hours``.

    >>> round(fit_to_ppm(1.0, 8766.0), 3)
    8.766
    """
    return 1e6 * -math.expm1(-fit * 1e-9 * hours)


def injections_to_bound(p: float, confidence: float = 0.95) -> int:
    """Injections with zero events needed for a one-sided upper bound <= ``p``.

    >>> injections_to_bound(1e-3)
    2995
    """
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    return math.ceil(math.log(1.0 - confidence) / math.log(1.0 - p))


def mode_budget(name: str, fit: float, n: int, detected: int, undetected_dangerous: int,
                undetected_safe: int, *, latent: bool = False, hours: float = 87_660.0,
                **extra: Any) -> dict[str, Any]:
    """Budget row of one failure mode (keys: docs/sweep.md, ``budget.designs[].modes[]``)."""
    if detected + undetected_dangerous + undetected_safe != n or n < 1:
        raise ValueError(f"{name}: counts {detected}+{undetected_dangerous}+{undetected_safe} "
                         f"!= n={n}")
    d, du, su = detected, undetected_dangerous, undetected_safe
    covered = d + du
    cov: float | None = None
    cov_lo = cov_hi = None
    if covered:
        cov = d / covered
        cp = clopper_pearson(d, covered)
        cov_lo, cov_hi = cp["two_sided_lower"], cp["two_sided_upper"]
    res_frac = du / n
    res_up = clopper_pearson(du, n)["upper"]
    lat_frac = su / n if latent else 0.0
    lat_up = clopper_pearson(su, n)["upper"] if latent else 0.0
    spf = d == 0 and du > 0
    residual_fit = fit * res_frac
    return {
        "name": name,
        "fit": fit,
        "n": n,
        "detected": d,
        "undetected_dangerous": du,
        "undetected_safe": su,
        "coverage": cov,
        "coverage_cp95": None if cov is None else [cov_lo, cov_hi],
        "coverage_source": f"measured: {n} injections",
        "residual_fraction": res_frac,
        "residual_fraction_cp95_upper": res_up,
        "residual_fit": residual_fit,
        "residual_fit_cp95_upper": fit * res_up,
        "residual_ppm_mission": fit_to_ppm(residual_fit, hours),
        "single_point": spf,
        "latent": latent,
        "latent_fit": fit * lat_frac,
        "latent_fit_cp95_upper": fit * lat_up,
        **extra,
    }


def _metrics(rows: Sequence[Mapping[str, Any]], conservative: bool) -> dict[str, float | None]:
    up = "_cp95_upper" if conservative else ""
    total = math.fsum(r["fit"] for r in rows)
    spf = math.fsum(r[f"residual_fit{up}"] for r in rows if r["single_point"])
    rf = math.fsum(r[f"residual_fit{up}"] for r in rows if not r["single_point"])
    lat = math.fsum(r[f"latent_fit{up}"] for r in rows)
    spfm = None if total <= 0 else 1.0 - (spf + rf) / total
    rest = total - spf - rf
    lfm = None if rest <= 0 else 1.0 - lat / rest
    return {"lambda_total_fit": total, "lambda_spf_fit": spf, "lambda_rf_fit": rf,
            "lambda_latent_fit": lat, "spfm": spfm, "lfm": lfm}


def design_budget(name: str, chip: str, rows: list[dict[str, Any]], *, chips_per_pack: int,
                  hours: float, cell_fit: float) -> dict[str, Any]:
    """Totals of one design: chip and pack residual FIT and ppm, SPFM, LFM (point and cp95)."""
    point = _metrics(rows, conservative=False)
    cons = _metrics(rows, conservative=True)
    chip_fit = point["lambda_spf_fit"] + point["lambda_rf_fit"]  # type: ignore[operator]
    chip_up = cons["lambda_spf_fit"] + cons["lambda_rf_fit"]  # type: ignore[operator]
    totals = {
        "chip_fit_total": point["lambda_total_fit"],
        "chip_residual_fit": chip_fit,
        "chip_residual_fit_cp95": chip_up,
        "chip_residual_ppm_mission": fit_to_ppm(chip_fit, hours),
        "pack_residual_fit": chips_per_pack * chip_fit,
        "pack_residual_fit_cp95": chips_per_pack * chip_up,
        "pack_residual_ppm_mission": fit_to_ppm(chips_per_pack * chip_fit, hours),
        "pack_residual_ppm_mission_cp95": fit_to_ppm(chips_per_pack * chip_up, hours),
        "cell_fit": cell_fit,
        "chip_residual_vs_cell": None if cell_fit <= 0 else chip_fit / cell_fit,
        "chip_residual_vs_cell_cp95": None if cell_fit <= 0 else chip_up / cell_fit,
        "spfm": point["spfm"],
        "spfm_cp95": cons["spfm"],
        "lfm": point["lfm"],
        "lfm_cp95": cons["lfm"],
        "lambda_spf_fit": point["lambda_spf_fit"],
        "lambda_rf_fit": point["lambda_rf_fit"],
        "lambda_latent_fit": point["lambda_latent_fit"],
    }
    return {"name": name, "chip": chip, "modes": rows, "totals": totals}


_METRIC_KEY = {
    "pack_residual_ppm": ("pack_residual_ppm_mission", "max", "ppm over the mission"),
    "chip_residual_fit_vs_cell": ("chip_residual_vs_cell", "max", "x the cell FIT"),
    "spfm": ("spfm", "min", ""),
    "lfm": ("lfm", "min", ""),
}


def _verdict(req: Any, designs: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    key, sense, unit = _METRIC_KEY[req.metric]
    t = designs[req.design]["totals"]
    value = t[key + ("_cp95" if req.basis == "cp95" else "")]
    point = t[key]
    row: dict[str, Any] = {"name": req.name, "expect": req.expect, "design": req.design,
                           "metric": req.metric, "basis": req.basis, "limit": req.limit,
                           "value": value, "point": point}
    if value is None:
        row.update(verdict="error", ok=False, message=f"{req.metric} undefined (no FIT)")
        return row
    passed = value <= req.limit if sense == "max" else value >= req.limit
    verdict = "pass" if passed else "fail"
    op = "<=" if sense == "max" else ">="
    basis = (f"conservative: sum of per-mode CP95 upper bounds; point estimate {point:.4g}"
             if req.basis == "cp95" else "point estimate")
    row.update(verdict=verdict, ok=verdict == req.expect, message=(
        f"{req.design}: {req.metric} = {value:.4g}{' ' + unit if unit else ''} ({basis}); "
        f"requirement {op} {req.limit:g}"))
    return row


def budget_section(budget: Any, designs: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary's ``budget`` section (docs/sweep.md).

    ``designs`` as returned by :func:`design_budget`. The first design is the primary one: its
    ``modes`` and ``totals`` are repeated at the top level (what ``report.html`` shows first).
    """
    by_name = {d["name"]: d for d in designs}
    reqs = [_verdict(r, by_name) for r in budget.requirements]
    first = designs[0]
    notes = _notes(budget, designs)
    return {
        "chips_per_pack": budget.chips_per_pack,
        "mission_h": budget.mission_h,
        "cell_fit": budget.cell_fit,
        "cell_fit_source": budget.cell_fit_source,
        "dangerous_error_mV": budget.dangerous_error_mV,
        "injections_per_mode": budget.injections,
        "designs": designs,
        "modes": first["modes"],
        "totals": first["totals"],
        "requirements": reqs,
        "notes": notes,
    }


def _notes(budget: Any, designs: Sequence[dict[str, Any]]) -> list[str]:
    """What dominates each design's residual, which design does better, what n would resolve
    the pack requirement (all computed from the counts)."""
    notes = []
    hours, k = budget.mission_h, budget.chips_per_pack
    for d in designs:
        top = sorted((m for m in d["modes"] if m["residual_fit"] > 0),
                     key=lambda m: -m["residual_fit"])[:3]
        if not top:
            notes.append(f"{d['name']}: no undetected dangerous injection in the campaign.")
            continue
        tot = d["totals"]["chip_residual_fit"]
        parts = []
        for m in top:
            rng = m.get("undetected_dangerous_magnitude")
            unit = m.get("magnitude_unit") or ""
            where = "" if not rng else (f", undetected dangerous at |magnitude| "
                                        f"{rng[0]:.4g}-{rng[1]:.4g} {unit}")
            parts.append(f"{m['name']} {m['residual_fit']:.3g} FIT "
                         f"({100 * m['residual_fit'] / tot:.0f} %{where})")
        notes.append(f"{d['name']}: largest residual contributors: " + "; ".join(parts) + ".")
    if len(designs) > 1:
        for mi, m0 in enumerate(designs[0]["modes"]):
            best = min(designs, key=lambda d: d["modes"][mi]["residual_fit"])
            r0, rb = m0["residual_fit"], best["modes"][mi]["residual_fit"]
            if rb < r0:
                notes.append(f"{m0['name']}: residual {r0:.3g} FIT on {designs[0]['name']}, "
                             f"{rb:.3g} FIT on {best['name']} (coverage "
                             f"{_pct(m0['coverage'])} -> {_pct(best['modes'][mi]['coverage'])}).")
    for r in budget.requirements:
        if r.metric != "pack_residual_ppm":
            continue
        # pack ppm limit -> chip residual FIT budget -> per-mode fraction if all modes share it
        # in proportion to their FIT: p = chip_fit_budget / total FIT
        lam_pack = -math.log1p(-r.limit * 1e-6) / (hours * 1e-9)
        d = next(x for x in designs if x["name"] == r.design)
        total = d["totals"]["chip_fit_total"]
        if total > 0:
            p = lam_pack / k / total
            n = injections_to_bound(p) if 0 < p < 1 else None
            notes.append(
                f"{r.name}: the pack may leave {lam_pack:.3g} FIT undetected, "
                f"{lam_pack / k:.3g} FIT per chip = {100 * p:.3g} % of its {total:g} FIT; a "
                f"conservative (CP95) demonstration with zero undetected dangerous injections "
                f"needs >= {n} injections per mode" + ("." if n is None else
                f" (this run: {budget.injections})."))
    return notes


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def campaign_designs(
    budget: Any, designs: Sequence[tuple[str, str]], diagnostics: Sequence[str],
    chunks: Mapping[str, Mapping[str, NDArray[Any]]], tasks: Sequence[Any],
) -> list[dict[str, Any]]:
    """Chunk outcome arrays -> per design budget (rows per mode + totals).

    ``designs``: ``(name, chip name)`` in config order; ``tasks``: the campaign chunks (with
    ``design_index``, ``mode_index``, ``lo``, ``key``); ``diagnostics``: names of the
    ``diag_mask`` bits. Counts are integers: the result does not depend on the chunking.
    """
    out = []
    for di, (dname, chip) in enumerate(designs):
        rows = []
        for mi, mode in enumerate(budget.modes):
            mine = sorted((t for t in tasks if t.design_index == di and t.mode_index == mi),
                          key=lambda t: t.lo)
            if not mine:
                continue
            det = np.concatenate([chunks[t.key]["detected"] for t in mine]).astype(bool)
            dang = np.concatenate([chunks[t.key]["dangerous"] for t in mine]).astype(bool)
            mask = np.concatenate([chunks[t.key]["diag_mask"] for t in mine])
            mag = np.concatenate([chunks[t.key]["magnitude"] for t in mine])
            du = ~det & dang
            by_diag = {name: int(np.count_nonzero(mask & (1 << b)))
                       for b, name in enumerate(diagnostics)}
            hidden = np.abs(mag[du])
            rows.append(mode_budget(
                mode.name, mode.fit, int(det.size), int(det.sum()), int(du.sum()),
                int((~det & ~dang).sum()), latent=mode.latent, hours=budget.mission_h,
                kind=mode.kind, fit_source=mode.fit_source,
                magnitude_unit=None if mode.magnitude is None else mode.magnitude.unit,
                detected_by=by_diag,
                undetected_dangerous_magnitude=(
                    None if hidden.size == 0 else [float(hidden.min()), float(hidden.max())]),
            ))
        out.append(design_budget(dname, chip, rows, chips_per_pack=budget.chips_per_pack,
                                 hours=budget.mission_h, cell_fit=budget.cell_fit))
    return out
