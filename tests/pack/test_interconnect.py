"""Busbar and sense-wire drops, bleed currents and balancing crosstalk (Kirchhoff, analytic)."""

from __future__ import annotations

import numpy as np
import pytest
from pack_testlib import make_config

from bms_emu.pack import VirtualPack

R0 = 0.5e-3
R_SW = 40e-3
R_BB = 0.1e-3
R_BLEED = 30.0
OCV = 3.2  # linear test table 3.0 -> 3.4 V at SOC 0.5


def _pack() -> VirtualPack:
    cfg = make_config(interconnect={"busbar_mOhm": R_BB * 1e3, "sense_wire_mOhm": R_SW * 1e3})
    return VirtualPack(cfg)


def test_busbar_drop_appears_in_the_cell_above() -> None:
    """Sense wire i+1 taps cell i's plus terminal: busbar i is in cell i's span (i >= 1)."""
    pack = _pack()
    i_A = 120.0
    pack.step(1.0, i_A)
    diff = pack.sense_voltage_V() - pack.cell_voltage_V()
    want = np.full(16, -i_A * R_BB)
    want[0] = 0.0  # cell 0 sits on the pack minus
    np.testing.assert_allclose(diff, want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("k", [0, 5, 15])
def test_single_bleed_resistor_crosstalk(k: int) -> None:
    """Cell k reads I_b (R0 + r_bb + r_sw,k + r_sw,k+1) lower; its neighbours I_b r_sw higher."""
    pack = _pack()
    before = pack.sense_voltage_V()
    r = np.full(16, np.inf)
    r[k] = R_BLEED
    pack.set_balance_resistance(r)
    r_bb_k = 0.0 if k == 0 else R_BB
    i_b = OCV / (R_BLEED + R0 + r_bb_k + 2 * R_SW)  # pack at rest, no polarisation
    want_ib = np.zeros(16)
    want_ib[k] = i_b
    np.testing.assert_allclose(pack.balance_current_A(), want_ib, rtol=1e-12, atol=0)

    delta = pack.sense_voltage_V() - before
    want = np.zeros(16)
    want[k] = -i_b * (R0 + r_bb_k + 2 * R_SW)
    if k > 0:
        want[k - 1] = i_b * R_SW  # shared wire k
    if k < 15:
        want[k + 1] = i_b * R_SW  # shared wire k+1
    np.testing.assert_allclose(delta, want, rtol=0, atol=1e-12)
    # the sense-wire part alone, as the chip sees it beyond the cell's own I_b R0 + busbar drop
    wire_part = delta[k] + i_b * (R0 + r_bb_k)
    assert wire_part == pytest.approx(-i_b * 2 * R_SW, rel=1e-9)
    # the pins close the loop: V_sense = I_b R_bleed
    assert pack.sense_voltage_V()[k] == pytest.approx(i_b * R_BLEED, rel=1e-12)


def test_adjacent_bleed_resistors_close_kirchhoff_loops() -> None:
    """With neighbours balancing, each bleed resistor still sees V_sense = I_b R_bleed."""
    pack = _pack()
    pack.step(2.0, 50.0)  # load current and some polarisation
    r = np.full(16, np.inf)
    r[[3, 4, 5, 9]] = [30.0, 33.0, 27.0, 30.0]
    pack.set_balance_resistance(r)
    i_b = pack.balance_current_A()
    v = pack.sense_voltage_V()
    on = np.isfinite(r)
    np.testing.assert_allclose(v[on], i_b[on] * r[on], rtol=1e-12)
    np.testing.assert_array_equal(i_b[~on], 0.0)
    # coupling: cell 4's neighbours also bleed, raising its reading, so it draws more than alone
    alone = np.full(16, np.inf)
    alone[4] = 33.0
    pack.set_balance_resistance(alone)
    assert i_b[4] > pack.balance_current_A()[4]


def test_bad_balance_resistance_is_rejected() -> None:
    pack = _pack()
    with pytest.raises(ValueError, match="shape"):
        pack.set_balance_resistance(np.full(15, 30.0))
    with pytest.raises(ValueError, match="> 0"):
        pack.set_balance_resistance(np.zeros(16))
