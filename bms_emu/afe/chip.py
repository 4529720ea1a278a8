"""A monitor-chip design (spec), populations of it, their life cycle, and their accuracy.

Measurement of cell ``k`` by path ``P`` (C-ADC or S-ADC) of one device::

    v_adc   = frontend_P(v_cell)                           per-channel errors (frontend.py)
    raw     = (v_adc (1 + g_P) + o_P) v_nom / V_ref_P(T_die, t) / raw_lsb   (trim.py)
    corr    = correct_code(round(raw), trim codes, die_temp_code(T_die))    bit-true datapath
    reading = 1.5 V + round((corr raw_lsb - 1.5 V) / 150 uV) 150 uV         register code

``T_die = T_ambient + R_th P_quiescent`` (steady state; balancing heat is the runtime model's).
The S path has its own front end and path errors and, unless the spec says it shares the C
reference (a common-cause choice), its own reference. Trim codes are solved on the C path
and on the S path separately (each ADC path has its own gain/offset codes); with a shared
reference both paths see the same reference state, so a later reference shift moves both.

Life cycle of a population (all times from factory trim, hours)::

    t = 0             factory trim (scheme of the strategy), hysteresis state from the trim temps
    t = assembly_h    solder reflow: the reference shifts, then partially recovers
    t = assembly_h + board_trim_delay_h   end-of-line board trim (strategy two_point_board)

Named lifetime points for accuracy: ``as_trimmed`` (before assembly), ``after_reflow`` (just
after the board trim, or the reflow when there is none), ``1000h``, ``10y`` (87 660 h).

Noise is not part of the TME here: TME is the static error of one reading at a grid point,
including the output quantisation (one reading, not an average), which is how datasheets state
it; the conversion noise is reported separately by the ADC model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from bms_emu.afe.adc_params import R_CADC, R_SADC
from bms_emu.afe.conversion import SIGMA_NOISE_V
from bms_emu.afe.current_channel import (
    CurrentChannelParams,
    CurrentChannelSpec,
    sample_current_channel,
)
from bms_emu.afe.die_thermal import (
    DieThermalParams,
    DieThermalSpec,
    TempSensorSpec,
    die_temp_code,
    sample_die_thermal,
    sample_temp_sensor,
    steady_state_die_temp_C,
)
from bms_emu.afe.frontend import FrontEndParams, FrontEndSpec, adc_input_V, sample_frontend
from bms_emu.afe.reference import ReferenceSpec, ReferenceState, sample_reference
from bms_emu.afe.trim import (
    Devices,
    MeasurementPath,
    PathSpec,
    TrimCodes,
    TrimConditions,
    TrimFormat,
    TrimScheme,
    TrimTesterSpec,
    board_trim,
    correct_code,
    raw_code_real,
    trim,
)
from bms_emu.errors import FieldProblem, check_spec_fields
from bms_emu.sim import RandomStreams

__all__ = [
    "LIFETIME_POINTS_H",
    "TRIM_STRATEGIES",
    "AccuracyClass",
    "AdcSpec",
    "ChipPopulation",
    "ChipSpec",
    "TrimPlan",
    "cell_error_V",
    "make_population",
    "register_quantise_V",
    "tme_V",
]

#: Register format of cell results (REFERENCE.md 2.1): V = 1.5 V + code x 150 uV, signed 16 bit.
CELL_LSB_V = 150e-6
CELL_OFFSET_V = 1.5

#: The strategies a sweep compares (issue 6): factory scheme + whether a board trim follows.
TRIM_STRATEGIES: dict[str, tuple[TrimScheme, bool]] = {
    "none": (TrimScheme.NONE, False),
    "one_point": (TrimScheme.ONE_POINT, False),
    "two_point": (TrimScheme.TWO_TEMP, False),
    "two_point_board": (TrimScheme.TWO_TEMP, True),
}

Strategy = Literal["none", "one_point", "two_point", "two_point_board"]


@dataclass(frozen=True)
class TrimPlan:
    """How a population is trimmed, and when it is assembled (a chip-config section)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - strict config section

    strategy: Strategy = "two_point_board"
    factory_scheme: Literal["two_temp", "two_voltage"] = "two_temp"
    t1_C: float = 25.0
    t2_C: float = 85.0
    v_trim_V: float = 3.3
    v_lo_V: float = 2.0
    v_hi_V: float = 4.0
    tester_noise_uV: float = 20.0
    tester_gain_error_ppm: float = 0.0
    tester_offset_uV: float = 0.0
    assembly_h: float = 24.0
    board_trim_delay_h: float = 1.0
    board_temp_C: float = 25.0
    board_v_ext_V: float = 3.3
    board_ref_noise_uV: float = 10.0
    board_ref_gain_error_ppm: float = 0.0

    def __post_init__(self) -> None:
        if self.t2_C == self.t1_C:
            raise FieldProblem("t2_C", self.t2_C, "must differ from t1_C")
        if self.v_hi_V <= self.v_lo_V:
            raise FieldProblem("v_hi_V", self.v_hi_V, "must be above v_lo_V")
        for name in ("tester_noise_uV", "board_ref_noise_uV", "assembly_h", "board_trim_delay_h"):
            if not getattr(self, name) >= 0:
                raise FieldProblem(name, getattr(self, name), "must be >= 0")
        check_spec_fields(self, positive=("v_trim_V", "board_v_ext_V"))

    def scheme_for(self, strategy: str) -> tuple[TrimScheme, bool]:
        """Factory scheme and board-trim flag of ``strategy`` (two-point uses factory_scheme)."""
        scheme, board = TRIM_STRATEGIES[strategy]
        if scheme is TrimScheme.TWO_TEMP and self.factory_scheme == "two_voltage":
            scheme = TrimScheme.TWO_VOLTAGE
        return scheme, board


@dataclass(frozen=True)
class AccuracyClass:
    """The accuracy a chip design claims (a chip-config section).

    ``tme_mV`` must hold for ``fraction`` of devices over the temperature and cell-voltage ranges
    at every listed lifetime point, with the design's own trim strategy.
    """

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - strict config section

    tme_mV: float
    temp_C: tuple[float, float] = (0.0, 65.0)
    v_cell_V: tuple[float, float] = (2.5, 4.2)
    lifetime_points: tuple[str, ...] = ("after_reflow",)
    fraction: float = 1.0

    def __post_init__(self) -> None:
        check_spec_fields(self, positive=("tme_mV", "fraction"))
        bad = [p for p in self.lifetime_points if p not in LIFETIME_POINTS_H]
        if bad:
            raise FieldProblem("lifetime_points", bad, f"known: {', '.join(LIFETIME_POINTS_H)}")
        if not self.fraction <= 1:
            raise FieldProblem("fraction", self.fraction, "must be <= 1")
        for name in ("temp_C", "v_cell_V"):
            lo, hi = getattr(self, name)
            if hi < lo:
                raise FieldProblem(name, [lo, hi], "must be [low, high]")


#: Lifetime points in hours; ``after_reflow`` is resolved against the plan's assembly time.
LIFETIME_POINTS_H: dict[str, float | None] = {
    "as_trimmed": 0.0,
    "after_reflow": None,
    "1000h": 1000.0,
    "10y": 87_660.0,
}


@dataclass(frozen=True)
class AdcSpec:
    """ADC paths of the design (a chip-config section); timing constants in adc_params."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - strict config section

    thermal_noise_V: float = SIGMA_NOISE_V
    c_decimation: int = R_CADC
    s_decimation: int = R_SADC

    def __post_init__(self) -> None:
        check_spec_fields(self)
        if not self.thermal_noise_V >= 0:
            raise FieldProblem("thermal_noise_V", self.thermal_noise_V, "must be >= 0")
        for name in ("c_decimation", "s_decimation"):
            r = getattr(self, name)
            if r < 16 or r & (r - 1):
                raise FieldProblem(name, r, "must be a power of two >= 16")


@dataclass(frozen=True)
class ChipSpec:
    """One chip design: the distributions every device of it is drawn from."""

    name: str
    n_channels: int = 16
    reference: ReferenceSpec = field(default_factory=ReferenceSpec)
    s_reference: ReferenceSpec | None = None
    path: PathSpec = field(default_factory=PathSpec)
    s_path: PathSpec = field(default_factory=PathSpec)
    sensor: TempSensorSpec = field(default_factory=TempSensorSpec)
    die_thermal: DieThermalSpec = field(default_factory=DieThermalSpec)
    frontend: FrontEndSpec = field(default_factory=FrontEndSpec)
    s_frontend: FrontEndSpec = field(default_factory=FrontEndSpec)
    current_channel: CurrentChannelSpec = field(default_factory=CurrentChannelSpec)
    trim: TrimPlan = field(default_factory=TrimPlan)
    trim_format: TrimFormat = field(default_factory=TrimFormat)
    adc: AdcSpec = field(default_factory=AdcSpec)
    accuracy: AccuracyClass | None = None

    @property
    def shares_reference(self) -> bool:
        """True when the S-ADC uses the C-ADC's reference (common-cause faults possible)."""
        return self.s_reference is None


@dataclass
class ChipPopulation:
    """``n_devices`` chips of one spec, trimmed per a strategy. Arrays lead with devices.

    ``devices``/``s_devices`` hold reference + common path + die sensor for the C and S paths
    (the S path shares the C reference object when the spec says so); ``state``/``s_state`` are
    the references' hysteresis and assembly state.
    """

    spec: ChipSpec
    strategy: str
    devices: Devices
    s_devices: Devices
    frontend: FrontEndParams
    s_frontend: FrontEndParams
    die: DieThermalParams
    current: CurrentChannelParams
    codes: TrimCodes
    s_codes: TrimCodes
    state: ReferenceState
    s_state: ReferenceState
    t_board_h: float = field(default=float("nan"))

    @property
    def n_devices(self) -> int:
        return self.devices.n_devices

    def lifetime_h(self, point: str) -> float:
        """Hours of a named lifetime point for this population."""
        if point not in LIFETIME_POINTS_H:
            raise ValueError(f"unknown lifetime point {point!r}: known {list(LIFETIME_POINTS_H)}")
        t = LIFETIME_POINTS_H[point]
        if t is not None:
            return t
        plan = self.spec.trim
        return plan.assembly_h + plan.board_trim_delay_h

    def state_at(self, t_h: float, path: str = "C") -> ReferenceState:
        """Reference state valid at ``t_h``: not yet assembled before the assembly time."""
        st = (self.state if path == "C" else self.s_state).copy()
        if t_h < self.spec.trim.assembly_h:
            st.t_assembly_h[:] = np.nan
        return st


def make_population(
    spec: ChipSpec, n_devices: int, seed: int, strategy: str | None = None
) -> ChipPopulation:
    """Draw ``n_devices`` chips and run their life cycle up to the board trim.

    Each component draws from its own named random stream, so adding a component to the spec
    never changes another component's numbers, and the same seed gives the same population.

    Parameters
    ----------
    spec : ChipSpec
    n_devices : int
    seed : int
    strategy : {"none", "one_point", "two_point", "two_point_board"}, optional
        Default: the spec's own ``trim.strategy``.
    """
    strategy = strategy or spec.trim.strategy
    if strategy not in TRIM_STRATEGIES:
        raise ValueError(f"unknown trim strategy {strategy!r}: known {list(TRIM_STRATEGIES)}")
    streams = RandomStreams(seed)
    n, m = n_devices, spec.n_channels
    g = streams.generator
    ref = sample_reference(n, spec.reference, g("chip.reference"))
    s_ref = (ref if spec.s_reference is None
             else sample_reference(n, spec.s_reference, g("chip.s_reference")))
    sensor = sample_temp_sensor(n, spec.sensor, g("chip.sensor"))

    def path(ps: PathSpec, rng: np.random.Generator) -> MeasurementPath:
        z = rng.standard_normal((2, n))
        return MeasurementPath(ps.gain_error_sigma_ppm * z[0], ps.offset_sigma_uV * z[1])

    devices = Devices(ref, path(spec.path, g("chip.path")), sensor)
    s_devices = Devices(s_ref, path(spec.s_path, g("chip.s_path")), sensor)
    fe_c = replace(spec.frontend, n_channels=m)
    fe_s = replace(spec.s_frontend, n_channels=m)

    plan = spec.trim
    scheme, board = plan.scheme_for(strategy)
    cond = TrimConditions(
        t1_C=plan.t1_C, t2_C=plan.t2_C, v_trim_V=plan.v_trim_V, v_lo_V=plan.v_lo_V,
        v_hi_V=plan.v_hi_V,
    )
    tester = TrimTesterSpec(plan.tester_noise_uV, plan.tester_gain_error_ppm, plan.tester_offset_uV)
    fmt = spec.trim_format
    trim_rng = g("chip.trim")
    # Each ADC path is trimmed on the tester (its own gain/offset codes); with a shared reference
    # both paths observe the same reference state, so a later reference shift moves both.
    state = ReferenceState.new(n)
    result = trim(devices, scheme, trim_rng, state=state, conditions=cond, tester=tester, fmt=fmt)
    s_state = state if spec.shares_reference else ReferenceState.new(n)
    s_result = trim(s_devices, scheme, trim_rng, state=s_state, conditions=cond, tester=tester,
                    fmt=fmt)
    state.assemble(plan.assembly_h)
    if s_state is not state:
        s_state.assemble(plan.assembly_h)
    codes, s_codes = result.codes, s_result.codes
    t_board = float("nan")
    if board:
        t_board = plan.assembly_h + plan.board_trim_delay_h
        ext = TrimTesterSpec(plan.board_ref_noise_uV, plan.board_ref_gain_error_ppm, 0.0)
        board_rng = g("chip.board_trim")
        codes, s_codes = (
            board_trim(d, r, st, board_rng, temp_die_C=plan.board_temp_C, t_h=t_board,
                       v_ext_V=plan.board_v_ext_V, tester=ext, fmt=fmt).codes
            for d, r, st in ((devices, result, state), (s_devices, s_result, s_state))
        )
    return ChipPopulation(
        spec=spec,
        strategy=strategy,
        devices=devices,
        s_devices=s_devices,
        frontend=sample_frontend(n, fe_c, g("chip.frontend")),
        s_frontend=sample_frontend(n, fe_s, g("chip.s_frontend")),
        die=sample_die_thermal(n, spec.die_thermal, g("chip.die_thermal")),
        current=sample_current_channel(n, spec.current_channel, g("chip.current")),
        codes=codes,
        s_codes=s_codes,
        state=state,
        s_state=s_state,
        t_board_h=t_board,
    )


def register_quantise_V(v_V: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round to the cell-register format (1.5 V + int16 code x 150 uV, saturating)."""
    code = np.clip(np.round((v_V - CELL_OFFSET_V) / CELL_LSB_V), -32768, 32767)
    return CELL_OFFSET_V + code * CELL_LSB_V


def cell_error_V(
    pop: ChipPopulation,
    v_cell_V: NDArray[np.float64],
    temp_ambient_C: NDArray[np.float64],
    t_h: float,
    *,
    path: str = "C",
    hyst_m: float | None = None,
    device_slice: slice | None = None,
) -> NDArray[np.float64]:
    """Static error of one cell reading, ``reading - v_cell``, over a grid.

    Parameters
    ----------
    pop : ChipPopulation
    v_cell_V : array, shape (n_v,)
        True cell voltages.
    temp_ambient_C : array, shape (n_T,)
    t_h : float
        Lifetime, hours since factory trim.
    path : {"C", "S"}
    hyst_m : float, optional
        Force the reference hysteresis memory to this value in [-1, 1] (worst-case histories:
        evaluate at -1 and +1); default: the state the life cycle left.
    device_slice : slice, optional
        Evaluate a block of devices only (memory: the result has n_dev*n_ch*n_T*n_v floats).

    Returns
    -------
    array, shape (n_devices, n_channels, n_T, n_v)
    """
    sl = device_slice or slice(None)
    devices = pop.devices if path == "C" else pop.s_devices
    codes = pop.codes if path == "C" else pop.s_codes
    fe = pop.frontend if path == "C" else pop.s_frontend
    state = pop.state_at(t_h, path)
    fmt = pop.spec.trim_format
    devices = Devices(devices.reference.take(sl), devices.path.take(sl), devices.sensor.take(sl))
    state = state.take(sl)
    if hyst_m is not None:
        state.hyst_m[:] = hyst_m
    fe = fe.take(sl)
    die = pop.die.take(sl)

    v = np.asarray(v_cell_V, dtype=float)
    temps = np.asarray(temp_ambient_C, dtype=float)
    n = devices.n_devices
    m = fe.n_channels
    v_adc = adc_input_V(fe, np.broadcast_to(v, (n, m, v.size)))[:, :, np.newaxis, :]
    t_die = steady_state_die_temp_C(die, temps[np.newaxis, :])  # (n, n_T)
    raw = raw_code_real(devices, state, v_adc, t_die[:, np.newaxis, :, np.newaxis], t_h, fmt=fmt)
    d = die_temp_code(t_die, devices.sensor, lsb_C=fmt.die_temp_lsb_C, bits=fmt.die_temp_bits)
    raw_i = np.round(raw).astype(np.int64)
    corr = correct_code(
        raw_i,
        codes.gain[sl],
        codes.tempco[sl],
        codes.offset[sl],
        d[:, np.newaxis, :, np.newaxis],
        codes.board[sl],
        fmt=fmt,
    )
    reading = register_quantise_V(corr * fmt.raw_lsb_V)
    return reading - v


def tme_V(
    pop: ChipPopulation,
    v_cell_V: NDArray[np.float64],
    temp_ambient_C: NDArray[np.float64],
    lifetime_points: tuple[str, ...],
    *,
    path: str = "C",
    block: int = 2048,
) -> NDArray[np.float64]:
    """Total measurement error per device and channel: max |error| over the grid.

    The maximum runs over cell voltages, ambient temperatures, the lifetime points and both
    extremes of the reference's thermal-hysteresis memory (the worst temperature history).

    Returns
    -------
    array, shape (n_devices, n_channels)
    """
    n = pop.n_devices
    out = np.zeros((n, pop.spec.n_channels))
    for start in range(0, n, block):
        sl = slice(start, min(start + block, n))
        for point in lifetime_points:
            t_h = pop.lifetime_h(point)
            for m in (-1.0, 1.0):
                err = cell_error_V(pop, v_cell_V, temp_ambient_C, t_h, path=path, hyst_m=m,
                                   device_slice=sl)
                np.maximum(out[sl], np.abs(err).max(axis=(2, 3)), out=out[sl])
    return out
