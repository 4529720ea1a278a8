"""Time base: tick conversion, event ordering, named random streams."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import bms_emu.sim as sim
from bms_emu.sim import TICKS_PER_S, EventQueue, RandomStreams, s_to_ticks, ticks_to_s


def test_doctests():
    assert doctest.testmod(sim).failed == 0


def test_ticks_round_trip_and_resolution():
    assert s_to_ticks(1.0) == TICKS_PER_S
    assert s_to_ticks(1e-9) == 1
    # 24 h in ns fits in int64 many times over and converts back exactly
    assert ticks_to_s(s_to_ticks(86400.0)) == 86400.0


def test_events_run_in_time_then_fifo_order():
    q = EventQueue()
    order = []
    q.schedule_at(5, lambda t: order.append(("x", t)))
    q.schedule_at(3, lambda t: order.append(("a", t)))
    q.schedule_at(5, lambda t: order.append(("y", t)))
    ev = q.schedule_at(4, lambda t: order.append(("cancelled", t)))
    q.cancel(ev)
    assert q.run_until(10) == 3
    assert order == [("a", 3), ("x", 5), ("y", 5)]
    assert q.now == 10


def test_events_may_schedule_events():
    q = EventQueue()
    ticks = []

    def periodic(t):
        ticks.append(t)
        if t < 40:
            q.schedule_in(10, periodic)

    q.schedule_at(0, periodic)
    q.run_until(100)
    assert ticks == [0, 10, 20, 30, 40]


def test_no_scheduling_in_the_past():
    q = EventQueue(start_tick=100)
    with pytest.raises(ValueError, match="before now"):
        q.schedule_at(50, lambda t: None)
    with pytest.raises(ValueError):
        q.schedule_in(-1, lambda t: None)
    with pytest.raises(ValueError):
        q.run_until(10)


def test_streams_are_independent_of_creation_order():
    a1 = RandomStreams(42).generator("afe.noise").standard_normal(8)
    s = RandomStreams(42)
    s.generator("something.new").standard_normal(100)  # a component added later
    a2 = s.generator("afe.noise").standard_normal(8)
    np.testing.assert_array_equal(a1, a2)


def test_streams_differ_by_name_and_seed():
    x = RandomStreams(1).generator("a").standard_normal(16)
    y = RandomStreams(1).generator("b").standard_normal(16)
    z = RandomStreams(2).generator("a").standard_normal(16)
    assert not np.allclose(x, y)
    assert not np.allclose(x, z)
    with pytest.raises(ValueError):
        RandomStreams(-1)
