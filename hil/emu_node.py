"""The emulator's own CAN node: control frames in, telemetry out (``configs/can/bms_emu.dbc``).

Control: ``EMU_Control`` (string current, ambient temperature), ``EMU_SocOffset`` (per-cell SOC
offset, multiplexed by cell index), ``EMU_FaultInject`` (fault id, device, channel, magnitude,
on/off). Telemetry: ``EMU_Status`` (emulated time, current, active faults, die temperature) and
``EMU_CellTelemetry`` (true and measured voltage and temperature per cell, multiplexed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bms_emu.paths import configs_dir
from hil.can_bus import CanPort, DecodedFrame
from hil.rig import FAULT_IDS, Rig

__all__ = ["CONTROL_MESSAGES", "EMU_DBC", "EmulatorCanNode"]

EMU_DBC = configs_dir() / "can" / "bms_emu.dbc"
CONTROL_MESSAGES = frozenset({"EMU_Control", "EMU_SocOffset", "EMU_FaultInject"})
_KIND_BY_ID = {v: k for k, v in FAULT_IDS.items()}


class EmulatorCanNode:
    """Apply control frames to a :class:`~hil.rig.Rig` and publish its telemetry on ``port``.

    Bad control values (unknown fault id, device out of range) are counted in ``rejected`` and
    ignored; the node never raises on bus content.
    """

    def __init__(self, rig: Rig, port: CanPort) -> None:
        self.rig = rig
        self.port = port
        self.applied = 0
        self.rejected = 0
        self.last_reject = ""

    def handle(self, frame: DecodedFrame) -> bool:
        """Apply one decoded control frame; False if it was not one or was rejected."""
        s: Mapping[str, Any] = frame.signals
        try:
            if frame.name == "EMU_Control":
                self.rig.set_current_A(float(s["PackCurrent_A"]))
                self.rig.set_ambient_C(float(s["AmbientTemp_degC"]))
            elif frame.name == "EMU_SocOffset":
                cell = int(s["SocCellIndex"])
                if cell >= 16 * self.rig.n_devices:
                    raise ValueError(f"cell {cell} beyond the string")
                self.rig.add_soc_pct(cell, float(s["SocOffset_pct"]))
            elif frame.name == "EMU_FaultInject":
                kind = _KIND_BY_ID.get(int(s["FaultId"]))
                if kind is None:
                    raise ValueError(f"unknown FaultId {s['FaultId']}")
                ch = int(s["FaultChannel"])
                self.rig.apply_fault(
                    kind,
                    bool(s["FaultActive"]),
                    device=int(s["FaultDevice"]),
                    channel=ch if ch < 16 else None,
                    pin=ch if kind == "open_wire" else None,
                    magnitude=float(s["FaultMagnitude"]),
                )
            else:
                return False
        except (ValueError, KeyError, AssertionError) as exc:
            self.rejected += 1
            self.last_reject = f"{frame.name}: {exc}"
            return False
        self.applied += 1
        return True

    def publish_telemetry(self) -> int:
        """Send EMU_Status and one EMU_CellTelemetry per cell; returns frames sent."""
        rig = self.rig
        true_V = rig.true_cells_V()
        meas_V = rig.measured_cells_V()
        temps = rig.cell_temps_C()
        die = max(a.temp_die_C for a in rig.emu.analogs)
        current = rig.emu.modules[0].current_at(rig.t_s)
        self.port.send(
            "EMU_Status",
            {
                "EmuTime_s": rig.t_s,
                "EmuPackCurrent_A": current,
                "ActiveFaults": rig.active_fault_bits(),
                "DieTempMax_degC": round(die),
            },
        )
        for i in range(true_V.size):
            self.port.send(
                "EMU_CellTelemetry",
                {
                    "TlmCellIndex": i,
                    "TrueCellVoltage_V": float(true_V[i]),
                    "MeasCellVoltage_V": float(meas_V[i]) if meas_V[i] == meas_V[i] else 0.0,
                    "CellTemp_degC": float(temps[i]),
                },
            )
        return 1 + true_V.size
