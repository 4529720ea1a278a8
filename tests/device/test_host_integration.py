"""The reference HostDriver against a 4-device DaisyChain in process (issue 4, "Done means").

Truth: the cell voltages fed to IdealAnalog (exactly on the 150 uV grid), the CTH table of
registers.py (foxBMS values), and the documented open-wire model.
"""

from __future__ import annotations

import numpy as np
import pytest
from device_testlib import cells_for, make_chain

from bms_emu.host import CommandCounterError, open_wire_check
from bms_emu.protocol.registers import CTH_TABLE_MV


def _start(host) -> None:  # type: ignore[no-untyped-def]
    host.write_config_a({"REFON": 1, "CTH": 2})
    host.wait(5e-3)


def test_read_all_64_cells_of_a_4_device_chain() -> None:
    chain, _, host = make_chain(4)
    _start(host)
    host.start_cell_conversion(cont=True, rd=True)
    host.wait(20e-3)
    expected = np.stack([cells_for(k) for k in range(4)])
    for kind in "CSAF":
        np.testing.assert_allclose(host.read_cells(kind), expected, atol=1e-9)
    np.testing.assert_allclose(host.read_cells(use_all=True), expected, atol=1e-9)
    assert host.expected_counters == [d.command_counter for d in chain.devices] == [2] * 4
    assert not any(host.counter_faults)
    assert [s["CSFLT"] for s in host.read_status("C")] == [0] * 4
    assert [int.from_bytes(s, "little") for s in host.read_sid()] == [0x100 + k for k in range(4)]


@pytest.mark.parametrize("t_start_s", [0.0, 0.0137, 1.2345])
def test_single_shot_rd_compares_once_its_8th_c_result_is_in(t_start_s: float) -> None:
    """ADCV RD=1 CONT=0: one S result against the 8 C results of the same window.

    The 8th C result and the S result are due at the same instant; their times are computed from
    the job start, so an ulp of float difference between 8 x t_C and t_S cannot put the S result
    first (it did: the compare saw 7 C results and never ran). Several start times vary the
    rounding (all before the watchdog's sleep timeout).
    """
    threshold_V = CTH_TABLE_MV[2] * 1e-3
    _chain, analogs, host = make_chain(2)
    analogs[1].gain_error_S[7] = 2.0 * threshold_V / 3.0  # S of channel 8 off by 2 x CTH
    _start(host)
    host.wait(t_start_s)
    host.start_cell_conversion(rd=True)
    host.wait(20e-3)
    assert [s["CSFLT"] for s in host.read_status("C")] == [0, 1 << 7]


def test_corrupted_frame_is_rejected_and_counted() -> None:
    chain, _, host = make_chain(4)
    flip = {"armed": False}
    raw = host._transfer

    def faulty(mosi: bytes) -> bytes:
        if flip["armed"]:
            flip["armed"] = False
            m = bytearray(mosi)
            m[-3] ^= 0x01  # a data bit of the block for device 0 (the last block)
            mosi = bytes(m)
        return raw(mosi)

    host._transfer = faulty
    flip["armed"] = True
    host.write_config_a({"CTH": 3})
    assert [d.command_counter for d in chain.devices] == [0, 1, 1, 1]
    assert chain.devices[0].register("CFGA")[0] & 0x07 == 0
    with pytest.raises(CommandCounterError) as err:
        host.read_config_a()
    assert err.value.device == 0 and err.value.received == 0 and err.value.expected == 1
    assert host.counter_faults == [True, False, False, False]


@pytest.mark.parametrize("cth", [0, 2, 4, 7])
def test_c_gain_fault_above_cth_sets_exactly_that_csflt(cth: int) -> None:
    threshold_V = CTH_TABLE_MV[cth] * 1e-3
    gain = np.zeros(16)
    gain[4] = 1.5 * threshold_V / 3.04  # channel 5 at ~3.04 V: error 1.5 x CTH
    gain[9] = 0.5 * threshold_V / 3.09  # channel 10: error 0.5 x CTH, must not flag
    _chain, analogs, host = make_chain(4)
    analogs[2].gain_error_C[:] = gain
    host.write_config_a({"REFON": 1, "CTH": cth})
    host.wait(5e-3)
    host.start_cell_conversion(cont=True, rd=True)
    host.wait(30e-3)
    flags = [s["CSFLT"] for s in host.read_status("C")]
    assert flags == [0, 0, 1 << 4, 0]
    analogs[2].gain_error_C[:] = 0.0
    host.wait(10e-3)  # let the faulty C results leave the 8-sample average
    host.clear_flags({"CSFLT": 0xFFFF})
    host.wait(20e-3)
    assert [s["CSFLT"] for s in host.read_status("C")] == [0] * 4


@pytest.mark.parametrize("pin", [0, 1, 2, 7, 15, 16])
def test_open_sense_wire_found_by_the_ow_procedure(pin: int) -> None:
    chain, analogs, host = make_chain(4)
    analogs[1] = analogs[1]
    chain.devices[1].analog.open_pins = frozenset({pin})  # type: ignore[attr-defined]
    _start(host)
    # Without test currents the open wire does not show.
    host.start_cell_conversion()
    host.wait(2e-3)
    np.testing.assert_allclose(host.read_cells()[1], cells_for(1), atol=1e-9)
    assert open_wire_check(host) == [[], [pin], [], []]


def test_forced_flags_for_latent_fault_tests() -> None:
    _chain, _, host = make_chain(2)
    host.write_config_a([{"FLAG_D": 0x10}, {"FLAG_D": 0x0C}])  # force THSD / supply OV
    st = host.read_status("C")
    assert (st[0]["THSD"], st[0]["VA_OV"], st[1]["THSD"], st[1]["VA_OV"], st[1]["VD_OV"]) == (
        1, 0, 0, 1, 1)  # fmt: skip
    host.write_config_a({"FLAG_D": 0x60})  # ECC single + multiple error
    st = host.read_status("C")[0]
    assert (st["CED"], st["SED"], st["CMED"], st["SMED"]) == (1, 1, 1, 1)
    host.write_config_a({"FLAG_D": 0})
    host.clear_flags({"THSD": 1, "CED": 1, "SED": 1, "CMED": 1, "SMED": 1})
    st = host.read_status("C")[0]
    assert (st["THSD"], st["CED"], st["CMED"]) == (0, 0, 0)


def test_analog_faults_reach_status_flags() -> None:
    _chain, analogs, host = make_chain(1)
    analogs[0].faults.update(va_uv=True, trim_ecc_corrected=True, osc_fault=True)
    st = host.read_status("C")[0]
    assert (st["VA_UV"], st["CED"], st["SED"], st["CMED"], st["OSCCHK"]) == (1, 1, 1, 0, 1)


def test_rdstatc_err_injects_a_pec_error() -> None:
    from bms_emu.host import PecError

    _chain, _, host = make_chain(2)
    with pytest.raises(PecError) as err:
        host.read("RDSTATC", ERR=1)
    assert err.value.devices == (0, 1)
    host.read("RDSTATC")


def test_cell_ov_uv_flags_follow_thresholds() -> None:
    from bms_emu.protocol.registers import threshold_code_to_volts, volts_to_threshold_code

    _chain, _, host = make_chain(1)
    host.write_config_b(
        {"VUV": volts_to_threshold_code(3.02), "VOV": volts_to_threshold_code(3.13)}
    )
    _start(host)
    host.start_cell_conversion()
    host.wait(2e-3)
    st = host.read_status("D")[0]
    v = cells_for(0)
    uv = threshold_code_to_volts(volts_to_threshold_code(3.02))  # 2.4 mV threshold grid
    ov = threshold_code_to_volts(volts_to_threshold_code(3.13))
    for n in range(1, 17):
        assert st[f"C{n}UV"] == int(v[n - 1] < uv - 1e-9)
        assert st[f"C{n}OV"] == int(v[n - 1] > ov + 1e-9)
    assert 0 < sum(st[f"C{n}UV"] for n in range(1, 17)) < 16
    host.command("CLOVUV")
    assert not any(v for k, v in host.read_status("D")[0].items() if k != "OC_CNTR")
