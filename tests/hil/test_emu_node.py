"""hil.emu_node + hil.rig: the emulator controlled and observed over CAN (bms_emu.dbc).

Truth: the rig's documented fault effects (AnalogFaults fields, forced cell voltages, the link
wrapper) and the HostDriver's own checks (PEC, open-wire procedure) on the emulated chain.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import build_emulator
from bms_emu.host import HostDriver, PecError, open_wire_check
from bms_emu.paths import shipped_config
from bms_emu.scenario_config import CanBusConfig
from hil.can_bus import CanPort
from hil.emu_node import EMU_DBC, EmulatorCanNode
from hil.rig import FAULT_IDS, Rig


@pytest.fixture()
def setup():
    emu = build_emulator(
        load_chip(shipped_config("chips/adbms6830_like.yaml")),
        load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), 2, seed=5,
    )  # fmt: skip
    rig = Rig(emu, seed=5)
    cfg = CanBusConfig(channel=f"node-{random.getrandbits(32)}")
    node_port, host_port = CanPort.open(cfg, EMU_DBC), CanPort.open(cfg, EMU_DBC)
    node = EmulatorCanNode(rig, node_port)
    host = HostDriver(rig.link, 2, delay=rig.chain.delay)
    host.wakeup()
    host.write_config_a({"REFON": 1, "CTH": 2})
    host.wait(5e-3)
    yield rig, node, host_port, host
    node_port.shutdown()
    host_port.shutdown()


def _deliver(node: EmulatorCanNode, n: int = 1) -> None:
    for _ in range(n):
        frame = node.port.recv(1.0)
        assert frame is not None
        node.handle(frame)


def _inject(port: CanPort, kind: str, on: bool, dev: int, ch: int, mag: float = 0.0) -> None:
    port.send("EMU_FaultInject", {"FaultId": FAULT_IDS[kind], "FaultDevice": dev,
                                  "FaultChannel": ch, "FaultActive": int(on),
                                  "FaultMagnitude": mag})  # fmt: skip


def test_open_wire_injected_over_can_is_found_by_the_ow_procedure(setup) -> None:
    rig, node, port, host = setup
    _inject(port, "open_wire", True, 1, 7)
    _deliver(node)
    assert rig.emu.analogs[1].faults.open_pins == {7}
    assert open_wire_check(host) == [[], [7]]
    _inject(port, "open_wire", False, 1, 7)
    _deliver(node)
    assert open_wire_check(host) == [[], []]


def test_control_current_temperature_soc_and_forced_cell(setup) -> None:
    rig, node, port, host = setup
    port.send("EMU_Control", {"PackCurrent_A": 140.0, "AmbientTemp_degC": 40.0,
                              "ControlCounter": 1})  # fmt: skip
    port.send("EMU_SocOffset", {"SocCellIndex": 20, "SocOffset_pct": -30.0})
    soc_before = rig.emu.modules[1].pack.soc()[4]
    _inject(port, "cell_overvoltage", True, 0, 3, 3.9)
    _deliver(node, 3)
    assert node.applied == 3 and node.rejected == 0
    assert rig.emu.modules[0].current_at(rig.t_s) == pytest.approx(140.0)
    assert rig.emu.analogs[1].temp_ambient_C == pytest.approx(40.0)
    assert rig.emu.modules[1].pack.soc()[4] == pytest.approx(soc_before - 0.30)
    host.start_cell_conversion()
    host.wait(2e-3)
    v = host.read_cells()
    assert v[0, 3] == pytest.approx(3.9, abs=5e-3)  # the chip's 3 mV class + LSB
    assert v[1, 4] < v[1, 3] - 0.005  # 30 % less charge reads lower on the LFP curve
    assert rig.true_cells_V()[3] == pytest.approx(3.9)


def test_link_faults_and_bad_control_values(setup) -> None:
    rig, node, port, host = setup
    _inject(port, "chip_silent", True, 1, 0)
    port.send("EMU_FaultInject", {"FaultId": 99, "FaultDevice": 0, "FaultChannel": 0,
                                  "FaultActive": 1, "FaultMagnitude": 0})  # fmt: skip
    _inject(port, "open_wire", True, 9, 0)  # no device 9
    _deliver(node, 3)
    assert (node.applied, node.rejected) == (1, 2)
    with pytest.raises(PecError) as err:
        host.read_config_a()
    assert err.value.devices == (1,)
    _inject(port, "chip_silent", False, 1, 0)
    _inject(port, "spi_bit_errors", True, 0, 0, 1.0)  # every window: one flipped MISO bit
    _deliver(node, 2)
    bad = 0
    for _ in range(20):
        try:
            host.read_config_a()
        except PecError:
            bad += 1
    assert bad == 20 and rig.link.injected_bit_errors == 20


def test_fault_id_0_inactive_switches_every_fault_off(setup) -> None:
    rig, node, port, host = setup
    _inject(port, "open_wire", True, 1, 7)
    _inject(port, "cell_overvoltage", True, 0, 3, 3.9)
    _inject(port, "c_adc_gain", True, 1, 2, 500.0)
    _inject(port, "chip_silent", True, 1, 0)
    _deliver(node, 4)
    assert rig.active_fault_bits() == 0b1010011
    clear = {"FaultId": 0, "FaultDevice": 0, "FaultChannel": 0, "FaultMagnitude": 0}
    port.send("EMU_FaultInject", clear | {"FaultActive": 1})  # "inject nothing": rejected
    port.send("EMU_FaultInject", clear | {"FaultActive": 0})
    _deliver(node, 2)
    assert (node.applied, node.rejected) == (5, 1)
    assert rig.active_fault_bits() == 0 and not rig.active
    assert rig.emu.analogs[1].faults.open_pins == set()
    assert rig.emu.analogs[1].faults.c_gain_ppm[2] == 0.0
    assert rig.link.silent_from is None
    host.start_cell_conversion()
    host.wait(2e-3)
    v = host.read_cells()  # both devices answer again, cell 3 is the pack's own
    assert v[0, 3] == pytest.approx(rig.true_cells_V()[3], abs=5e-3) and v[0, 3] < 3.7
    assert open_wire_check(host) == [[], []]


def test_telemetry_frames_carry_true_and_measured_cells(setup) -> None:
    rig, node, port, host = setup
    host.start_cell_conversion()
    host.wait(2e-3)
    measured = host.read_cells().reshape(-1)
    assert node.publish_telemetry() == 33
    status = port.recv(1.0)
    assert status is not None and status.name == "EMU_Status"
    assert status.signals["EmuTime_s"] == pytest.approx(rig.t_s, abs=1e-3)
    cells = [port.recv(1.0) for _ in range(32)]
    true_V = np.array([c.signals["TrueCellVoltage_V"] for c in cells])  # type: ignore[union-attr]
    meas_V = np.array([c.signals["MeasCellVoltage_V"] for c in cells])  # type: ignore[union-attr]
    np.testing.assert_allclose(true_V, rig.true_cells_V(), atol=1e-4)  # 0.1 mV signal LSB
    np.testing.assert_allclose(meas_V, measured, atol=1e-4)


def test_stimulus_during_a_running_conversion_does_not_break_it(setup) -> None:
    """Wall pace applies CAN control at "now", which can fall inside a conversion window: the
    conversion must still complete (it reads the module as of now), not ask it to go back."""
    rig, node, port, host = setup
    host.start_cell_conversion()  # single shot, C-ADC 1 ms (REFERENCE 2.1)
    rig.chain.delay(0.8e-3)  # past the window's middle
    port.send("EMU_Control", {"PackCurrent_A": 100.0, "AmbientTemp_degC": 40.0,
                              "ControlCounter": 2})  # fmt: skip
    _deliver(node)
    assert node.applied == 1
    host.wait(2e-3)
    v = host.read_cells()
    assert np.all((v > 2.5) & (v < 3.65))  # a plausible LFP reading, no SourceError
