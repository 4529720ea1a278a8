"""``bms-emu serve --can``: the CAN control/telemetry node inside the served emulator.

End to end with real processes and buses: ``bms-emu serve`` runs as a subprocess with its CAN
node on a udp_multicast bus (its own port per test); this test drives it over that bus and
reads the same chain over the TCP SIL link with the reference host driver. Link faults set
over CAN are checked in process too, against the real SilServer/SilClient pair on a virtual
bus. Truth: the rig's documented fault effects (forced cell voltage on the sense pins, open
pin found by the open-wire procedure, one flipped MISO bit per window, silent chip = all
ones), the die's thermal model (tau 20 s, chip config) and the DBC's 100 ms telemetry cycle.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Callable

import can
import numpy as np
import pytest

from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import build_emulator
from bms_emu.host import HostDriver, PecError, open_wire_check
from bms_emu.paths import shipped_config
from bms_emu.protocol.pec import append_pec15
from bms_emu.scenario_config import CanBusConfig
from hil.can_bus import CanPort, DecodedFrame
from hil.emu_node import EMU_DBC, CanNodeService, start_can_node
from hil.rig import FAULT_IDS, Rig
from hil.server import EmulatorHost, SilServer
from hil.sil_client import SilClient

GROUP = "239.74.163.2"  # python-can's default udp_multicast IPv4 group; the port isolates tests


def _wait_for(
    port: CanPort, pred: Callable[[DecodedFrame], bool], timeout_s: float
) -> DecodedFrame:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        f = port.recv(min(left, 0.5))
        if f is not None and pred(f):
            return f
    raise AssertionError(f"no matching frame within {timeout_s} s; stats {port.stats.as_dict()}")


def _status(port: CanPort, pred: Callable[[dict], bool], timeout_s: float) -> dict:  # type: ignore[type-arg]
    f = _wait_for(port, lambda f: f.name == "EMU_Status" and pred(dict(f.signals)), timeout_s)
    return dict(f.signals)


def _inject(port: CanPort, kind: str, on: bool, dev: int, ch: int, mag: float = 0.0) -> None:
    assert port.send("EMU_FaultInject", {"FaultId": FAULT_IDS[kind], "FaultDevice": dev,
                                         "FaultChannel": ch, "FaultActive": int(on),
                                         "FaultMagnitude": mag})  # fmt: skip


def _bits(*kinds: str) -> int:
    return sum(1 << (FAULT_IDS[k] - 1) for k in kinds)


def test_serve_can_controls_the_emulation_seen_over_spi(serve_process, tmp_path) -> None:
    udp_port = random.randint(40000, 60000)
    log = tmp_path / "serve.asc"
    srv = serve_process(["--chain", "1", "--seed", "6", "--pace", "wall",
                         "--can", f"udp_multicast:{GROUP}", "--can-option", f"port={udp_port}",
                         "--can-log", str(log)])  # fmt: skip
    cfg = CanBusConfig(interface="udp_multicast", channel=GROUP, options={"port": udp_port})
    with CanPort.open(cfg, EMU_DBC) as port, SilClient("127.0.0.1", srv.port) as spi:
        base = _status(port, lambda s: True, 20.0)
        t_last = time.monotonic()
        periods = []
        for _ in range(5):  # the DBC's 100 ms cycle (GenMsgCycleTime of EMU_Status)
            _status(port, lambda s: True, 2.0)
            periods.append(time.monotonic() - t_last)
            t_last = time.monotonic()
        assert 0.05 < float(np.median(periods)) < 0.2
        host = HostDriver(spi.transfer, 1, delay=spi.delay)
        before = _measure(host)
        assert np.all((before > 2.5) & (before < 3.65))  # healthy LFP cells
        # control over CAN: forced cell 4, open sense pin 9, a hot ambient; plus bad frames
        _inject(port, "cell_overvoltage", True, 0, 4, 3.9)
        _inject(port, "open_wire", True, 0, 9)
        assert port.send("EMU_Control", {"PackCurrent_A": 20.0, "AmbientTemp_degC": 85.0,
                                         "ControlCounter": 1})  # fmt: skip
        _inject(port, "open_wire", True, 0, 40)  # no pin 40: rejected
        port.send_msg(can.Message(arbitration_id=0x7FF, data=b"\x01", is_extended_id=False))
        port.send_msg(can.Message(arbitration_id=0x100, data=b"\x01\x02", is_extended_id=False))
        st = _status(port, lambda s: s["ActiveFaults"] == _bits("open_wire", "cell_overvoltage")
                     and s["EmuPackCurrent_A"] == pytest.approx(20.0), 3.0)  # fmt: skip
        after = _measure(host)
        assert after[4] == pytest.approx(3.9, abs=5e-3)  # the chip's few-mV class + LSB
        # telemetry of the next cycles: the chip's result register (0.1 mV signal LSB)
        cell4 = _wait_for(port, lambda f: f.name == "EMU_CellTelemetry"
                          and f.signals["TlmCellIndex"] == 4
                          and abs(f.signals["MeasCellVoltage_V"] - after[4]) < 2e-4, 2.0)
        assert cell4.signals["TrueCellVoltage_V"] == pytest.approx(3.9, abs=1e-4)
        _measure(host)  # awake and configured again after the wait on CAN
        assert open_wire_check(host) == [[9]]
        # die: 60 C ambient step, tau 20 s -> ~3 C/s at first, 3 C in ~1 s (the model steps
        # the die temperature exactly over the time since the chip last sampled: one
        # conversion every ~0.3 s shows it without the load of continuous conversions)
        deadline = time.monotonic() + 8.0
        while True:
            _measure(host)
            try:
                hot = _status(port, lambda s: s["DieTempMax_degC"] >= base["DieTempMax_degC"] + 3,
                              0.3)  # fmt: skip
                break
            except AssertionError:
                assert time.monotonic() < deadline, "die did not warm up by 3 C within 8 s"
        assert hot["EmuTime_s"] > st["EmuTime_s"]
        # link faults from the same message, applied to the TCP transport
        _inject(port, "chip_silent", True, 0, 0)
        _status(port, lambda s: s["ActiveFaults"] & _bits("chip_silent"), 3.0)
        assert spi.transfer(append_pec15(bytes([0x00, 0x02])) + bytes(8))[4:] == b"\xff" * 8
        _inject(port, "chip_silent", False, 0, 0)
        _status(port, lambda s: not s["ActiveFaults"] & _bits("chip_silent"), 3.0)
        host.wakeup()  # as a master does after a link fault: wake, resynchronise counters
        host.rstcc()
        assert len(host.read_config_a()) == 1
    srv.proc.send_signal(signal.SIGINT)
    out, err = srv.proc.communicate(timeout=15)
    assert srv.proc.returncode == 0, err
    summary = _summary(out)
    assert summary["applied"] == 5 and summary["rejected"] == 1
    assert "pin 0..16" in summary["last_reject"]
    assert summary["can"]["unknown_id"] == 1 and summary["can"]["malformed"] == 1
    assert summary["can"]["bus_errors"] == 0 and summary["telemetry_cycles"] >= 10
    text = log.read_text()
    assert "100" in text and summary["log_frames"] > 100  # control ID 0x100 in the log
    frames = list(can.ASCReader(str(log)))
    assert {0x100, 0x102, 0x200, 0x201} <= {m.arbitration_id for m in frames}


def _measure(host: HostDriver) -> np.ndarray:
    """One master cycle from any state: wake (the chip sleeps after 2 s without a command,
    and waits for CAN frames on a loaded host can be that long), configure, convert, read."""
    host.wakeup()
    host.rstcc()
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)  # REFUP <= 5 ms
    host.start_cell_conversion()
    host.wait(2e-3)  # C-ADC conversion 1 ms
    return host.read_cells()[0]


def _summary(stdout: str) -> dict:  # type: ignore[type-arg]
    for line in stdout.splitlines():
        if line.startswith("can node stopped "):
            return json.loads(line.removeprefix("can node stopped "))  # type: ignore[no-any-return]
    raise AssertionError(f"no summary in {stdout!r}")


@pytest.fixture()
def served_rig():
    """An emulator with its rig behind a real SilServer, the CAN node on a virtual bus."""
    emu = build_emulator(
        load_chip(shipped_config("chips/adbms6830_like.yaml")),
        load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), 2, seed=8,
    )  # fmt: skip
    rig = Rig(emu, seed=8)
    host = EmulatorHost(emu, pace="lockstep", link=rig.link)
    cfg = CanBusConfig(channel=f"serve-{random.getrandbits(32)}")
    lines: list[str] = []
    with SilServer(host).start() as server:
        node = start_can_node(host, rig, cfg, log=lines.append)
        try:
            with CanPort.open(cfg, EMU_DBC) as port, SilClient("127.0.0.1", server.port) as spi:
                yield rig, node, port, spi, lines
        finally:
            node.shutdown()


def _applied(node: CanNodeService, n: int, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while node.node.applied + node.node.rejected < n:
        assert time.monotonic() < deadline, node.summary()
        time.sleep(0.01)


def test_link_faults_set_over_can_hit_the_tcp_transport(served_rig) -> None:
    rig, node, port, spi, lines = served_rig
    host = HostDriver(spi.transfer, 2, delay=spi.delay)
    host.wakeup()
    assert len(host.read_config_a()) == 2
    _inject(port, "spi_bit_errors", True, 0, 0, 1.0)  # every window: one MISO bit flipped
    _applied(node, 1)
    for _ in range(10):
        with pytest.raises(PecError):
            host.read_config_a()
    assert rig.link.injected_bit_errors == 10
    _inject(port, "spi_bit_errors", True, 0, 0, 0.25)  # a quarter of the windows, seeded
    _applied(node, 2)
    bad = 0
    for _ in range(200):
        try:
            host.read_config_a()
        except PecError:
            bad += 1
    assert 25 <= bad <= 75  # binomial(200, 0.25): mean 50, sd 6.1; +-4 sd
    _inject(port, "spi_bit_errors", False, 0, 0)
    _inject(port, "chip_silent", True, 1, 0)  # device 1 and behind: all ones
    _applied(node, 4)
    with pytest.raises(PecError) as err:
        host.read_config_a()
    assert err.value.devices == (1,)
    _inject(port, "chip_silent", True, 0, 0, 0.0)
    _applied(node, 5)
    miso = spi.transfer(append_pec15(bytes([0x00, 0x02])) + bytes(16))
    assert miso[4:] == b"\xff" * 16
    _inject(port, "spi_bit_errors", True, 0, 0, 1.5)  # not a probability: rejected
    _applied(node, 6)
    assert node.node.rejected == 1 and rig.link.bit_error_probability == 0.0
    assert any("FaultMagnitude 1.5" in line for line in lines)


def test_node_survives_a_dead_bus_and_stops_in_bounded_time() -> None:
    """A bus that fails under the node (an unplugged adapter): counted, reported, no spin."""
    emu = build_emulator(
        load_chip(shipped_config("chips/adbms6830_like.yaml")),
        load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), 1, seed=9,
    )  # fmt: skip
    rig = Rig(emu, seed=9)
    lock = threading.RLock()
    lines: list[str] = []
    cfg = CanBusConfig(channel=f"dead-{random.getrandbits(32)}")
    node = start_can_node(type("H", (), {"lock": lock, "sync": lambda self: None})(), rig, cfg,
                          log=lines.append)  # fmt: skip
    try:
        time.sleep(0.25)
        bus = node.node.port.bus
        assert bus is not None
        bus.shutdown()  # the bus dies underneath the node
        deadline = time.monotonic() + 3.0
        while node.node.port.stats.bus_errors == 0 or node.node.port.stats.send_errors == 0:
            assert time.monotonic() < deadline, node.summary()
            time.sleep(0.02)
        errors = node.node.port.stats.bus_errors
        time.sleep(0.5)
        assert node.node.port.stats.bus_errors - errors < 0.5 / node.tick_s + 5  # backs off
    finally:
        t0 = time.monotonic()
        node.shutdown()
        assert time.monotonic() - t0 < 1.0
    assert any("bus error #1" in line for line in lines)
    assert any(line.startswith("can node stopped ") for line in lines)


class _PackSender:
    """A real pack's BMS on the bus: example_pack.dbc frames every 50 ms from a thread."""

    def __init__(self, cfg: CanBusConfig, cells_mV: np.ndarray, charge_A: float) -> None:
        self.port = CanPort.open(cfg, shipped_config("can/example_pack.dbc"))
        self.cells_mV, self.charge_A = cells_mV, charge_A
        self.sending = threading.Event()
        self.sending.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pack-sender")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):  # the example pack's 100 ms, twice as often
            if not self.sending.is_set():
                continue
            for g in range(6):
                sig = {"CellGroup": g}
                for slot, name in enumerate(("CellVa_mV", "CellVb_mV", "CellVc_mV")):
                    k = 3 * g + slot
                    sig[name] = int(self.cells_mV[k]) if k < 16 else 0
                self.port.send("PACK_CellV", sig)
            self.port.send("PACK_Temps", {f"Temp{j}_degC": 30 for j in range(1, 5)})
            self.port.send("PACK_Current", {"PackCurrentChg_A": self.charge_A})

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.port.shutdown()


def test_serve_pack_can_measures_a_real_pack_from_can(serve_process) -> None:
    udp_port = random.randint(40000, 60000)
    cfg = CanBusConfig(interface="udp_multicast", channel=GROUP, options={"port": udp_port})
    cells_mV = 3300 + np.arange(16) * 7  # distinct per cell, so a mapping mix-up shows
    pack = _PackSender(cfg, cells_mV, charge_A=12.5)
    try:
        srv = serve_process(["--chain", "1", "--pace", "wall",
                             "--pack-can", str(shipped_config("can/example_pack_mapping.yaml")),
                             "--can", f"udp_multicast:{GROUP}", "--can-option", f"port={udp_port}"])
        with CanPort.open(cfg, EMU_DBC) as port, SilClient("127.0.0.1", srv.port) as spi:
            host = HostDriver(spi.transfer, 1, delay=spi.delay)
            v = _measure(host)
            np.testing.assert_allclose(v, cells_mV / 1000, atol=2e-3)  # 1 mV class + LSB
            st = _status(port, lambda s: s["EmuPackCurrent_A"] == pytest.approx(-12.5), 3.0)
            assert st["EmuTime_s"] > 0  # charge-positive pack current, negated (mapping)
            cell7 = _wait_for(port, lambda f: f.name == "EMU_CellTelemetry"
                              and f.signals["TlmCellIndex"] == 7, 2.0)  # fmt: skip
            assert cell7.signals["TrueCellVoltage_V"] == pytest.approx(cells_mV[7] / 1000)
            assert cell7.signals["CellTemp_degC"] == pytest.approx(30.0)
            # stimuli are refused on a real pack, faults still work
            assert port.send("EMU_Control", {"PackCurrent_A": 5.0, "AmbientTemp_degC": 25.0,
                                             "ControlCounter": 1})  # fmt: skip
            _inject(port, "cell_overvoltage", True, 0, 2, 3.9)
            _status(port, lambda s: s["ActiveFaults"] == _bits("cell_overvoltage"), 3.0)
            v = _measure(host)
            assert v[2] == pytest.approx(3.9, abs=2e-3) and v[3] == pytest.approx(3.321, abs=2e-3)
            # the pack goes quiet: stale after the mapping's 0.5 s; the server says so
            pack.sending.clear()
            time.sleep(0.8)
            with pytest.raises(OSError, match="stale data"):
                _measure(host)
            pack.sending.set()  # back: the chain measures again
            time.sleep(0.3)
            v = _measure(host)
            assert v[0] == pytest.approx(3.3, abs=2e-3)
        srv.proc.send_signal(signal.SIGTERM)
        out, err = srv.proc.communicate(timeout=15)
        assert srv.proc.returncode == 0, err
        summary = _summary(out)
        assert summary["rejected"] == 1 and "real pack" in summary["last_reject"]
    finally:
        pack.close()
