"""Die thermal node and temperature sensor against closed-form first-order solutions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bms_emu.afe.die_thermal import (
    DieThermalParams,
    DieThermalSpec,
    TempSensorParams,
    die_temp_code,
    sample_die_thermal,
    simulate_die_temp_C,
    step_die_temp_C,
)


def _params() -> DieThermalParams:
    return DieThermalParams(
        r_th_C_per_W=np.array([40.0, 25.0, 60.0]),
        tau_s=np.array([20.0, 5.0, 50.0]),
        p_quiescent_W=np.array([0.1, 0.0, 0.2]),
    )


def test_step_response_matches_closed_form_for_any_step_size() -> None:
    p = _params()
    # Start at ambient 25 C, balancing 0.5 W switched on at t = 0.
    t_end = 60.0
    closed = 25.0 + p.r_th_C_per_W * (p.p_quiescent_W + 0.5) * (1 - np.exp(-t_end / p.tau_s))
    for n_steps in (1, 7, 600):
        series = simulate_die_temp_C(p, 25.0, 25.0, 0.5, t_end / n_steps, n_steps)
        assert series.shape == (3, n_steps)
        np.testing.assert_allclose(series[:, -1], closed, rtol=1e-12)
    # Intermediate points of the fine run lie on the same exponential.
    series = simulate_die_temp_C(p, 25.0, 25.0, np.full((1, 600), 0.5), 0.1)
    t = 0.1 * np.arange(1, 601)
    want = 25.0 + (p.r_th_C_per_W * (p.p_quiescent_W + 0.5))[:, None] * (
        1 - np.exp(-t[None, :] / p.tau_s[:, None])
    )
    np.testing.assert_allclose(series, want, rtol=1e-12)


def test_switch_off_decays_with_tau() -> None:
    p = _params()
    hot = 25.0 + p.r_th_C_per_W * (p.p_quiescent_W + 1.0)
    after_tau = [step_die_temp_C(p, hot, 25.0, 0.0, float(tau))[i] for i, tau in enumerate(p.tau_s)]
    floor = 25.0 + p.r_th_C_per_W * p.p_quiescent_W
    # One time constant leaves 1/e of the excess.
    np.testing.assert_allclose(np.array(after_tau) - floor, (hot - floor) / math.e, rtol=1e-12)


def test_vectorised_simulation_matches_scalar_loop() -> None:
    rng = np.random.default_rng(4)
    p = sample_die_thermal(5, DieThermalSpec(), rng)
    amb = rng.uniform(0, 65, (5, 30))
    pwr = rng.uniform(0, 1, (5, 30))
    got = simulate_die_temp_C(p, 30.0, amb, pwr, 2.5)
    for i in range(5):
        temp = 30.0
        for k in range(30):
            t_ss = amb[i, k] + p.r_th_C_per_W[i] * (p.p_quiescent_W[i] + pwr[i, k])
            temp = t_ss + (temp - t_ss) * math.exp(-2.5 / p.tau_s[i])
            assert got[i, k] == pytest.approx(temp, rel=1e-13)


def test_sensor_code_quantises_and_applies_ptat_gain() -> None:
    ideal = TempSensorParams.ideal(2)
    codes = die_temp_code(np.array([25.0, 25.03]), ideal, lsb_C=0.0625)
    assert codes.tolist() == [400, 400]  # 25.03 / 0.0625 = 400.48
    s = TempSensorParams(np.array([0.5, 0.0]), np.array([0.0, 1000.0]), np.zeros(2))
    # Offset 0.5 C -> +8 codes; 1000 ppm of 298.15 K = 0.298 C -> +4.77 -> +5 codes.
    assert die_temp_code(np.array([25.0, 25.0]), s, lsb_C=0.0625).tolist() == [408, 405]
    grid = die_temp_code(np.full((2, 3), 25.0), s, lsb_C=0.0625)
    assert grid.tolist() == [[408] * 3, [405] * 3]
