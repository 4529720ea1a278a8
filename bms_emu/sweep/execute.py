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
from bms_emu.config import ConfigError, SweepConfig, chip_spec, load_config
from bms_emu.report import render_html, render_junit, render_summary
from bms_emu.sweep.checkpoint import CheckpointDir, atomic_write_text
from bms_emu.sweep.engine import (
    ChunkTask,
    StudyPlan,
    aggregate,
    config_sha256,
    plan,
    run_chunk,
)
from bms_emu.sweep.history import History, metrics_of, regressions

__all__ = ["SweepRun", "code_version", "load_sweep", "run_sweep"]


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
    labels = [s.label for s in studies]
    if len(set(labels)) != len(labels):
        raise ConfigError(str(p), [f"studies: got labels {labels}: give studies of the same chip "
                                   "distinct name:s"])
    for i, req in enumerate(cfg.requirements):
        if req.study not in labels:
            raise ConfigError(str(p), [f"requirements[{i}].study: got {req.study!r}: "
                                       f"must be one of {labels}"])
    return cfg, studies, config_sha256(cfg, digests)


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
        return 0 if all(r["ok"] for r in self.summary["requirements"]) else 1


def _run_local(tasks: list[ChunkTask]) -> Iterable[tuple[ChunkTask, dict[str, Any]]]:
    for t in tasks:
        yield t, run_chunk(t)


def _run_dask(tasks: list[ChunkTask], workers: int | None, scheduler: str | None
              ) -> Iterable[tuple[ChunkTask, dict[str, Any]]]:
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
        futures = client.map(run_chunk, tasks, key=[f"bms-emu-{t.key}" for t in tasks],
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

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, after the finished chunks are safely checkpointed; nothing else is written.
    """
    import time

    t0 = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    cfg, studies, digest = load_sweep(config_path)
    out = Path(out_dir)
    ckpt = CheckpointDir(Path(checkpoint_root) if checkpoint_root else out / "checkpoint", digest)
    distributed = workers is not None or scheduler is not None
    tasks = plan(cfg, studies, chunk_devices, threads=1 if distributed else None)
    results: dict[str, dict[str, Any]] = {}
    for t in tasks:
        got = ckpt.load(t.key)
        if got is not None:
            results[t.key] = got
    todo = [t for t in tasks if t.key not in results]
    resumed = len(results)
    units = {t.key: t.n_devices * len(t.strategies) for t in tasks}
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
        for t, res in runner:
            ckpt.save(t.key, res)
            results[t.key] = res
            if bar is not None:
                bar.advance(task_id, units[t.key])
            if on_chunk is not None:
                on_chunk(len(results), len(tasks))
    finally:
        if bar is not None:
            bar.stop()

    summary = aggregate(cfg, studies, results, tasks, config_digest=digest,
                        code_version=code_version(), curves=curves)
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
