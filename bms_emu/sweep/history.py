"""Run history (SQLite, stdlib ``sqlite3``) and regression detection across nights.

Tables::

    runs(run_id INTEGER PRIMARY KEY, sweep TEXT, started_utc TEXT, config_sha256 TEXT,
         code_version TEXT, summary TEXT)            -- summary.json of the run, verbatim
    metrics(run_id INTEGER, key TEXT, value REAL, kind TEXT)   -- kind: 'tme_mV' or 'ppm'

Tracked metrics (all "lower is better"), per result ``chip/strategy`` and chemistry:
``.../tme_p50``, ``.../tme_p99.9``, ``.../tme_max`` (mV) and ``.../fallout@L`` (ppm, one per limit).

Regression rule: a metric regresses when ``value - baseline > margin``, with ``baseline`` the
median of that metric over the last ``N`` runs of the same sweep name and ``margin`` =
``tme_margin_mV`` for TME metrics, ``max(fallout_margin_ppm, fallout_margin_rel x baseline)`` for
fallout. A metric absent from the history is new, not a regression.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bms_emu.config import RegressionConfig

__all__ = ["History", "metrics_of", "regressions"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT, sweep TEXT NOT NULL, started_utc TEXT NOT NULL,
    config_sha256 TEXT NOT NULL, code_version TEXT NOT NULL, summary TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(run_id), key TEXT NOT NULL, value REAL NOT NULL,
    kind TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_key ON metrics(key, run_id);
"""


def metrics_of(summary: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """Tracked metrics of a summary: key -> (value, kind)."""
    out: dict[str, tuple[float, str]] = {}
    for res in summary["results"]:
        for chem, r in res["chemistries"].items():
            base = f"{res['id']}/{chem}"
            tme = r["device"]["tme_mV"]
            for q in ("p50", "p99.9", "max"):
                out[f"{base}/tme_{q}"] = (float(tme[q]), "tme_mV")
            for f in r["device"]["fallout"]:
                out[f"{base}/fallout@{f['limit_mV']:g}mV"] = (float(f["ppm"]), "ppm")
    return out


def regressions(
    current: dict[str, tuple[float, str]],
    past: dict[str, list[float]],
    rule: RegressionConfig,
) -> list[dict[str, Any]]:
    """Metrics worse than the median of their last runs by more than the margin.

    Parameters
    ----------
    current : metrics of this run (:func:`metrics_of`).
    past : key -> values of the previous runs, oldest first (only the last N are used).
    rule : RegressionConfig
    """
    found = []
    for key, (value, kind) in sorted(current.items()):
        prev = past.get(key, [])[-rule.last_n_runs :]
        if not prev:
            continue
        base = float(np.median(prev))
        if kind == "tme_mV":
            margin = rule.tme_margin_mV
        else:
            margin = max(rule.fallout_margin_ppm, rule.fallout_margin_rel * abs(base))
        if value - base > margin:
            found.append({"metric": key, "kind": kind, "value": value, "baseline": base,
                          "margin": margin, "n_previous": len(prev)})
    return found


class History:
    """A history store file. Use as a context manager; commits on clean exit."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.executescript(_SCHEMA)

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(commit=exc[0] is None)

    def close(self, commit: bool = True) -> None:
        """Commit (or roll back) and close."""
        if commit:
            self._db.commit()
        else:
            self._db.rollback()
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._db:
            yield self._db

    def past(self, sweep: str) -> tuple[list[int], dict[str, list[float]]]:
        """Run ids (oldest first) and key -> values of the previous runs of ``sweep``."""
        rows = self._db.execute(
            "SELECT m.run_id, m.key, m.value FROM metrics m JOIN runs r USING(run_id) "
            "WHERE r.sweep = ? ORDER BY m.run_id", (sweep,)).fetchall()
        ids = sorted({r[0] for r in rows})
        values: dict[str, list[float]] = {}
        for _, key, value in rows:
            values.setdefault(key, []).append(value)
        return ids, values

    def trend(self, sweep: str, keys: list[str]) -> dict[str, list[tuple[int, float]]]:
        """(run_id, value) series of the given metric keys, oldest first."""
        out: dict[str, list[tuple[int, float]]] = {k: [] for k in keys}
        for run_id, key, value in self._db.execute(
            "SELECT m.run_id, m.key, m.value FROM metrics m JOIN runs r USING(run_id) "
            "WHERE r.sweep = ? ORDER BY m.run_id", (sweep,)):
            if key in out:
                out[key].append((run_id, value))
        return out

    def add(self, summary: dict[str, Any], started_utc: str) -> int:
        """Record a sweep run and its tracked metrics; returns its run id."""
        return self.add_run(summary["sweep"], summary, metrics_of(summary), started_utc,
                            summary["config_sha256"], summary["code_version"])

    def add_run(
        self,
        name: str,
        summary: dict[str, Any],
        metrics: dict[str, tuple[float, str]],
        started_utc: str,
        config_sha256: str = "",
        code_version: Any = None,
    ) -> int:
        """Record any run (a sweep, a ``bms-emu run``) under ``name``; returns its run id."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs(sweep, started_utc, config_sha256, code_version, summary) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, started_utc, config_sha256, json.dumps(code_version, sort_keys=True),
                 json.dumps(summary)))
            run_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO metrics(run_id, key, value, kind) VALUES (?, ?, ?, ?)",
                [(run_id, k, v, kind) for k, (v, kind) in metrics.items()])
        return run_id
