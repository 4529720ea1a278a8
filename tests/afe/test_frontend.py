"""Front end: each error term against its closed form; scalar reference for the vector kernel."""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.afe.frontend import (
    FrontEndParams,
    FrontEndSpec,
    InputFilter,
    adc_input_V,
    open_wire_pin_V,
    sample_frontend,
)


def _params(**over) -> FrontEndParams:
    spec = FrontEndSpec(n_channels=4, offset_uV_sigma=50, gain_ppm_sigma=100, inl_uV_sigma=30,
                        cm_error_uV_per_position=5, cm_error_uV_per_position_sigma=2,
                        leakage_nA_sigma=10)
    p = sample_frontend(3, spec, np.random.default_rng(1))
    fields = {k: getattr(p, k) for k in p.__dataclass_fields__}
    fields.update(over)
    return FrontEndParams(**fields)


def _scalar_adc_input(p: FrontEndParams, d: int, k: int, v: float) -> float:
    leak = (p.leakage_nA[d, k + 1] - p.leakage_nA[d, k]) * 1e-9 * p.r_filter_Ohm
    x = min(max(v / p.v_full_scale_V, 0.0), 1.0)
    inl = p.inl_uV[d, k] * 1e-6 * 4 * x * (1 - x)
    err = (p.offset_uV[d, k] + p.cm_error_uV[d, k]) * 1e-6 + inl - leak
    return (v + err) * (1 + p.gain_ppm[d, k] * 1e-6)


def test_vectorised_transfer_equals_scalar_reference():
    p = _params()
    v = np.random.default_rng(2).uniform(2.5, 4.2, size=(3, 4))
    out = adc_input_V(p, v)
    for d in range(3):
        for k in range(4):
            assert out[d, k] == pytest.approx(_scalar_adc_input(p, d, k, v[d, k]), abs=1e-15)
    # a trailing grid axis broadcasts to the same values
    grid = adc_input_V(p, np.stack([v, v], axis=-1))
    np.testing.assert_allclose(grid[..., 0], out, rtol=0, atol=1e-15)


def test_ideal_front_end_is_identity_and_terms_are_separable():
    z = np.zeros((1, 4))
    ideal = _params(offset_uV=z, gain_ppm=z, inl_uV=z, cm_error_uV=z, leakage_nA=np.zeros((1, 5)))
    v = np.array([[3.3, 3.2, 0.0, 5.0]])
    np.testing.assert_array_equal(adc_input_V(ideal, v), v)
    gain = _params(offset_uV=z, gain_ppm=z + 1000, inl_uV=z, cm_error_uV=z,
                   leakage_nA=np.zeros((1, 5)))
    np.testing.assert_allclose(adc_input_V(gain, v), v * 1.001, rtol=1e-15)
    inl = _params(offset_uV=z, gain_ppm=z, inl_uV=z + 40, cm_error_uV=z,
                  leakage_nA=np.zeros((1, 5)))
    err = adc_input_V(inl, np.array([[0.0, 2.5, 5.0, 1.25]])) - [[0.0, 2.5, 5.0, 1.25]]
    np.testing.assert_allclose(err, [[0, 40e-6, 0, 30e-6]], atol=1e-15)  # 4x(1-x) at x=.25: .75
    leak = np.zeros((1, 5))
    leak[0, 2] = 10.0  # 10 nA out of pin 2: channel 2 (pins 2-1) up... sign: top minus bottom
    lk = _params(offset_uV=z, gain_ppm=z, inl_uV=z, cm_error_uV=z, leakage_nA=leak)
    err = adc_input_V(lk, np.full((1, 4), 3.0)) - 3.0
    np.testing.assert_allclose(err, [[0, -1e-6, 1e-6, 0]], atol=1e-15)  # 10 nA x 100 Ohm


def test_common_mode_error_grows_with_stack_position():
    spec = FrontEndSpec(n_channels=16, cm_error_uV_per_position=10.0)
    p = sample_frontend(2, spec, np.random.default_rng(0))
    np.testing.assert_allclose(p.cm_error_uV[0], 10.0 * np.arange(1, 17))


def test_population_spread_statistics():
    spec = FrontEndSpec(offset_uV_sigma=50, gain_ppm_mean=20, gain_ppm_sigma=100)
    p = sample_frontend(4000, spec, np.random.default_rng(3))
    assert np.std(p.offset_uV) == pytest.approx(50, rel=0.03)
    assert np.mean(p.gain_ppm) == pytest.approx(20, abs=3)


def test_input_filter_step_response_is_exact():
    p = _params()
    f = InputFilter(p, np.zeros((3, 4)))
    tau = 2 * p.r_filter_Ohm * p.c_filter_F
    t = 0.0
    for dt in (1e-6, 3e-7, 2e-6, 5e-6):
        v = f.step(dt, np.full((3, 4), 3.3))
        t += dt
    np.testing.assert_allclose(v, 3.3 * (1 - np.exp(-t / tau)), rtol=1e-12)


def test_balance_resistance():
    p = _params()
    on = np.zeros((3, 4), bool)
    on[1, 2] = True
    r = p.balance_resistance_Ohm(on)
    assert r[1, 2] == p.bleed_resistance_Ohm + p.switch_on_resistance_Ohm
    assert np.isinf(r).sum() == 11


def test_open_wire_slews_then_clamps_at_neighbours():
    p = _params()
    pins = np.array([0.0, 3.3, 6.6, 9.9, 13.2])
    open_ = np.array([False, False, True, False, False])
    held = pins.copy()
    slew = p.i_open_wire_A / p.c_filter_F  # V/s
    t = 0.5 / slew
    down = open_wire_pin_V(pins, open_, held, p, -1, t)
    assert down[2] == pytest.approx(6.6 - 0.5)
    np.testing.assert_array_equal(np.delete(down, 2), np.delete(pins, 2))
    long_down = open_wire_pin_V(pins, open_, held, p, -1, 1.0)
    assert long_down[2] == pytest.approx(3.3 - p.clamp_drop_V)
    long_up = open_wire_pin_V(pins, open_, held, p, +1, 1.0)
    assert long_up[2] == pytest.approx(9.9 + p.clamp_drop_V)
    # cell 2 (pins 2-1) collapses on pull-down: the detection signature
    assert (long_down[2] - long_down[1]) < -0.4
