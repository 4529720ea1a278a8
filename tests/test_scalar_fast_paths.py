"""The Python-float fast paths of the profile and the virtual pack source against the numpy
array forms they replaced (kept here as the reference): equal to the bit, random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.config import load_pack
from bms_emu.pack import VirtualPack
from bms_emu.profile import CurrentProfile
from bms_emu.sources import VirtualPackSource


def _charge_As_array(p: CurrentProfile, t_s: float) -> float:
    """``CurrentProfile.charge_As`` as it was written on the arrays."""
    if p.repeat:
        period = p.t_s[-1]
        k = int(np.floor(t_s / period))
        tw = t_s - k * period
    else:
        tw, k = t_s, 0
    q = k * p._q_As[-1] if p.repeat else 0.0
    last = p.t_s.size - 1
    idx = min(int(np.searchsorted(p.t_s, tw, side="right")) - 1, last)
    dt = tw - p.t_s[idx]
    if idx == last:
        return float(q + p._q_As[last] + p.current_A[last] * dt)
    if p.interpolation == "hold":
        return float(q + p._q_As[idx] + p.current_A[idx] * dt)
    slope = (p.current_A[idx + 1] - p.current_A[idx]) / (p.t_s[idx + 1] - p.t_s[idx])
    return float(q + p._q_As[idx] + p.current_A[idx] * dt + 0.5 * slope * dt * dt)


def _next_break_array(src: VirtualPackSource, t_s: float) -> float:
    """``VirtualPackSource._next_break_s`` as it was written on the arrays."""
    rel = t_s - src._profile_t0_s
    bps = src.profile.breakpoints_s
    period = src.profile.period_s
    if period is not None:
        k = np.floor(rel / period)
        cands = k * period + np.concatenate((bps, period + bps))
        return float(src._profile_t0_s + cands[cands > rel + 1e-12][0])
    later = bps[bps > rel + 1e-12]
    return float(src._profile_t0_s + later[0]) if later.size else float("inf")


def _profiles(rng: np.random.Generator) -> list[CurrentProfile]:
    out = []
    for _ in range(12):
        n = int(rng.integers(2, 9))
        t = np.concatenate(([0.0], np.cumsum(rng.uniform(1e-4, 0.7, n - 1))))
        i = rng.uniform(-150.0, 150.0, n)
        for interp in ("hold", "linear"):
            for repeat in (False, True):
                out.append(CurrentProfile(t, i, interp, repeat))
    return out


def _times(rng: np.random.Generator, p: CurrentProfile) -> np.ndarray:
    end = float(p.t_s[-1])
    t = rng.uniform(0.0, 40.0 * max(end, 1e-3), 300)
    # on and a hair around breakpoints and period boundaries, where the rounding matters
    k = rng.integers(0, 50, 100)
    on = k * end + rng.choice(p.t_s, 100)
    near = np.concatenate((on, np.nextafter(on, -np.inf), np.nextafter(on, np.inf), on - 1e-12))
    grid = np.cumsum(np.full(2000, 0.1e-3))  # float sums: the case of commit b1d9506
    return np.concatenate((t, np.maximum(near, 0.0), grid, [0.0]))


def _current_at_array(p: CurrentProfile, t_s: float) -> float:
    """``CurrentProfile.current_at`` as it was written on the arrays."""
    tw = t_s - int(np.floor(t_s / p.t_s[-1])) * p.t_s[-1] if p.repeat else t_s
    if p.interpolation == "linear":
        return float(np.interp(tw, p.t_s, p.current_A))
    return float(p.current_A[int(np.searchsorted(p.t_s, tw, side="right")) - 1])


def test_current_at_equals_array_form() -> None:
    rng = np.random.default_rng(6)
    for p in [*_profiles(rng), CurrentProfile.constant(-4.0)]:
        for t in _times(rng, p):
            got = p.current_at(float(t))
            assert got == _current_at_array(p, float(t))
            assert isinstance(got, float)


def test_charge_and_mean_equal_array_form() -> None:
    rng = np.random.default_rng(7)
    for p in _profiles(rng):
        for t in _times(rng, p):
            assert p.charge_As(float(t)) == _charge_As_array(p, float(t))


def test_next_break_equals_array_form(lfp_pack_path) -> None:
    rng = np.random.default_rng(8)
    src = VirtualPackSource(VirtualPack(load_pack(lfp_pack_path)))
    for p in [*_profiles(rng), CurrentProfile.constant(3.0)]:
        src.profile = p
        for t0 in (0.0, float(rng.uniform(0.0, 5.0))):
            src._profile_t0_s = t0
            for t in _times(rng, p):
                got = src._next_break_s(t0 + float(t))
                assert got == _next_break_array(src, t0 + float(t))
                assert isinstance(got, float)


def test_sample_without_balancing_equals_general_path(lfp_pack_path) -> None:
    """The no-bleed shortcut of ``cell_and_sense_voltage_V`` against the general path with
    every bleed conductance zero (forced through by the balancing flag)."""
    rng = np.random.default_rng(9)
    pack = VirtualPack(load_pack(lfp_pack_path))
    for _ in range(200):
        pack.step(float(rng.uniform(1e-4, 5.0)), float(rng.uniform(-300.0, 300.0)))
        fast = pack.cell_and_sense_voltage_V()
        pack._balancing = True  # g_bleed all zero: the general path, same physics
        slow = pack.cell_and_sense_voltage_V()
        pack._balancing = False
        for a, b in zip(fast, slow, strict=True):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("dt_s", [1e-3, 0.37, 10.0])
def test_prepare_constants_equal_broadcast_copies(lfp_pack_path, dt_s: float) -> None:
    """``_prepare`` hands the compiled step the same values the broadcast copies held."""
    pack = VirtualPack(load_pack(lfp_pack_path))
    pack._prepare(dt_s)
    n = pack.n_cells
    assert np.array_equal(pack._decay_1d, np.exp(-dt_s / pack._tau_el_s))
    assert np.array_equal(pack._r_gain_1d, pack._r_el_Ohm * (1.0 - pack._decay_1d))
    ref = np.ascontiguousarray(np.broadcast_to(pack._sd_soc_per_s * dt_s, (n,)))
    assert np.array_equal(pack._soc_sd_arr, ref)
    dis = np.ascontiguousarray(np.broadcast_to(pack._inv_q_per_As * dt_s, (n,)))
    assert np.array_equal(pack._per_a_dis, dis)
    assert np.array_equal(pack._per_a_chg, dis * pack._eta)
    for a in (pack._decay_1d, pack._r_gain_1d, pack._soc_sd_arr, pack._per_a_dis):
        assert a.flags.c_contiguous and a.dtype == np.float64
