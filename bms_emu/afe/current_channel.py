"""Current channel: shunt + amplifier + ADC, sampled synchronously with the cell channels.

    v_shunt = I * R_shunt(T)                      R_shunt(T) = R25 (1 + tc_shunt (T - 25))
    v_adc   = (v_shunt + v_offset(T)) * G (1 + g_err + tc_gain (T - 25))
    I_meas  = v_adc / (G * R25)                   firmware scales by the nominal G and R25

so the error has a fixed part (offset / R25, in amperes, the same at every current) and a
proportional part (gain and shunt errors, in % of reading). A "1 % of full scale" spec is therefore
~10 % of reading at one tenth of full scale (REFERENCE.md section 1): ``error_pct_of_reading``
shows that curve for a population. Shapes: per-device parameters (n_devices,); currents broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bms_emu.afe.per_device import PerDevice
from bms_emu.errors import FieldProblem

__all__ = [
    "CurrentChannelParams",
    "CurrentChannelSpec",
    "measure_current_A",
    "sample_current_channel",
]


@dataclass(frozen=True)
class CurrentChannelSpec:
    """Design values and spreads of the current channel (a section of the chip config)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by the config layer

    shunt_uOhm: float = 100.0
    shunt_tempco_ppm_per_C: float = 0.0
    shunt_tol_ppm_sigma: float = 0.0
    gain: float = 20.0
    gain_error_ppm_sigma: float = 0.0
    gain_tempco_ppm_per_C_sigma: float = 0.0
    offset_uV_sigma: float = 0.0
    offset_tempco_uV_per_C_sigma: float = 0.0
    full_scale_A: float = 500.0

    def __post_init__(self) -> None:
        for name in ("shunt_uOhm", "gain", "full_scale_A"):
            if not getattr(self, name) > 0:
                raise FieldProblem(name, getattr(self, name), "must be > 0")
        for name in (
            "shunt_tol_ppm_sigma",
            "gain_error_ppm_sigma",
            "gain_tempco_ppm_per_C_sigma",
            "offset_uV_sigma",
            "offset_tempco_uV_per_C_sigma",
        ):
            if not getattr(self, name) >= 0:
                raise FieldProblem(name, getattr(self, name), "must be >= 0")


@dataclass(frozen=True)
class CurrentChannelParams(PerDevice):
    """Per-device current-channel errors, arrays shaped (n_devices,)."""

    shunt_uOhm_nominal: float
    gain_nominal: float
    shunt_err_ppm: np.ndarray
    shunt_tempco_ppm_per_C: float
    gain_err_ppm: np.ndarray
    gain_tempco_ppm_per_C: np.ndarray
    offset_uV: np.ndarray
    offset_tempco_uV_per_C: np.ndarray
    full_scale_A: float


def sample_current_channel(
    n_devices: int, spec: CurrentChannelSpec, rng: np.random.Generator
) -> CurrentChannelParams:
    """Draw a population of current channels from ``spec``."""
    n = n_devices
    return CurrentChannelParams(
        shunt_uOhm_nominal=spec.shunt_uOhm,
        gain_nominal=spec.gain,
        shunt_err_ppm=spec.shunt_tol_ppm_sigma * rng.standard_normal(n),
        shunt_tempco_ppm_per_C=spec.shunt_tempco_ppm_per_C,
        gain_err_ppm=spec.gain_error_ppm_sigma * rng.standard_normal(n),
        gain_tempco_ppm_per_C=spec.gain_tempco_ppm_per_C_sigma * rng.standard_normal(n),
        offset_uV=spec.offset_uV_sigma * rng.standard_normal(n),
        offset_tempco_uV_per_C=spec.offset_tempco_uV_per_C_sigma * rng.standard_normal(n),
        full_scale_A=spec.full_scale_A,
    )


def measure_current_A(
    params: CurrentChannelParams, current_A: np.ndarray | float, temp_C: np.ndarray | float
) -> np.ndarray:
    """Measured current (before ADC quantisation and noise) for true ``current_A``.

    Parameters
    ----------
    current_A : array broadcastable with (n_devices, ...)
        True current; a trailing axis (e.g. a current grid) must be added by the caller as
        ``current_A[np.newaxis, :]`` with parameters indexed ``[:, np.newaxis]`` via ``temp_C``.
    temp_C : array broadcastable with ``current_A``
        Temperature of shunt and amplifier.

    Returns
    -------
    array, broadcast shape of (n_devices, 1) parameters with the inputs
        Saturates at +-full scale like the ADC does.
    """
    i = np.asarray(current_A, dtype=float)
    dt = np.asarray(temp_C, dtype=float) - 25.0
    col = (slice(None),) + (np.newaxis,) * max(np.broadcast(i, dt).ndim - 1, 0)
    r_rel = (1.0 + params.shunt_err_ppm[col] * 1e-6) * (
        1.0 + params.shunt_tempco_ppm_per_C * 1e-6 * dt
    )
    g_rel = 1.0 + (params.gain_err_ppm[col] + params.gain_tempco_ppm_per_C[col] * dt) * 1e-6
    v_off_V = (params.offset_uV[col] + params.offset_tempco_uV_per_C[col] * dt) * 1e-6
    r25_Ohm = params.shunt_uOhm_nominal * 1e-6
    i_meas = (i * r25_Ohm * r_rel + v_off_V) * g_rel / r25_Ohm
    return np.minimum(np.maximum(i_meas, -params.full_scale_A), params.full_scale_A)
