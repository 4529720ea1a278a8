"""Sweep engine, pure part: plan the chunks, run one chunk, aggregate chunks into a summary.

Nothing here touches files, clocks or threads (:mod:`bms_emu.sweep.execute` does the I/O):
``plan -> run_chunk (anywhere, any order) -> aggregate`` is a pure function of the config, so the
summary is bit-identical for any chunking, worker count or completion order:

* a chunk is a contiguous range of wafers of one study; a wafer's dies come from seeds keyed by
  the wafer index (:mod:`bms_emu.sweep.population`), never by the chunk or the worker;
* chunk results hold integer counts (exact sums), per-wafer float partial sums (combined with
  ``math.fsum``, exact and order-free) and per-device TME arrays (concatenated in wafer order);
  every statistic is computed from those after all chunks are in.

Shapes: ``S`` strategies, ``G`` chemistries (voltage groups), ``C`` channels, ``L`` limits,
``B`` histogram bins, ``W`` wafers in the chunk, ``N`` devices in the chunk.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bms_emu.afe.chip import ChipSpec, cell_error_V
from bms_emu.config import SweepConfig
from bms_emu.sweep import stats
from bms_emu.sweep.kernel import tme_groups_V
from bms_emu.sweep.population import Hierarchy, wafer_population, wafer_sizes
from bms_emu.sweep.soc import soc_translation

__all__ = [
    "SCHEMA",
    "ChunkTask",
    "StudyPlan",
    "aggregate",
    "config_sha256",
    "hierarchy_of",
    "plan",
    "run_chunk",
]

#: Version tag of summary.json (docs/sweep.md documents it; bump on incompatible change).
SCHEMA = "bms-emu.sweep.summary/1"
#: Histogram of TME, mV: bin width and number of bins (last bin catches everything above).
HIST_BIN_MV = 0.02
CURVE_DEVICES = 200


@dataclass(frozen=True)
class StudyPlan:
    """One study resolved: its chip spec and strategies (and the chip config's digest)."""

    index: int
    label: str
    spec: ChipSpec
    chip_sha256: str
    n_devices: int
    strategies: tuple[str, ...]
    path: str
    lifetime_points: tuple[str, ...]
    chemistries: tuple[str, ...]

    def result_id(self, strategy: str) -> str:
        """``label/strategy``: the id of one strategy's result."""
        return f"{self.label}/{strategy}"


@dataclass(frozen=True)
class ChunkTask:
    """Everything one chunk needs (picklable: shipped to Dask workers as is)."""

    study: int
    wafer_lo: int
    wafer_hi: int
    spec: ChipSpec
    strategies: tuple[str, ...]
    path: str
    seed: int
    hier: Hierarchy
    sizes: tuple[int, ...]
    temps_C: tuple[float, ...]
    volts_V: tuple[float, ...]
    group_of_v: tuple[int, ...]
    n_groups: int
    lifetime_points: tuple[str, ...]
    limits_V: tuple[float, ...]
    n_bins: int
    threads: int | None = None

    @property
    def key(self) -> str:
        """Stable name of the chunk (checkpoint file stem)."""
        return f"s{self.study:02d}_w{self.wafer_lo:07d}-{self.wafer_hi:07d}"

    @property
    def n_devices(self) -> int:
        return int(sum(self.sizes))


def hierarchy_of(cfg: SweepConfig) -> Hierarchy:
    """The population section as the pure :class:`Hierarchy` (parameters in sorted order)."""
    p = cfg.population
    shares = tuple(
        (name, s.lot_fraction, s.wafer_fraction) for name, s in sorted(p.spread.items())
    )
    return Hierarchy(p.dies_per_wafer, p.wafers_per_lot, shares)


def voltage_grid(cfg: SweepConfig, chemistries: tuple[str, ...] | None = None
                 ) -> tuple[list[str], list[float], list[int]]:
    """Chemistry names, the concatenated voltage grid and each voltage's chemistry index."""
    names = list(chemistries or cfg.conditions.chemistries)
    volts: list[float] = []
    group: list[int] = []
    for g, name in enumerate(names):
        vs = cfg.conditions.chemistries[name].v_cell_V.values()  # type: ignore[index]
        volts += vs
        group += [g] * len(vs)
    return names, volts, group


def config_sha256(cfg: SweepConfig, chip_digests: list[str]) -> str:
    """Digest of the validated sweep config and the chip configs it uses."""
    dump = cfg.model_dump(mode="json")
    if dump.get("budget") is None:
        dump.pop("budget", None)  # configs without a budget keep their pre-budget digest
    doc = {"sweep": dump, "chips": chip_digests}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def plan(
    cfg: SweepConfig, studies: list[StudyPlan], chunk_devices: int | None = None,
    threads: int | None = None,
) -> list[ChunkTask]:
    """Cut every study into chunks of whole wafers (about ``chunk_devices`` dies each)."""
    hier = hierarchy_of(cfg)
    per = max(1, (chunk_devices or cfg.execution.chunk_devices) // hier.dies_per_wafer)
    limits = tuple(1e-3 * x for x in cfg.limits_mV)
    n_bins = round(2 * max(cfg.limits_mV) / HIST_BIN_MV) + 1
    tasks = []
    for st in studies:
        names, volts, group = voltage_grid(cfg, st.chemistries)
        sizes = wafer_sizes(st.n_devices, hier.dies_per_wafer)
        for lo in range(0, len(sizes), per):
            hi = min(lo + per, len(sizes))
            tasks.append(ChunkTask(
                study=st.index, wafer_lo=lo, wafer_hi=hi, spec=st.spec,
                strategies=st.strategies, path=st.path, seed=cfg.seed, hier=hier,
                sizes=tuple(sizes[lo:hi]), temps_C=tuple(cfg.conditions.temp_C.values()),
                volts_V=tuple(volts), group_of_v=tuple(group), n_groups=len(names),
                lifetime_points=st.lifetime_points, limits_V=limits,
                n_bins=n_bins, threads=threads,
            ))
    return tasks


def run_chunk(task: ChunkTask) -> dict[str, NDArray[Any]]:
    """Evaluate one chunk (pure; runs in-process or on a Dask worker).

    Returns
    -------
    dict of arrays
        ``tme_dev`` (S, G, N) float64: device TME, V (max over channels);
        ``ch_exceed`` (S, G, C, L) int64: channels above each limit;
        ``ch_hist`` (S, G, C, B) int64: channel TME histogram (``HIST_BIN_MV`` bins, last = rest);
        ``ch_sum``, ``ch_sumsq`` (S, G, W, C) float64: per-wafer sums of channel TME (V, V^2).
    """
    if task.threads is not None:
        import numba

        numba.set_num_threads(max(1, min(task.threads, numba.config.NUMBA_NUM_THREADS)))
    n_s, n_g, n_c = len(task.strategies), task.n_groups, task.spec.n_channels
    n_w, n = len(task.sizes), task.n_devices
    n_l, n_b = len(task.limits_V), task.n_bins
    out = {
        "tme_dev": np.empty((n_s, n_g, n)),
        "ch_exceed": np.zeros((n_s, n_g, n_c, n_l), np.int64),
        "ch_hist": np.zeros((n_s, n_g, n_c, n_b), np.int64),
        "ch_sum": np.zeros((n_s, n_g, n_w, n_c)),
        "ch_sumsq": np.zeros((n_s, n_g, n_w, n_c)),
    }
    volts = np.array(task.volts_V)
    temps = np.array(task.temps_C)
    group = np.array(task.group_of_v, np.int64)
    limits = np.array(task.limits_V)
    for si, strategy in enumerate(task.strategies):
        start = 0
        for wi, n_dies in enumerate(task.sizes):
            pop = wafer_population(task.spec, task.seed, task.wafer_lo + wi, n_dies, task.hier,
                                   strategy)
            tme = tme_groups_V(pop, volts, temps, task.lifetime_points, group, path=task.path)
            for g in range(n_g):
                t = tme[:, :, g]  # (n_dies, C)
                out["tme_dev"][si, g, start:start + n_dies] = t.max(axis=1)
                out["ch_exceed"][si, g] += (t[:, :, None] > limits).sum(axis=0)
                b = np.minimum((t * 1e3 / HIST_BIN_MV).astype(np.int64), n_b - 1)
                for c in range(n_c):
                    out["ch_hist"][si, g, c] += np.bincount(b[:, c], minlength=n_b)
                out["ch_sum"][si, g, wi] = t.sum(axis=0)
                out["ch_sumsq"][si, g, wi] = (t * t).sum(axis=0)
            start += n_dies
    return out


# ---- aggregation -------------------------------------------------------------------------


def _fsum_axis0(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Exactly rounded sum over axis 0 (order-free: any chunking gives the same bits)."""
    flat = a.reshape(a.shape[0], -1)
    return np.array([math.fsum(flat[:, j]) for j in range(flat.shape[1])]).reshape(a.shape[1:])


def _hist_quantile_mV(hist: NDArray[np.int64], q: float) -> float | None:
    """Upper edge of the bin holding quantile ``q`` (conservative); None if in the last bin."""
    cum = np.cumsum(hist)
    i = int(np.searchsorted(cum, q * cum[-1]))
    return None if i >= hist.size - 1 else round((i + 1) * HIST_BIN_MV, 10)


def _result(
    cfg: SweepConfig, tme_dev_V: NDArray[np.float64], exceed: NDArray[np.int64],
    hist: NDArray[np.int64], ch_sum: NDArray[np.float64], ch_sumsq: NDArray[np.float64],
    chemistry: str,
) -> dict[str, Any]:
    """Statistics of one (study, strategy, chemistry) result (summary schema, docs/sweep.md)."""
    x = np.sort(tme_dev_V) * 1e3
    n = x.size
    mean, std = float(np.mean(x)), float(np.std(x))
    counts = [int(np.count_nonzero(x > lim)) for lim in cfg.limits_mV]
    tail = None
    if min(counts) < cfg.tail_min_count:
        tail = stats.gpd_tail(x, cfg.limits_mV)
    fallouts = []
    for i, (lim, k) in enumerate(zip(cfg.limits_mV, counts, strict=True)):
        f = {"limit_mV": lim, **stats.fallout(k, n), "cpk": stats.cpk_upper(mean, std, lim)}
        f["extrapolated"] = None
        if tail is not None and k < cfg.tail_min_count and tail["rate"][i] is not None:
            f["extrapolated"] = {"ppm": 1e6 * tail["rate"][i], "method": tail["method"]}
        fallouts.append(f)
    hist_dev = np.bincount(np.minimum((x / HIST_BIN_MV).astype(np.int64), hist.shape[-1] - 1),
                           minlength=hist.shape[-1])
    n_c = exceed.shape[0]
    s1 = _fsum_axis0(ch_sum)  # (C,)
    s2 = _fsum_axis0(ch_sumsq)
    ch_mean = s1 / n
    ch_std = np.sqrt(np.maximum(s2 / n - ch_mean**2, 0.0))
    channel = {
        "mean_mV": [float(v) for v in 1e3 * ch_mean],
        "std_mV": [float(v) for v in 1e3 * ch_std],
        "p99.9_mV_bin_upper": [_hist_quantile_mV(hist[c], 0.999) for c in range(n_c)],
        "fallout": [
            {"limit_mV": lim, **stats.fallout(int(exceed[:, li].sum()), n * n_c),
             "k_per_channel": [int(v) for v in exceed[:, li]]}
            for li, lim in enumerate(cfg.limits_mV)
        ],
    }
    pct = stats.percentiles(x)
    chem = cfg.conditions.chemistries[chemistry]  # type: ignore[index]
    soc_figs = {f"tme_{k}": v for k, v in pct.items() if k in ("p50", "p99.9", "max")}
    soc_figs.update({f"limit_{lim:g}mV": float(lim) for lim in cfg.limits_mV})
    return {
        "n_devices": n,
        "device": {
            "tme_mV": {**pct, "mean": mean, "std": std},
            "fallout": fallouts,
            "tail_fit": tail,
            "hist": {"bin_mV": HIST_BIN_MV, "counts": [int(v) for v in hist_dev]},
        },
        "channel": channel,
        "soc": soc_translation(chemistry, chem.soc_window, soc_figs),
    }


def error_curves(
    cfg: SweepConfig, st: StudyPlan, strategy: str, hier: Hierarchy
) -> dict[str, Any]:
    """Error vs temperature per channel on the first devices of wafer 0 (golden model).

    For each chemistry: per channel and ambient temperature, the largest ``|error|`` over the
    devices, the chemistry's voltages, lifetime points and both hysteresis extremes, and the
    mean signed error (mV). Shapes ``(C, n_T)``.
    """
    n = min(CURVE_DEVICES, st.n_devices, hier.dies_per_wafer)
    pop = wafer_population(st.spec, cfg.seed, 0, n, hier, strategy)
    temps = np.array(cfg.conditions.temp_C.values())
    out: dict[str, Any] = {"n_devices": n, "temp_C": temps.tolist()}
    for chem_name in st.chemistries:
        v = np.array(cfg.conditions.chemistries[chem_name].v_cell_V.values())  # type: ignore[index]
        worst = np.zeros((st.spec.n_channels, temps.size))
        total = np.zeros((st.spec.n_channels, temps.size))
        count = 0
        for point in st.lifetime_points:
            for m in (-1.0, 1.0):
                e = cell_error_V(pop, v, temps, pop.lifetime_h(point), path=st.path, hyst_m=m)
                worst = np.maximum(worst, np.abs(e).max(axis=(0, 3)))
                total += e.sum(axis=(0, 3))
                count += e.shape[0] * e.shape[3]
        out[chem_name] = {
            "max_abs_mV": np.round(1e3 * worst, 6).tolist(),
            "mean_mV": np.round(1e3 * total / count, 6).tolist(),
        }
    return out


def _verdict(req: Any, results: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one requirement against the results (keyed ``chip/strategy``)."""
    row: dict[str, Any] = {"name": req.name, "expect": req.expect}
    res = results.get(f"{req.study}/{req.strategy}")
    if res is None or req.chemistry not in res["chemistries"]:
        row.update(verdict="error", ok=False,
                   message=f"no result for {req.study}/{req.strategy} ({req.chemistry})")
        return row
    r = res["chemistries"][req.chemistry]
    n = r["n_devices"]
    by_limit = {f["limit_mV"]: f for f in r["device"]["fallout"]}
    f = by_limit.get(req.limit_mV)
    if f is None:
        row.update(verdict="error", ok=False, message=f"limit {req.limit_mV} mV not in limits_mV")
        return row
    k = f["k"]
    upper = f["cp95_upper_ppm"]
    passed = upper <= req.max_fallout_ppm and n >= req.min_devices
    verdict = "pass" if passed else "fail"
    row.update(
        verdict=verdict, ok=verdict == req.expect, k=k, n=n, ppm=f["ppm"], cp95_upper_ppm=upper,
        limit_mV=req.limit_mV, max_fallout_ppm=req.max_fallout_ppm, min_devices=req.min_devices,
        message=(f"{k} of {n} devices above {req.limit_mV} mV: {f['ppm']:.3g} ppm, one-sided 95 % "
                 f"upper bound {upper:.3g} ppm (requirement <= {req.max_fallout_ppm} ppm"
                 + (f", n >= {req.min_devices}" if req.min_devices else "") + ")"),
    )
    return row


def aggregate(
    cfg: SweepConfig,
    studies: list[StudyPlan],
    chunks: dict[str, dict[str, NDArray[Any]]],
    tasks: list[ChunkTask],
    *,
    config_digest: str,
    code_version: dict[str, Any],
    curves: bool = True,
) -> dict[str, Any]:
    """All chunk results -> the summary document (schema in docs/sweep.md)."""
    names = list(cfg.conditions.chemistries)
    hier = hierarchy_of(cfg)
    results: dict[str, Any] = {}
    for st in studies:
        mine = sorted((t for t in tasks if t.study == st.index), key=lambda t: t.wafer_lo)
        parts = [chunks[t.key] for t in mine]
        n_wafers = sum(len(t.sizes) for t in mine)
        for si, strategy in enumerate(st.strategies):
            chem_res = {}
            for g, chem in enumerate(st.chemistries):
                chem_res[chem] = _result(
                    cfg,
                    np.concatenate([p["tme_dev"][si, g] for p in parts]),
                    sum(p["ch_exceed"][si, g] for p in parts),
                    sum(p["ch_hist"][si, g] for p in parts),
                    np.concatenate([p["ch_sum"][si, g] for p in parts]),
                    np.concatenate([p["ch_sumsq"][si, g] for p in parts]),
                    chem,
                )
            rid = st.result_id(strategy)
            results[rid] = {
                "id": rid,
                "study": st.label,
                "chip": st.spec.name,
                "chip_sha256": st.chip_sha256,
                "strategy": strategy,
                "path": st.path,
                "lifetime_points": list(st.lifetime_points),
                "n_devices": st.n_devices,
                "n_wafers": n_wafers,
                "n_lots": -(-n_wafers // hier.wafers_per_lot),
                "chemistries": chem_res,
                "curves": error_curves(cfg, st, strategy, hier) if curves else None,
            }
    reqs = []
    for req in cfg.requirements:
        if req.strategy is None:
            st = next((s for s in studies if s.label == req.study), None)
            req = req.model_copy(update={"strategy": st.spec.trim.strategy if st else "?"})
        reqs.append(_verdict(req, results))
    return {
        "schema": SCHEMA,
        "sweep": cfg.name,
        "config_sha256": config_digest,
        "code_version": code_version,
        "seed": cfg.seed,
        "population": {
            "dies_per_wafer": hier.dies_per_wafer,
            "wafers_per_lot": hier.wafers_per_lot,
            "spread": {p: {"lot_fraction": fl, "wafer_fraction": fw}
                       for p, fl, fw in hier.shares},
            "n_devices_total": sum(st.n_devices * len(st.strategies) for st in studies),
        },
        "conditions": {
            "temp_C": cfg.conditions.temp_C.values(),
            "v_cell_V": {c: cfg.conditions.chemistries[c].v_cell_V.values()  # type: ignore[index]
                         for c in names},
            "lifetime_points": list(cfg.conditions.lifetime_points),
            "hysteresis_extremes": [-1.0, 1.0],
        },
        "limits_mV": list(cfg.limits_mV),
        "results": list(results.values()),
        "requirements": reqs,
    }
