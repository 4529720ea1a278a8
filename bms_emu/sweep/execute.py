"""Sweep execution (the I/O side): load configs, run chunks locally or on Dask, checkpoint,
write the outputs atomically, record the history.

Local execution (default) runs chunks in this process; the TME kernel uses numba threads over
devices. ``workers=N`` starts a local Dask cluster (N single-threaded worker processes);
``scheduler="tcp://host:port"`` uses an existing Dask cluster whose workers have bms_emu
installed. Dask is optional (``pip install 'bms-emu[cluster]'``) and imported only then.

Interruption: each finished chunk is checkpointed at once (atomic rename); Ctrl-C (or a kill)
loses at most the chunks in flight; no output file is written before the last chunk is in, and
each output is itself written atomically. Rerunning the same command resumes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bms_emu import __version__
from bms_emu.afe.chip import ChipSpec
from bms_emu.config import (
    ConfigError,
    DesignConfig,
    PackConfig,
    SweepConfig,
    chip_spec,
    load_config,
)
from bms_emu.report import render_html, render_junit, render_summary
from bms_emu.sweep.budget import budget_section, campaign_designs
from bms_emu.sweep.checkpoint import CheckpointDir, atomic_write_text
from bms_emu.sweep.coverage import DIAGNOSTICS, CampaignTask, campaign_tasks, run_campaign_chunk
from bms_emu.sweep.engine import (
    ChunkTask,
    StudyPlan,
    aggregate,
    config_sha256,
    plan,
    run_chunk,
)
from bms_emu.sweep.history import History, metrics_of, regressions

__all__ = ["SweepRun", "code_version", "load_budget", "load_sweep", "run_sweep"]

#: Progress weight of one fault injection relative to one device evaluation of the accuracy
#: kernel (~20 injections/s against ~13e3 device evaluations/s on one core): keeps the ETA sane.
INJECTION_UNITS = 500


def code_version() -> dict[str, Any]:
    """Package version and the git commit of the source tree (None outside a checkout).

    ``BMS_EMU_GIT_COMMIT`` in the environment overrides the commit (e.g. CI builds from an
    archive, or tests that must not see concurrent commits).
    """
    here = Path(__file__).resolve().parent
    if "BMS_EMU_GIT_COMMIT" in os.environ:
        return {"bms_emu": __version__, "git_commit": os.environ["BMS_EMU_GIT_COMMIT"] or None}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10,
            check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"bms_emu": __version__, "git_commit": commit}


def load_sweep(path: str | Path) -> tuple[SweepConfig, list[StudyPlan], str]:
    """Sweep config, its resolved studies and the config digest (sweep + chip configs)."""
    p = Path(path)
    cfg = load_config(p, "sweep")
    assert isinstance(cfg, SweepConfig)
    studies: list[StudyPlan] = []
    digests = []
    for i, st in enumerate(cfg.studies):
        chip_path = (p.parent / st.chip).resolve()
        try:
            chip_cfg = load_config(chip_path, "chip")
        except ConfigError as exc:
            raise ConfigError(str(p), [f"studies[{i}].chip: got {st.chip!r}: {exc}"]) from None
        spec = chip_spec(chip_cfg)
        digest = hashlib.sha256(
            repr(chip_cfg.model_dump(mode="json")).encode()).hexdigest()
        digests.append(digest)
        studies.append(StudyPlan(
            i, st.name or spec.name, spec, digest, st.n_devices,
            st.strategies or (spec.trim.strategy,), st.path,
            tuple(st.lifetime_points or cfg.conditions.lifetime_points),
            tuple(st.chemistries or cfg.conditions.chemistries)))
    if cfg.budget is not None:
        _, _, budget_digests = load_budget(p, cfg)
        digests += budget_digests
    labels = [s.label for s in studies]
    if len(set(labels)) != len(labels):
        raise ConfigError(str(p), [f"studies: got labels {labels}: give studies of the same chip "
                                   "distinct name:s"])
    for i, req in enumerate(cfg.requirements):
        if req.study not in labels:
            raise ConfigError(str(p), [f"requirements[{i}].study: got {req.study!r}: "
                                       f"must be one of {labels}"])
    return cfg, studies, config_sha256(cfg, digests)


def load_budget(path: str | Path, cfg: SweepConfig
                ) -> tuple[list[tuple[DesignConfig, ChipSpec]], PackConfig, list[str]]:
    """The budget's designs with their chip specs, the pack module, and their config digests."""
    p = Path(path)
    assert cfg.budget is not None
    out = []
    digests = []
    for i, d in enumerate(cfg.budget.designs):
        try:
            chip_cfg = load_config((p.parent / d.chip).resolve(), "chip")
        except ConfigError as exc:
            raise ConfigError(str(p), [f"budget.designs[{i}].chip: got {d.chip!r}: {exc}"]
                              ) from None
        digests.append(hashlib.sha256(repr(chip_cfg.model_dump(mode="json")).encode()).hexdigest())
        out.append((d, chip_spec(chip_cfg)))
    try:
        pack = load_config((p.parent / cfg.budget.pack).resolve(), "pack")
    except ConfigError as exc:
        raise ConfigError(str(p), [f"budget.pack: got {cfg.budget.pack!r}: {exc}"]) from None
    assert isinstance(pack, PackConfig)
    digests.append(hashlib.sha256(repr(pack.model_dump(mode="json")).encode()).hexdigest())
    for i, (_d, spec) in enumerate(out):
        if spec.n_channels != pack.n_cells:
            raise ConfigError(str(p), [f"budget.designs[{i}].chip: {spec.n_channels} channels, "
                                       f"the pack module has {pack.n_cells} cells"])
    return out, pack, digests


def _run_task(task: ChunkTask | CampaignTask) -> dict[str, Any]:
    """Run one accuracy chunk or one coverage-campaign chunk (local or on a Dask worker)."""
    if isinstance(task, CampaignTask):
        return run_campaign_chunk(task)
    return run_chunk(task)


@dataclass
class SweepRun:
    """What a finished run produced."""

    summary: dict[str, Any]
    regressions: list[dict[str, Any]] | None
    out_dir: Path
    chunks_computed: int
    chunks_resumed: int
    wall_s: float
    run_info: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 all good; 3 regression against the history; 1 a requirement not as expected."""
        if self.regressions:
            return 3
        reqs = list(self.summary["requirements"])
        reqs += (self.summary.get("budget") or {}).get("requirements", [])
        return 0 if all(r["ok"] for r in reqs) else 1


Task = ChunkTask | CampaignTask


def _run_local(tasks: list[Task]) -> Iterable[tuple[Task, dict[str, Any]]]:
    for t in tasks:
        yield t, _run_task(t)


def _run_dask(tasks: list[Task], workers: int | None, scheduler: str | None
              ) -> Iterable[tuple[Task, dict[str, Any]]]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        by_key = {t.key: t for t in tasks}
        futures = client.map(_run_task, tasks, key=[f"bms-emu-{t.key}" for t in tasks],
                             pure=False)
        for fut in as_completed(futures):
            key = str(fut.key).removeprefix("bms-emu-")
            yield by_key[key], fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_sweep(
    config_path: str | Path,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_devices: int | None = None,
    history_path: str | Path | None = None,
    checkpoint_root: str | Path | None = None,
    keep_checkpoint: bool = False,
    progress: bool = True,
    curves: bool = True,
    report: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
    rtl_campaign_path: str | Path | None = None,
) -> SweepRun:
    """Run (or resume) a sweep and write ``summary.json``, ``report.html``, ``junit.xml``.

    Parameters
    ----------
    config_path : sweep YAML.
    out_dir : output directory (created).
    workers : local Dask cluster with this many worker processes (needs dask).
    scheduler : address of a running Dask scheduler (needs dask).
    chunk_devices : devices per chunk (default: the config's ``execution.chunk_devices``);
        never changes the results.
    history_path : SQLite history file; the run is compared with it and then added to it.
    checkpoint_root : default ``out_dir/checkpoint``.
    keep_checkpoint : keep the chunk files after a successful run.
    progress : show a rich progress bar with ETA on stderr.
    curves : compute the error-vs-temperature curves for the report.
    report : write ``report.html`` (tests that only compare summaries skip the plotting).
    on_chunk : called as ``on_chunk(done, total)`` after each chunk is checkpointed.
    rtl_campaign_path : ``campaign.json`` of the RTL fault-injection campaign
        (tests/rtl/fault_campaign.py), validated before the sweep runs and copied into the
        summary (``rtl_campaign``) and the report.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, after the finished chunks are safely checkpointed; nothing else is written.
    """
    import time

    t0 = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    cfg, studies, digest = load_sweep(config_path)
    rtl_campaign = None
    if rtl_campaign_path is not None:  # a bad file fails now, not after the sweep
        from bms_emu.report.rtl_campaign import load_rtl_campaign

        rtl_campaign = load_rtl_campaign(rtl_campaign_path)
    out = Path(out_dir)
    ckpt = CheckpointDir(Path(checkpoint_root) if checkpoint_root else out / "checkpoint", digest)
    distributed = workers is not None or scheduler is not None
    tasks: list[Task] = list(plan(cfg, studies, chunk_devices,
                                  threads=1 if distributed else None))
    designs: list[tuple[DesignConfig, ChipSpec]] = []
    if cfg.budget is not None:
        designs, pack, _ = load_budget(config_path, cfg)
        tasks += campaign_tasks(cfg.budget, designs, pack, cfg.seed)
    results: dict[str, dict[str, Any]] = {}
    for t in tasks:
        got = ckpt.load(t.key)
        if got is not None:
            results[t.key] = got
    todo = [t for t in tasks if t.key not in results]
    resumed = len(results)
    units = {t.key: (t.n * INJECTION_UNITS if isinstance(t, CampaignTask)
                     else t.n_devices * len(t.strategies)) for t in tasks}
    inj_wall = 0.0
    total_units = sum(units.values())

    bar = None
    if progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(TextColumn(f"sweep {cfg.name}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("device-evaluations"), TimeElapsedColumn(),
                       TextColumn("ETA"), TimeRemainingColumn())
        bar.start()
        task_id = bar.add_task("sweep", total=total_units,
                               completed=sum(units[k] for k in results))
    try:
        runner = _run_dask(todo, workers, scheduler) if distributed else _run_local(todo)
        t_prev = time.perf_counter()
        for t, res in runner:
            now = time.perf_counter()
            if isinstance(t, CampaignTask):
                inj_wall += now - t_prev
            t_prev = now
            ckpt.save(t.key, res)
            results[t.key] = res
            if bar is not None:
                bar.advance(task_id, units[t.key])
            if on_chunk is not None:
                on_chunk(len(results), len(tasks))
    finally:
        if bar is not None:
            bar.stop()

    acc_tasks = [t for t in tasks if isinstance(t, ChunkTask)]
    summary = aggregate(cfg, studies, results, acc_tasks, config_digest=digest,
                        code_version=code_version(), curves=curves)
    n_inj = 0
    if cfg.budget is not None:
        camp = [t for t in tasks if isinstance(t, CampaignTask)]
        todo_keys = {t.key for t in todo}
        n_inj = sum(t.n for t in camp if t.key in todo_keys)
        summary["budget"] = budget_section(cfg.budget, campaign_designs(
            cfg.budget, [(d.name, spec.name) for d, spec in designs], DIAGNOSTICS, results, camp))
    if rtl_campaign is not None:
        summary["rtl_campaign"] = rtl_campaign
    regs = None
    trend = None
    if history_path is not None:
        with History(history_path) as hist:
            _, past = hist.past(cfg.name)
            regs = regressions(metrics_of(summary), past, cfg.regression)
            keys = [k for k in metrics_of(summary) if k.endswith(("/tme_p99.9", "/tme_max"))]
            trend = hist.trend(cfg.name, keys[:6])
    wall = time.perf_counter() - t0
    run_info = {"started_utc": started, "wall_s": round(wall, 3), "chunks": len(tasks),
                "chunks_resumed": resumed, "chunks_computed": len(todo),
                "execution": ("dask " + (scheduler or f"local x{workers}")) if distributed
                else f"local numpy/numba ({os.cpu_count()} cores)"}
    if n_inj and not distributed and inj_wall > 0:
        run_info["budget_injections"] = n_inj
        run_info["budget_injections_per_s"] = round(n_inj / inj_wall, 2)
    texts = {
        "summary.json": render_summary(summary),
        "junit.xml": render_junit(summary, regs),
        "run.json": render_summary({**run_info, "regressions": regs}),
    }
    if report:
        texts["report.html"] = render_html(summary, regressions=regs, trend=trend,
                                           run_info=run_info)
    for name, text in texts.items():
        atomic_write_text(out / name, text)
    if history_path is not None:
        with History(history_path) as hist:
            hist.add(summary, started)
    if not keep_checkpoint:
        ckpt.clear()
    return SweepRun(summary, regs, out, len(todo), resumed, wall, run_info)
