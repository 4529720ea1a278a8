"""Pack sources: where the chip's cell voltages, temperatures and current come from.

One interface, :class:`PackSource`, with two implementations here: the virtual pack driven by a
current profile, and a replay of recorded data (CSV). The live CAN source (a real pack's data
over CAN) implements the same interface in ``hil``.

Sources advance lazily: ``sample(t_s)`` moves the source to ``t_s`` and returns the state there.
Times must not go backwards for a live source.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from bms_emu.config import PackConfig
from bms_emu.pack import VirtualPack
from bms_emu.profile import CurrentProfile
from bms_emu.trace import TraceFormatError, cell_columns, read_trace_csv

__all__ = [
    "PackSample",
    "PackSource",
    "ReplaySource",
    "SourceError",
    "VirtualPackSource",
]


class SourceError(ValueError):
    """A source cannot give the state asked for (time out of range, backwards, stale data)."""


@dataclass(frozen=True)
class PackSample:
    """The pack's state at one instant.

    Attributes
    ----------
    t_s : float
    current_A : float
        Pack current, positive discharging.
    sense_voltage_V : array, shape (n_cells,)
        Differential voltage at the monitor chip's sense pins (what the chip measures).
    cell_voltage_V : array, shape (n_cells,)
        True cell terminal voltage (the reference for accuracy).
    temperature_C : array, shape (n_cells,)
    ntc_voltage_V : array, shape (n_sensors,)
        NTC divider voltages for the chip's aux inputs (empty when the source has none).
    """

    t_s: float
    current_A: float
    sense_voltage_V: np.ndarray
    cell_voltage_V: np.ndarray
    temperature_C: np.ndarray
    ntc_voltage_V: np.ndarray = field(default_factory=lambda: np.zeros(0))


@runtime_checkable
class PackSource(Protocol):
    """Anything that can say what the pack looks like at a time."""

    @property
    def n_cells(self) -> int: ...

    def sample(self, t_s: float) -> PackSample:
        """Advance to ``t_s`` and return the state there."""
        ...

    def set_balance_resistance(self, r_Ohm: np.ndarray) -> None:
        """Bleed resistors switched across the cells, shape (n_cells,), inf = off."""
        ...


class VirtualPackSource:
    """The virtual pack driven by a current profile (or a current set at run time).

    Steps are at most ``max_step_s`` long and split at the profile's breakpoints, each using the
    exact mean current over the step, so a hold profile is integrated exactly.
    """

    def __init__(
        self,
        pack: VirtualPack,
        profile: CurrentProfile | None = None,
        max_step_s: float = 1.0,
    ) -> None:
        if max_step_s <= 0:
            raise ValueError(f"max_step_s must be > 0, got {max_step_s}")
        self.pack = pack
        self.profile = profile or CurrentProfile.constant(0.0)
        self._profile_t0_s = 0.0
        self.max_step_s = max_step_s

    @classmethod
    def from_config(
        cls, config: PackConfig, profile: CurrentProfile | None = None, seed: int | None = None
    ) -> VirtualPackSource:
        return cls(VirtualPack(config, seed=seed), profile)

    @property
    def n_cells(self) -> int:
        return self.pack.n_cells

    @property
    def t_s(self) -> float:
        return self.pack.t_s

    def set_current_A(self, current_A: float) -> None:
        """From now on, hold the pack current at ``current_A`` (replaces the profile)."""
        self.profile = CurrentProfile.constant(current_A)
        self._profile_t0_s = self.pack.t_s

    def set_balance_resistance(self, r_Ohm: np.ndarray) -> None:
        self.pack.set_balance_resistance(r_Ohm)

    def _next_break_s(self, t_s: float) -> float:
        """The first profile breakpoint strictly after ``t_s`` (absolute time), or inf."""
        # Python floats and bisect (once per pack step): the same IEEE operations as the array
        # form kept in tests/test_sources.py, which checks the two agree
        rel = t_s - self._profile_t0_s
        bps = self.profile.breakpoint_list_s
        period = self.profile.period_s
        after = rel + 1e-12
        # rounding is monotonic, so base + b is sorted like bps and bisect finds the first later
        if period is not None:
            # this period's breakpoints and the next one's: rounding can leave rel a hair below
            # a period boundary with k one short, and then nothing in this period is later
            base = math.floor(rel / period) * period
            j = bisect_right(bps, after, key=lambda b: base + b)
            if j < len(bps):
                return self._profile_t0_s + (base + bps[j])
            j = bisect_right(bps, after, key=lambda b: base + (period + b))
            return self._profile_t0_s + (base + (period + bps[j]))
        j = bisect_right(bps, after)  # first breakpoint > rel + 1e-12
        return self._profile_t0_s + bps[j] if j < len(bps) else math.inf

    def current_at(self, t_s: float) -> float:
        """Instantaneous pack current from the profile at absolute time ``t_s``."""
        return self.profile.current_at(max(t_s - self._profile_t0_s, 0.0))

    def advance_to(self, t_s: float) -> None:
        """Integrate the pack up to ``t_s``."""
        now = self.pack.t_s
        if t_s < now - 1e-12:
            raise SourceError(f"cannot go back in time: asked for t_s={t_s}, source is at {now}")
        while now < t_s - 1e-12:
            end = min(t_s, now + self.max_step_s, self._next_break_s(now))
            t0 = now - self._profile_t0_s
            i_mean = self.profile.mean_current(t0, end - self._profile_t0_s)
            self.pack.step(end - now, i_mean)
            now = self.pack.t_s

    def sample(self, t_s: float) -> PackSample:
        self.advance_to(t_s)
        cell_V, sense_V = self.pack.cell_and_sense_voltage_V()  # shared terms evaluated once
        return PackSample(
            t_s=self.pack.t_s,
            current_A=self.current_at(self.pack.t_s),
            sense_voltage_V=sense_V,
            cell_voltage_V=cell_V,
            temperature_C=self.pack.temperature_C(),
            ntc_voltage_V=self.pack.ntc_voltage_V(),
        )


class ReplaySource:
    """Recorded pack data replayed with linear interpolation.

    The CSV needs ``t_s``, ``current_A``, ``v_cell_NN_V`` and ``temp_cell_NN_C`` for NN in
    0..n_cells-1 (a trace written by ``bms-emu run`` qualifies); other columns are ignored.
    ``v_sense_NN_V`` columns are used for the sense voltage when present, else the cell voltage.
    Rows further apart than ``max_gap_s`` are an error, as are empty fields, non-increasing time
    and rows with the wrong column count. Balancing cannot change recorded data; it is refused
    with a clear error rather than silently ignored.

    Parameters
    ----------
    t_s : array, shape (n_rows,)
    current_A : array, shape (n_rows,)
    cell_voltage_V, sense_voltage_V, temperature_C : array, shape (n_rows, n_cells)
    """

    def __init__(
        self,
        t_s: np.ndarray,
        current_A: np.ndarray,
        cell_voltage_V: np.ndarray,
        temperature_C: np.ndarray,
        sense_voltage_V: np.ndarray | None = None,
        max_gap_s: float | None = None,
        source: str = "replay",
    ) -> None:
        t = np.asarray(t_s, dtype=float)
        if t.ndim != 1 or t.size < 2:
            raise SourceError(f"{source}: need at least 2 samples, got {t.size}")
        if np.any(np.diff(t) <= 0):
            raise SourceError(f"{source}: t_s must be strictly increasing")
        if max_gap_s is not None:
            gaps = np.flatnonzero(np.diff(t) > max_gap_s)
            if gaps.size:
                i = int(gaps[0])
                raise SourceError(
                    f"{source}: gap of {t[i + 1] - t[i]:g} s between t_s={t[i]:g} and "
                    f"t_s={t[i + 1]:g}: larger than max_gap_s={max_gap_s:g}"
                )
        self._t = t
        self._i = np.asarray(current_A, dtype=float)
        self._v = np.asarray(cell_voltage_V, dtype=float)
        self._vs = self._v if sense_voltage_V is None else np.asarray(sense_voltage_V, float)
        self._temp = np.asarray(temperature_C, dtype=float)
        self.source = source
        self._last_t = -np.inf

    @classmethod
    def from_csv(
        cls, path: str | Path, n_cells: int, max_gap_s: float | None = None
    ) -> ReplaySource:
        """Load a replay CSV for ``n_cells`` cells (see the class docstring for its columns)."""
        v_cols = cell_columns("v_cell_", "_V", n_cells)
        t_cols = cell_columns("temp_cell_", "_C", n_cells)
        header, data = read_trace_csv(path, ["t_s", "current_A", *v_cols, *t_cols])
        extra = [h for h in header if h.startswith("v_cell_") and h not in v_cols]
        if extra:
            raise TraceFormatError(
                f"{path}: line 1: columns {extra[:3]} do not fit n_cells={n_cells}"
            )
        col = {name: i for i, name in enumerate(header)}
        s_cols = cell_columns("v_sense_", "_V", n_cells)
        sense = data[:, [col[c] for c in s_cols]] if all(c in col for c in s_cols) else None
        return cls(
            data[:, col["t_s"]],
            data[:, col["current_A"]],
            data[:, [col[c] for c in v_cols]],
            data[:, [col[c] for c in t_cols]],
            sense_voltage_V=sense,
            max_gap_s=max_gap_s,
            source=str(path),
        )

    @property
    def n_cells(self) -> int:
        return int(self._v.shape[1])

    @property
    def span_s(self) -> tuple[float, float]:
        """First and last recorded time."""
        return float(self._t[0]), float(self._t[-1])

    def set_balance_resistance(self, r_Ohm: np.ndarray) -> None:
        if np.any(np.isfinite(np.asarray(r_Ohm, dtype=float))):
            raise SourceError(f"{self.source}: recorded data cannot respond to balancing")

    def sample(self, t_s: float) -> PackSample:
        t0, t1 = self.span_s
        if not t0 <= t_s <= t1:
            raise SourceError(f"{self.source}: t_s={t_s:g} outside the recording [{t0:g}, {t1:g}]")
        if t_s < self._last_t:
            raise SourceError(
                f"{self.source}: cannot go back in time: asked for t_s={t_s:g} "
                f"after {self._last_t:g}"
            )
        self._last_t = t_s
        # linear interpolation between the bracketing rows, all columns at once
        k = int(np.clip(np.searchsorted(self._t, t_s, side="right") - 1, 0, self._t.size - 2))
        w = (t_s - self._t[k]) / (self._t[k + 1] - self._t[k])

        def lerp(a: np.ndarray) -> np.ndarray:
            return a[k] * (1.0 - w) + a[k + 1] * w

        return PackSample(
            t_s=t_s,
            current_A=float(lerp(self._i)),
            sense_voltage_V=lerp(self._vs),
            cell_voltage_V=lerp(self._v),
            temperature_C=lerp(self._temp),
        )
