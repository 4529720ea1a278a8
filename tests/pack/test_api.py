"""The public VirtualPack API: shapes, time handling, snapshot/restore."""

from __future__ import annotations

import numpy as np
import pytest
from pack_testlib import make_config

from bms_emu.pack import VirtualPack


def _pack(**kw: float) -> VirtualPack:
    cfg = make_config(cell={"rc_pairs": [{"r_mOhm": 0.2, "c_F": 10_000.0}]})
    return VirtualPack(cfg, **kw)


def test_shapes() -> None:
    pack = _pack()
    for fn in (pack.cell_voltage_V, pack.sense_voltage_V, pack.ocv_V, pack.soc,
               pack.temperature_C, pack.balance_current_A):  # fmt: skip
        assert fn().shape == (16,)
    assert pack.impedance(np.array([0.01, 0.1, 1.0])).shape == (3, 16)
    assert pack.impedance(0.1).shape == (1, 16)


def test_advance_to_equals_equal_steps() -> None:
    a, b = _pack(max_step_s=10.0), _pack()
    a.advance_to(35.0, 20.0)
    for _ in range(4):
        b.step(8.75, 20.0)
    assert a.t_s == 35.0
    np.testing.assert_array_equal(a.snapshot()["v_el_V"], b.snapshot()["v_el_V"])
    np.testing.assert_array_equal(a.soc(), b.soc())


def test_advance_to_same_time_is_noop_and_past_is_error() -> None:
    pack = _pack()
    pack.advance_to(5.0, 1.0)
    before = pack.snapshot()
    pack.advance_to(5.0, 100.0)
    after = pack.snapshot()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    with pytest.raises(ValueError, match="back"):
        pack.advance_to(4.0, 1.0)
    with pytest.raises(ValueError, match="dt_s"):
        pack.step(0.0, 1.0)


def test_snapshot_restore_round_trip() -> None:
    a = _pack()
    a.step(3.0, 50.0)
    state = a.snapshot()
    a.step(3.0, -20.0)
    end_a = a.snapshot()
    b = _pack()
    b.restore(state)
    b.step(3.0, -20.0)
    for key, value in b.snapshot().items():
        assert value.tobytes() == end_a[key].tobytes(), key
