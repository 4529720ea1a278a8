"""Voltage reference of the monitor chip, as a vectorised model over a population of devices.

Model (REFERENCE.md section 3), all error terms in ppm of the nominal ``v_nom_V``::

    V_ref(T, t) = v_nom_V * (1 + 1e-6 * [ e0
                                        + a1 (T - t0) + a2 (T - t0)^2        (tempco, t0 = 25 C)
                                        + hyst_ppm / 2 * m                   (thermal hysteresis)
                                        + reflow(t)                          (board assembly)
                                        + drift_ppm_per_sqrt_kh * sqrt(t_h / 1000) ])   (aging)
                  + noise(t)                                                  (white + 1/f, V)

``T`` is the die temperature, ``t_h`` the lifetime clock in hours (0 = factory trim). Terms are
summed in ppm (they are small, so the cross products of a product form are < 0.01 ppm).

Thermal hysteresis
    A rate-independent play (backlash) operator on the die temperature with memory
    ``m`` in [-1, +1]. An excursion of size ``dT = |T - t0|`` has the strength
    ``f = clip((dT - hyst_threshold_C) / (hyst_full_C - hyst_threshold_C), 0, 1)``: no effect
    inside the dead band, full effect at ``hyst_full_C`` and beyond. A hot excursion sets
    ``m <- max(m, 2f - 1)``, a cold one ``m <- min(m, 1 - 2f)``. So a full hot excursion leaves
    ``m = +1`` until the next cold excursion, a full cold one ``m = -1``; partial excursions move
    ``m`` part-way, and an excursion never undoes a stronger one in the same direction.
    ``hyst_ppm`` is therefore the peak-to-peak datasheet figure: the difference of V_ref at
    ``t0`` after a full hot and after a full cold excursion (20 ppm buried Zener, 100 ppm
    VREF2-class bandgap). A new device has ``m = 0``. Assumption (datasheets give only the
    figure): the sign is a per-device parameter (positive: a hot excursion raises V_ref).
Solder reflow
    At the board-assembly time ``t_a`` the output steps by ``reflow_ppm``, then a fraction
    ``reflow_recovery_frac`` of it recovers with time constant ``reflow_tau_h`` (~200 h):
    ``reflow(t) = reflow_ppm * (1 - r + r exp(-(t - t_a)/tau))`` for ``t >= t_a``, else 0.
Long-term drift
    ``drift_ppm_per_sqrt_kh * sqrt(t_h / 1000)`` from the factory trim (t_h = 0): 10 years
    (87.66 kh) at 20 ppm/sqrt(kh) is 187 ppm.
Noise
    One-sided PSD ``S(f) = white^2 + flicker_1Hz^2 / f`` (V^2/Hz). See :class:`ReferenceNoise`.

Shapes: every per-device parameter is an array shaped ``(n_devices,)``. Static evaluation
(:func:`reference_error_ppm`, :func:`v_ref_V`) broadcasts over trailing axes: the device axis
is axis 0 and temperatures / lifetimes may add axes, e.g. ``temp_die_C`` shaped
``(n_devices, n_temps, 1)`` with ``t_h`` shaped ``(1, 1, n_times)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bms_emu.afe.per_device import PerDevice
from bms_emu.errors import check_spec_fields

try:  # optional accelerator; the scipy lfilter path is the reference
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False

__all__ = [
    "BANDGAP_SPEC",
    "BURIED_ZENER_SPEC",
    "HAVE_NUMBA",
    "T0_C",
    "ReferenceNoise",
    "ReferenceParams",
    "ReferenceScalars",
    "ReferenceSpec",
    "ReferenceState",
    "hysteresis_update",
    "hysteresis_update_scalar",
    "noise_psd_V2_per_Hz",
    "per_device",
    "reference_error_ppm",
    "sample_reference",
    "v_ref_V",
    "v_ref_scalar_V",
]

FloatArray = NDArray[np.float64]

#: Expansion point of the tempco polynomial, C.
T0_C = 25.0
_H_PER_KH = 1000.0


def per_device(x: ArrayLike, ndim: int) -> FloatArray:
    """Reshape a per-device array ``(n_devices,)`` to ``(n_devices, 1, ..., 1)`` with ``ndim`` axes.

    Lets per-device parameters broadcast against grids whose axis 0 is the device axis.

    >>> per_device(np.arange(3.0), 3).shape
    (3, 1, 1)
    """
    a = np.asarray(x, dtype=np.float64)
    if ndim <= a.ndim:
        return a
    return a.reshape(a.shape + (1,) * (ndim - a.ndim))


def _as_device_array(name: str, value: ArrayLike, n: int | None) -> FloatArray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        raise ValueError(f"{name}: expected shape (n_devices,) = ({n},), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: values must be finite")
    return a


@dataclass(frozen=True)
class ReferenceParams(PerDevice):
    """Per-device reference parameters; every field is a float array shaped ``(n_devices,)``.

    Attributes
    ----------
    v_nom_V : nominal output, V (e.g. 3.0 or 3.3).
    e0_ppm : initial (untrimmed) error at ``T0_C``.
    a1_ppm_per_C, a2_ppm_per_C2 : first- and second-order tempco around ``T0_C``.
    hyst_ppm : peak-to-peak thermal hysteresis (signed: sign of the shift after a hot excursion).
    hyst_threshold_C, hyst_full_C : excursion ``|T - T0_C|`` where hysteresis starts / saturates.
    reflow_ppm : shift at board assembly (solder reflow).
    reflow_recovery_frac : fraction of the reflow shift that recovers (0..1).
    reflow_tau_h : recovery time constant, h.
    drift_ppm_per_sqrt_kh : long-term drift coefficient (signed).
    noise_white_uV_per_rtHz : white noise density.
    noise_flicker_uV_per_rtHz_1Hz : 1/f noise density at 1 Hz.
    """

    v_nom_V: FloatArray
    e0_ppm: FloatArray
    a1_ppm_per_C: FloatArray
    a2_ppm_per_C2: FloatArray
    hyst_ppm: FloatArray
    hyst_threshold_C: FloatArray
    hyst_full_C: FloatArray
    reflow_ppm: FloatArray
    reflow_recovery_frac: FloatArray
    reflow_tau_h: FloatArray
    drift_ppm_per_sqrt_kh: FloatArray
    noise_white_uV_per_rtHz: FloatArray
    noise_flicker_uV_per_rtHz_1Hz: FloatArray

    def __post_init__(self) -> None:
        n = None
        for f in dataclasses.fields(self):
            a = _as_device_array(f.name, getattr(self, f.name), n)
            n = a.shape[0]
            object.__setattr__(self, f.name, a)
        if np.any(self.hyst_full_C <= self.hyst_threshold_C) or np.any(self.hyst_threshold_C < 0):
            raise ValueError("need 0 <= hyst_threshold_C < hyst_full_C")
        if np.any((self.reflow_recovery_frac < 0) | (self.reflow_recovery_frac > 1)):
            raise ValueError("reflow_recovery_frac must be in [0, 1]")
        if np.any(self.reflow_tau_h <= 0) or np.any(self.v_nom_V <= 0):
            raise ValueError("reflow_tau_h and v_nom_V must be > 0")
        if np.any(self.noise_white_uV_per_rtHz < 0) or np.any(
            self.noise_flicker_uV_per_rtHz_1Hz < 0
        ):
            raise ValueError("noise densities must be >= 0")

    @property
    def n_devices(self) -> int:
        """Number of devices in the population."""
        return int(self.v_nom_V.shape[0])

    @classmethod
    def constant(cls, n_devices: int, **values: float) -> ReferenceParams:
        """A population of identical devices; fields not given are ideal (0 error).

        Defaults: ``v_nom_V=3.0``, ``hyst_threshold_C=5``, ``hyst_full_C=25``,
        ``reflow_tau_h=200``, everything else 0.

        >>> ReferenceParams.constant(4, a1_ppm_per_C=3.0).a1_ppm_per_C.tolist()
        [3.0, 3.0, 3.0, 3.0]
        """
        base = {f.name: 0.0 for f in dataclasses.fields(cls)}
        base.update(v_nom_V=3.0, hyst_threshold_C=5.0, hyst_full_C=25.0, reflow_tau_h=200.0)
        unknown = set(values) - set(base)
        if unknown:
            raise TypeError(f"unknown reference parameters: {sorted(unknown)}")
        base.update(values)
        return cls(**{k: np.full(n_devices, v, dtype=np.float64) for k, v in base.items()})


@dataclass(frozen=True)
class ReferenceSpec:
    """Population figures (means and sigmas of normal distributions) for :func:`sample_reference`.

    ``hyst_ppm``, the thresholds, ``reflow_recovery_frac`` (clipped to [0, 1]), ``reflow_tau_h``
    and the noise densities are population-wide except where a sigma is given.
    """

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - strict config section

    v_nom_V: float = 3.0
    e0_sigma_ppm: float = 1000.0
    a1_mean_ppm_per_C: float = 0.0
    a1_sigma_ppm_per_C: float = 3.0
    a2_mean_ppm_per_C2: float = 0.0
    a2_sigma_ppm_per_C2: float = 0.005
    hyst_mean_ppm: float = 20.0
    hyst_sigma_ppm: float = 5.0
    hyst_threshold_C: float = 5.0
    hyst_full_C: float = 25.0
    reflow_mean_ppm: float = 50.0
    reflow_sigma_ppm: float = 30.0
    reflow_recovery_frac: float = 0.5
    reflow_recovery_frac_sigma: float = 0.1
    reflow_tau_h: float = 200.0
    drift_mean_ppm_per_sqrt_kh: float = 20.0
    drift_sigma_ppm_per_sqrt_kh: float = 5.0
    noise_white_uV_per_rtHz: float = 0.05
    noise_flicker_uV_per_rtHz_1Hz: float = 0.3

    def __post_init__(self) -> None:
        check_spec_fields(self, positive=("v_nom_V", "reflow_tau_h", "hyst_full_C"))


#: Buried-Zener reference (LTC681x VREF1-class): 3 ppm/C, 20 ppm hysteresis, 20 ppm/sqrt(kh).
#: Assumptions where datasheets are silent: tempco sigma = the typ figure with zero mean, small
#: curvature, reflow ~N(50, 30) ppm with half recovering, drift one-directional.
BURIED_ZENER_SPEC = ReferenceSpec()

#: VREF2-class bandgap: 10 ppm/C, 100 ppm hysteresis, 60 ppm/sqrt(kh), parabolic curvature
#: (assumed a2 ~ N(-0.1, 0.03) ppm/C^2: a bandgap bows down about its peak).
BANDGAP_SPEC = ReferenceSpec(
    v_nom_V=3.0,
    e0_sigma_ppm=2000.0,
    a1_sigma_ppm_per_C=10.0,
    a2_mean_ppm_per_C2=-0.1,
    a2_sigma_ppm_per_C2=0.03,
    hyst_mean_ppm=100.0,
    hyst_sigma_ppm=25.0,
    reflow_mean_ppm=100.0,
    reflow_sigma_ppm=50.0,
    drift_mean_ppm_per_sqrt_kh=60.0,
    drift_sigma_ppm_per_sqrt_kh=15.0,
    noise_white_uV_per_rtHz=0.1,
    noise_flicker_uV_per_rtHz_1Hz=0.5,
)


def sample_reference(
    n_devices: int, spec: ReferenceSpec, rng: np.random.Generator
) -> ReferenceParams:
    """Draw a population of references.

    Parameters
    ----------
    n_devices : int
    spec : ReferenceSpec
        Means and sigmas.
    rng : numpy.random.Generator
        Draws, in this order, ``(n_devices,)`` normals for e0, a1, a2, hysteresis, reflow,
        recovery fraction and drift (fixed order, so results depend only on the seed).

    Returns
    -------
    ReferenceParams
        Every field shaped ``(n_devices,)``.
    """
    z = rng.standard_normal((7, n_devices))
    full = lambda v: np.full(n_devices, v, dtype=np.float64)  # noqa: E731
    return ReferenceParams(
        v_nom_V=full(spec.v_nom_V),
        e0_ppm=spec.e0_sigma_ppm * z[0],
        a1_ppm_per_C=spec.a1_mean_ppm_per_C + spec.a1_sigma_ppm_per_C * z[1],
        a2_ppm_per_C2=spec.a2_mean_ppm_per_C2 + spec.a2_sigma_ppm_per_C2 * z[2],
        hyst_ppm=spec.hyst_mean_ppm + spec.hyst_sigma_ppm * z[3],
        hyst_threshold_C=full(spec.hyst_threshold_C),
        hyst_full_C=full(spec.hyst_full_C),
        reflow_ppm=spec.reflow_mean_ppm + spec.reflow_sigma_ppm * z[4],
        reflow_recovery_frac=np.clip(
            spec.reflow_recovery_frac + spec.reflow_recovery_frac_sigma * z[5], 0.0, 1.0
        ),
        reflow_tau_h=full(spec.reflow_tau_h),
        drift_ppm_per_sqrt_kh=spec.drift_mean_ppm_per_sqrt_kh
        + spec.drift_sigma_ppm_per_sqrt_kh * z[6],
        noise_white_uV_per_rtHz=full(spec.noise_white_uV_per_rtHz),
        noise_flicker_uV_per_rtHz_1Hz=full(spec.noise_flicker_uV_per_rtHz_1Hz),
    )


def hysteresis_update(params: ReferenceParams, m: ArrayLike, temp_die_C: ArrayLike) -> FloatArray:
    """One step of the hysteresis play operator (see module docstring).

    Parameters
    ----------
    params : ReferenceParams
    m : array_like, shape (n_devices,)
        Memory before, in [-1, 1].
    temp_die_C : array_like, shape (n_devices,) or scalar
        Die temperature now (pass every turning point of the temperature path: the operator
        only sees the temperatures it is given).

    Returns
    -------
    ndarray, shape (n_devices,)
        Memory after.
    """
    m = np.asarray(m, dtype=np.float64)
    d = np.asarray(temp_die_C, dtype=np.float64) - T0_C
    span = params.hyst_full_C - params.hyst_threshold_C
    f = np.clip((np.abs(d) - params.hyst_threshold_C) / span, 0.0, 1.0)
    hot = np.maximum(m, 2.0 * f - 1.0)
    cold = np.minimum(m, 1.0 - 2.0 * f)
    return np.where(d > 0, hot, np.where(d < 0, cold, m))


@dataclass
class ReferenceState(PerDevice):
    """History-dependent state of each reference (mutable; arrays shaped ``(n_devices,)``).

    Attributes
    ----------
    hyst_m : hysteresis memory in [-1, 1] (0 = as built).
    t_assembly_h : lifetime time of board assembly (reflow), h; NaN = not yet assembled.
    """

    hyst_m: FloatArray
    t_assembly_h: FloatArray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self.hyst_m = np.asarray(self.hyst_m, dtype=np.float64).copy()
        if self.t_assembly_h.size == 0 and self.hyst_m.size != 0:
            self.t_assembly_h = np.full(self.hyst_m.shape, np.nan)
        self.t_assembly_h = np.asarray(self.t_assembly_h, dtype=np.float64).copy()
        if self.hyst_m.ndim != 1 or self.t_assembly_h.shape != self.hyst_m.shape:
            raise ValueError("hyst_m and t_assembly_h must both be shaped (n_devices,)")

    @classmethod
    def new(cls, n_devices: int) -> ReferenceState:
        """Fresh devices: neutral hysteresis, not assembled."""
        return cls(np.zeros(n_devices), np.full(n_devices, np.nan))

    def copy(self) -> ReferenceState:
        """Independent copy."""
        return ReferenceState(self.hyst_m.copy(), self.t_assembly_h.copy())

    def observe_temperature(self, params: ReferenceParams, temp_die_C: ArrayLike) -> None:
        """Feed a die temperature (scalar or ``(n_devices,)``) to the hysteresis operator."""
        self.hyst_m = hysteresis_update(params, self.hyst_m, temp_die_C)

    def assemble(self, t_h: float, mask: ArrayLike | None = None) -> None:
        """Board assembly (solder reflow) at lifetime ``t_h`` for all devices or ``mask``."""
        sel = np.ones(self.hyst_m.shape, bool) if mask is None else np.asarray(mask, bool)
        self.t_assembly_h = np.where(sel, float(t_h), self.t_assembly_h)


def reference_error_ppm(
    params: ReferenceParams,
    temp_die_C: ArrayLike,
    t_h: ArrayLike = 0.0,
    *,
    hyst_m: ArrayLike = 0.0,
    t_assembly_h: ArrayLike = np.nan,
) -> FloatArray:
    """Static reference error (all terms but noise), ppm of ``v_nom_V``. Pure broadcasting.

    Parameters
    ----------
    params : ReferenceParams
        Fields shaped ``(n_devices,)``.
    temp_die_C : array_like
        Die temperature, scalar or shaped ``(n_devices, ...)``.
    t_h : array_like
        Lifetime, h; scalar or broadcastable against ``temp_die_C`` (axis 0 = devices).
    hyst_m, t_assembly_h : array_like, scalar or shaped ``(n_devices,)``
        State (see :class:`ReferenceState`); NaN assembly time = no reflow yet.

    Returns
    -------
    ndarray
        Shape ``broadcast(temp_die_C, t_h)`` with axis 0 = ``n_devices`` (at least 1-D).
    """
    temp = np.asarray(temp_die_C, dtype=np.float64)
    t = np.asarray(t_h, dtype=np.float64)
    nd = max(temp.ndim, t.ndim, 1)

    def p(x: ArrayLike) -> FloatArray:
        a = np.asarray(x, dtype=np.float64)
        if a.ndim == 0:
            a = np.full(params.n_devices, float(a))
        return per_device(a, nd)

    dt = temp - T0_C
    err = p(params.e0_ppm) + p(params.a1_ppm_per_C) * dt + p(params.a2_ppm_per_C2) * dt**2
    err = err + 0.5 * p(params.hyst_ppm) * p(hyst_m)
    err = err + p(params.drift_ppm_per_sqrt_kh) * np.sqrt(np.maximum(t, 0.0) / _H_PER_KH)
    ta = p(t_assembly_h)
    since = t - ta  # NaN where never assembled
    assembled = np.isfinite(since) & (since >= 0)
    since = np.where(assembled, since, 0.0)
    r = p(params.reflow_recovery_frac)
    reflow = p(params.reflow_ppm) * (1.0 - r + r * np.exp(-since / p(params.reflow_tau_h)))
    return err + np.where(assembled, reflow, 0.0)


def v_ref_V(
    params: ReferenceParams,
    state: ReferenceState | None,
    temp_die_C: ArrayLike,
    t_h: ArrayLike = 0.0,
) -> FloatArray:
    """Reference voltage (no noise) for each device; see :func:`reference_error_ppm` for shapes.

    Does not change ``state``: in a time simulation call ``state.observe_temperature`` first.
    ``state=None`` means a fresh device (neutral hysteresis, never assembled).

    Returns
    -------
    ndarray, shape ``(n_devices, ...)``
    """
    if state is None:
        err = reference_error_ppm(params, temp_die_C, t_h)
    else:
        err = reference_error_ppm(
            params, temp_die_C, t_h, hyst_m=state.hyst_m, t_assembly_h=state.t_assembly_h
        )
    return per_device(params.v_nom_V, err.ndim) * (1.0 + 1e-6 * err)


@dataclass(frozen=True)
class ReferenceScalars:
    """One device's reference parameters as Python floats, for the per-conversion path.

    :func:`v_ref_scalar_V` and :func:`hysteresis_update_scalar` evaluate the same expressions
    as :func:`v_ref_V` and :func:`hysteresis_update`, operation for operation (so the results
    are bit-identical, checked in ``tests/afe/test_reference.py``), without the array set-up
    that dominates a single device's evaluation.
    """

    v_nom_V: float
    e0_ppm: float
    a1_ppm_per_C: float
    a2_ppm_per_C2: float
    hyst_ppm: float
    hyst_threshold_C: float
    hyst_full_C: float
    reflow_ppm: float
    reflow_recovery_frac: float
    reflow_tau_h: float
    drift_ppm_per_sqrt_kh: float

    @classmethod
    def of(cls, params: ReferenceParams, i: int = 0) -> ReferenceScalars:
        """Device ``i`` of ``params``."""
        return cls(**{f.name: float(getattr(params, f.name)[i]) for f in dataclasses.fields(cls)})


def v_ref_scalar_V(
    p: ReferenceScalars, temp_die_C: float, t_h: float, hyst_m: float, t_assembly_h: float
) -> float:
    """:func:`v_ref_V` of one device (no noise), same operations in the same order."""
    dt = temp_die_C - T0_C
    err = p.e0_ppm + p.a1_ppm_per_C * dt + p.a2_ppm_per_C2 * (dt * dt)
    err = err + 0.5 * p.hyst_ppm * hyst_m
    err = err + p.drift_ppm_per_sqrt_kh * math.sqrt(max(t_h, 0.0) / _H_PER_KH)
    since = t_h - t_assembly_h  # NaN where never assembled
    if math.isfinite(since) and since >= 0:
        r = p.reflow_recovery_frac
        # numpy's exp (not math.exp): the two may differ in the last bit
        decay = float(np.exp(-since / p.reflow_tau_h))
        err = err + p.reflow_ppm * (1.0 - r + r * decay)
    else:
        err = err + 0.0
    return p.v_nom_V * (1.0 + 1e-6 * err)


def hysteresis_update_scalar(p: ReferenceScalars, m: float, temp_die_C: float) -> float:
    """:func:`hysteresis_update` of one device, same operations."""
    d = temp_die_C - T0_C
    span = p.hyst_full_C - p.hyst_threshold_C
    f = min(max((abs(d) - p.hyst_threshold_C) / span, 0.0), 1.0)
    if d > 0:
        return max(m, 2.0 * f - 1.0)
    if d < 0:
        return min(m, 1.0 - 2.0 * f)
    return m


def noise_psd_V2_per_Hz(params: ReferenceParams, f_Hz: ArrayLike) -> FloatArray:
    """Target one-sided PSD ``white^2 + k_1Hz^2 / f``, V^2/Hz, shape ``(n_devices, n_f)``."""
    f = np.asarray(f_Hz, dtype=np.float64)[None, :]
    w = (params.noise_white_uV_per_rtHz * 1e-6)[:, None]
    k = (params.noise_flicker_uV_per_rtHz_1Hz * 1e-6)[:, None]
    return w**2 + k**2 / f


class ReferenceNoise:
    """Streaming generator of reference noise (white + 1/f) for a population, in volts.

    The 1/f part is a weighted sum of first-order (AR(1), i.e. sampled Lorentzian) processes
    with corners spaced geometrically (``poles_per_decade``) from ``f_min_Hz`` to ``fs/2``, plus
    one white process. For continuous Lorentzians, equal variances ``k^2 ln(r)`` (``r`` the corner
    ratio) would sum to ``k^2 / f``; at the top corners sampling folds their tails back, so the
    variances are instead fitted once (non-negative least squares on relative error) so that
    the sum of the exact discrete-time AR(1) spectra matches ``k^2 / f`` on
    ``[10 f_min_Hz, fs/2]``: within about 1 % up to fs/6, rising to +15 % at fs/2 where an
    AR(1) sum cannot follow the 1/f slope (the white floor usually dominates there).
    Below ``f_min_Hz`` the 1/f part flattens, which keeps its variance finite; the default
    1e-4 Hz is two decades below the EIS band (0.01-1 Hz). Processes start in their stationary
    distribution, so there is no start-up transient.

    Random numbers are drawn time-major (``(n_samples, n_poles + 1, n_devices)``), so generating
    in chunks gives exactly the same series as one call with the total length.

    Parameters
    ----------
    params : ReferenceParams
        Noise densities per device, shape ``(n_devices,)``.
    fs_Hz : float
        Sample rate.
    rng : numpy.random.Generator
        Owned by this generator from now on.
    f_min_Hz : float
        Lowest 1/f corner.
    poles_per_decade : float
    """

    def __init__(
        self,
        params: ReferenceParams,
        fs_Hz: float,
        rng: np.random.Generator,
        *,
        f_min_Hz: float = 1e-4,
        poles_per_decade: float = 2.0,
    ) -> None:
        if not 0 < 10 * f_min_Hz < fs_Hz / 2:
            raise ValueError(f"need 0 < 10 f_min_Hz < fs/2, got {f_min_Hz} with fs={fs_Hz}")
        self.fs_Hz = float(fs_Hz)
        self._rng = rng
        n_poles = int(np.ceil(np.log10(self.fs_Hz / 2 / f_min_Hz) * poles_per_decade)) + 1
        self.corners_Hz = np.geomspace(f_min_Hz, self.fs_Hz / 2, n_poles)
        # Exact discretisation of a continuous Lorentzian with corner f_k.
        self._a = np.exp(-2.0 * np.pi * self.corners_Hz / self.fs_Hz)
        # input gain of each unit-variance AR(1): x_n = a x_{n-1} + sqrt(1 - a^2) e_n
        self._b0 = np.array([np.sqrt(1.0 - a * a) for a in self._a])
        var_per_k2 = self._fit_variances(f_min_Hz)  # (n_poles + 1,), last = white
        k2 = (params.noise_flicker_uV_per_rtHz_1Hz * 1e-6) ** 2  # (n_devices,)
        # Per-device, per-process standard deviations, (n_poles, n_devices).
        self._sigma_V = np.sqrt(var_per_k2[:n_poles, None] * k2[None, :])
        # White noise of one-sided density w sampled at fs has variance w^2 fs / 2.
        white2 = (params.noise_white_uV_per_rtHz * 1e-6) ** 2 * self.fs_Hz / 2
        self._white_sigma_V = np.sqrt(white2 + var_per_k2[n_poles] * k2)
        # Unit-variance pole states, stationary start: (n_poles, n_devices).
        self._x = rng.standard_normal((n_poles, params.n_devices))

    def _fit_variances(self, f_min_Hz: float) -> FloatArray:
        """Variance of each process per unit ``k^2`` (V^2/Hz at 1 Hz), fitted to ``1/f``."""
        from scipy.optimize import nnls  # imported here: keeps scipy off the start-up path

        f = np.geomspace(10 * f_min_Hz, self.fs_Hz / 2, 400)
        cos_w = np.cos(2.0 * np.pi * f / self.fs_Hz)[:, None]
        a = self._a[None, :]
        # One-sided PSD of a unit-variance AR(1): 2 (1 - a^2) / fs / |1 - a e^{-jw}|^2.
        basis = 2.0 * (1.0 - a**2) / self.fs_Hz / (1.0 - 2.0 * a * cos_w + a**2)
        basis = np.hstack([basis, np.full((f.size, 1), 2.0 / self.fs_Hz)])
        var, _ = nnls(basis * f[:, None], np.ones(f.size))
        return var

    def generate(self, n_samples: int, *, backend: str = "auto") -> FloatArray:
        """Next ``n_samples`` of noise, shape ``(n_devices, n_samples)``, volts.

        ``backend``: ``"lfilter"`` runs one scipy ``lfilter`` per pole (the reference);
        ``"numba"`` runs the same recursion compiled (``y = a y_prev + b0 w``, then the
        weighted sum over poles in pole order: the operations and their order are lfilter's,
        so the bits are identical, checked in ``tests/afe/test_reference.py``) without the
        per-call overhead of ~15 lfilter calls that dominated short blocks (~0.3 ms for 16
        samples); ``"auto"`` picks numba when it is installed.
        """
        if backend == "auto":
            backend = "numba" if HAVE_NUMBA else "lfilter"
        n_poles = self._a.size
        w = self._rng.standard_normal((n_samples, n_poles + 1, self._x.shape[1]))
        if backend == "numba":
            if not HAVE_NUMBA:
                raise RuntimeError("backend 'numba' requested but numba is not installed")
            out = np.empty((self._x.shape[1], n_samples))
            _ar1_sum_nb(w, self._a, self._b0, self._x, self._sigma_V, self._white_sigma_V, out)
            return out
        if backend != "lfilter":
            raise ValueError(f"backend must be 'auto', 'numba' or 'lfilter', got {backend!r}")
        return self._filter_lfilter(w)

    def _filter_lfilter(self, w: FloatArray) -> FloatArray:
        """Reference path of :meth:`generate`: one scipy lfilter per pole."""
        from scipy.signal import lfilter  # imported here: scipy.signal costs ~2 s at start-up

        n_samples = w.shape[0]
        n_poles = self._a.size
        out = self._white_sigma_V[:, None] * w[:, n_poles, :].T  # (n_devices, n_samples)
        # One lfilter per pole (along time, on a contiguous copy: lfilter along a strided axis
        # is far slower) replaces the time loop; each runs over all devices at once.
        for k in range(n_poles):
            a = self._a[k]
            y, _ = lfilter(
                [self._b0[k]],
                [1.0, -a],
                np.ascontiguousarray(w[:, k, :].T),
                axis=-1,
                zi=(a * self._x[k])[:, None],
            )
            if n_samples:
                self._x[k] = y[:, -1]
            out += self._sigma_V[k][:, None] * y
        return out

    def skip(self, n_samples: int) -> None:
        """Advance the processes by ``n_samples`` without producing them (exact in law).

        An AR(1) state jumps exactly: ``x_{n+m} = a^m x_n + sqrt(1 - a^(2m)) e`` with ``e``
        standard normal, so a long idle gap costs one draw per process instead of ``m``. The
        skipped white samples are independent of everything later and need no draws. (The
        random stream differs from generating and discarding, the distribution does not.)
        """
        if n_samples <= 0:
            return
        am = self._a[:, None] ** n_samples  # (n_poles, 1)
        e = self._rng.standard_normal(self._x.shape)
        self._x = am * self._x + np.sqrt(1.0 - am * am) * e


def _ar1_sum_kernel(w: Any, a: Any, b0: Any, x: Any, sigma: Any, white_sigma: Any,
                    out: Any) -> None:  # pragma: no cover - compiled by numba
    """The time loop of :meth:`ReferenceNoise._filter_lfilter`, same operations in order.

    ``w`` (n_samples, n_poles + 1, n_devices) unit normals, ``x`` (n_poles, n_devices) pole
    states (updated in place), ``out`` (n_devices, n_samples) written. lfilter's transposed
    direct form II for ``b = [b0], a = [1, -a]`` computes ``y = z + b0 w`` then
    ``z = 0 w - (-a) y``, i.e. ``a y`` exactly; the output adds the white term first, then
    ``sigma_k y_k`` for k = 0, 1, ... as the reference does.
    """
    n_samples, n_poles1, n_dev = w.shape
    n_poles = n_poles1 - 1
    for d in range(n_dev):
        for n in range(n_samples):
            out[d, n] = white_sigma[d] * w[n, n_poles, d]
    for k in range(n_poles):
        ak = a[k]
        bk = b0[k]
        for d in range(n_dev):
            z = ak * x[k, d]
            s = sigma[k, d]
            y = 0.0
            for n in range(n_samples):
                y = z + bk * w[n, k, d]
                z = ak * y
                out[d, n] += s * y
            if n_samples:
                x[k, d] = y


if HAVE_NUMBA:
    _ar1_sum_nb = numba.njit(cache=True, error_model="numpy")(_ar1_sum_kernel)
