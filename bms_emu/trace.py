"""Trace files: the CSV that ``bms-emu run`` writes and the replay source reads.

Columns: ``t_s``, ``current_A``, then per cell ``v_cell_NN_V`` (true terminal voltage),
``v_sense_NN_V`` (differential voltage at the chip pins), ``soc_NN`` and ``temp_cell_NN_C``, with
``NN`` the zero-based cell index. Files are written to a temporary name and renamed on success, so
an interrupted run never leaves a half-written trace behind.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TextIO

import numpy as np

__all__ = [
    "TraceFormatError",
    "TraceWriter",
    "cell_columns",
    "read_trace_csv",
]


class TraceFormatError(ValueError):
    """A trace or replay CSV is malformed; the message names the file, line and column."""


def cell_columns(prefix: str, suffix: str, n_cells: int) -> list[str]:
    """Per-cell column names, e.g. ``cell_columns("v_cell_", "_V", 2) == ["v_cell_00_V", ...]``.

    >>> cell_columns("temp_cell_", "_C", 2)
    ['temp_cell_00_C', 'temp_cell_01_C']
    """
    return [f"{prefix}{i:02d}{suffix}" for i in range(n_cells)]


def trace_header(n_cells: int) -> list[str]:
    """The full column list of a trace for ``n_cells`` cells."""
    return [
        "t_s",
        "current_A",
        *cell_columns("v_cell_", "_V", n_cells),
        *cell_columns("v_sense_", "_V", n_cells),
        *cell_columns("soc_", "", n_cells),
        *cell_columns("temp_cell_", "_C", n_cells),
    ]


class TraceWriter:
    """Write trace rows to ``path`` atomically (temp file in the same folder, then rename).

    Use as a context manager: on an exception (Ctrl-C included) the temp file is removed and
    ``path`` is left untouched.
    """

    def __init__(self, path: str | Path, header: Sequence[str]) -> None:
        self.path = Path(path)
        self.header = list(header)
        self._file: TextIO | None = None
        self._tmp: str | None = None

    def __enter__(self) -> TraceWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent
        )
        self._file = os.fdopen(fd, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.header)
        return self

    def write_row(self, values: np.ndarray) -> None:
        """Write one row; ``values`` shape (n_columns,). ``repr`` keeps floats round-trippable."""
        if values.shape != (len(self.header),):
            raise ValueError(f"row has {values.shape} values, header has {len(self.header)}")
        self._writer.writerow([repr(float(v)) for v in values])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._file is not None and self._tmp is not None
        self._file.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            os.unlink(self._tmp)


def read_trace_csv(
    path: str | Path, required: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """Read a numeric CSV with a header row strictly.

    Returns ``(header, data)`` with ``data`` shaped (n_rows, n_columns). Every row must have the
    header's column count, every field must be a finite number (an empty field is a gap), and
    ``t_s`` (if present) must be strictly increasing. Errors name the file, line and column.
    """
    p = Path(path)
    try:
        f = p.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise TraceFormatError(f"{p}: cannot read: {exc.strerror or exc}") from None
    with f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise TraceFormatError(f"{p}: empty file: expected a header row") from None
        except csv.Error as exc:
            raise TraceFormatError(f"{p}: line 1: {exc}") from None
        if len(set(header)) != len(header):
            dup = sorted({h for h in header if header.count(h) > 1})
            raise TraceFormatError(f"{p}: line 1: duplicate columns {dup}")
        missing = [c for c in (required or ()) if c not in header]
        if missing:
            raise TraceFormatError(
                f"{p}: line 1: missing columns {missing[:4]}{'...' if len(missing) > 4 else ''}"
            )
        rows: list[list[float]] = []
        t_col = header.index("t_s") if "t_s" in header else None
        try:
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise TraceFormatError(
                        f"{p}: line {line}: expected {len(header)} columns, got {len(row)}"
                    )
                values = []
                for name, field in zip(header, row, strict=True):
                    try:
                        v = float(field)
                    except ValueError:
                        gap = not field.strip()
                        what = "empty value (gap in the data)" if gap else "not a number"
                        raise TraceFormatError(
                            f"{p}: line {line}, column {name}: got {field!r}: {what}"
                        ) from None
                    if not math.isfinite(v):
                        raise TraceFormatError(
                            f"{p}: line {line}, column {name}: got {field!r}: must be finite"
                        )
                    values.append(v)
                if t_col is not None and rows and values[t_col] <= rows[-1][t_col]:
                    raise TraceFormatError(
                        f"{p}: line {line}, column t_s: got {values[t_col]!r}: time must increase "
                        f"(previous row has {rows[-1][t_col]!r})"
                    )
                rows.append(values)
        except csv.Error as exc:
            raise TraceFormatError(f"{p}: line {reader.line_num}: {exc}") from None
    if not rows:
        raise TraceFormatError(f"{p}: no data rows after the header")
    return header, np.asarray(rows, dtype=float)
