"""Per-channel analog front end between the sense pins and the ADC input.

Signal chain for channel ``k`` (cell ``k``, between pins C_k and C_{k-1})::

    pin voltages --RC filter (R_f, C_f per pin)--> filtered pins
                 - leakage currents x R_f      (pin leakage, differential)
    differential --> level shift / mux:  + offset_uV + cm_error(k) + INL(v)
                 --> x (1 + gain_ppm)  --> ADC input

The reference error is *not* here: the ADC converts ``v_adc_in / v_ref`` and the digital path
assumes the nominal reference, so reference errors are applied by the ADC/trim models.

Open sense wire: a floating pin keeps the charge on its filter capacitor; the open-wire test
currents (pull-up or pull-down, ``i_ow_A``) then slew it by ``i_ow_A / C_f`` until the ESD/clamp
structures stop it at the neighbouring pins' voltages (plus/minus a clamp drop). This is the
behaviour the ADBMS6830 open-wire procedure relies on (REFERENCE.md 2.1/2.2).

Shapes: populations are ``(n_devices, n_channels)``; pin voltages ``(..., n_channels + 1)`` with
pin 0 the bottom of the stack (C0) and pin ``n_channels`` the top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bms_emu.afe.per_device import PerDevice
from bms_emu.errors import FieldProblem

__all__ = [
    "FrontEndParams",
    "FrontEndSpec",
    "InputFilter",
    "adc_input_V",
    "open_wire_pin_V",
    "sample_frontend",
]


@dataclass(frozen=True)
class FrontEndSpec:
    """Nominal values and spreads of the front end (one chip design).

    All sigmas are per channel, independent, Gaussian; means are the design's systematic values.
    Used directly as a section of the chip config (unknown keys are rejected).
    """

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by the config layer

    n_channels: int = 16
    r_filter_Ohm: float = 100.0
    c_filter_F: float = 10e-9
    offset_uV_sigma: float = 0.0
    gain_ppm_mean: float = 0.0
    gain_ppm_sigma: float = 0.0
    inl_uV_sigma: float = 0.0
    cm_error_uV_per_position: float = 0.0
    cm_error_uV_per_position_sigma: float = 0.0
    leakage_nA_sigma: float = 0.0
    v_full_scale_V: float = 5.0
    bleed_resistance_Ohm: float = 30.0
    switch_on_resistance_Ohm: float = 2.0
    i_open_wire_A: float = 100e-6
    clamp_drop_V: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.n_channels <= 20:
            raise FieldProblem("n_channels", self.n_channels, "must be 1..20")
        for name in ("r_filter_Ohm", "c_filter_F", "v_full_scale_V", "bleed_resistance_Ohm"):
            if not getattr(self, name) > 0:
                raise FieldProblem(name, getattr(self, name), "must be > 0")
        for name in (
            "offset_uV_sigma",
            "gain_ppm_sigma",
            "inl_uV_sigma",
            "leakage_nA_sigma",
            "cm_error_uV_per_position_sigma",
            "switch_on_resistance_Ohm",
            "i_open_wire_A",
            "clamp_drop_V",
        ):
            if not getattr(self, name) >= 0:
                raise FieldProblem(name, getattr(self, name), "must be >= 0")


@dataclass(frozen=True)
class FrontEndParams(PerDevice):
    """Per-device, per-channel front-end errors, arrays shaped (n_devices, n_channels).

    ``inl_uV`` is the peak of a parabolic INL bow that is zero at 0 V and at full scale (the
    common shape of a level-shifter/ADC INL; finer shapes can be added as further terms).
    ``leakage_nA`` is per pin, shape (n_devices, n_channels + 1).
    """

    offset_uV: np.ndarray
    gain_ppm: np.ndarray
    inl_uV: np.ndarray
    cm_error_uV: np.ndarray
    leakage_nA: np.ndarray
    r_filter_Ohm: float
    c_filter_F: float
    v_full_scale_V: float
    bleed_resistance_Ohm: float
    switch_on_resistance_Ohm: float
    i_open_wire_A: float
    clamp_drop_V: float

    @property
    def n_devices(self) -> int:
        return int(self.offset_uV.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.offset_uV.shape[1])

    def balance_resistance_Ohm(self, on: np.ndarray) -> np.ndarray:
        """Bleed resistance the pack sees per cell, (n_devices, n_channels); inf where off.

        The discharge path is the external bleed resistor plus the on-resistance of the switch;
        the input filter resistors are not in it (the switch sits at the pins on the board side).
        """
        r = self.bleed_resistance_Ohm + self.switch_on_resistance_Ohm
        return np.where(np.asarray(on, dtype=bool), r, np.inf)


def sample_frontend(n_devices: int, spec: FrontEndSpec, rng: np.random.Generator) -> FrontEndParams:
    """Draw a population of front ends from ``spec``.

    The common-mode error grows linearly with the channel's position in the stack (the level
    shifter of channel k sits ~k cell voltages above ground), with a per-device slope spread.
    """
    n, m = n_devices, spec.n_channels
    position = np.arange(1, m + 1, dtype=float)
    slope = (
        spec.cm_error_uV_per_position
        + spec.cm_error_uV_per_position_sigma * rng.standard_normal((n, 1))
    )
    return FrontEndParams(
        offset_uV=spec.offset_uV_sigma * rng.standard_normal((n, m)),
        gain_ppm=spec.gain_ppm_mean + spec.gain_ppm_sigma * rng.standard_normal((n, m)),
        inl_uV=spec.inl_uV_sigma * rng.standard_normal((n, m)),
        cm_error_uV=slope * position,
        leakage_nA=spec.leakage_nA_sigma * rng.standard_normal((n, m + 1)),
        r_filter_Ohm=spec.r_filter_Ohm,
        c_filter_F=spec.c_filter_F,
        v_full_scale_V=spec.v_full_scale_V,
        bleed_resistance_Ohm=spec.bleed_resistance_Ohm,
        switch_on_resistance_Ohm=spec.switch_on_resistance_Ohm,
        i_open_wire_A=spec.i_open_wire_A,
        clamp_drop_V=spec.clamp_drop_V,
    )


def adc_input_V(params: FrontEndParams, v_diff_V: np.ndarray) -> np.ndarray:
    """Static transfer from the filtered differential pin voltage to the ADC input.

    Parameters
    ----------
    params : FrontEndParams
    v_diff_V : array, shape (n_devices, n_channels) or (n_devices, n_channels, n_points)
        Differential voltage across each channel's filtered pins; a trailing axis of points
        (e.g. a voltage grid) broadcasts.

    Returns
    -------
    array, same shape as ``v_diff_V``
    """
    v = np.asarray(v_diff_V, dtype=float)
    extra = (np.newaxis,) * (v.ndim - 2)
    p = (slice(None), slice(None), *extra)
    # leakage of the top pin minus the bottom pin flows through the filter resistors
    leak_V = (params.leakage_nA[:, 1:] - params.leakage_nA[:, :-1]) * 1e-9 * params.r_filter_Ohm
    x = np.minimum(np.maximum(v / params.v_full_scale_V, 0.0), 1.0)
    inl_V = params.inl_uV[p] * 1e-6 * 4.0 * x * (1.0 - x)
    v_err = (params.offset_uV + params.cm_error_uV)[p] * 1e-6 + inl_V - leak_V[p]
    return (v + v_err) * (1.0 + params.gain_ppm[p] * 1e-6)


class InputFilter:
    """The RC filters on the sense pins: first-order, exact exponential update.

    Each pin has R_f in series and C_f to the pin below (the usual differential filter); for the
    differential channel voltage this is a first-order low-pass with tau = 2 R_f C_f when both
    pins of a channel have the same R (the charging current flows through two resistors).

    State shape (n_devices, n_channels) of filtered differential voltages.
    """

    def __init__(self, params: FrontEndParams, v_initial_V: np.ndarray) -> None:
        self.tau_s = 2.0 * params.r_filter_Ohm * params.c_filter_F
        self.v_V = np.array(v_initial_V, dtype=float)

    def step(self, dt_s: float, v_in_V: np.ndarray) -> np.ndarray:
        """Advance by ``dt_s`` with the input held at ``v_in_V``; returns the filtered voltage."""
        a = np.exp(-dt_s / self.tau_s) if self.tau_s > 0 else 0.0
        self.v_V = self.v_V * a + np.asarray(v_in_V, dtype=float) * (1.0 - a)
        return self.v_V


def open_wire_pin_V(
    pin_V: np.ndarray,
    open_pins: np.ndarray,
    held_V: np.ndarray,
    params: FrontEndParams,
    direction: int,
    t_s: float,
) -> np.ndarray:
    """Pin voltages with open sense wires during an open-wire test current.

    Parameters
    ----------
    pin_V : array, shape (..., n_channels + 1)
        Voltages the connected pins would have.
    open_pins : bool array, same shape
        True where the sense wire is open (the pin floats).
    held_V : array, same shape
        Voltage held on each floating pin's filter capacitor before the test current started.
    direction : {+1, -1, 0}
        +1 pull-up, -1 pull-down, 0 no test current (the pin just holds its charge).
    t_s : float
        How long the test current has flowed.

    Returns
    -------
    array, same shape as ``pin_V``
        Floating pins slew by ``direction * i_ow / C_f * t`` from their held voltage, clamped to
        the neighbouring pins' voltages plus/minus the clamp drop (pin 0 and the top pin clamp to
        the supply rails modelled as the neighbours themselves).
    """
    pins = np.asarray(pin_V, dtype=float)
    open_ = np.asarray(open_pins, dtype=bool)
    slewed = (
        np.asarray(held_V, dtype=float) + direction * params.i_open_wire_A / params.c_filter_F * t_s
    )
    # the ESD diodes to the neighbouring pins (the end pins: to themselves, i.e. the rails) stop
    # the slew one diode drop beyond them
    lower = np.concatenate([pins[..., :1], pins[..., :-1]], axis=-1) - params.clamp_drop_V
    upper = np.concatenate([pins[..., 1:], pins[..., -1:]], axis=-1) + params.clamp_drop_V
    clamped = np.clip(slewed, lower, upper)
    return np.where(open_, clamped, pins)
