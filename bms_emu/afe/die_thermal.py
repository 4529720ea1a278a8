"""Die temperature of the monitor chip and its on-die temperature sensor, vectorised over devices.

Thermal model: one lumped node (die + package) with thermal resistance ``r_th_C_per_W`` to
ambient and time constant ``tau_s``::

    tau dT/dt = T_amb + R_th (P_q + P_bal) - T

With ambient and power held constant over a step of ``dt_s`` (zero-order hold) the update is
exact: ``T(t + dt) = T_ss + (T(t) - T_ss) exp(-dt / tau)``, ``T_ss = T_amb + R_th P``; so any step
size gives the closed-form answer at the step ends. Balancing dissipation ``p_balance_W`` is
an input (the balancing model owns it).

Sensor model (PTAT, so its gain error scales absolute temperature)::

    T_meas = (T + 273.15) (1 + 1e-6 gain_error_ppm) - 273.15 + offset_C + noise
    code   = floor(T_meas / lsb_C + 1/2), saturated to ``bits`` signed bits

Shapes: parameters ``(n_devices,)``; temperatures ``(n_devices,)`` or ``(n_devices, ...)``
(axis 0 = devices); time series ``(n_devices, n_steps)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bms_emu.afe.fixed_point import quantize
from bms_emu.afe.per_device import PerDevice
from bms_emu.afe.reference import per_device
from bms_emu.errors import check_spec_fields

__all__ = [
    "DieThermalParams",
    "DieThermalSpec",
    "TempSensorParams",
    "TempSensorSpec",
    "die_temp_code",
    "sample_die_thermal",
    "sample_temp_sensor",
    "simulate_die_temp_C",
    "steady_state_die_temp_C",
    "step_die_temp_C",
]

FloatArray = NDArray[np.float64]
_KELVIN = 273.15


def _device_fields(obj: object) -> int:
    n = None
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        a = np.asarray(getattr(obj, f.name), dtype=np.float64)
        if a.ndim != 1 or (n is not None and a.shape[0] != n):
            raise ValueError(f"{f.name}: expected shape (n_devices,), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{f.name}: values must be finite")
        n = a.shape[0]
        object.__setattr__(obj, f.name, a)
    assert n is not None
    return n


@dataclass(frozen=True)
class DieThermalParams(PerDevice):
    """Per-device lumped thermal parameters, each shaped ``(n_devices,)``.

    Attributes
    ----------
    r_th_C_per_W : die-to-ambient thermal resistance.
    tau_s : thermal time constant.
    p_quiescent_W : quiescent dissipation (always on).
    """

    r_th_C_per_W: FloatArray
    tau_s: FloatArray
    p_quiescent_W: FloatArray

    def __post_init__(self) -> None:
        _device_fields(self)
        if np.any(self.tau_s <= 0) or np.any(self.r_th_C_per_W < 0):
            raise ValueError("need tau_s > 0 and r_th_C_per_W >= 0")

    @property
    def n_devices(self) -> int:
        """Number of devices."""
        return int(self.tau_s.shape[0])


@dataclass(frozen=True)
class DieThermalSpec:
    """Population figures for :func:`sample_die_thermal` (normal, relative sigmas).

    Assumed values (datasheets give only package theta-JA): 40 C/W (LQFP-64 on a 4-layer
    board), 20 s lumped time constant, 0.1 W quiescent.
    """

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - strict config section

    r_th_C_per_W: float = 40.0
    r_th_rel_sigma: float = 0.1
    tau_s: float = 20.0
    tau_rel_sigma: float = 0.1
    p_quiescent_W: float = 0.1
    p_quiescent_rel_sigma: float = 0.05

    def __post_init__(self) -> None:
        check_spec_fields(self, positive=("r_th_C_per_W", "tau_s"))


def sample_die_thermal(
    n_devices: int, spec: DieThermalSpec, rng: np.random.Generator
) -> DieThermalParams:
    """Draw thermal parameters, each ``(n_devices,)`` (relative spreads clipped at +-3 sigma)."""
    z = np.clip(rng.standard_normal((3, n_devices)), -3.0, 3.0)
    return DieThermalParams(
        r_th_C_per_W=spec.r_th_C_per_W * (1 + spec.r_th_rel_sigma * z[0]),
        tau_s=spec.tau_s * (1 + spec.tau_rel_sigma * z[1]),
        p_quiescent_W=spec.p_quiescent_W * (1 + spec.p_quiescent_rel_sigma * z[2]),
    )


def steady_state_die_temp_C(
    params: DieThermalParams, temp_ambient_C: ArrayLike, p_balance_W: ArrayLike = 0.0
) -> FloatArray:
    """``T_amb + R_th (P_q + P_bal)``; inputs scalar or ``(n_devices, ...)``, same-shape output."""
    t_amb = np.asarray(temp_ambient_C, dtype=np.float64)
    p_bal = np.asarray(p_balance_W, dtype=np.float64)
    nd = max(t_amb.ndim, p_bal.ndim, 1)
    return t_amb + per_device(params.r_th_C_per_W, nd) * (
        per_device(params.p_quiescent_W, nd) + p_bal
    )


def step_die_temp_C(
    params: DieThermalParams,
    temp_die_C: ArrayLike,
    temp_ambient_C: ArrayLike,
    p_balance_W: ArrayLike,
    dt_s: float,
) -> FloatArray:
    """Exact update over ``dt_s`` with ambient and power held constant.

    Parameters
    ----------
    params : DieThermalParams
    temp_die_C : array_like, shape (n_devices,)
        Die temperature at the start of the step.
    temp_ambient_C, p_balance_W : array_like, scalar or shape (n_devices,)
        Held over the step.
    dt_s : float
        Step, s (>= 0).

    Returns
    -------
    ndarray, shape (n_devices,)
    """
    if dt_s < 0:
        raise ValueError(f"dt_s must be >= 0, got {dt_s}")
    t_ss = steady_state_die_temp_C(params, temp_ambient_C, p_balance_W)
    decay = np.exp(-dt_s / params.tau_s)
    return t_ss + (np.asarray(temp_die_C, dtype=np.float64) - t_ss) * decay


def simulate_die_temp_C(
    params: DieThermalParams,
    temp_die0_C: ArrayLike,
    temp_ambient_C: ArrayLike,
    p_balance_W: ArrayLike,
    dt_s: float,
    n_steps: int | None = None,
) -> FloatArray:
    """Die temperature series under piecewise-constant ambient and balancing power.

    Parameters
    ----------
    params : DieThermalParams
    temp_die0_C : array_like, scalar or shape (n_devices,)
        Initial die temperature.
    temp_ambient_C, p_balance_W : array_like
        Broadcastable to ``(n_devices, n_steps)`` (e.g. ``(1, n_steps)``, ``(n_devices, 1)`` or
        scalar); value ``[:, k]`` holds during step ``k``.
    dt_s : float
        Step length.
    n_steps : int, optional
        Needed only when neither input has a time axis (both scalar or ``(n_devices, 1)``).

    Returns
    -------
    ndarray, shape (n_devices, n_steps)
        Die temperature at the end of each step.
    """
    n = params.n_devices
    t_amb = np.asarray(temp_ambient_C, dtype=np.float64)
    p_bal = np.asarray(p_balance_W, dtype=np.float64)
    if n_steps is None:
        n_steps = np.broadcast_shapes(t_amb.shape, p_bal.shape, (1, 1))[-1]
    t_amb = np.broadcast_to(t_amb, (n, n_steps))
    p_bal = np.broadcast_to(p_bal, (n, n_steps))
    t_ss = t_amb + params.r_th_C_per_W[:, None] * (params.p_quiescent_W[:, None] + p_bal)
    decay = np.exp(-dt_s / params.tau_s)
    out = np.empty((n, n_steps))
    temp = np.broadcast_to(np.asarray(temp_die0_C, dtype=np.float64), (n,)).copy()
    # The recursion is sequential in time; each step is vectorised over devices.
    for k in range(n_steps):
        temp = t_ss[:, k] + (temp - t_ss[:, k]) * decay
        out[:, k] = temp
    return out


@dataclass(frozen=True)
class TempSensorParams(PerDevice):
    """Per-device die-temperature sensor errors, each shaped ``(n_devices,)``.

    Attributes
    ----------
    offset_C : offset error.
    gain_error_ppm : gain error of the PTAT sensor (scales absolute temperature).
    noise_C_rms : rms noise of one reading.
    """

    offset_C: FloatArray
    gain_error_ppm: FloatArray
    noise_C_rms: FloatArray

    def __post_init__(self) -> None:
        _device_fields(self)
        if np.any(self.noise_C_rms < 0):
            raise ValueError("noise_C_rms must be >= 0")

    @classmethod
    def ideal(cls, n_devices: int) -> TempSensorParams:
        """An error-free sensor (quantisation remains)."""
        z = np.zeros(n_devices)
        return cls(z, z.copy(), z.copy())


@dataclass(frozen=True)
class TempSensorSpec:
    """Population figures for :func:`sample_temp_sensor` (assumed: +-2 C offset class sensor)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - strict config section

    offset_sigma_C: float = 1.0
    gain_error_sigma_ppm: float = 2000.0
    noise_C_rms: float = 0.05

    def __post_init__(self) -> None:
        check_spec_fields(self)


def sample_temp_sensor(
    n_devices: int, spec: TempSensorSpec, rng: np.random.Generator
) -> TempSensorParams:
    """Draw sensor errors, each ``(n_devices,)``."""
    z = rng.standard_normal((2, n_devices))
    return TempSensorParams(
        offset_C=spec.offset_sigma_C * z[0],
        gain_error_ppm=spec.gain_error_sigma_ppm * z[1],
        noise_C_rms=np.full(n_devices, spec.noise_C_rms),
    )


def die_temp_code(
    temp_die_C: ArrayLike,
    sensor: TempSensorParams,
    *,
    lsb_C: float,
    bits: int = 16,
    rng: np.random.Generator | None = None,
) -> NDArray[np.int64]:
    """Integer reading of the on-die temperature sensor.

    Parameters
    ----------
    temp_die_C : array_like, shape (n_devices,) or (n_devices, ...)
        True die temperature.
    sensor : TempSensorParams
    lsb_C : float
        Code LSB, C (code 0 = 0 C).
    bits : int
        Signed code width (saturates).
    rng : numpy.random.Generator, optional
        Noise source; ``None`` gives a noise-free reading.

    Returns
    -------
    ndarray of int64, same shape as ``temp_die_C``
    """
    temp = np.asarray(temp_die_C, dtype=np.float64)
    nd = max(temp.ndim, 1)
    meas = (temp + _KELVIN) * (1 + 1e-6 * per_device(sensor.gain_error_ppm, nd)) - _KELVIN
    meas = meas + per_device(sensor.offset_C, nd)
    if rng is not None:
        meas = meas + per_device(sensor.noise_C_rms, nd) * rng.standard_normal(meas.shape)
    return quantize(meas, lsb_C, bits)
