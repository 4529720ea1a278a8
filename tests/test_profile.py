"""Current profiles: exact interval means against hand-integrated values."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy.integrate import quad

import bms_emu.profile as profile_mod
from bms_emu.profile import CurrentProfile


def test_doctests():
    assert doctest.testmod(profile_mod).failed == 0


@pytest.mark.parametrize("interp", ["hold", "linear"])
@pytest.mark.parametrize("repeat", [False, True])
def test_mean_current_matches_numerical_integral(interp, repeat):
    p = CurrentProfile([0, 10, 25, 40], [5.0, -3.0, 8.0, 1.0], interp, repeat)
    breaks = list(np.arange(0, 200, 5.0))
    for t0, t1 in [(0, 7), (3, 33), (12, 95), (38, 150), (41, 42)]:
        val, _ = quad(p.current_at, t0, t1, points=[b for b in breaks if t0 < b < t1], limit=200)
        assert p.mean_current(t0, t1) == pytest.approx(val / (t1 - t0), rel=1e-9, abs=1e-9)


def test_hold_and_linear_values():
    p = CurrentProfile([0, 10], [0.0, 10.0], "linear")
    assert p.current_at(5) == 5.0
    assert p.current_at(50) == 10.0  # last value holds
    r = CurrentProfile([0, 10, 20], [1.0, 2.0, 99.0], "hold", repeat=True)
    assert r.current_at(25) == 1.0 and r.current_at(35) == 2.0
    assert r.period_s == 20


@pytest.mark.parametrize(
    "t,i,kw",
    [([1.0], [0.0], {}), ([0, 2, 1], [0, 0, 0], {}), ([0, 1], [0, np.nan], {}),
     ([0, 1], [0, 1], {"interpolation": "spline"}), ([0], [1], {"repeat": True})],
)
def test_bad_profiles_rejected(t, i, kw):
    with pytest.raises(ValueError):
        CurrentProfile(t, i, **kw)


def test_negative_time_rejected():
    with pytest.raises(ValueError):
        CurrentProfile.constant(1.0).current_at(-1.0)
    with pytest.raises(ValueError):
        CurrentProfile.constant(1.0).mean_current(2.0, 1.0)
