"""Serial bridge: the reference bridge MCU and the PC side over a real pty pair (pyserial).

The test plays the dev board: a HostDriver whose SPI windows go to BridgeRef.spi_window, with
counter checking on. Truth: the virtual pack's voltages and the chip's stated accuracy, the
emulator's own registers and counters on the PC side, and the link statistics.
"""

from __future__ import annotations

import os
import random
import struct
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import Emulator, build_emulator
from bms_emu.host import HostDriver, PecError, ProtocolError
from bms_emu.paths import shipped_config
from bms_emu.protocol.frames import build_command_frame, build_read_frame, split_read_reply
from bms_emu.protocol.opcodes import COMMANDS, READ
from hil import bridge_link as bl
from hil import bridge_ref
from hil.bridge_pc import BridgePC, cc_rules
from hil.bridge_ref import BridgeRef
from hil.rig import FaultyLink
from hil.server import EmulatorHost, warm_up

CHIP = load_chip(shipped_config("chips/bmic_target_1mV.yaml"))
PACK = load_pack(shipped_config("packs/lfp_16s_280Ah.yaml"))
N = 2
RDCVA = 0x004
RDCVB = 0x006
RDSVA = 0x003
PLADC = 0x718
#: One C conversion plus the 4 command bytes at 2 MHz: completion after the ADCV window starts.
T_C_S = 1e-3 + 4 * 8 / 2e6
#: One S conversion (8 ms) plus the command bytes.
T_S_S = 8e-3 + 4 * 8 / 2e6
#: Reference power-up before a conversion commanded with REFON = 0 (bms_emu.device.timing).
T_REFUP_S = 4.5e-3


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

    def idle(self) -> bool:
        """No conversion running on the PC, and the bridge applied everything it was sent."""
        with self.host.lock:  # the PC computes and sends a result under this lock
            running = any(d.next_result_s < float("inf") for d in self.emu.chain.devices)
        return (not running and self.settled() and self.pc.unacked == 0
                and self.bridge.pending == 0)

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
    host = EmulatorHost(emu, "wall", link=FaultyLink(emu.chain.transfer, seed=3))
    master, slave = os.openpty()
    tty.setraw(slave)  # a USB CDC port is raw; pyserial sets the same again on open
    bridge_fault, pc_fault = LineFault(1), LineFault(2)
    bridge = BridgeRef(master, line_fault=bridge_fault).start()
    pc = None
    try:
        pc = BridgePC.open(host, os.ttyname(slave), line_fault=pc_fault, record=True).start()
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
        t_cmd = time.monotonic()  # the bridge stamps the ADCV window just after this
        _convert_and_read(rig)
        stamp = rig.bridge.shadow_stamps[RDCVA]
        assert stamp.late_s is not None  # computed ahead, tagged with its completion time
        # Never shown before the conversion completed on the board's timeline (1 us: the
        # stamps are whole microseconds).
        assert stamp.exposed_s >= t_cmd + T_C_S - 1e-6
        link.append(stamp.arrived_s - rig.pc.changed_wall_s[RDCVA])  # PC had it -> bridge
        end_to_end.append(stamp.exposed_s - (t_cmd + T_C_S))
    # The benchmark measures against the 2 ms target; a loaded CI machine gets slack here.
    assert 0.0 <= float(np.median(link)) < 0.02, link
    assert float(np.median(end_to_end)) < 0.5, end_to_end


def test_results_computed_ahead_are_the_ones_computed_when_due(rig: Rig) -> None:
    """Replay every window the PC applied, at the emulated time it applied it, on a fresh
    emulator that computes each result at its completion event: every read the board got
    through the bridge, and every register of the chain at the end, are bit-identical."""
    windows: list[tuple[bytes, bytes]] = []

    def board_spi(mosi: bytes) -> bytes:
        miso = rig.bridge.spi_window(mosi)
        windows.append((bytes(mosi), miso))
        return miso

    b = HostDriver(board_spi, N, delay=time.sleep)
    b.write_config_a({"REFON": 1, "CTH": 3})
    time.sleep(0.01)

    for start in (b.start_cell_conversion, lambda: b.start_cell_conversion(rd=True),
                  lambda: b.command("ADSV"), b.start_cell_conversion):
        start()  # RD=1: 8 C results and an S result, computed ahead like the S conversion
        time.sleep(0.002)
        rig.wait_for(rig.idle)  # the reads below compare with the replay: no result in flight
        b.read_cells("C")
        b.read_cells("S")
    rig.wait_for(rig.settled)
    assert rig.pc.timed_updates > 0 and not any(b.counter_faults)

    log = rig.pc.applied_log
    assert log is not None and len(log) == len(windows)
    with rig.host.lock:
        t_end = rig.emu.chain.t_s
        served = {s.group: [d.register(s.group) for d in rig.emu.chain.devices]
                  for s in COMMANDS.values() if s.kind == READ and s.group}
        codes = {k: [d.codes(k) for d in rig.emu.chain.devices] for k in ("CV", "SV", "AC")}
    replay = build_emulator(CHIP, PACK, N, seed=1)
    n_reads = 0
    for (t_s, mosi), (board_mosi, board_miso) in zip(log, windows, strict=True):
        assert mosi[:4] == board_mosi[:4]
        miso = replay.chain.transfer(mosi, t_s)
        spec = COMMANDS.get(_read_name(mosi))
        if spec is not None and spec.group and spec.group.startswith(("CV", "SV")):
            assert board_miso == miso, f"{spec.name} at t = {t_s:.6f} s"
            n_reads += 1
    assert n_reads >= 4 * 6  # RDCVA..F / RDSVA..F through the bridge, each compared
    replay.chain.advance_to(t_end)
    assert {g: [d.register(g) for d in replay.chain.devices] for g in served} == served
    for k, v in codes.items():
        assert all(np.array_equal(a, c) for a, c in
                   zip([d.codes(k) for d in replay.chain.devices], v, strict=True)), k


def test_link_faults_injected_on_the_pc_reach_the_dev_board(rig: Rig) -> None:
    """A scenario's chip_silent / spi_bit_errors (hil.rig.FaultyLink on the host) act on the
    bridge's replies too: the same MISO the TCP link would give, so the same PEC failures."""
    link = rig.host.link
    assert isinstance(link, FaultyLink)
    rig.board.write_config_a({"REFON": 1})
    time.sleep(0.01)
    _convert_and_read(rig)  # healthy
    with rig.host.lock:
        link.silent_from = 1  # device 1 (the far end) stops answering
    rig.wait_for(lambda: [f & 1 for f in rig.bridge.flags] == [1, 0])
    with pytest.raises(PecError) as exc:
        rig.board.read_cells("C")
    assert exc.value.devices == (1,)
    with rig.host.lock:
        link.silent_from = None
        link.bit_error_probability = 1.0  # one flipped reply bit in every window
    rig.wait_for(lambda: rig.bridge.bit_error_ppm == 1_000_000 and rig.bridge.flags == [1, 1])
    for _ in range(5):  # PEC10 catches every single-bit error, data or PEC field
        with pytest.raises(PecError):
            rig.board.read_cells("C")
    assert rig.bridge.injected_bit_errors >= 5
    with rig.host.lock:
        link.bit_error_probability = 0.0
    rig.wait_for(lambda: rig.bridge.bit_error_ppm == 0)
    worst = float(np.abs(_convert_and_read(rig) - rig.truth()).max())
    assert worst < CHIP.accuracy.tme_mV * 1e-3  # healthy again, counters too
    rig.wait_for(rig.settled)
    assert rig.board.expected_counters == [d.command_counter for d in rig.emu.chain.devices]


def test_a_clear_command_reaches_the_image_and_reads_do_not_rescan_it(rig: Rig) -> None:
    from bms_emu.protocol.opcodes import encode_opcode
    from hil.bridge_pc import _may_change_registers

    b = rig.board
    b.write_config_a({"REFON": 1})
    time.sleep(0.01)
    _convert_and_read(rig)
    b.command("CLRCELL")  # an action that changes registers at once: the image follows
    rig.wait_for(lambda: rig.bridge.shadow[RDCVA] == [b"\x00\x80" * 3] * N)
    assert np.all(b.read_cell_codes("C") == -0x8000)

    def cmd(name: str, **p: int) -> bytes:
        return build_command_frame(encode_opcode(name, **p))

    quiet = [cmd("ADCV"), cmd("ADSV"), cmd("ADAX"), build_read_frame(RDCVA, N),
             cmd("PLADC") + b"\xff", b"\xff", cmd("ADCV")[:3] + b"\x00"]  # last: bad PEC
    touching = [cmd("ADCV", RSTF=1), cmd("CLRCELL"), cmd("SNAP"), cmd("SRST"), cmd("MUTE")]
    assert not any(_may_change_registers(m) for m in quiet)
    assert all(_may_change_registers(m) for m in touching)


def _read_name(mosi: bytes) -> str:
    op = (mosi[0] << 8 | mosi[1]) & 0x7FF
    return next((s.name for s in COMMANDS.values() if s.kind == READ and s.opcode == op), "")


def test_a_read_before_completion_gets_the_old_data_while_the_new_is_held(rig: Rig) -> None:
    b = rig.board
    b.write_config_a({"REFON": 0})  # each ADSV waits for REFUP first: 12.5 ms to completion
    t_done_s = T_REFUP_S + T_S_S
    frame = build_read_frame(RDSVA, N)
    held = 0
    for k in range(20):  # a loaded machine may miss the window now and then: try again
        rig.wait_for(rig.idle)
        with rig.host.lock:  # a current step moves each cell by ~I R0: the result is new
            rig.emu.set_current_A(50.0 if k % 2 else -50.0)
        old = list(rig.bridge.shadow[RDSVA])
        before = rig.bridge.shadow_stamps.get(RDSVA)
        t_cmd = time.monotonic()
        b.command("ADSV")
        deadline = t_cmd + t_done_s - 0.0015
        while rig.bridge.pending == 0 and time.monotonic() < deadline:
            time.sleep(0.0002)
        waiting = rig.bridge.pending
        replies = split_read_reply(rig.bridge.spi_window(frame), N)
        if waiting and time.monotonic() < t_cmd + t_done_s:  # read done before the completion
            assert [r.data for r in replies] == old and all(r.pec_ok for r in replies)
            held += 1
        rig.wait_for(lambda b=before: rig.bridge.shadow_stamps.get(RDSVA) is not b)
        assert rig.bridge.shadow_stamps[RDSVA].exposed_s >= t_cmd + t_done_s - 1e-6
        new = [r.data for r in split_read_reply(rig.bridge.spi_window(frame), N)]
        assert new != old and new == list(rig.bridge.shadow[RDSVA])
        b.expected_counters = list(rig.bridge.cc)  # raw windows above bypassed the driver
        if held:
            break
    assert held, "the update never arrived before its completion time"


class _Clock:
    """A bridge clock set by hand, in whole microseconds."""

    def __init__(self, t_us: int) -> None:
        self.t_us = t_us

    def __call__(self) -> float:
        return (self.t_us + 0.5) * 1e-6


def _shadow(opcode: int, datas: list[bytes]) -> bytes:
    return struct.pack("<HBB", opcode, 6, len(datas)) + b"".join(datas)


def _state(busy: bool, cc: int = 0) -> bytes:
    return struct.pack("<IB", 0, N) + bytes([1 | busy << 1, cc]) * N


def _rules() -> bytes:
    rules = cc_rules()
    return bytes([len(rules)]) + b"".join(struct.pack("<HHB", *r) for r in rules)


@pytest.fixture()
def pipe_fd() -> Iterator[int]:
    r, w = os.pipe()  # the bridge's ACKs go here (64 kB of room), nobody reads them
    try:
        yield w
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("t0_us", [100_000_000, (1 << 32) - 500])  # also across the u32 wrap
def test_timed_update_applies_when_the_bridge_clock_reaches_it(pipe_fd: int, t0_us: int) -> None:
    clock = _Clock(t0_us)
    bridge = BridgeRef(pipe_fd, clock=clock)
    old, new = [bytes(range(6)), bytes(range(6, 12))], [b"\x11" * 6, b"\x22" * 6]
    at = (t0_us + 1000) & 0xFFFFFFFF
    frames = [
        (bl.CC_RULES, _rules()),
        (bl.SHADOW_UPDATE, _shadow(RDCVA, old)),
        (bl.CHAIN_STATE, _state(busy=True)),
        (bl.AT, struct.pack("<IB", at, bl.SHADOW_UPDATE) + _shadow(RDCVA, new)),
        (bl.AT, struct.pack("<IB", at, bl.CHAIN_STATE) + _state(busy=False)),
        (bl.SHADOW_UPDATE, _shadow(RDCVB, new)),  # sent after: describes a later state
    ]
    bridge.feed(b"".join(bl.encode_frame(t, seq, p) for seq, (t, p) in enumerate(frames)))
    poll = build_command_frame(PLADC) + b"\xff"

    def read(opcode: int) -> list[bytes]:
        replies = split_read_reply(bridge.spi_window(build_read_frame(opcode, N)), N)
        assert all(r.pec_ok for r in replies)
        return [r.data for r in replies]

    for dt_us in (0, 999):
        clock.t_us = t0_us + dt_us
        assert read(RDCVA) == old
        assert bridge.spi_window(poll)[4] == 0x00  # busy
        # queued behind the timed updates: no image yet, nobody drives MISO
        assert set(bridge.spi_window(build_read_frame(RDCVB, N))) == {0xFF}
        assert bridge.pending == 3
    clock.t_us = t0_us + 1000  # the completion instant itself
    assert read(RDCVA) == new
    assert bridge.spi_window(poll)[4] == 0xFF  # done
    assert read(RDCVB) == new
    assert bridge.pending == 0 and bridge.early_applies == 0
    assert bridge.shadow_stamps[RDCVA].late_s == pytest.approx(-1000e-6, abs=1e-6)


def test_pending_overflow_applies_the_oldest_early_and_says_so(
    pipe_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge_ref, "MAX_PENDING", 2)
    clock = _Clock(5_000_000)
    bridge = BridgeRef(pipe_fd, clock=clock)
    datas = [[bytes([k]) * 6] * N for k in range(3)]
    frames = [(bl.AT, struct.pack("<IB", 6_000_000 + k, bl.SHADOW_UPDATE)
               + _shadow(RDCVA, datas[k])) for k in range(3)]
    bridge.feed(b"".join(bl.encode_frame(t, seq, p) for seq, (t, p) in enumerate(frames)))
    assert bridge.early_applies == 1 and bridge.pending == 2
    assert bridge.shadow[RDCVA] == datas[0]
    bad = bl.encode_frame(bl.AT, 3, struct.pack("<IB", 0, bl.CC_RULES) + b"\x00")
    bridge.feed(bad)  # only shadow updates and chain states may be timed
    assert bridge.pending == 2 and bridge.stats.frames_rx == 4
    bridge.feed(bl.encode_frame(bl.SHADOW_UPDATE, 4, _shadow(RDCVB, datas[0])))  # queues too
    assert bridge.early_applies == 2 and bridge.pending == 2
    assert bridge.shadow[RDCVA] == datas[1] and RDCVB not in bridge.shadow
    clock.t_us = 6_000_002  # both timed ones due: the untimed one behind them follows
    bridge.feed(b"")
    assert bridge.pending == 0 and bridge.shadow[RDCVA] == datas[2]
    assert bridge.shadow[RDCVB] == datas[0]


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
