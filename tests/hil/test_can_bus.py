"""hil.can_bus: buses from config through can.Bus, DBC send/recv by name, counters, logs.

Truth: python-can's own readers (can.LogReader) for the logs, cantools for the encoding, and
frames built by hand only where a frame must be wrong on purpose (unknown ID, bad length).
"""

from __future__ import annotations

import random
import time

import can
import pytest

from bms_emu.scenario_config import CanBusConfig
from hil.can_bus import CanBackendError, CanLogWriter, CanPort, load_dbc, open_bus
from hil.emu_node import EMU_DBC


@pytest.fixture()
def ports():
    """Two ports on one virtual channel (a bus does not receive its own frames)."""
    cfg = CanBusConfig(interface="virtual", channel=f"t-{random.getrandbits(32)}")
    a, b = CanPort.open(cfg, EMU_DBC), CanPort.open(cfg, EMU_DBC)
    yield a, b
    a.shutdown()
    b.shutdown()


def test_send_and_receive_by_message_name(ports) -> None:
    a, b = ports
    assert a.send("EMU_Control", {"PackCurrent_A": -12.3, "AmbientTemp_degC": 31.5,
                                  "ControlCounter": 7})  # fmt: skip
    f = b.recv(1.0)
    assert f is not None and f.name == "EMU_Control"
    assert f.signals["PackCurrent_A"] == pytest.approx(-12.3)
    assert f.signals["AmbientTemp_degC"] == pytest.approx(31.5)
    a.send("EMU_CellTelemetry", {"TlmCellIndex": 37, "TrueCellVoltage_V": 3.3012,
                                 "MeasCellVoltage_V": 3.3008, "CellTemp_degC": 25.0})  # fmt: skip
    f = b.recv(1.0)
    assert f is not None and f.signals["TlmCellIndex"] == 37
    assert f.signals["MeasCellVoltage_V"] == pytest.approx(3.3008)


def test_unknown_ids_and_malformed_frames_are_ignored_and_counted(ports) -> None:
    a, b = ports
    assert a.bus is not None
    a.bus.send(can.Message(arbitration_id=0x7AB, data=b"\x01\x02", is_extended_id=False))
    a.bus.send(can.Message(arbitration_id=0x100, data=b"\x01", is_extended_id=False))  # short
    a.bus.send(can.Message(arbitration_id=0x100, data=bytes(8), is_extended_id=True))  # ext id
    a.send("EMU_Status", {"EmuTime_s": 1.5, "EmuPackCurrent_A": 0, "ActiveFaults": 3,
                          "DieTempMax_degC": 30})  # fmt: skip
    f = b.recv(1.0)  # skips the three bad frames, returns the good one
    assert f is not None and f.name == "EMU_Status" and f.signals["ActiveFaults"] == 3
    s = b.stats
    assert (s.received, s.decoded, s.unknown_id, s.malformed) == (4, 1, 2, 1)
    assert s.unknown_ids == {0x7AB, 0x100}
    assert "length 1" in s.last_error


def test_recv_has_a_deadline_and_counts_timeouts(ports) -> None:
    _, b = ports
    t0 = time.monotonic()
    assert b.recv(0.05) is None
    assert 0.04 <= time.monotonic() - t0 < 1.0
    assert b.stats.timeouts == 1


def test_missing_backend_disables_only_that_bus() -> None:
    with pytest.raises(CanBackendError, match="'nosuchbackend'"):
        open_bus(CanBusConfig(interface="nosuchbackend", channel="x"))
    with pytest.raises(CanBackendError, match=r"socketcan.*'vcan-does-not-exist'"):
        open_bus(CanBusConfig(interface="socketcan", channel="vcan-does-not-exist"))
    bus = open_bus(CanBusConfig(interface="virtual", channel="still-works"))
    bus.shutdown()


def test_udp_multicast_needs_a_multicast_group() -> None:
    """The failure mode of a wrong udp_multicast channel is a clear CanBackendError."""
    with pytest.raises(CanBackendError, match=r"udp_multicast.*'127\.0\.0\.1'"):
        open_bus(CanBusConfig(interface="udp_multicast", channel="127.0.0.1"))


def test_udp_multicast_round_trip_between_two_buses() -> None:
    cfg = CanBusConfig(interface="udp_multicast", channel="239.74.163.2",
                       options={"port": random.randint(40000, 60000)})  # fmt: skip
    with CanPort.open(cfg, EMU_DBC) as a, CanPort.open(cfg, EMU_DBC) as b:
        a.send("EMU_FaultInject", {"FaultId": 1, "FaultDevice": 0, "FaultChannel": 7,
                                   "FaultActive": 1, "FaultMagnitude": 0})  # fmt: skip
        f = b.recv(2.0)
        # multicast loopback hands the sender its own frame: dropped and counted, not decoded
        assert a.recv(0.3) is None and a.stats.own_echoes == 1 and a.stats.decoded == 0
    assert f is not None and f.name == "EMU_FaultInject" and f.signals["FaultChannel"] == 7


@pytest.mark.parametrize("ext", ["log", "asc", "blf"])
def test_logs_in_candump_asc_blf_read_back_with_python_can(ports, tmp_path, ext) -> None:
    a, b = ports
    path = tmp_path / f"trace.{ext}"
    with CanLogWriter(path) as log:
        a.log = b.log = log  # sent frames (no channel) and received ones (channel "t-<digits>")
        for i in range(5):
            a.send("EMU_SocOffset", {"SocCellIndex": i, "SocOffset_pct": 0.5 * i})
            assert b.recv(1.0) is not None
        a.log = b.log = None
    assert (log.n_frames, log.errors) == (10, 0)
    frames = list(can.LogReader(str(path)))
    assert len(frames) == 10
    db = load_dbc(EMU_DBC)
    decoded = [db.decode_message(m.arbitration_id, bytes(m.data)) for m in frames]
    assert [d["SocCellIndex"] for d in decoded] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert decoded[7]["SocOffset_pct"] == pytest.approx(1.5)


class _BrokenBus(can.BusABC):
    """A bus whose controller fails every other call (bus-off, driver errors)."""

    def __init__(self) -> None:
        super().__init__(channel="broken")
        self.calls = 0

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        self.calls += 1
        if self.calls % 2:
            raise can.CanOperationError("bus-off")

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        self.calls += 1
        if self.calls % 2:
            raise can.CanOperationError("controller error")
        return can.Message(arbitration_id=0x7FF, is_error_frame=True), False


def test_bus_errors_are_counted_and_survived() -> None:
    with CanPort(_BrokenBus(), load_dbc(EMU_DBC)) as port:
        sent = [port.send("EMU_Control", {"PackCurrent_A": 1, "AmbientTemp_degC": 25,
                                          "ControlCounter": i}) for i in range(4)]  # fmt: skip
        assert sent == [False, True, False, True]
        assert port.stats.send_errors == 2 and "bus-off" in port.stats.last_error
        t0 = time.monotonic()
        assert port.recv(0.05) is None  # errors and error frames until the deadline
        assert time.monotonic() - t0 < 1.0
        assert port.stats.bus_errors >= 2 and port.stats.timeouts == 1
        assert port.stats.received == 0
