"""Pack sources: virtual pack + profile, CSV replay, and the trace round trip between them."""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.config import load_pack
from bms_emu.pack import VirtualPack
from bms_emu.profile import CurrentProfile
from bms_emu.sources import PackSource, ReplaySource, SourceError, VirtualPackSource
from bms_emu.trace import TraceFormatError, TraceWriter, trace_header


@pytest.fixture()
def lfp_source(lfp_pack_path):
    profile = CurrentProfile([0, 30, 90], [0.0, 140.0, -70.0], "hold")
    return VirtualPackSource.from_config(load_pack(lfp_pack_path), profile)


def test_virtual_source_is_a_pack_source(lfp_source):
    assert isinstance(lfp_source, PackSource)
    assert lfp_source.n_cells == 16


def test_virtual_source_splits_steps_at_breakpoints(lfp_source, lfp_pack_path):
    """Sampling at awkward times equals stepping the pack by hand over the exact segments."""
    for t in (7.3, 29.99, 30.0, 61.7, 95.2, 120.0):
        assert lfp_source.sample(t).t_s == pytest.approx(t)
    by_hand = VirtualPack(load_pack(lfp_pack_path))
    for dt, i in [(30.0, 0.0)] + [(1.0, 140.0)] * 60 + [(1.0, -70.0)] * 30:
        by_hand.step(dt, i)
    np.testing.assert_allclose(lfp_source.pack.soc(), by_hand.soc(), rtol=0, atol=1e-12)
    # temperature feeds back into R and OCV, so step splitting is not bit-invariant (~1 nV);
    # a step straddling a breakpoint would be off by microvolts
    np.testing.assert_allclose(
        lfp_source.pack.cell_voltage_V(), by_hand.cell_voltage_V(), rtol=0, atol=1e-7
    )


def test_repeating_short_profile_never_steps_zero_time(lfp_pack_path):
    """Sampling on the profile's own 0.1 ms grid lands a hair below period boundaries (float
    sums): the next breakpoint must still be strictly later, not the boundary just passed."""
    profile = CurrentProfile([0.0, 0.1e-3, 0.3e-3], [1.0, -1.0, 1.0], "linear", repeat=True)
    src = VirtualPackSource.from_config(load_pack(lfp_pack_path), profile)
    t = 0.0
    for _ in range(2000):  # the first failure was at the 631st sample
        t += 0.1e-3
        assert src.sample(t).t_s == pytest.approx(t, abs=1e-12)
    # the triangle's mean is 0: after 666 2/3 periods the net charge is < 1 A x 0.1 ms, 1e-10
    # of 280 Ah; what else moves the SOC (self-discharge) is the same at 0 A
    idle = VirtualPackSource.from_config(load_pack(lfp_pack_path), CurrentProfile.constant(0.0))
    idle.sample(t)
    np.testing.assert_allclose(src.pack.soc(), idle.pack.soc(), rtol=0, atol=2e-10)


def test_virtual_source_refuses_going_back(lfp_source):
    lfp_source.sample(10.0)
    with pytest.raises(SourceError, match="back in time"):
        lfp_source.sample(5.0)


def test_run_time_current_override(lfp_source):
    lfp_source.sample(10.0)
    lfp_source.set_current_A(-50.0)
    assert lfp_source.sample(20.0).current_A == -50.0


def _write_trace(path, src, times):
    n = src.n_cells
    with TraceWriter(path, trace_header(n)) as w:
        for t in times:
            s = src.sample(t)
            w.write_row(np.concatenate(([s.t_s, s.current_A], s.cell_voltage_V,
                                        s.sense_voltage_V, src.pack.soc(), s.temperature_C)))


def test_trace_round_trips_through_replay(tmp_path, lfp_source, lfp_pack_path):
    path = tmp_path / "trace.csv"
    _write_trace(path, lfp_source, np.arange(0.0, 121.0, 1.0))
    replay = ReplaySource.from_csv(path, n_cells=16, max_gap_s=5.0)
    assert replay.span_s == (0.0, 120.0)
    fresh = VirtualPackSource.from_config(
        load_pack(lfp_pack_path), CurrentProfile([0, 30, 90], [0.0, 140.0, -70.0], "hold")
    )
    # at the recorded times the replay gives back exactly what was recorded (repr round trip)
    for t in (0.0, 45.0, 120.0):
        r, s = replay.sample(t), fresh.sample(t)
        np.testing.assert_array_equal(r.cell_voltage_V, s.cell_voltage_V)
        np.testing.assert_array_equal(r.sense_voltage_V, s.sense_voltage_V)
        np.testing.assert_array_equal(r.temperature_C, s.temperature_C)
        assert r.current_A == s.current_A


def test_replay_interpolates_linearly(tmp_path):
    path = tmp_path / "r.csv"
    header = ["t_s", "current_A", "v_cell_00_V", "v_cell_01_V", "temp_cell_00_C", "temp_cell_01_C"]
    path.write_text(",".join(header) + "\n0,0,3.0,3.2,25,26\n10,10,3.1,3.0,27,26\n")
    r = ReplaySource.from_csv(path, n_cells=2)
    s = r.sample(2.5)
    assert s.current_A == pytest.approx(2.5)
    np.testing.assert_allclose(s.cell_voltage_V, [3.025, 3.15])
    np.testing.assert_allclose(s.sense_voltage_V, s.cell_voltage_V)  # no sense columns
    np.testing.assert_allclose(s.temperature_C, [25.5, 26.0])
    with pytest.raises(SourceError, match="outside the recording"):
        r.sample(11.0)
    with pytest.raises(SourceError, match="back in time"):
        r.sample(1.0)
    with pytest.raises(SourceError, match="balancing"):
        r.set_balance_resistance(np.array([100.0, np.inf]))


HEADER2 = "t_s,current_A,v_cell_00_V,v_cell_01_V,temp_cell_00_C,temp_cell_01_C\n"


@pytest.mark.parametrize(
    "body,match",
    [
        ("0,0,3,3,25,25\n1,0,3,3,25\n", "line 3: expected 6 columns, got 5"),
        ("0,0,3,3,25,25\n1,0,3,,25,25\n", "line 3, column v_cell_01_V: got '': empty value"),
        ("0,0,3,3,25,25\n0,0,3,3,25,25\n", "line 3, column t_s: got 0.0: time must increase"),
        ("0,0,3,3,25,25\n1,0,x,3,25,25\n", "column v_cell_00_V: got 'x': not a number"),
        ("0,0,3,3,25,25\n1,0,nan,3,25,25\n", "must be finite"),
        ("", "no data rows"),
    ],
)
def test_replay_rejects_malformed_csv(tmp_path, body, match):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER2 + body)
    with pytest.raises(TraceFormatError, match=match):
        ReplaySource.from_csv(path, n_cells=2)


def test_replay_rejects_wrong_cell_count_and_gaps(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER2 + "0,0,3,3,25,25\n1,0,3,3,25,25\n100,0,3,3,25,25\n")
    with pytest.raises(TraceFormatError, match="missing columns"):
        ReplaySource.from_csv(path, n_cells=3)
    with pytest.raises(TraceFormatError, match="do not fit n_cells=1"):
        ReplaySource.from_csv(path, n_cells=1)
    with pytest.raises(SourceError, match="gap of 99 s"):
        ReplaySource.from_csv(path, n_cells=2, max_gap_s=10.0)


def test_trace_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "t.csv"
    with pytest.raises(RuntimeError):
        with TraceWriter(path, ["t_s"]) as w:
            w.write_row(np.array([0.0]))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
