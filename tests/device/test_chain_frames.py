"""Chain order, command counter and frame handling, checked against raw bytes.

Truth: the published PEC15 vectors (REFERENCE.md 2.1: WRCFGA = 00 01 3D 6E, RDCVA = 00 04 07 C2)
and the chain order of the Linduino / ADI library (first write block -> farthest device,
nearest device answers first), independently of bms_emu.protocol.frames.
"""

from __future__ import annotations

import numpy as np
from device_testlib import cells_for, make_chain

from bms_emu.device import DaisyChain, Device, IdealAnalog
from bms_emu.protocol.pec import append_data_pec, check_data_pec, pec10

WRCFGA = bytes.fromhex("00013d6e")
RDCVA = bytes.fromhex("000407c2")


def _rdcfga() -> bytes:
    from bms_emu.protocol.pec import append_pec15

    return append_pec15(b"\x00\x02")


def test_write_order_first_block_goes_to_farthest_device() -> None:
    chain, _, _ = make_chain(3)
    blocks = [bytes([0x80 | k, 0, 0, 0, 0, 0]) for k in (2, 1, 0)]  # farthest first
    mosi = WRCFGA + b"".join(append_data_pec(b) for b in blocks)
    miso = chain.transfer(mosi)
    assert miso == b"\xff" * len(mosi)
    for k, dev in enumerate(chain.devices):
        assert dev.register("CFGA")[0] == 0x80 | k
        assert dev.command_counter == 1


def test_read_nearest_device_answers_first_with_counter_and_pec() -> None:
    chain, _, _ = make_chain(3)
    miso = chain.transfer(_rdcfga() + b"\xff" * 24)
    assert miso[:4] == b"\xff" * 4
    for k in range(3):
        block = miso[4 + 8 * k : 12 + 8 * k]
        ok, cc = check_data_pec(block)
        assert ok and cc == 0
        assert block[:6] == chain.devices[k].register("CFGA")


def test_rdcva_before_any_conversion_is_power_on_code() -> None:
    chain, _, _ = make_chain(2)
    miso = chain.transfer(RDCVA + b"\xff" * 16)
    assert miso[4:10] == bytes.fromhex("ff7fff7fff7f")
    assert miso[10:12] == bytes(((0 << 2) | (pec10(miso[4:10]) >> 8), pec10(miso[4:10]) & 0xFF))


def test_counter_increments_on_accepted_commands_and_wraps_63_to_1() -> None:
    chain, _, host = make_chain(4)
    for _ in range(70):
        host.command("MUTE")
    assert [d.command_counter for d in chain.devices] == [70 - 63] * 4
    host.read_config_a()  # reads do not increment; host checks counters
    host.rstcc()
    assert [d.command_counter for d in chain.devices] == [0] * 4
    host.read_config_a()


def test_bad_command_pec_is_ignored() -> None:
    chain, _, _ = make_chain(2)
    before = [d.config_snapshot() for d in chain.devices]
    mosi = bytearray(WRCFGA + b"".join(append_data_pec(b"\x81" + bytes(5)) for _ in range(2)))
    mosi[3] ^= 0x02
    assert chain.transfer(bytes(mosi)) == b"\xff" * len(mosi)
    assert [d.config_snapshot() for d in chain.devices] == before


def test_bad_data_pec_drops_only_that_device_and_does_not_count() -> None:
    chain, _, _ = make_chain(2)
    good = append_data_pec(b"\x81" + bytes(5))
    bad = bytearray(good)
    bad[2] ^= 0x10
    chain.transfer(WRCFGA + bytes(bad) + good)  # device 1 (farthest) gets the bad block
    assert chain.devices[0].register("CFGA")[0] == 0x81 and chain.devices[0].command_counter == 1
    assert chain.devices[1].register("CFGA")[0] == 0x00 and chain.devices[1].command_counter == 0


def test_partial_block_write_is_discarded_by_every_device() -> None:
    chain, _, _ = make_chain(2)
    good = append_data_pec(b"\x81" + bytes(5))
    chain.transfer(WRCFGA + good + good[:-1])
    assert all(d.command_counter == 0 for d in chain.devices)
    assert all(d.register("CFGA")[0] == 0 for d in chain.devices)


def test_window_duration_advances_the_clock() -> None:
    chain, _, _ = make_chain(1)
    chain.transfer(RDCVA + b"\xff" * 8)
    assert np.isclose(chain.t_s, 12 * 8 / 2e6)


def test_read_all_returns_sixteen_codes() -> None:
    analog = IdealAnalog(lambda t: cells_for(0))
    chain = DaisyChain([Device(analog)])
    from bms_emu.host import HostDriver

    host = HostDriver(chain.transfer, 1, delay=chain.delay)
    host.start_cell_conversion()
    host.wait(0.01)
    np.testing.assert_allclose(host.read_cells(use_all=True)[0], cells_for(0), atol=1e-9)
    np.testing.assert_allclose(host.read_cells()[0], cells_for(0), atol=1e-9)
