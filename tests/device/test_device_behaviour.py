"""Conversion timing, stale/cleared registers, IIR, averaging, SNAP, sleep/wake, balancing.

Truth: the documented timing (C 1 ms, S 8 ms, AUX 1 ms/channel, REFUP 4.5 ms, t_WAKE 500 us,
watchdog 2 s; docs/protocol.md "Device behaviour"), the closed-form step response of the
first-order IIR, and arithmetic means of known inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from device_testlib import cells_for, make_chain

from bms_emu.device import DaisyChain, Device, IdealAnalog
from bms_emu.host import CommandCounterError, HostDriver

TREFUP = 4.5e-3


def one(source=None, **kw):  # type: ignore[no-untyped-def]
    a = IdealAnalog(source or (lambda t: cells_for(0)), **kw)
    chain = DaisyChain([Device(a)])
    return chain, a, HostDriver(chain.transfer, 1, delay=chain.delay)


def test_single_shot_lands_after_refup_plus_one_conversion() -> None:
    chain, _, host = one()
    host.start_cell_conversion()
    t_cmd = chain.t_s
    host.wait(TREFUP + 1e-3 - 60e-6 - (chain.t_s - t_cmd))
    assert host.read("RDCVA")[0] == bytes.fromhex("ff7f") * 3  # still the power-on value
    host.wait(100e-6)
    np.testing.assert_allclose(host.read_cells()[0], cells_for(0), atol=1e-9)


def test_refon_set_in_advance_removes_refup_delay() -> None:
    _chain, _, host = one()
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    host.start_cell_conversion()
    host.wait(1.01e-3)
    np.testing.assert_allclose(host.read_cells()[0], cells_for(0), atol=1e-9)


def test_old_results_stay_until_new_ones_land_and_clrcell_gives_cleared_code() -> None:
    level = {"v": 3.0}
    _chain, _, host = one(lambda t: np.full(16, level["v"]))
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    host.start_cell_conversion()
    host.wait(2e-3)
    level["v"] = 3.3
    host.start_cell_conversion()
    host.wait(0.5e-3)
    np.testing.assert_allclose(host.read_cells()[0], 3.0)  # mid-conversion: old result
    host.wait(1e-3)
    np.testing.assert_allclose(host.read_cells()[0], 3.3)
    host.command("CLRCELL")
    assert np.all(host.read_cell_codes()[0] == -0x8000)
    assert np.all(host.read_cell_codes("A")[0] == -0x8000)


def test_continuous_mode_tracks_a_ramp_one_result_per_ms() -> None:
    chain, _, host = one(lambda t: np.full(16, 3.0 + t))  # 1 V/s
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    host.start_cell_conversion(cont=True)
    t0 = chain.t_s
    host.wait(0.1)
    v = host.read_cells()[0, 0]
    # The latest result is the window that ended at most 1 ms (+ the read's own bytes) ago.
    assert chain.t_s - 1.5e-3 - 0.5e-3 <= v - 3.0 <= chain.t_s
    assert v - 3.0 > t0 + 0.09


def test_redundant_s_result_every_8_ms_and_average_of_8() -> None:
    chain, _, host = one(lambda t: np.full(16, 3.0 + 10 * t))  # 10 V/s: 10 mV per ms
    host.write_config_a({"REFON": 1, "CTH": 7})
    host.wait(5e-3)
    host.start_cell_conversion(rd=True)
    t_start = chain.t_s
    host.wait(7.9e-3 - (chain.t_s - t_start))
    assert host.read("RDSVA")[0] == bytes.fromhex("ff7f") * 3
    host.wait(0.2e-3)
    s = 1.5 + int.from_bytes(host.read("RDSVA")[0][:2], "little", signed=True) * 150e-6
    a = 1.5 + int.from_bytes(host.read("RDACA")[0][:2], "little", signed=True) * 150e-6
    c = 1.5 + int.from_bytes(host.read("RDCVA")[0][:2], "little", signed=True) * 150e-6
    # C window midpoints t_start + 0.5..7.5 ms; their mean is t_start + 4 ms = the S midpoint.
    assert a == pytest.approx(3.0 + 10 * (t_start + 4e-3), abs=2e-4)
    assert s == pytest.approx(a, abs=2e-4)
    assert c == pytest.approx(3.0 + 10 * (t_start + 7.5e-3), abs=2e-4)


@pytest.mark.parametrize("fc, k", [(1, 2), (4, 16), (7, 256)])
def test_iir_step_response_matches_closed_form(fc: int, k: int) -> None:
    level = {"v": 3.0}
    chain, _, host = one(lambda t: np.full(16, level["v"]))
    host.write_config_a({"REFON": 1, "FC": fc})
    host.wait(5e-3)
    host.start_cell_conversion(cont=True, rstf=True)
    host.wait(3e-3)
    level["v"] = 3.3
    n_before = chain.devices[0]._c_run  # conversions already in the filter at 3.0 V
    host.wait(20e-3)
    dev = chain.devices[0]
    n_after = dev._c_run - n_before
    f = int(dev.codes("FC")[0])  # same instant as the count (a read would take 48 us)
    x0, x1 = 10000, 12000
    expected = x1 + (x0 - x1) * (1 - 1 / k) ** n_after
    assert abs(f - expected) <= 1


def test_rstf_clears_filtered_registers_until_next_result() -> None:
    _chain, _, host = one()
    host.write_config_a({"REFON": 1, "FC": 3})
    host.wait(5e-3)
    host.start_cell_conversion(cont=True)
    host.wait(5e-3)
    host.start_cell_conversion(cont=True, rstf=True)
    assert np.all(host.read_cell_codes("F")[0] == -0x8000)
    host.wait(1.2e-3)
    np.testing.assert_allclose(host.read_cells("F")[0], cells_for(0), atol=1e-9)


def test_snap_freezes_results_until_unsnap() -> None:
    level = {"v": 3.0}
    _chain, _, host = one(lambda t: np.full(16, level["v"]))
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    host.start_cell_conversion(cont=True)
    host.wait(2e-3)
    host.snap()
    assert host.read_config_a()[0]["SNAP_ST"] == 1
    level["v"] = 3.3
    host.wait(3e-3)
    np.testing.assert_allclose(host.read_cells()[0], 3.0)
    host.unsnap()
    np.testing.assert_allclose(host.read_cells()[0], 3.3)


def test_aux_sequence_one_ms_per_channel_and_status_registers() -> None:
    _chain, _, host = one(gpio_V=np.linspace(1.0, 2.8, 10), status={"itmp_C": 40.0})
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    host.command("ADAX", CH=0)
    host.wait(10.5e-3)  # G1..G10 done, status channels not yet
    aux = np.frombuffer(b"".join(host.read(f"RDAUX{g}")[0] for g in "ABCD"), "<i2")
    np.testing.assert_allclose(1.5 + aux[:10] * 150e-6, np.linspace(1.0, 2.8, 10), atol=1e-4)
    assert host.read_status("A")[0]["VREF2"] == 0x7FFF
    host.wait(8e-3)
    st = host.read_status("AB")[0]
    assert 1.5 + st["VREF2"] * 150e-6 == pytest.approx(3.0, abs=1e-4)
    assert (1.5 + st["ITMP"] * 150e-6) / 7.5e-3 - 273 == pytest.approx(40.0, abs=0.05)
    assert 1.5 + st["VA"] * 150e-6 == pytest.approx(5.0, abs=1e-4)


def test_watchdog_sleep_resets_registers_and_counter_and_needs_wakeup() -> None:
    chain, _, host = make_chain(2)
    host.write_config_a({"REFON": 1, "CTH": 5})
    host.wait(1.9)
    assert host.read_config_a()[0]["CTH"] == 5  # 1.9 s: still awake; the read re-arms it
    host.wait(2.01)
    assert all(d.asleep for d in chain.devices)
    miso = chain.transfer(bytes.fromhex("00020000") + b"\xff" * 16)
    assert miso == b"\xff" * 20  # asleep: nobody answers (and the window starts the wake-up)
    host.wakeup(t_wake_s=500e-6)
    host.assume_counters_reset()
    cfg = host.read_config_a()
    assert [c["CTH"] for c in cfg] == [0, 0]
    assert all(s["SLEEP"] == 1 for s in host.read_status("C"))


def test_wakeup_without_waiting_reaches_only_the_nearest_device() -> None:
    chain, _, host = make_chain(3)
    host.wait(2.1)
    host.wakeup()  # three back-to-back windows, no t_WAKE between them
    host.wait(1e-3)
    assert [d.asleep for d in chain.devices] == [False, True, True]


def test_srst_resets_and_sleeps() -> None:
    chain, _, host = make_chain(2)
    host.write_config_a({"CTH": 3})
    host.soft_reset()
    assert all(d.asleep for d in chain.devices)
    host.wakeup(t_wake_s=500e-6)
    assert [c["CTH"] for c in host.read_config_a()] == [0, 0]


def test_counter_mismatch_after_sleep_is_detected_by_the_host() -> None:
    _chain, _, host = make_chain(1)
    host.command("MUTE")
    host.wait(2.5)
    host.wakeup(t_wake_s=500e-6)
    with pytest.raises(CommandCounterError):
        host.read_config_a()


def test_balancing_dcc_pwm_mute_and_dcp() -> None:
    _chain, analogs, host = make_chain(1)
    a = analogs[0]
    host.write_config_b({"DCC": 0b101})
    np.testing.assert_array_equal(a.balance[:4], [1, 0, 1, 0])
    pwm = np.zeros(16, dtype=int)
    pwm[0] = 6
    pwm[2] = 15
    host.write_pwm(pwm)
    np.testing.assert_allclose(a.balance[:3], [6 / 15, 0, 1])
    host.mute()
    assert not a.balance.any()
    host.unmute()
    assert a.balance[2] == 1
    host.start_cell_conversion(dcp=False)
    assert not a.balance.any()  # discharge paused during a DCP=0 conversion
    host.wait(10e-3)
    assert a.balance[2] == 1


def test_discharge_timeout_clears_dcc() -> None:
    _chain, analogs, host = make_chain(1)
    host.write_config_b({"DCC": 0xFFFF, "DCTO": 1})  # 1 minute
    assert analogs[0].balance.all()
    for _ in range(40):  # keep the watchdog fed
        host.wait(1.5)
        host.read_config_b()
    cfgb = host.read_config_b()[0]
    assert cfgb["DCC"] == 0 and not analogs[0].balance.any()


def test_thermal_shutdown_stops_balancing_and_latches_thsd() -> None:
    _chain, analogs, host = make_chain(1)
    host.write_config_b({"DCC": 1})
    analogs[0].faults["thermal_shutdown"] = True
    assert host.read_status("C")[0]["THSD"] == 1
    assert not analogs[0].balance.any()
    analogs[0].faults["thermal_shutdown"] = False
    host.read_status("C")
    assert analogs[0].balance[0] == 1
    host.clear_flags({"THSD": 1})
    assert host.read_status("C")[0]["THSD"] == 0


def test_poll_reads_low_while_converting() -> None:
    from bms_emu.protocol.opcodes import encode_command

    chain, _, host = one()
    host.start_cell_conversion()
    miso = chain.transfer(encode_command("PLCADC") + b"\xff" * 4)
    assert miso[4:] == b"\x00" * 4
    host.wait(6e-3)
    miso = chain.transfer(encode_command("PLCADC") + b"\xff" * 4)
    assert miso[4:] == b"\xff" * 4
