"""Current channel: offset is fixed in amperes, so % of reading grows as 1/I (closed form)."""

from __future__ import annotations

import numpy as np

from bms_emu.afe.current_channel import (
    CurrentChannelSpec,
    measure_current_A,
    sample_current_channel,
)


def test_offset_only_gives_constant_ampere_error_and_inverse_percent():
    spec = CurrentChannelSpec(shunt_uOhm=100.0, offset_uV_sigma=10.0, full_scale_A=500.0)
    p = sample_current_channel(5, spec, np.random.default_rng(0))
    currents = np.array([400.0, 40.0, 4.0])
    err_A = measure_current_A(p, currents[np.newaxis, :], 25.0) - currents
    expected_A = p.offset_uV / 100.0  # uV / uOhm = A
    np.testing.assert_allclose(err_A, np.repeat(expected_A[:, None], 3, axis=1), rtol=1e-9)
    pct = 100 * err_A / currents
    np.testing.assert_allclose(pct[:, 2], 100 * pct[:, 0], rtol=1e-9)  # 100x smaller I, 100x %


def test_gain_and_tempco_are_proportional():
    spec = CurrentChannelSpec(shunt_uOhm=100.0, gain_error_ppm_sigma=1000.0,
                              shunt_tempco_ppm_per_C=50.0)
    p = sample_current_channel(3, spec, np.random.default_rng(1))
    i = np.array([[10.0, 100.0]])
    at25 = measure_current_A(p, i, 25.0)
    np.testing.assert_allclose(at25 / i, np.repeat(1 + p.gain_err_ppm[:, None] * 1e-6, 2, 1),
                               rtol=1e-12)
    at65 = measure_current_A(p, i, 65.0)
    np.testing.assert_allclose(at65 / at25, 1 + 50e-6 * 40, rtol=1e-12)


def test_saturates_at_full_scale():
    p = sample_current_channel(1, CurrentChannelSpec(full_scale_A=300.0), np.random.default_rng(0))
    assert measure_current_A(p, np.array([[1000.0, -1000.0]]), 25.0).tolist() == [[300.0, -300.0]]
