"""Validated, immutable configuration objects loaded from YAML.

Every config file is read with ``yaml.safe_load`` into a pydantic v2 model that forbids unknown
keys and is frozen after validation. Errors are raised as :class:`ConfigError`, whose message names
the file, the key path, the bad value and what is allowed, one line per problem, e.g.::

    configs/packs/bad.yaml: cell.capacity_Ah: got -5: must be > 0

The models here are also the parameter objects of the pure models (``bms_emu.pack`` reads their
attributes); the pure models never import pydantic or read files themselves.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from bms_emu.errors import FieldProblem

if typing.TYPE_CHECKING:
    from bms_emu.afe.chip import ChipSpec

__all__ = [
    "CONFIG_KINDS",
    "ChipConfig",
    "ConfigError",
    "CurrentProfileConfig",
    "FieldProblem",
    "PackConfig",
    "StrictModel",
    "SweepConfig",
    "chip_spec",
    "config_json_schema",
    "load_chip",
    "load_config",
    "load_pack",
    "load_profile",
]


class ConfigError(ValueError):
    """A config file is unreadable or invalid. ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


class StrictModel(BaseModel):
    """Base of every config object: unknown keys are errors, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


# --------------------------------------------------------------------------------------------
# Pack
# --------------------------------------------------------------------------------------------


class RcPairConfig(StrictModel):
    """One parallel RC element of the Thevenin chain (at 25 C, SOC factor 1)."""

    r_mOhm: PositiveFloat
    c_F: PositiveFloat


class WarburgConfig(StrictModel):
    """Finite-length (transmissive) diffusion element Z = R tanh(sqrt(jwT))/sqrt(jwT).

    Realised in the time domain as an RC ladder (Foster form) of ``n_elements`` sections that must
    match the analytic element over at least 0.005-10 Hz.
    """

    r_mOhm: NonNegFloat = Field(description="DC resistance of the diffusion element")
    tau_s: PositiveFloat = Field(description="diffusion time constant L^2/D")
    n_elements: int = Field(default=12, ge=1, le=64)


class SocTableConfig(StrictModel):
    """A 1-D table over state of charge (0..1), linearly interpolated, clamped at the ends."""

    soc: tuple[Fraction, ...]
    value: tuple[float, ...]

    @model_validator(mode="after")
    def _check_table(self) -> SocTableConfig:
        if len(self.soc) != len(self.value):
            raise FieldProblem(
                "value", list(self.value), f"must have as many points as soc ({len(self.soc)})"
            )
        if len(self.soc) < 2:
            raise FieldProblem("soc", list(self.soc), "a table needs at least 2 points")
        if any(b <= a for a, b in itertools.pairwise(self.soc)):
            raise FieldProblem("soc", list(self.soc), "must be strictly increasing")
        return self


class ThermalConfig(StrictModel):
    """Lumped thermal model per cell: C_th dT/dt = Q - hA (T - T_amb)."""

    heat_capacity_J_per_K: PositiveFloat
    h_A_W_per_K: PositiveFloat = Field(description="heat transfer coefficient x area to ambient")
    ambient_temp_C: float = Field(default=25.0, ge=-40, le=85)
    initial_temp_C: float | None = Field(default=None, ge=-40, le=85)


class CellConfig(StrictModel):
    """Nominal parameters of one cell (spread is applied per cell from ``SpreadConfig``)."""

    capacity_Ah: PositiveFloat
    coulombic_efficiency: Annotated[float, Field(gt=0, le=1)] = 1.0
    initial_soc: Fraction = 0.5
    r0_mOhm: PositiveFloat = Field(description="ohmic resistance at 25 C, SOC factor 1")
    r0_soc_factor: SocTableConfig | None = Field(
        default=None, description="multiplier of r0 and the RC resistances vs SOC"
    )
    arrhenius_Ea_J_per_mol: NonNegFloat = Field(
        default=0.0, description="activation energy scaling R0 and RC resistances with T"
    )
    rc_pairs: tuple[RcPairConfig, ...] = ()
    warburg: WarburgConfig | None = None
    ocv_table: SocTableConfig | None = Field(
        default=None, description="OCV at 25 C in V; default: the chemistry's built-in table"
    )
    entropic_mV_per_K: SocTableConfig | None = Field(
        default=None, description="dOCV/dT in mV/K; default: the chemistry's built-in table"
    )
    self_discharge_pct_per_month: NonNegFloat = 0.0
    thermal: ThermalConfig


class SpreadConfig(StrictModel):
    """Cell-to-cell manufacturing spread, drawn once per pack from its seed (relative sigmas)."""

    capacity_rel_sigma: NonNegFloat = 0.0
    r0_rel_sigma: NonNegFloat = 0.0
    initial_soc_sigma: NonNegFloat = 0.0
    self_discharge_rel_sigma: NonNegFloat = 0.0


class InterconnectConfig(StrictModel):
    """Resistances between cells and from cell nodes to the monitor chip's sense pins."""

    busbar_mOhm: NonNegFloat = 0.0
    sense_wire_mOhm: NonNegFloat = 0.0


class NtcConfig(StrictModel):
    """NTC thermistors on cells, read through a pull-up divider on aux inputs."""

    model: Literal["beta", "steinhart_hart"] = "beta"
    r25_Ohm: PositiveFloat = 10_000.0
    beta_K: PositiveFloat = 3435.0
    steinhart_hart_abc: tuple[float, float, float] | None = None
    pullup_Ohm: PositiveFloat = 10_000.0
    supply_V: PositiveFloat = 3.0
    sensor_cells: tuple[Annotated[int, Field(ge=0)], ...] = ()

    @model_validator(mode="after")
    def _check_sh(self) -> NtcConfig:
        if self.model == "steinhart_hart" and self.steinhart_hart_abc is None:
            raise FieldProblem(
                "steinhart_hart_abc", None, "required with model steinhart_hart: [A, B, C]"
            )
        return self


class PackConfig(StrictModel):
    """A series string of cells: the virtual pack behind the emulated monitor chip."""

    kind: Literal["pack"] = "pack"
    name: str
    chemistry: Literal["lfp", "nmc"]
    n_cells: int = Field(default=16, ge=12, le=20)
    seed: int = Field(default=0, ge=0)
    cell: CellConfig
    spread: SpreadConfig = SpreadConfig()
    interconnect: InterconnectConfig = InterconnectConfig()
    ntc: NtcConfig = NtcConfig()

    @model_validator(mode="after")
    def _check_sensors(self) -> PackConfig:
        bad = [c for c in self.ntc.sensor_cells if c >= self.n_cells]
        if bad:
            raise FieldProblem(
                "ntc.sensor_cells", bad, f"cell indices must be 0..{self.n_cells - 1}"
            )
        return self


# --------------------------------------------------------------------------------------------
# Current profile
# --------------------------------------------------------------------------------------------


class CurrentProfileConfig(StrictModel):
    """Pack current vs time; positive current discharges the pack.

    ``points`` are ``[t_s, current_A]`` pairs with strictly increasing time. ``hold`` keeps each
    value until the next point; ``linear`` interpolates. Past the last point the last value holds;
    ``repeat`` makes the profile periodic with period equal to the last time.
    """

    kind: Literal["current_profile"] = "current_profile"
    name: str = "profile"
    interpolation: Literal["hold", "linear"] = "hold"
    repeat: bool = False
    points: tuple[tuple[NonNegFloat, float], ...]

    @model_validator(mode="after")
    def _check_points(self) -> CurrentProfileConfig:
        if not self.points:
            raise FieldProblem("points", [], "must not be empty")
        times = [p[0] for p in self.points]
        if times[0] != 0.0:
            raise FieldProblem("points[0]", list(self.points[0]), "must start at t_s 0")
        for i, (a, b) in enumerate(itertools.pairwise(times)):
            if b <= a:
                raise FieldProblem(
                    f"points[{i + 1}]", list(self.points[i + 1]),
                    f"times must be strictly increasing (previous t_s is {a:g})",
                )
        if self.repeat and len(times) < 2:
            raise FieldProblem("repeat", True, "needs at least 2 points")
        return self


# --------------------------------------------------------------------------------------------
# Chip
# --------------------------------------------------------------------------------------------


def _chip_config_model() -> type[StrictModel]:
    """The chip config is ChipSpec's fields (one definition, in the pure model) plus kind."""
    from bms_emu.afe.chip import ChipSpec

    hints = typing.get_type_hints(ChipSpec)
    fields: dict[str, Any] = {
        "kind": (Literal["chip"], "chip"),
        "description": (str, ""),
    }
    for f in dataclasses.fields(ChipSpec):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=f.default_factory)
        else:
            default = ...
        fields[f.name] = (hints[f.name], default)
    return create_model(  # type: ignore[call-overload,no-any-return]
        "ChipConfig", __base__=StrictModel, __doc__=ChipSpec.__doc__, **fields
    )


ChipConfig = _chip_config_model()


def chip_spec(cfg: StrictModel) -> ChipSpec:
    """The pure-model :class:`~bms_emu.afe.chip.ChipSpec` of a validated chip config."""
    from bms_emu.afe.chip import ChipSpec

    return ChipSpec(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(ChipSpec)})


# --------------------------------------------------------------------------------------------
# Sweep (issue 6): population x conditions -> TME, fallout ppm, reports, history
# --------------------------------------------------------------------------------------------

#: Parameters whose spread can be split over lot / wafer / die: name -> (ChipSpec section,
#: mean field, sigma field). The mean is shifted per lot and per wafer; the die sigma shrinks so
#: the total variance stays the chip's.
HIERARCHY_PARAMETERS: dict[str, tuple[str, str, str]] = {
    "reference.a1": ("reference", "a1_mean_ppm_per_C", "a1_sigma_ppm_per_C"),
    "reference.a2": ("reference", "a2_mean_ppm_per_C2", "a2_sigma_ppm_per_C2"),
    "reference.hyst": ("reference", "hyst_mean_ppm", "hyst_sigma_ppm"),
    "reference.reflow": ("reference", "reflow_mean_ppm", "reflow_sigma_ppm"),
    "reference.drift": ("reference", "drift_mean_ppm_per_sqrt_kh", "drift_sigma_ppm_per_sqrt_kh"),
    "frontend.gain": ("frontend", "gain_ppm_mean", "gain_ppm_sigma"),
    "frontend.cm_error": (
        "frontend", "cm_error_uV_per_position", "cm_error_uV_per_position_sigma"
    ),
}


class LinearGridConfig(StrictModel):
    """``n`` equally spaced points from ``start`` to ``stop`` (inclusive; ``n = 1``: start)."""

    start: float
    stop: float
    n: int = Field(ge=1, le=1000)

    @model_validator(mode="after")
    def _check(self) -> LinearGridConfig:
        if self.stop < self.start:
            raise FieldProblem("stop", self.stop, f"must be >= start ({self.start:g})")
        return self

    def values(self) -> list[float]:
        """The grid points."""
        import numpy as np

        return [float(x) for x in np.linspace(self.start, self.stop, self.n)]


class HierarchyShareConfig(StrictModel):
    """Fractions of one parameter's variance that are common to a lot / to a wafer."""

    lot_fraction: Fraction = 0.0
    wafer_fraction: Fraction = 0.0

    @model_validator(mode="after")
    def _check(self) -> HierarchyShareConfig:
        if self.lot_fraction + self.wafer_fraction > 1.0:
            raise FieldProblem(
                "wafer_fraction", self.wafer_fraction, "lot_fraction + wafer_fraction must be <= 1"
            )
        return self


class PopulationConfig(StrictModel):
    """Lot -> wafer -> die hierarchy. A wafer is the unit of random-number generation."""

    dies_per_wafer: int = Field(default=1000, ge=1, le=100_000)
    wafers_per_lot: int = Field(default=25, ge=1, le=1000)
    spread: dict[str, HierarchyShareConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> PopulationConfig:
        bad = sorted(set(self.spread) - set(HIERARCHY_PARAMETERS))
        if bad:
            raise FieldProblem(
                "spread", bad, f"known parameters: {', '.join(HIERARCHY_PARAMETERS)}"
            )
        return self


class ChemistryConfig(StrictModel):
    """Cell-voltage grid of one chemistry and the SOC window its OCV slope is read over."""

    v_cell_V: LinearGridConfig
    soc_window: tuple[Fraction, Fraction] = (0.2, 0.9)

    @model_validator(mode="after")
    def _check(self) -> ChemistryConfig:
        if self.soc_window[1] <= self.soc_window[0]:
            raise FieldProblem("soc_window", list(self.soc_window), "must be [low, high]")
        return self


def _default_chemistries() -> dict[str, ChemistryConfig]:
    return {
        "lfp": ChemistryConfig(v_cell_V=LinearGridConfig(start=2.5, stop=3.65, n=6)),
        "nmc": ChemistryConfig(v_cell_V=LinearGridConfig(start=3.0, stop=4.2, n=6)),
    }


class ConditionsConfig(StrictModel):
    """The grid every device is evaluated on (TME = max |error| over it)."""

    temp_C: LinearGridConfig = LinearGridConfig(start=0.0, stop=65.0, n=14)
    chemistries: dict[Literal["lfp", "nmc"], ChemistryConfig] = Field(
        default_factory=_default_chemistries, min_length=1
    )
    lifetime_points: tuple[Literal["as_trimmed", "after_reflow", "1000h", "10y"], ...] = Field(
        default=("as_trimmed", "after_reflow", "1000h", "10y"), min_length=1
    )


Strategy = Literal["none", "one_point", "two_point", "two_point_board"]


class StudyConfig(StrictModel):
    """One chip design, a population size and the trim strategies applied to the same devices.

    ``lifetime_points`` and ``chemistries`` narrow the sweep's conditions for this study (e.g. a
    board-level requirement "after trim" next to a lifetime study of the same chip).
    """

    name: str | None = Field(default=None, description="label; default: the chip's name")
    chip: str = Field(description="chip config: path relative to the sweep file")
    lifetime_points: tuple[
        Literal["as_trimmed", "after_reflow", "1000h", "10y"], ...] | None = None
    chemistries: tuple[Literal["lfp", "nmc"], ...] | None = None
    n_devices: int = Field(ge=1, le=100_000_000)
    strategies: tuple[Strategy, ...] | None = Field(
        default=None, description="default: the chip's own trim.strategy"
    )
    path: Literal["C", "S"] = "C"


class RequirementConfig(StrictModel):
    """A pass/fail requirement on one study result (one junit testcase)."""

    name: str
    study: str = Field(description="study label (its name:, default its chip's name)")
    strategy: Strategy | None = None
    chemistry: Literal["lfp", "nmc"] = "lfp"
    limit_mV: PositiveFloat
    max_fallout_ppm: NonNegFloat = Field(
        description="the one-sided 95 % Clopper-Pearson upper bound must not exceed this"
    )
    min_devices: int = Field(default=0, ge=0)
    expect: Literal["pass", "fail"] = Field(
        default="pass", description="'fail': the testcase checks that the chip does NOT pass"
    )


class RegressionConfig(StrictModel):
    """When a run counts as worse than the history (exit code 3)."""

    last_n_runs: int = Field(default=5, ge=1)
    tme_margin_mV: NonNegFloat = 0.02
    fallout_margin_ppm: NonNegFloat = 1.0
    fallout_margin_rel: NonNegFloat = 0.2


class ExecutionConfig(StrictModel):
    """How the work is cut (never changes the results)."""

    chunk_devices: int = Field(default=50_000, ge=1)


#: Failure-mode kinds the coverage campaign knows how to inject (bms_emu.sweep.coverage).
FaultKind = Literal[
    "none", "dead_chip", "no_comm", "spi_bit_errors", "stuck_output", "mux_stuck",
    "ref_drift_shared", "ref_drift_s", "c_gain_drift", "s_gain_drift", "c_offset_drift",
    "open_wire", "trim_bit_flips", "supply", "oscillator", "die_heat", "comparator_silent",
]
#: Host-side diagnostics of the reference master (bms_emu.sweep.coverage.DIAGNOSTICS).
Diagnostic = Literal[
    "pec", "command_counter", "cs_compare", "vref2_window", "open_wire", "status_flags",
    "cell_plausibility", "redundant_chip", "latent_test", "supply_window",
]


class MagnitudeConfig(StrictModel):
    """Distribution of a fault's magnitude (unit per kind: see docs/sweep.md).

    ``loguniform``/``uniform`` between ``lo`` and ``hi``; ``fixed`` at ``value``; ``choice``
    among ``values`` with ``weights``. ``signed``: a random sign (50/50) multiplies it.
    """

    dist: Literal["fixed", "uniform", "loguniform", "choice"]
    lo: float | None = None
    hi: float | None = None
    value: float | None = None
    values: tuple[float, ...] | None = None
    weights: tuple[NonNegFloat, ...] | None = None
    signed: bool = False
    unit: str = ""

    @model_validator(mode="after")
    def _check(self) -> MagnitudeConfig:
        if self.dist in ("uniform", "loguniform"):
            if self.lo is None or self.hi is None or not self.lo <= self.hi:
                raise FieldProblem("lo", self.lo, f"{self.dist} needs lo <= hi")
            if self.dist == "loguniform" and not self.lo > 0:
                raise FieldProblem("lo", self.lo, "loguniform needs lo > 0")
        elif self.dist == "fixed" and self.value is None:
            raise FieldProblem("value", None, "fixed needs value")
        elif self.dist == "choice":
            if not self.values:
                raise FieldProblem("values", self.values, "choice needs values")
            if self.weights is not None and (
                len(self.weights) != len(self.values) or not sum(self.weights) > 0
            ):
                raise FieldProblem("weights", self.weights,
                                   "one non-negative weight per value, sum > 0")
        return self


class FailureModeConfig(StrictModel):
    """One failure mode of the chip: base FIT (with its source) and how to inject it."""

    name: str
    kind: FaultKind
    fit: NonNegFloat = Field(description="base failure rate, FIT (1e-9 / h)")
    fit_source: str = Field(min_length=1, description="where the FIT number comes from")
    magnitude: MagnitudeConfig | None = None
    danger: Literal["measured", "always"] = Field(
        default="measured",
        description="measured: dangerous when the reported cell error exceeds the threshold; "
                    "always: every injection counts as dangerous (no data / unmodelled effect)")
    latent: bool = Field(default=False, description="a fault of a safety mechanism (LFM)")


class DesignConfig(StrictModel):
    """A chip design plus the host diagnostics run on it (one campaign each)."""

    name: str
    chip: str = Field(description="chip config: path relative to the sweep file")
    strategy: Strategy | None = None
    diagnostics: tuple[Diagnostic, ...] = (
        "pec", "command_counter", "cs_compare", "vref2_window", "open_wire", "status_flags",
        "cell_plausibility", "latent_test")


class BudgetRequirementConfig(StrictModel):
    """A pass/fail requirement on a budget figure of one design (one junit testcase)."""

    name: str
    design: str
    metric: Literal["pack_residual_ppm", "chip_residual_fit_vs_cell", "spfm", "lfm"]
    limit: float = Field(description="max (ppm, ratio to the cell FIT) or min (SPFM/LFM, 0-1)")
    basis: Literal["cp95", "point"] = Field(
        default="cp95", description="cp95: the conservative 95 % bound; point: the estimate")
    expect: Literal["pass", "fail"] = "pass"


class BudgetConfig(StrictModel):
    """Failure-rate budget: failure modes, measured diagnostic coverage, residual rates."""

    pack: str = Field(description="pack module config (path relative to the sweep file)")
    chips_per_pack: int = Field(ge=1)
    mission_h: PositiveFloat = Field(default=87_660.0, description="10 years continuous")
    cell_fit: NonNegFloat
    cell_fit_source: str = Field(min_length=1)
    dangerous_error_mV: PositiveFloat
    cth: int = Field(default=2, ge=0, le=7, description="CFGA CTH code of the C-vs-S compare")
    vref2_window_V: tuple[float, float] = (2.988, 3.012)
    plausible_cell_V: tuple[float, float] = Field(
        default=(2.0, 3.8), description="cell OV/UV plausibility window (CFGB VUV/VOV)")
    redundant_threshold_mV: PositiveFloat = 5.0
    supply_window_fraction: PositiveFloat = Field(
        default=0.1, description="host check of VA/VD (ADAX) against nominal +- this fraction")
    open_wire_threshold_V: PositiveFloat = 0.4
    temp_ambient_C: tuple[float, float] = (0.0, 65.0)
    injections: int = Field(ge=1, le=10_000_000, description="per failure mode and design")
    chunk_injections: int = Field(default=100, ge=1)
    pool_devices: int = Field(default=64, ge=2, description="chips drawn per design")
    designs: tuple[DesignConfig, ...] = Field(min_length=1)
    modes: tuple[FailureModeConfig, ...] = Field(min_length=1)
    requirements: tuple[BudgetRequirementConfig, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> BudgetConfig:
        names = [d.name for d in self.designs]
        if len(set(names)) != len(names):
            raise FieldProblem("designs", names, "design names must be distinct")
        modes = [m.name for m in self.modes]
        if len(set(modes)) != len(modes):
            raise FieldProblem("modes", modes, "mode names must be distinct")
        for i, r in enumerate(self.requirements):
            if r.design not in names:
                raise FieldProblem(f"requirements[{i}].design", r.design,
                                   f"must be one of {names}")
        lo, hi = self.vref2_window_V
        if not lo < hi:
            raise FieldProblem("vref2_window_V", self.vref2_window_V, "need lo < hi")
        return self


class SweepConfig(StrictModel):
    """A Monte Carlo accuracy sweep: studies x conditions -> TME statistics and verdicts."""

    kind: Literal["sweep"] = "sweep"
    name: str
    description: str = ""
    seed: int = Field(default=0, ge=0)
    limits_mV: tuple[PositiveFloat, ...] = Field(default=(1.0, 1.2, 2.0, 3.0), min_length=1)
    population: PopulationConfig = PopulationConfig()
    conditions: ConditionsConfig = ConditionsConfig()
    studies: tuple[StudyConfig, ...] = Field(min_length=1)
    requirements: tuple[RequirementConfig, ...] = ()
    regression: RegressionConfig = RegressionConfig()
    execution: ExecutionConfig = ExecutionConfig()
    tail_min_count: int = Field(
        default=10, ge=1, description="below this many failures a tail extrapolation is added"
    )
    budget: BudgetConfig | None = Field(
        default=None, description="failure-rate budget (coverage campaigns); docs/sweep.md")

    @model_validator(mode="after")
    def _check_studies(self) -> SweepConfig:
        for i, st in enumerate(self.studies):
            bad = sorted(set(st.chemistries or ()) - set(self.conditions.chemistries))
            if bad:
                raise FieldProblem(f"studies[{i}].chemistries", bad,
                                   f"must be among conditions.chemistries "
                                   f"{sorted(self.conditions.chemistries)}")
        return self


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

#: Config kinds by their ``kind:`` key; later issues register chip, sweep and scenario kinds.
CONFIG_KINDS: dict[str, type[StrictModel]] = {
    "pack": PackConfig,
    "chip": ChipConfig,
    "current_profile": CurrentProfileConfig,
    "sweep": SweepConfig,
}

M = TypeVar("M", bound=StrictModel)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """Field names allowed at the parent of ``loc`` (for 'unknown key' messages)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = _field_types(current).get(part)
        if annotation is None:
            return None
        current = _model_in(annotation)
    names = _field_types(current)
    return sorted(names) if names else None


def _field_types(cls: Any) -> dict[str, Any]:
    """Field name -> annotation of a pydantic model or a stdlib dataclass (else empty)."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return {k: f.annotation for k, f in cls.model_fields.items()}
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return {f.name: hints.get(f.name) for f in dataclasses.fields(cls)}
    return {}


def _model_in(annotation: Any) -> Any:
    """The BaseModel class inside an annotation like ``X | None`` or ``tuple[X, ...]``."""
    if isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    ):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def format_validation_error(err: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per problem: ``key.path: got VALUE: what is allowed``."""
    lines = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        # pydantic appends the union member / validator name to loc for some errors; drop those
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
        where = _key_path(loc)
        value = e.get("input")
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            allowed = _allowed_keys(model, loc)
            hint = f"allowed keys: {', '.join(allowed)}" if allowed else "not allowed here"
            lines.append(f"{where}: unknown key: {hint}")
        elif e["type"] == "missing":
            lines.append(f"{where}: required key is missing")
        else:
            problem = (e.get("ctx") or {}).get("error")
            if isinstance(problem, FieldProblem):
                sub = problem.key.replace("[", ".[").split(".")
                parts = [int(k[1:-1]) if k.startswith("[") else k for k in sub if k]
                where = _key_path(loc + tuple(parts))
                value, msg = problem.value, problem.allowed
            else:
                msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: got {_show(value)}: {msg}")
    return lines


def _show(value: Any) -> str:
    """A short, readable rendering of a bad value for an error line."""
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}invalid YAML: {problem}"]) from None


def validate_config(data: Any, model: type[M], source: str) -> M:
    """Validate already-parsed data against ``model``; raise :class:`ConfigError` on problems."""
    if not isinstance(data, dict):
        raise ConfigError(
            source, [f"(top level): got {type(data).__name__}: must be a mapping of keys"]
        )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, format_validation_error(err, model)) from None


def load_config(path: str | Path, kind: str | None = None) -> StrictModel:
    """Load any config file; its kind comes from ``kind`` or the file's ``kind:`` key."""
    p = Path(path)
    data = _read_yaml(p)
    if not isinstance(data, dict):
        raise ConfigError(
            str(p), [f"(top level): got {type(data).__name__}: must be a mapping of keys"]
        )
    file_kind = data.get("kind")
    want = kind or file_kind
    if want is None:
        raise ConfigError(
            str(p), [f"kind: required key is missing: one of {', '.join(sorted(CONFIG_KINDS))}"]
        )
    if want not in CONFIG_KINDS:
        raise ConfigError(
            str(p), [f"kind: got {want!r}: must be one of {', '.join(sorted(CONFIG_KINDS))}"]
        )
    if kind is not None and file_kind is not None and file_kind != kind:
        raise ConfigError(str(p), [f"kind: got {file_kind!r}: expected {kind!r} here"])
    return validate_config(data, CONFIG_KINDS[want], str(p))


def load_pack(path: str | Path) -> PackConfig:
    """Load and validate a pack config."""
    cfg = load_config(path, "pack")
    assert isinstance(cfg, PackConfig)
    return cfg


def load_chip(path: str | Path) -> ChipSpec:
    """Load and validate a chip config; returns the pure-model spec."""
    return chip_spec(load_config(path, "chip"))


def load_profile(path: str | Path) -> CurrentProfileConfig:
    """Load and validate a current-profile config (YAML)."""
    cfg = load_config(path, "current_profile")
    assert isinstance(cfg, CurrentProfileConfig)
    return cfg


def config_json_schema(kind: str | None = None) -> dict[str, Any]:
    """JSON Schema of one config kind, or of all kinds (``oneOf``) for editor autocompletion."""
    if kind is not None:
        return CONFIG_KINDS[kind].model_json_schema()
    schemas = {k: m.model_json_schema() for k, m in CONFIG_KINDS.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "bms-emu config",
        "oneOf": list(schemas.values()),
    }


# The HIL rig's kinds (scenario, can_mapping; issue 8) live in their own module, which registers
# them in CONFIG_KINDS; imported here so every loader knows them.
import bms_emu.scenario_config  # noqa: E402,F401
