"""Config kinds of the HIL rig: ``scenario`` and ``can_mapping`` (issue 8).

Plain validated data like the other kinds in :mod:`bms_emu.config` (which registers them in
``CONFIG_KINDS``); the rig that runs them lives in ``hil`` (``hil.scenario``, ``hil.can_source``).
File paths inside these configs (chip, pack, DBC) are relative to the config file; whether they
exist is checked when ``hil`` loads the config, and the error names the key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from bms_emu.config import StrictModel
from bms_emu.errors import FieldProblem

__all__ = [
    "CanBusConfig",
    "CanMappingConfig",
    "CanSignalMap",
    "ExpectationConfig",
    "FaultConfig",
    "ReferenceMasterConfig",
    "ScenarioConfig",
    "StimulusConfig",
]

NonNeg = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]

#: ``Message.Signal`` or ``Message.Signal[mux]`` (the value of a multiplexed signal whose
#: multiplexer equals ``mux``).
SIGNAL_REF = re.compile(r"^([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\[(\d+)\])?$")


class CanBusConfig(StrictModel):
    """One CAN bus opened through python-can's ``can.Bus``.

    ``interface`` is any python-can interface name (``virtual``, ``udp_multicast``,
    ``socketcan``, ``pcan``, ``kvaser``, ...); its backend is imported only when the bus is
    opened. ``channel`` is the interface's channel (a name for ``virtual``, a multicast group
    address for ``udp_multicast``, ``can0`` for socketcan, ``PCAN_USBBUS1`` for pcan).
    ``bitrate`` is passed only when set (virtual and udp_multicast have none). ``options`` go to
    ``can.Bus`` as keyword arguments (e.g. ``port`` of udp_multicast).
    """

    interface: str = "virtual"
    channel: str | int = "bms-emu"
    bitrate: int | None = Field(default=None, gt=0)
    receive_own_messages: bool = False
    options: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# can_mapping: a real pack's CAN frames -> cell voltages, temperatures, current
# --------------------------------------------------------------------------------------------


class CanSignalMap(StrictModel):
    """One DBC signal mapped to one quantity: ``value = raw_physical * scale + offset``.

    ``raw_physical`` is the signal's value as decoded by cantools (the DBC's own factor and
    offset already applied); ``scale``/``offset`` convert its unit to ours (e.g. 0.001 for mV).
    ``mux`` selects frames of a multiplexed message whose multiplexer has that value.
    """

    message: str
    signal: str
    index: int = Field(default=0, ge=0, description="cell / sensor index (ignored for current)")
    scale: float = 1.0
    offset: float = 0.0
    mux: int | None = Field(default=None, ge=0)
    timeout_s: Positive | None = Field(default=None, description="default: the mapping's")


class CanMappingConfig(StrictModel):
    """A real pack's data over CAN, described by the user's DBC (``dbc``, relative path).

    Every cell 0..n_cells-1 needs exactly one voltage entry; temperatures are per cell (cells
    without a sensor take the nearest mapped one); current is one signal. A signal older than
    its timeout is stale: ``on_stale: error`` makes ``sample()`` raise ``SourceError`` naming
    it, ``on_stale: hold`` keeps the last value and lists it in ``stale_signals``.
    """

    kind: Literal["can_mapping"] = "can_mapping"
    description: str = ""
    dbc: str
    n_cells: int = Field(ge=1, le=255)
    timeout_s: Positive = 1.0
    on_stale: Literal["error", "hold"] = "error"
    cells: tuple[CanSignalMap, ...]
    temperatures: tuple[CanSignalMap, ...] = ()
    current: CanSignalMap | None = None
    current_sign: Literal[1, -1] = Field(
        default=1, description="-1 when the pack reports charge as positive"
    )
    can: CanBusConfig | None = Field(
        default=None, description="the bus the pack talks on (bms-emu serve --pack-can; "
        "default: the bus of --can)",
    )

    @model_validator(mode="after")
    def _check(self) -> CanMappingConfig:
        seen: dict[int, int] = {}
        for k, c in enumerate(self.cells):
            if c.index >= self.n_cells:
                raise FieldProblem(
                    f"cells[{k}].index", c.index, f"must be 0..{self.n_cells - 1} (n_cells)"
                )
            if c.index in seen:
                raise FieldProblem(
                    f"cells[{k}].index", c.index, f"already mapped by cells[{seen[c.index]}]"
                )
            seen[c.index] = k
        missing = sorted(set(range(self.n_cells)) - set(seen))
        if missing:
            raise FieldProblem("cells", f"{len(self.cells)} entries", f"cells {missing} unmapped")
        for k, t in enumerate(self.temperatures):
            if t.index >= self.n_cells:
                raise FieldProblem(
                    f"temperatures[{k}].index", t.index, f"must be 0..{self.n_cells - 1}"
                )
        return self


# --------------------------------------------------------------------------------------------
# scenario
# --------------------------------------------------------------------------------------------


class EmulatorSetup(StrictModel):
    """The emulated string: chip design, pack module design, chain length, seed."""

    chip: str = Field(description="chip config, relative to the scenario file")
    pack: str = Field(description="pack module config, relative to the scenario file")
    n_devices: int = Field(default=1, ge=1, le=32)
    seed: int = Field(default=0, ge=0)
    temp_ambient_C: float = Field(default=25.0, ge=-40, le=125)


class ReferenceMasterConfig(StrictModel):
    """Settings of :class:`hil.master.ReferenceMaster` (defaults for an LFP string).

    The voltage limits default to the usual LFP cell window (2.5-3.65 V: typical LFP
    datasheet charge cut-off 3.65 V, discharge cut-off 2.5 V); the C/S threshold code 2 is
    9.1 mV (CTH_TABLE_MV); the open-wire threshold 0.4 V is LTC681x's; a cycle of 100 ms is a
    common BMS task period and leaves 2 cycles inside a 200 ms detection budget.
    """

    cycle_s: Positive = 0.1
    ov_V: Positive = 3.65
    uv_V: Positive = 2.5
    cth_code: int = Field(default=2, ge=0, le=7)
    conversion_wait_s: Positive = Field(
        default=0.012, description="after ADCV RD=1: S-ADC 8 ms + margin"
    )
    ow_every_n_cycles: int = Field(default=5, ge=0, description="0 = never")
    ow_threshold_V: Positive = 0.4
    comm_fault_after: int = Field(default=2, ge=1, description="consecutive failed cycles")


class DutConfig(StrictModel):
    """The device under test: its DBC and where it runs.

    ``kind: reference_master`` runs :class:`hil.master.ReferenceMaster` in this process
    (``process: inline``) or in a subprocess (``process: subprocess``, lock-step with the
    emulator over a pipe, CAN over the configured bus). ``process: external``: the DUT is
    already running on its own clock (a dev board, or a host build) against a running
    ``bms-emu serve --can ...``; the runner drives the emulator over CAN and reads the DUT's
    frames from the same bus (``master`` is then unused). ``start_timeout_s`` bounds the wait
    for both to be heard on the bus before the timeline starts.
    """

    kind: Literal["reference_master"] = "reference_master"
    dbc: str = Field(description="the DUT's DBC, relative to the scenario file")
    process: Literal["inline", "subprocess", "external"] = "inline"
    master: ReferenceMasterConfig = Field(default_factory=ReferenceMasterConfig)
    frame_timeout_s: Positive = Field(
        default=2.0, description="longest wait for a DUT frame or a lock-step request"
    )
    start_timeout_s: Positive = Field(
        default=30.0, description="external: longest wait for the emulator and the DUT"
    )


class StimulusConfig(StrictModel):
    """A stimulus at ``at_s``.

    - ``current``: string current ``current_A`` (positive discharging) from ``at_s`` on;
    - ``temperature_ramp``: ambient temperature linear to ``to_C`` over ``duration_s``
      (applied in ``step_s`` steps);
    - ``soc_offset``: add ``offset_pct`` percent points of SOC to cell ``cell`` (string index).
    """

    at_s: NonNeg
    type: Literal["current", "temperature_ramp", "soc_offset"]
    current_A: float | None = None
    to_C: float | None = Field(default=None, ge=-40, le=125)
    duration_s: NonNeg = 0.0
    step_s: Positive = 0.1
    cell: int | None = Field(default=None, ge=0)
    offset_pct: float | None = Field(default=None, ge=-100, le=100)

    @model_validator(mode="after")
    def _check(self) -> StimulusConfig:
        need = {"current": ("current_A",), "temperature_ramp": ("to_C",),
                "soc_offset": ("cell", "offset_pct")}[self.type]  # fmt: skip
        for key in need:
            if getattr(self, key) is None:
                raise FieldProblem(key, None, f"required for type {self.type!r}")
        return self


FAULT_TYPES = (
    "open_wire",
    "cell_overvoltage",
    "cell_undervoltage",
    "reference_drift",
    "c_adc_gain",
    "spi_bit_errors",
    "chip_silent",
)


class FaultConfig(StrictModel):
    """A fault switched on at ``at_s`` (and off at ``until_s`` when given).

    ``device`` is 0 for the device nearest the host. Per type:
    ``open_wire``: sense ``pin`` 0..16 open; ``cell_overvoltage`` / ``cell_undervoltage``:
    cell ``channel`` forced to ``voltage_V`` (a cell emulator's output); ``reference_drift``:
    C reference shifted by ``ppm``; ``c_adc_gain``: C-path gain of ``channel`` off by ``ppm``;
    ``spi_bit_errors``: each SPI window has one MISO bit flipped with ``probability``;
    ``chip_silent``: ``device`` and every device behind it stop answering (MISO all ones).
    """

    at_s: NonNeg
    type: Literal[
        "open_wire",
        "cell_overvoltage",
        "cell_undervoltage",
        "reference_drift",
        "c_adc_gain",
        "spi_bit_errors",
        "chip_silent",
    ]
    name: str | None = None
    until_s: NonNeg | None = None
    device: int = Field(default=0, ge=0)
    channel: int | None = Field(default=None, ge=0, le=15)
    pin: int | None = Field(default=None, ge=0, le=16)
    voltage_V: float | None = Field(default=None, ge=0, le=6.5)
    ppm: float | None = None
    probability: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> FaultConfig:
        need = {
            "open_wire": ("pin",),
            "cell_overvoltage": ("channel", "voltage_V"),
            "cell_undervoltage": ("channel", "voltage_V"),
            "reference_drift": ("ppm",),
            "c_adc_gain": ("channel", "ppm"),
            "spi_bit_errors": ("probability",),
            "chip_silent": (),
        }[self.type]
        for key in need:
            if getattr(self, key) is None:
                raise FieldProblem(key, None, f"required for type {self.type!r}")
        if self.until_s is not None and self.until_s <= self.at_s:
            raise FieldProblem("until_s", self.until_s, f"must be > at_s ({self.at_s:g})")
        return self

    @property
    def label(self) -> str:
        """The fault's name, or ``type@at_s``."""
        return self.name or f"{self.type}@{self.at_s:g}s"


OPS = ("==", "!=", "<", "<=", ">", ">=")


class ExpectationConfig(StrictModel):
    """A predicate on one DUT signal (``Message.Signal`` or ``Message.Signal[mux]``).

    ``kind: within``: the predicate holds in some frame in ``[t0, t0 + within_s]``;
    ``kind: never``: it holds in no frame of ``[t0, until_s]`` (default: end of run);
    ``kind: always``: it holds in every frame of that window. ``t0`` is ``after_s``, or the
    time the fault named ``after`` was applied. ``never``/``always`` need at least one frame in
    the window (silence is a failure, not a pass).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    signal: str
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    value: float
    kind: Literal["within", "never", "always"] = "within"
    after: str | None = None
    after_s: NonNeg = 0.0
    within_s: Positive | None = None
    until_s: NonNeg | None = None

    @model_validator(mode="after")
    def _check(self) -> ExpectationConfig:
        if not SIGNAL_REF.match(self.signal):
            raise FieldProblem("signal", self.signal, "must be Message.Signal or Message.Signal[N]")
        if self.kind == "within" and self.within_s is None:
            raise FieldProblem("within_s", None, "required for kind 'within'")
        return self


class ScenarioConfig(StrictModel):
    """A HIL scenario: emulator setup, stimuli and faults on a timeline, DUT expectations.

    ``pace: emulated`` runs as fast as the emulator goes (deterministic); ``wall_clock`` paces
    emulated time to the wall clock. ``can_log`` is the CAN log file name (.log candump, .asc,
    .blf) written in the output directory.
    """

    kind: Literal["scenario"] = "scenario"
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    emulator: EmulatorSetup
    dut: DutConfig
    can: CanBusConfig = Field(default_factory=CanBusConfig)
    duration_s: Positive
    pace: Literal["emulated", "wall_clock"] = "emulated"
    telemetry_every_s: Positive | None = Field(
        default=0.1, description="period of the emulator's own telemetry frames (None: off)"
    )
    can_log: str = Field(default="can.log", pattern=r"^[^/\\]+\.(log|asc|blf)$")
    stimuli: tuple[StimulusConfig, ...] = ()
    faults: tuple[FaultConfig, ...] = ()
    expectations: tuple[ExpectationConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ScenarioConfig:
        names = [f.label for f in self.faults]
        for k, f in enumerate(self.faults):
            if f.device >= self.emulator.n_devices:
                raise FieldProblem(
                    f"faults[{k}].device", f.device,
                    f"must be 0..{self.emulator.n_devices - 1} (emulator.n_devices)",
                )  # fmt: skip
            if f.at_s > self.duration_s:
                raise FieldProblem(
                    f"faults[{k}].at_s", f.at_s, f"after duration_s {self.duration_s:g}"
                )
        n_cells = 16 * self.emulator.n_devices
        for k, s in enumerate(self.stimuli):
            if s.cell is not None and s.cell >= n_cells:
                raise FieldProblem(f"stimuli[{k}].cell", s.cell, f"must be 0..{n_cells - 1}")
        seen: set[str] = set()
        for k, e in enumerate(self.expectations):
            if e.name in seen:
                raise FieldProblem(f"expectations[{k}].name", e.name, "duplicate name")
            seen.add(e.name)
            if e.after is not None and e.after not in names:
                raise FieldProblem(
                    f"expectations[{k}].after", e.after, f"must name a fault: one of {names}"
                )
        return self


def _register() -> None:
    from bms_emu.config import CONFIG_KINDS

    CONFIG_KINDS["scenario"] = ScenarioConfig
    CONFIG_KINDS["can_mapping"] = CanMappingConfig


_register()
