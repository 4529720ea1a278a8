"""The RTL fault-injection campaign (``campaign.json`` of ``tests/rtl/fault_campaign.py``) in
the sweep report: load and validate it, render its section.

The campaign is an input of the report, not computed by the sweep: ``bms-emu sweep CONFIG
--rtl-campaign campaign.json`` copies the validated document into ``summary.json`` under
``rtl_campaign`` and ``report.html`` shows it next to the analog failure-rate budget.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from bms_emu.config import ConfigError

__all__ = ["SCHEMA", "load_rtl_campaign", "rtl_campaign_html", "validate_rtl_campaign"]

#: Schema id written by tests/rtl/fault_campaign.py (one definition, imported there).
SCHEMA = "bms-emu/rtl-fault-campaign/1"
_CLASSES = ("detected", "residual", "latent", "safe")


def _fraction(x: Any) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)
                         and math.isfinite(x) and 0.0 <= x <= 1.0)


def _nonneg(x: Any) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            and x >= 0)


def validate_rtl_campaign(doc: Any) -> list[str]:
    """Problems of a campaign document (empty if it is usable), one line each."""
    if not isinstance(doc, dict):
        return [f"top level must be a JSON object, got {type(doc).__name__}"]
    probs = []
    if doc.get("schema") != SCHEMA:
        probs.append(f"schema: expected {SCHEMA!r}, got {doc.get('schema')!r}")
    design = doc.get("design")
    if not isinstance(design, dict) or not isinstance(design.get("name"), str):
        probs.append("design.name: missing or not a string")
    for key in ("spfm", "lfm"):
        if key not in doc or not _fraction(doc[key]):
            probs.append(f"{key}: must be a number in [0, 1] or null, got {doc.get(key)!r}")
    for key in ("residual_fit", "residual_ppm_mission", "pack_residual_ppm_mission"):
        if not _nonneg(doc.get(key)):
            probs.append(f"{key}: must be a number >= 0, got {doc.get(key)!r}")
    n = doc.get("n_faults")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        probs.append(f"n_faults: must be an integer >= 1, got {n!r}")
    counts = doc.get("counts")
    if not isinstance(counts, dict) or not counts:
        probs.append("counts: must map fault model -> {class: count}")
    else:
        total = 0
        for kind, row in counts.items():
            if not isinstance(row, dict) or not all(
                    c in _CLASSES and isinstance(v, int) and v >= 0 for c, v in row.items()):
                probs.append(f"counts.{kind}: classes must be {_CLASSES} with counts >= 0, "
                             f"got {row!r}")
            else:
                total += sum(row.values())
        if isinstance(n, int) and not probs and total != n:
            probs.append(f"counts: add up to {total}, n_faults says {n}")
    mission = doc.get("mission")
    if not isinstance(mission, dict) or not _nonneg(mission.get("hours")):
        probs.append("mission.hours: missing or not a number >= 0")
    return probs


def load_rtl_campaign(path: str | Path) -> dict[str, Any]:
    """Read and validate ``campaign.json``; a bad file raises :class:`ConfigError` naming it.

    >>> load_rtl_campaign("/nonexistent/campaign.json")
    Traceback (most recent call last):
    ...
    bms_emu.config.ConfigError: /nonexistent/campaign.json: cannot read: ...
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(p), [f"not JSON: {exc.msg} at line {exc.lineno} column "
                                   f"{exc.colno}"]) from None
    probs = validate_rtl_campaign(doc)
    if probs:
        raise ConfigError(str(p), [f"not an RTL fault campaign: {q}" for q in probs])
    return doc


def _e(x: Any) -> str:
    return html.escape(str(x))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.3f} %"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def rtl_campaign_html(doc: dict[str, Any]) -> str:
    """The report section of a validated campaign document."""
    d = doc["design"]
    m = doc["mission"]
    out = ["<h2>RTL fault-injection campaign</h2>",
           f"<p>{_e(d['name'])} ({_e(d.get('toplevel', ''))}, "
           f"{_e(d.get('n_bits', '?'))} flop bits, parameters {_e(d.get('parameters', {}))}): "
           f"{doc['n_faults']} faults; mission {m['hours']:g} h "
           f"({_e(m.get('profile', ''))}). Dangerous: {_e(doc.get('danger', {}).get('rule', ''))}."
           "</p>"]
    rows = [["SPFM (16-channel chip)", _pct(doc["spfm"])],
            ["LFM (permanent faults)", _pct(doc["lfm"])],
            ["residual FIT (chip)", f"{doc['residual_fit']:.4g}"],
            ["residual ppm / mission (chip)", f"{doc['residual_ppm_mission']:.4g}"],
            ["residual ppm / mission (pack)", f"{doc['pack_residual_ppm_mission']:.4g}"]]
    out.append(_table(["metric", "value"], rows))
    crow = [[_e(k)] + [str(v.get(c, 0)) for c in _CLASSES]
            for k, v in doc["counts"].items()]
    out.append(_table(["fault model", *_CLASSES], crow))
    by = doc.get("detected_by") or {}
    if by:
        out.append(_table(["mechanism", "faults detected"],
                          [[_e(k), str(v)] for k, v in sorted(by.items())]))
    gaps = doc.get("gaps") or {}
    if gaps:
        out.append("<p>Residual and latent faults (first 40 groups):</p>")
        out.append(_table(["fault", "n"], [[_e(k), _e(v.get("n", ""))]
                                           for k, v in gaps.items()]))
    return "\n".join(out)
