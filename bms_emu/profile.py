"""Pack current vs time: constant, piecewise (hold or linear), optionally periodic.

The pack model integrates with a zero-order hold on the *mean* current over each step, so the
profile offers the exact mean over an interval (the integral of a piecewise-constant or
piecewise-linear function), which keeps charge exactly conserved whatever the step.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bms_emu.config import CurrentProfileConfig

__all__ = ["CurrentProfile"]


class CurrentProfile:
    """Piecewise current profile; positive current discharges the pack.

    Parameters
    ----------
    t_s : array, shape (n_points,)
        Strictly increasing breakpoint times, starting at 0.
    current_A : array, shape (n_points,)
        Current at each breakpoint.
    interpolation : {"hold", "linear"}
        ``hold`` keeps each value until the next breakpoint; ``linear`` interpolates.
    repeat : bool
        Periodic with period ``t_s[-1]`` (the value at ``t_s[-1]`` is then never used on its own).

    Examples
    --------
    >>> p = CurrentProfile([0.0, 10.0], [2.0, -1.0], "hold")
    >>> p.current_at(5.0), p.current_at(12.0)
    (2.0, -1.0)
    >>> p.mean_current(5.0, 15.0)
    0.5
    """

    def __init__(
        self,
        t_s: np.ndarray | list[float],
        current_A: np.ndarray | list[float],
        interpolation: str = "hold",
        repeat: bool = False,
    ) -> None:
        t = np.asarray(t_s, dtype=float)
        i = np.asarray(current_A, dtype=float)
        if t.ndim != 1 or t.shape != i.shape or t.size == 0:
            raise ValueError("t_s and current_A must be 1-D arrays of the same non-zero length")
        if t[0] != 0.0 or np.any(np.diff(t) <= 0):
            raise ValueError("t_s must start at 0 and be strictly increasing")
        if not np.all(np.isfinite(i)):
            raise ValueError("current_A must be finite")
        if interpolation not in ("hold", "linear"):
            raise ValueError(f"interpolation must be 'hold' or 'linear', got {interpolation!r}")
        if repeat and t.size < 2:
            raise ValueError("a repeating profile needs at least 2 points")
        self.t_s = t
        self.current_A = i
        self.interpolation = interpolation
        self.repeat = repeat
        # cumulative charge (A s) at each breakpoint, for exact interval means
        if interpolation == "hold":
            seg = i[:-1] * np.diff(t)
        else:
            seg = 0.5 * (i[:-1] + i[1:]) * np.diff(t)
        self._q_As = np.concatenate(([0.0], np.cumsum(seg)))
        # the same tables as Python floats: the scalar look-ups below run once per pack step,
        # where numpy's per-call overhead on 0-d values was most of their cost
        self._t_list = t.tolist()
        self._i_list = i.tolist()
        self._q_list = self._q_As.tolist()

    @classmethod
    def constant(cls, current_A: float) -> CurrentProfile:
        """A constant current for all time."""
        return cls([0.0], [current_A])

    @classmethod
    def from_config(cls, cfg: CurrentProfileConfig) -> CurrentProfile:
        """Build from a validated :class:`~bms_emu.config.CurrentProfileConfig`."""
        pts = np.asarray(cfg.points, dtype=float)
        return cls(pts[:, 0], pts[:, 1], cfg.interpolation, cfg.repeat)

    @property
    def period_s(self) -> float | None:
        """Period of a repeating profile, else None."""
        return float(self.t_s[-1]) if self.repeat else None

    @property
    def breakpoints_s(self) -> np.ndarray:
        """Breakpoint times of one period, shape (n_points,)."""
        return self.t_s

    @property
    def breakpoint_list_s(self) -> list[float]:
        """:attr:`breakpoints_s` as a list of Python floats (for scalar look-ups; do not modify)."""
        return self._t_list

    def _wrap(self, t_s: float) -> tuple[float, int]:
        if self.repeat:
            period = self._t_list[-1]
            k = math.floor(t_s / period)  # same value as np.floor; int * float is exact here
            return t_s - k * period, k
        return t_s, 0

    def current_at(self, t_s: float) -> float:
        """Instantaneous current at ``t_s`` (right-continuous at hold breakpoints)."""
        if t_s < 0:
            raise ValueError(f"t_s must be >= 0, got {t_s}")
        tw, _ = self._wrap(t_s)
        t, i = self._t_list, self._i_list
        j = bisect_right(t, tw) - 1  # np.searchsorted(side="right") - 1
        if self.interpolation == "hold":
            return i[j]
        # np.interp's steps for one point on Python floats (once per pack sample)
        if j < 0:
            return i[0]
        if j >= len(t) - 1 or t[j] == tw:
            return i[j]
        if math.isnan(tw):
            return tw
        slope = (i[j + 1] - i[j]) / (t[j + 1] - t[j])
        return slope * (tw - t[j]) + i[j]

    def charge_As(self, t_s: float) -> float:
        """Integral of the current from 0 to ``t_s`` in ampere-seconds."""
        if t_s < 0:
            raise ValueError(f"t_s must be >= 0, got {t_s}")
        # Python floats and bisect: the same IEEE operations as on the arrays, in order
        tw, k = self._wrap(t_s)
        t, i, q_As = self._t_list, self._i_list, self._q_list
        q = k * q_As[-1] if self.repeat else 0.0
        last = len(t) - 1
        idx = min(bisect_right(t, tw) - 1, last)  # np.searchsorted(side="right") - 1
        dt = tw - t[idx]
        if idx == last:
            return float(q + q_As[last] + i[last] * dt)
        if self.interpolation == "hold":
            return float(q + q_As[idx] + i[idx] * dt)
        slope = (i[idx + 1] - i[idx]) / (t[idx + 1] - t[idx])
        return float(q + q_As[idx] + i[idx] * dt + 0.5 * slope * dt * dt)

    def mean_current(self, t0_s: float, t1_s: float) -> float:
        """Exact mean current over ``[t0_s, t1_s]`` (the instantaneous value if equal)."""
        if t1_s < t0_s:
            raise ValueError(f"interval end {t1_s} is before its start {t0_s}")
        if t1_s == t0_s:
            return self.current_at(t0_s)
        return (self.charge_As(t1_s) - self.charge_As(t0_s)) / (t1_s - t0_s)
