"""Serial bridge: the reference bridge MCU and the PC side over a real pty pair (pyserial).

The test plays the dev board: a HostDriver whose SPI windows go to BridgeRef.spi_window, with
counter checking on. Truth: the virtual pack's voltages and the chip's stated accuracy, the
emulator's own registers and counters on the PC side, and the link statistics.
"""

from __future__ import annotations

import os
import random
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import Emulator, build_emulator
from bms_emu.host import HostDriver, ProtocolError
from bms_emu.paths import shipped_config
from hil import bridge_link as bl
from hil.bridge_pc import BridgePC
from hil.bridge_ref import BridgeRef
from hil.server import EmulatorHost, warm_up

CHIP = load_chip(shipped_config("chips/bmic_target_1mV.yaml"))
PACK = load_pack(shipped_config("packs/lfp_16s_280Ah.yaml"))
N = 2
RDCVA = 0x004


class LineFault:
    """Drops one byte from each of the next ``n`` writes (a noisy line)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.left = 0
        self.hits = 0

    def __call__(self, data: bytes) -> bytes:
        if self.left > 0 and len(data) > 2:
            self.left -= 1
            self.hits += 1
            k = self.rng.randrange(len(data) - 1)  # never the delimiter: the frame merges
            return data[:k] + data[k + 1 :]
        return data


@dataclass
class Rig:
    emu: Emulator
    host: EmulatorHost
    bridge: BridgeRef
    pc: BridgePC
    board: HostDriver
    master_fd: int
    slave_fd: int
    bridge_fault: LineFault
    pc_fault: LineFault

    def wait_for(self, what: Callable[[], bool], timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not what():
            assert time.monotonic() < deadline, "condition not met before the deadline"
            time.sleep(0.005)

    def settled(self) -> bool:
        """The PC applied every window the bridge forwarded."""
        return self.pc.windows_applied == self.bridge.fwd_count

    def truth(self) -> np.ndarray:
        return np.stack([m.pack.cell_voltage_V() for m in self.emu.modules])

    def emu_cfga(self, field: str) -> list[int]:
        from bms_emu.protocol.registers import LAYOUTS

        with self.host.lock:
            return [LAYOUTS["CFGA"].unpack(d.register("CFGA"))[field]
                    for d in self.emu.chain.devices]


@pytest.fixture()
def rig() -> Iterator[Rig]:
    emu = build_emulator(CHIP, PACK, N, seed=1)
    warm_up(emu)  # no JIT stall under wall pace (it would let the sleep watchdog fire)
    host = EmulatorHost(emu, "wall")
    master, slave = os.openpty()
    tty.setraw(slave)  # a USB CDC port is raw; pyserial sets the same again on open
    bridge_fault, pc_fault = LineFault(1), LineFault(2)
    bridge = BridgeRef(master, line_fault=bridge_fault).start()
    pc = None
    try:
        pc = BridgePC.open(host, os.ttyname(slave), line_fault=pc_fault).start()
        assert pc.synced.wait(5.0), "bridge link did not come up"
        board = HostDriver(bridge.spi_window, N, delay=time.sleep)
        r = Rig(emu, host, bridge, pc, board, master, slave, bridge_fault, pc_fault)
        r.wait_for(lambda: bool(bridge.shadow) and len(bridge.cc) == N)
        yield r
    finally:
        if pc is not None:
            pc.shutdown()
        bridge.shutdown()
        os.close(master)
        os.close(slave)


def _convert_and_read(r: Rig) -> np.ndarray:
    before = r.bridge.shadow_changed_s.get(RDCVA, 0.0)
    r.board.start_cell_conversion()
    r.wait_for(lambda: r.bridge.shadow_changed_s.get(RDCVA, 0.0) > before)
    r.wait_for(lambda: r.pc.unacked == 0)  # groups B..F too (they may need a resend)
    return r.board.read_cells("C")


def test_dev_board_reads_cells_with_counters_right_at_once(rig: Rig) -> None:
    b = rig.board
    b.write_config_a({"REFON": 1, "CTH": 2})
    # Read back at once: the PC has not answered yet, but the bridge's counter is right.
    b.read_config_a()
    assert rig.bridge.cc == [1] * N
    rig.wait_for(lambda: rig.emu_cfga("REFON") == [1] * N)
    time.sleep(0.01)  # REFUP
    worst = float(np.abs(_convert_and_read(rig) - rig.truth()).max())
    assert worst < CHIP.accuracy.tme_mV * 1e-3
    assert [c["CTH"] for c in b.read_config_a()] == [2] * N
    rig.wait_for(rig.settled)
    assert [d.command_counter for d in rig.emu.chain.devices] == b.expected_counters == [2] * N
    assert not any(b.counter_faults)
    assert rig.pc.stats.bad_frames == rig.bridge.stats.bad_frames == 0


def test_dropped_bytes_both_ways_are_detected_and_resent(rig: Rig) -> None:
    b = rig.board
    rig.bridge_fault.left = 3  # the next three forwarded windows lose a byte each
    b.write_config_a({"REFON": 1, "CTH": 3})
    b.rstcc()
    b.write_config_a({"REFON": 1, "CTH": 4})
    rig.wait_for(rig.settled)
    assert rig.emu_cfga("CTH") == [4] * N
    assert rig.pc.stats.bad_frames >= 3 and rig.bridge.stats.retransmits >= 1
    assert [d.command_counter for d in rig.emu.chain.devices] == [1] * N

    time.sleep(0.01)
    rig.pc_fault.left = 4  # shadow updates and chain states lose bytes on the way back
    v = _convert_and_read(rig)
    assert np.abs(v - rig.truth()).max() < CHIP.accuracy.tme_mV * 1e-3
    assert rig.pc_fault.hits == 4
    assert rig.bridge.stats.bad_frames >= 1 and rig.pc.stats.retransmits >= 1
    assert not any(b.counter_faults)


def test_garbage_on_the_line_is_skipped_and_the_link_resyncs(rig: Rig) -> None:
    rng = random.Random(5)
    b = rig.board
    b.write_config_a({"REFON": 1})
    for _ in range(5):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        os.write(rig.master_fd, junk + b"\x00")  # towards the PC
        os.write(rig.slave_fd, junk + b"\x00")  # towards the bridge
        b.read_config_a()
    os.write(rig.master_fd, bytes(range(1, 256)) * 20)  # 5 kB with no delimiter at all
    os.write(rig.slave_fd, bl.encode_frame(bl.SHADOW_UPDATE, 999, b"\x04\x00")[3:])  # a tail
    rig.wait_for(rig.settled)
    time.sleep(0.01)
    v = _convert_and_read(rig)
    assert np.abs(v - rig.truth()).max() < CHIP.accuracy.tme_mV * 1e-3
    assert rig.pc.stats.bad_frames >= 5 and rig.bridge.stats.bad_frames >= 5
    assert rig.emu_cfga("REFON") == [1] * N
    assert not any(b.counter_faults)


def test_pc_reconnect_replays_windows_sent_while_it_was_away(rig: Rig) -> None:
    b = rig.board
    b.write_config_a({"REFON": 1, "CTH": 1})
    rig.wait_for(rig.settled)
    resets = rig.bridge.resets
    rig.pc.reconnect(down_s=1.0)  # long enough that the write and read below land while away
    rig.wait_for(lambda: not rig.pc.synced.is_set())
    b.write_config_a({"REFON": 1, "CTH": 5})  # the board keeps going; the bridge answers
    b.read_config_a()
    assert rig.pc.synced.wait(5.0)
    rig.wait_for(rig.settled)
    assert rig.bridge.resets == resets + 1
    assert rig.emu_cfga("CTH") == [5] * N

    def cth_read_back() -> bool:
        try:
            return [c["CTH"] for c in b.read_config_a()] == [5] * N
        except ProtocolError:  # the bridge answers 0xFF until the PC has resent that group
            return False

    rig.wait_for(cth_read_back)
    assert [d.command_counter for d in rig.emu.chain.devices] == b.expected_counters == [2] * N


def test_shadow_update_reaches_the_bridge_soon_after_a_conversion_completes(rig: Rig) -> None:
    rig.board.write_config_a({"REFON": 1})
    time.sleep(0.01)
    link, end_to_end = [], []
    for _ in range(5):
        _convert_and_read(rig)
        arrived = rig.bridge.shadow_changed_s[RDCVA]
        link.append(arrived - rig.pc.changed_wall_s[RDCVA])  # PC had the result -> bridge
        end_to_end.append(arrived - rig.host.wall_of(rig.pc.changed_at_emu_s[RDCVA]))
    # The benchmark measures against the 2 ms target; a loaded CI machine gets slack here.
    assert 0.0 <= float(np.median(link)) < 0.02, link
    # End to end adds the emulator's compute time for the conversion (milliseconds).
    assert all(e >= li for e, li in zip(end_to_end, link, strict=True))
    assert float(np.median(end_to_end)) < 0.5, end_to_end


def test_bms_emu_serve_runs_the_pc_side_for_a_bridge_and_shares_the_chain_with_tcp(
    serve_process,  # type: ignore[no-untyped-def]
) -> None:
    from hil.sil_client import SilClient

    master, slave = os.openpty()
    tty.setraw(slave)
    bridge = BridgeRef(master).start()
    try:
        srv = serve_process(["--chain", str(N), "--seed", "1", "--pace", "wall",
                             "--serial", os.ttyname(slave)])
        deadline = time.monotonic() + 30.0
        while not (bridge.shadow and len(bridge.cc) == N):
            assert time.monotonic() < deadline, "serve never filled the bridge's shadow"
            time.sleep(0.01)
        board = HostDriver(bridge.spi_window, N, delay=time.sleep)
        board.write_config_a({"REFON": 1, "CTH": 6})
        time.sleep(0.02)
        before = bridge.shadow_changed_s.get(RDCVA, 0.0)
        board.start_cell_conversion()
        while bridge.shadow_changed_s.get(RDCVA, 0.0) <= before:
            assert time.monotonic() < deadline, "no conversion result reached the bridge"
            time.sleep(0.002)
        time.sleep(0.05)  # the trailing groups B..F
        truth = np.stack([m.pack.cell_voltage_V() for m in build_emulator(CHIP, PACK, N,
                                                                          seed=1).modules])
        assert np.abs(board.read_cells("C") - truth).max() < CHIP.accuracy.tme_mV * 1e-3
        with SilClient("127.0.0.1", srv.port) as c:  # the same chain over TCP
            tcp = HostDriver(c.transfer, N, delay=c.delay)
            tcp.expected_counters = [2] * N
            assert [cfg["CTH"] for cfg in tcp.read_config_a()] == [6] * N
        assert srv.stop() == 0
    finally:
        bridge.shutdown()
        os.close(master)
        os.close(slave)
