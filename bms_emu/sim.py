"""Simulation time base: integer ticks, an event queue and deterministic random streams.

Time is an integer number of nanosecond ticks so that chip-clock cycle counts, SPI windows and
multi-day pack runs share one exact clock (int64 ns covers 292 years). Floating seconds appear
only at the boundary with the physics models.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TICKS_PER_S",
    "EventQueue",
    "RandomStreams",
    "s_to_ticks",
    "ticks_to_s",
]

#: One tick is 1 ns.
TICKS_PER_S = 1_000_000_000


def s_to_ticks(t_s: float) -> int:
    """Seconds to ticks, rounded to the nearest tick."""
    return round(t_s * TICKS_PER_S)


def ticks_to_s(ticks: int) -> float:
    """Ticks to seconds."""
    return ticks / TICKS_PER_S


@dataclass(order=True)
class _Event:
    tick: int
    seq: int
    action: Callable[[int], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class EventQueue:
    """Discrete-event scheduler over integer ticks.

    Events at the same tick run in the order they were scheduled (FIFO), which keeps runs
    deterministic. Each action receives the tick it runs at and may schedule further events.

    >>> q = EventQueue()
    >>> seen = []
    >>> _ = q.schedule_at(20, lambda t: seen.append(("b", t)))
    >>> _ = q.schedule_at(10, lambda t: seen.append(("a", t)))
    >>> q.run_until(15)
    1
    >>> seen
    [('a', 10)]
    >>> q.now
    15
    """

    def __init__(self, start_tick: int = 0) -> None:
        self._heap: list[_Event] = []
        self._seq = itertools.count()
        self.now = start_tick

    def schedule_at(self, tick: int, action: Callable[[int], None]) -> _Event:
        """Run ``action(tick)`` at absolute ``tick`` (not in the past). Returns a handle."""
        if tick < self.now:
            raise ValueError(f"cannot schedule at tick {tick}: it is before now ({self.now})")
        ev = _Event(int(tick), next(self._seq), action)
        heapq.heappush(self._heap, ev)
        return ev

    def schedule_in(self, delay_ticks: int, action: Callable[[int], None]) -> _Event:
        """Run ``action`` ``delay_ticks`` from now."""
        if delay_ticks < 0:
            raise ValueError(f"delay must be >= 0 ticks, got {delay_ticks}")
        return self.schedule_at(self.now + delay_ticks, action)

    @staticmethod
    def cancel(event: _Event) -> None:
        """Cancel a scheduled event (no-op if it already ran)."""
        event.cancelled = True

    def next_tick(self) -> int | None:
        """Tick of the next pending event, or None."""
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].tick if self._heap else None

    def run_until(self, tick: int) -> int:
        """Run every event with time <= ``tick``, then set ``now = tick``. Returns events run."""
        if tick < self.now:
            raise ValueError(f"cannot run back to tick {tick}: now is {self.now}")
        n = 0
        while self._heap and self._heap[0].tick <= tick:
            ev = heapq.heappop(self._heap)
            if ev.cancelled:
                continue
            self.now = ev.tick
            ev.action(ev.tick)
            n += 1
        self.now = tick
        return n

    def __len__(self) -> int:
        return sum(1 for e in self._heap if not e.cancelled)


class RandomStreams:
    """Independent, named random streams derived from one seed.

    Each component asks for its stream by a stable name. The child ``SeedSequence`` is keyed by a
    hash of the name (not by creation order), so adding a component never changes the numbers
    another component draws.

    >>> a = RandomStreams(7).generator("pack.spread").random()
    >>> _ = RandomStreams(7).generator("afe.noise")
    >>> a == RandomStreams(7).generator("pack.spread").random()
    True
    """

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)

    def seed_sequence(self, name: str) -> np.random.SeedSequence:
        """The child SeedSequence for component ``name``."""
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        key = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
        return np.random.SeedSequence(entropy=self.seed, spawn_key=key)

    def generator(self, name: str) -> np.random.Generator:
        """A fresh PCG64 generator for component ``name`` (same name, same numbers)."""
        return np.random.Generator(np.random.PCG64(self.seed_sequence(name)))
