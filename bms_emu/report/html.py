"""Self-contained ``report.html``: tables and matplotlib PNGs embedded as base64 (no other files).

Everything is drawn from the summary document (and the history trend series), so a report can
be re-rendered from a stored ``summary.json``.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}.pass{color:#070}.fail{color:#b00;
font-weight:bold}.extra{color:#a60;font-style:italic}img{max-width:100%}h2{border-bottom:1px solid
#ccc}.note{color:#555;font-size:90%}
"""


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.15, top=0.9)  # fixed: one draw only
    fig.savefig(buf, format="png", dpi=80)
    return ('<img alt="plot" src="data:image/png;base64,'
            + base64.b64encode(buf.getvalue()).decode("ascii") + '">')


def _fig(w: float = 7.0, h: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None else format(x, fmt)


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>'
                         for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _hist_plot(results: list[dict[str, Any]], chem: str, limits: list[float]) -> str:
    fig = _fig()
    ax = fig.add_subplot()
    for r in results:
        h = r["chemistries"][chem]["device"]["hist"]
        counts = np.asarray(h["counts"], float)
        edges = np.arange(counts.size + 1) * h["bin_mV"]
        ax.stairs(np.maximum(counts, 0.5), edges, label=r["strategy"])
    for lim in limits:
        ax.axvline(lim, color="k", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("device TME, mV (max over channels and grid; last bin: everything above)")
    ax.set_ylabel("devices per bin")
    ax.legend(fontsize=8)
    return _png(fig)


def _fallout_plot(results: list[dict[str, Any]], chem: str) -> str:
    fig = _fig()
    ax = fig.add_subplot()
    for r in results:
        fo = r["chemistries"][chem]["device"]["fallout"]
        lim = np.array([f["limit_mV"] for f in fo])
        ppm = np.array([f["ppm"] for f in fo])
        lo = np.array([f["cp95_two_sided_ppm"][0] for f in fo])
        hi = np.array([f["cp95_two_sided_ppm"][1] for f in fo])
        floor = 1e-4
        line = ax.errorbar(lim, np.maximum(ppm, floor),
                           yerr=[np.maximum(ppm, floor) - np.maximum(lo, floor * 0.5),
                                 np.maximum(hi, floor) - np.maximum(ppm, floor)],
                           marker="o", capsize=3, label=f"{r['strategy']} (counts, CP 95 %)")
        ex = [(f["limit_mV"], f["extrapolated"]["ppm"]) for f in fo if f["extrapolated"]]
        if ex:
            xs, ys = zip(*ex, strict=True)
            ax.plot(xs, np.maximum(ys, floor), "x", color=line[0].get_color(), ms=9,
                    label=f"{r['strategy']} (tail extrapolation)")
    ax.set_yscale("log")
    ax.set_xlabel("limit, mV")
    ax.set_ylabel("fallout, ppm (floor 1e-4)")
    ax.legend(fontsize=7)
    return _png(fig)


def _curves_plot(r: dict[str, Any], chem: str) -> str:
    c = r["curves"]
    fig = _fig(7.0, 3.8)
    ax = fig.add_subplot()
    worst = np.asarray(c[chem]["max_abs_mV"])
    cmap = __import__("matplotlib").colormaps["viridis"]
    for k in range(worst.shape[0]):
        ax.plot(c["temp_C"], worst[k], color=cmap(k / max(1, worst.shape[0] - 1)), lw=1,
                label=f"ch {k}" if k in (0, worst.shape[0] - 1) else None)
    ax.set_xlabel("ambient temperature, C")
    ax.set_ylabel("max |error|, mV")
    ax.set_title(f"{r['id']} {chem}: worst of {c['n_devices']} devices per channel", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def _trend_plot(trend: dict[str, list[tuple[int, float]]]) -> str:
    fig = _fig(7.0, 3.4)
    ax = fig.add_subplot()
    for key, pts in trend.items():
        if pts:
            x, y = zip(*pts, strict=True)
            ax.plot(x, y, marker="o", label=key)
    ax.set_xlabel("run id")
    ax.set_ylabel("value (mV or ppm)")
    if any(trend.values()):
        ax.legend(fontsize=7)
    return _png(fig)


def render_html(
    summary: dict[str, Any],
    *,
    regressions: list[dict[str, Any]] | None = None,
    trend: dict[str, list[tuple[int, float]]] | None = None,
    run_info: dict[str, Any] | None = None,
) -> str:
    """The report page (one string, images inline)."""
    limits = summary["limits_mV"]
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>sweep {_e(summary['sweep'])}"
           f"</title><style>{_CSS}</style></head><body>",
           f"<h1>Accuracy sweep: {_e(summary['sweep'])}</h1>"]
    cv = summary["code_version"]
    info = [["config sha256", _e(summary["config_sha256"][:16])],
            ["code", _e(f"bms_emu {cv.get('bms_emu')} git {cv.get('git_commit')}")],
            ["seed", _e(summary["seed"])],
            ["devices evaluated (x strategies)", _e(summary["population"]["n_devices_total"])],
            ["temperatures, C", _e(", ".join(f"{t:g}" for t in summary["conditions"]["temp_C"]))],
            ["lifetime points", _e(", ".join(summary["conditions"]["lifetime_points"]))]]
    for chem, v in summary["conditions"]["v_cell_V"].items():
        info.append([f"cell voltages {chem}, V", _e(", ".join(f"{x:.3g}" for x in v))])
    if run_info:
        info += [[_e(k), _e(v)] for k, v in run_info.items()]
    out.append(_table(["", ""], info))

    out.append("<h2>Requirements</h2>")
    rows = []
    for q in summary["requirements"]:
        cls = "pass" if q["ok"] else "fail"
        rows.append([_e(q["name"]), _e(q["expect"]), f'<span class="{cls}">{_e(q["verdict"])}'
                     f'</span>', f'<span class="{cls}">{"ok" if q["ok"] else "NOT OK"}</span>',
                     _e(q.get("message", ""))])
    out.append(_table(["requirement", "expected", "verdict", "check", "evidence"], rows, 1)
               if rows else "<p>none</p>")

    if regressions is not None:
        out.append("<h2>History</h2>")
        if regressions:
            out.append(_table(["metric", "value", "baseline (median)", "margin"],
                              [[_e(r["metric"]), _num(r["value"]), _num(r["baseline"]),
                                _num(r["margin"])] for r in regressions]))
        else:
            out.append("<p class='pass'>no metric worse than the recent runs</p>")
        if trend and any(trend.values()):
            out.append(_trend_plot(trend))

    by_chip: dict[str, list[dict[str, Any]]] = {}
    for r in summary["results"]:
        by_chip.setdefault(r["chip"], []).append(r)
    for chip, results in by_chip.items():
        out.append(f"<h2>{_e(chip)}</h2>")
        for chem in results[0]["chemistries"]:
            out.append(f"<h3>{_e(chem.upper())}: "
                       f"{', '.join(f'{v:.3g}' for v in summary['conditions']['v_cell_V'][chem])}"
                       " V</h3>")
            head = ["strategy", "devices", "p50", "p99", "p99.9", "max", "mean", "std"]
            rows = []
            for r in results:
                res = r["chemistries"][chem]
                t = res["device"]["tme_mV"]
                rows.append([_e(r["strategy"]), str(res["n_devices"])] +
                            [_num(t[k], ".4f") for k in ("p50", "p99", "p99.9", "max", "mean",
                                                          "std")])
            out.append("<p>Trim-strategy comparison (same devices), device TME in mV:</p>")
            out.append(_table(head, rows))
            rows = []
            for r in results:
                for f in r["chemistries"][chem]["device"]["fallout"]:
                    ex = f["extrapolated"]
                    rows.append([
                        _e(r["strategy"]), f"{f['limit_mV']:g}", str(f["k"]), str(f["n"]),
                        _num(f["ppm"]), _num(f["cp95_upper_ppm"]),
                        f"{_num(f['cp95_two_sided_ppm'][0])} - {_num(f['cp95_two_sided_ppm'][1])}",
                        _num(f["cpk"], ".2f"),
                        f'<span class="extra">{_num(ex["ppm"])} (extrapolated)</span>' if ex
                        else "-"])
            out.append("<p>Device fallout (a device fails if any channel exceeds the limit):</p>")
            out.append(_table(["strategy", "limit mV", "k", "n", "ppm", "95 % upper ppm",
                               "95 % two-sided ppm", "Cpk", "tail extrapolation ppm"], rows))
            out.append(_hist_plot(results, chem, limits))
            out.append(_fallout_plot(results, chem))
            if results[0]["curves"] is not None:
                out.append(_curves_plot(results[0], chem))
            soc = results[0]["chemistries"][chem]["soc"]
            s = soc["slope_mV_per_pct"]
            out.append(f"<p>SOC translation ({_e(results[0]['strategy'])}): OCV slope in SOC "
                       f"window {soc['soc_window']}: min {s['min']:.3g}, median "
                       f"{s['median']:.3g} mV/%SOC.</p>")
            out.append(_table(
                ["TME figure", "TME mV", "SOC uncertainty % (min slope)",
                 "SOC uncertainty % (median slope)", "reserve % (2x)"],
                [[_e(k), _num(v["tme_mV"], ".3f"), _num(v["soc_uncertainty_pct"], ".2f"),
                  _num(v["soc_uncertainty_median_slope_pct"], ".2f"),
                  _num(v["reserve_pct"], ".2f")] for k, v in soc["by_tme"].items()]))
    budget = summary.get("budget")
    if budget:
        out.append(_budget_html(budget))
    if summary.get("rtl_campaign"):  # bms-emu sweep --rtl-campaign campaign.json
        from bms_emu.report.rtl_campaign import rtl_campaign_html

        out.append(rtl_campaign_html(summary["rtl_campaign"]))
    out.append("<p class='note'>Fallout bounds are exact Clopper-Pearson; verdicts use the "
               "one-sided 95 % upper bound. Tail extrapolations are model estimates (GPD on the "
               "largest order statistics), not counts. See docs/sweep.md.</p></body></html>")
    return "\n".join(out)


def _budget_html(budget: dict[str, Any]) -> str:
    """Failure-rate budget: one table per design, totals, requirement verdicts."""
    out = ["<h2>Failure-rate budget</h2>",
           f"<p>{budget['chips_per_pack']} chips per pack, mission {budget['mission_h']:g} h, "
           f"dangerous = reported cell error &gt; {budget['dangerous_error_mV']:g} mV undetected; "
           f"{budget['injections_per_mode']} injections per mode and design; cell "
           f"{budget['cell_fit']:g} FIT ({_e(budget['cell_fit_source'])}). Coverage DC = "
           "D / (D + DU), 95 % two-sided Clopper-Pearson; residual = FIT x DU / n.</p>"]
    for d in budget.get("designs", [{"name": "", "chip": "", "modes": budget["modes"],
                                     "totals": budget["totals"]}]):
        out.append(f"<h3>{_e(d['name'])} ({_e(d['chip'])})</h3>")
        rows = []
        for m in d["modes"]:
            cp = m.get("coverage_cp95")
            cov = _num(m["coverage"], ".4f") + (
                f" [{cp[0]:.3f}, {cp[1]:.3f}]" if cp else "")
            by = ", ".join(f"{k} {v}" for k, v in (m.get("detected_by") or {}).items() if v)
            rows.append([_e(m["name"]), _num(m["fit"]), str(m.get("n", "")),
                         str(m.get("detected", "")), str(m.get("undetected_dangerous", "")),
                         cov, _e(m["coverage_source"]), _num(m["residual_fit"]),
                         _num(m.get("residual_fit_cp95_upper")),
                         _num(m.get("residual_ppm_mission")), _e(by)])
        out.append(_table(["mode", "base FIT", "n", "D", "DU", "DC [CP95]", "coverage source",
                           "residual FIT", "residual FIT CP95 up", "ppm / mission (chip)",
                           "detected by"], rows))
        out.append(_table(["", ""], [[_e(k), _e(_num(v, ".4g") if isinstance(v, float) else v)]
                                     for k, v in d["totals"].items()]))
    reqs = budget.get("requirements", [])
    if reqs:
        out.append(_table(["budget requirement", "verdict", "expected", "detail"], [
            [_e(r["name"]), _e(r["verdict"]), _e(r["expect"]), _e(r.get("message", ""))]
            for r in reqs]))
    if budget.get("notes"):
        out.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in budget["notes"]) + "</ul>")
    return "\n".join(out)
