"""Conversion mode: the fast statistical twin of cycle mode (modulator + sinc3), no bits simulated.

A cycle-mode result is the sinc3-weighted average of the modulator input plus noise. Conversion
mode computes exactly that:

* **signal**: ``u_mean[m] = sum_j h[j] / R**3 * u[n_m - 1 - j]``, with ``h`` the integer
  triangle-squared kernel (length ``3R - 2``, :func:`~bms_emu.afe.sinc3.sinc3_impulse_response`),
  ``u = v_in_V / v_ref_V``, ``n_m = (m + 1) R - 1`` the clock of output ``m`` and 1 the
  modulator's signal delay (``STF = z**-1``). The STF has unity gain in the signal band, so
  no other correction is needed;
* **noise**, in units of ``u``: thermal, variance ``g_thermal / R * (sigma_noise_V /
  v_ref_V)**2``, correlated between consecutive continuous results like an MA(2) process with
  lag correlations ``rho1``, ``rho2`` (consecutive sinc3 windows overlap by two thirds), plus
  the modulator's quantisation noise, white, variance ``q_var_R5 / R**5``. These figures are
  *measured from cycle mode* (:func:`measure_noise_figures`) and stored in
  :data:`MEASURED_NOISE`. Theory for comparison (large R): ``g_thermal = 66/120 = 0.55``,
  ``rho1 = 26/66``, ``rho2 = 1/66`` (the quintic B-spline, autocorrelation of the quadratic one);
* **quantisation** to the sinc3 LSB: ``D = floor(R**3 (1 + u) / 2 + 1/2)`` clipped to
  ``[0, R**3]``: the same integer code cycle mode produces, so the code mapping
  (:func:`~bms_emu.afe.adc_params.cell_code_from_sinc3`) and the IIR filter apply unchanged.

Arrays: a population is any shape ``pop`` (typically ``(n_devices, n_channels)``); DC inputs
are ``pop``-shaped; time-varying inputs carry a leading time axis at the modulator rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bms_emu.afe.adc_params import F_MOD_HZ, R_CADC, R_SADC
from bms_emu.afe.sinc3 import sinc3_impulse_response

__all__ = [
    "MEASURED_NOISE",
    "SIGMA_NOISE_V",
    "NoiseFigures",
    "convert_continuous",
    "convert_dc",
    "convert_window",
    "ma2_coefficients",
    "measure_noise_figures",
    "noise_figures",
]

#: Default input-referred thermal noise per modulator sample (V rms). Assumption, no public
#: figure: gives 46 uV rms at the modulator input per 1 ms result, 139 uV cell-referred
#: (~0.9 LSB of 150 uV), comparable to the chip class's single-conversion noise.
SIGMA_NOISE_V = 2.0e-3

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NoiseFigures:
    """Noise of cycle-mode results, normalised so one set describes any nearby ``R``.

    Attributes
    ----------
    R : int
        Decimation ratio the figures were measured at.
    g_thermal : float
        ``R * var(u_out) / (sigma_noise_V / v_ref_V)**2`` for white input noise.
    rho1, rho2 : float
        Correlation of consecutive continuous results at lags 1 and 2 (thermal part).
    q_var_R5 : float
        ``R**5 * var(u_out)`` without thermal noise (modulator quantisation noise, white).
    """

    R: int
    g_thermal: float
    rho1: float
    rho2: float
    q_var_R5: float


# Measured with measure_noise_figures(np.random.default_rng(2024), R) on the cycle-mode kernel
# (numba backend, bit-identical to numpy) with n_results=2000 for R_CADC and 400 for R_SADC:
# 64 channels, thermal figures at sigma = 20 mV and v_ref = 3 V, DC inputs u spread over +-0.5
# across the channels; q_var_R5 from the same inputs with sigma = 0. Statistical uncertainty
# (1 sigma): g_thermal +-0.5 % (C) / +-1 % (S), rho1 and rho2 +-0.003 (C) / +-0.006 (S).
# Re-run those calls to refresh the numbers.
MEASURED_NOISE: dict[int, NoiseFigures] = {
    R_CADC: NoiseFigures(R=R_CADC, g_thermal=0.5461, rho1=0.3918, rho2=0.01387, q_var_R5=0.05121),
    R_SADC: NoiseFigures(R=R_SADC, g_thermal=0.5527, rho1=0.3961, rho2=0.02059, q_var_R5=0.02846),
}


def noise_figures(R: int) -> NoiseFigures:
    """Stored figures for ``R`` (``R_CADC`` or ``R_SADC``); other ratios must be measured."""
    try:
        return MEASURED_NOISE[R]
    except KeyError:
        raise KeyError(f"no measured noise figures for R = {R}; call "
                       f"measure_noise_figures(rng, {R}) and pass figures=...") from None


def ma2_coefficients(rho1: float, rho2: float) -> FloatArray:
    """Minimum-phase ``b`` (shape (3,)) with ``sum b**2 = 1``, lag-1 ``rho1``, lag-2 ``rho2``.

    Spectral factorisation: the roots of ``rho2 z**4 + rho1 z**3 + z**2 + rho1 z + rho2`` come in
    pairs ``(a, 1/a)``; the ones inside the unit circle are the zeros of ``b``.

    >>> b = ma2_coefficients(26 / 66, 1 / 66)
    >>> bool(np.allclose([b @ b, b[:2] @ b[1:], b[0] * b[2]], [1, 26 / 66, 1 / 66]))
    True
    """
    roots = np.roots([rho2, rho1, 1.0, rho1, rho2])
    inside = roots[np.abs(roots) < 1.0]
    b = np.real(np.poly(inside)) if inside.size else np.array([1.0])
    b = np.concatenate([b, np.zeros(3 - b.size)])
    return b / np.sqrt(b @ b)


def _quantise(u: FloatArray, R: int) -> IntArray:
    """Weighted mean of v in [-1, 1] -> sinc3 code D (round half up, clipped)."""
    r3 = float(R**3)
    d = np.floor(r3 * (1.0 + u) * 0.5 + 0.5)
    return np.minimum(np.maximum(d, 0.0), r3).astype(np.int64)


def _noise_var_u(sigma_noise_V: float, v_ref_V: ArrayLike, R: int,
                 fig: NoiseFigures) -> tuple[FloatArray, float]:
    """(thermal variance in u units, shape of v_ref; quantisation variance)."""
    th = fig.g_thermal / R * (sigma_noise_V / np.asarray(v_ref_V, dtype=np.float64)) ** 2
    return th, fig.q_var_R5 / float(R) ** 5


def convert_dc(v_in_V: ArrayLike, v_ref_V: ArrayLike, rng: np.random.Generator,
               sigma_noise_V: float = SIGMA_NOISE_V, *, R: int = R_CADC,
               figures: NoiseFigures | None = None) -> IntArray:
    """Independent settled conversions of DC inputs over a population.

    Parameters
    ----------
    v_in_V, v_ref_V : array_like
        Modulator input and reference (V), broadcast together to the population shape ``pop``,
        e.g. ``(n_devices, n_channels)``.
    rng : numpy.random.Generator
    sigma_noise_V : float
        Input-referred thermal noise per modulator sample (V rms), as in cycle mode.
    R : int
        Decimation ratio.
    figures : NoiseFigures, optional
        Defaults to the stored measurement for ``R``.

    Returns
    -------
    ndarray of int64, shape ``pop``
        sinc3 codes ``D``, distributed like cycle-mode results of a settled converter.
    """
    fig = figures if figures is not None else noise_figures(R)
    v_ref = np.asarray(v_ref_V, dtype=np.float64)
    u = np.asarray(v_in_V, dtype=np.float64) / v_ref
    th, q = _noise_var_u(sigma_noise_V, v_ref, R, fig)
    sd = np.sqrt(th + q)
    return _quantise(u + sd * rng.standard_normal(u.shape), R)


def convert_window(v_window_V: ArrayLike, v_ref_V: ArrayLike, rng: np.random.Generator,
                   sigma_noise_V: float = SIGMA_NOISE_V, *, R: int = R_CADC,
                   figures: NoiseFigures | None = None) -> IntArray:
    """One conversion of a time-varying input given as samples over its sinc3 window.

    Parameters
    ----------
    v_window_V : array_like, shape (3R - 2, *pop)
        Modulator input (V) at the modulator rate, oldest first: the samples at clocks
        ``n_m - 1 - (3R - 3) .. n_m - 1`` of the result at clock ``n_m`` (the modulator delays
        its input by one clock).
    v_ref_V : array_like
        Reference (V): ``pop``-broadcastable (constant), or shape ``(3R - 2, *pop)``.
    rng, sigma_noise_V, R, figures
        As :func:`convert_dc`.

    Returns
    -------
    ndarray of int64, shape ``pop``
    """
    fig = figures if figures is not None else noise_figures(R)
    v = np.asarray(v_window_V, dtype=np.float64)
    if v.shape[0] != 3 * R - 2:
        raise ValueError(f"window must have 3R-2 = {3 * R - 2} samples, got {v.shape[0]}")
    w = sinc3_impulse_response(R)[::-1] / float(R**3)  # symmetric; reversed for clarity
    v_ref = np.asarray(v_ref_V, dtype=np.float64)
    if v_ref.ndim >= 1 and v_ref.shape[0] == 3 * R - 2 and v_ref.ndim == v.ndim:
        u = np.tensordot(w, v / v_ref, axes=(0, 0))
        v_ref_eff = np.tensordot(w, v_ref, axes=(0, 0))
    else:
        u = np.tensordot(w, v, axes=(0, 0)) / v_ref
        v_ref_eff = v_ref
    th, q = _noise_var_u(sigma_noise_V, v_ref_eff, R, fig)
    u = np.asarray(u)
    return _quantise(u + np.sqrt(th + q) * rng.standard_normal(u.shape), R)


def _sinc3_means(u: FloatArray, R: int) -> FloatArray:
    """Noise-free continuous results m = 2 .. n_samples//R - 1 (polyphase, 3 MACs/sample)."""
    n = u.shape[0]
    n_blocks = n // R
    # p[i] = u[i - 1]: the modulator's one-clock delay; p[0], p[1] get zero weight below
    p = np.concatenate([np.zeros((1, *u.shape[1:])), u[: n_blocks * R - 1]])
    blocks = p.reshape(n_blocks, R, *u.shape[1:])
    h = sinc3_impulse_response(R).astype(np.float64) / float(R**3)
    hp = np.concatenate([h, [0.0, 0.0]])  # length 3R; j = 3R-2, 3R-1 carry no weight
    r = np.arange(R)
    # weight of block (m - 2 + q), position r, in result m: h[(3 - q) R - 1 - r]
    w = np.stack([hp[(3 - q) * R - 1 - r] for q in range(3)])  # (3, R)
    a = np.tensordot(blocks, w, axes=(1, 1))  # (n_blocks, *pop, 3): replaces a loop over m
    a = np.moveaxis(a, -1, 0)
    return a[0, :-2] + a[1, 1:-1] + a[2, 2:]


def convert_continuous(v_in_V: ArrayLike | Callable[[FloatArray], ArrayLike],
                       v_ref_V: ArrayLike, rng: np.random.Generator,
                       sigma_noise_V: float = SIGMA_NOISE_V, *, R: int = R_CADC,
                       n_samples: int | None = None, pop_shape: tuple[int, ...] = (),
                       f_mod_Hz: float = F_MOD_HZ,
                       figures: NoiseFigures | None = None) -> IntArray:
    """Continuous conversions of a time-varying input, aligned with cycle mode from reset.

    Parameters
    ----------
    v_in_V : array_like or callable
        Modulator input (V) at the modulator rate, shape ``(n_samples, *shape)`` with ``shape``
        broadcastable to ``pop_shape``; or ``f(t_s) -> (n_samples, *shape)`` with
        ``t_s = arange(n_samples) / f_mod_Hz``.
    v_ref_V : array_like
        Reference (V): scalar / ``pop``-broadcastable (constant), or shape
        ``(n_samples, *shape)`` (time-varying, same layout as ``v_in_V``).
    rng, sigma_noise_V, R, figures
        As :func:`convert_dc`.
    n_samples : int, optional
        Required for a callable input.
    pop_shape : tuple of int
        Population shape the result is broadcast to (e.g. ``(n_ch,)`` for many noise
        realisations of one input).

    Returns
    -------
    ndarray of int64, shape ``(n_samples // R - 2, *pop)``
        Codes ``D`` of cycle-mode outputs ``m = 2, 3, ...`` (outputs 0 and 1 are the sinc3's
        partial settling results and are not produced).
    """
    fig = figures if figures is not None else noise_figures(R)
    if callable(v_in_V):
        if n_samples is None:
            raise ValueError("n_samples is required when v_in_V is a callable")
        v = np.asarray(v_in_V(np.arange(n_samples) / f_mod_Hz), dtype=np.float64)
    else:
        v = np.asarray(v_in_V, dtype=np.float64)
    v_ref = np.asarray(v_ref_V, dtype=np.float64)
    time_varying_ref = v_ref.ndim == v.ndim and v_ref.shape[0] == v.shape[0] > 1
    if time_varying_ref:
        u_mean = _sinc3_means(v / v_ref, R)
        v_ref_eff = _sinc3_means(v_ref, R)
    else:
        u_mean = _sinc3_means(v, R) / v_ref
        v_ref_eff = v_ref
    n_out = u_mean.shape[0]
    shape = (n_out, *np.broadcast_shapes(u_mean.shape[1:], np.shape(v_ref_eff)[1:]
                                         if time_varying_ref else np.shape(v_ref_eff),
                                         pop_shape))
    th, q = _noise_var_u(sigma_noise_V, v_ref_eff, R, fig)
    b = ma2_coefficients(fig.rho1, fig.rho2)
    e = rng.standard_normal((n_out + 2, *shape[1:]))
    thermal = b[0] * e[2:] + b[1] * e[1:-1] + b[2] * e[:-2]  # MA(2): overlapping windows
    noise = np.sqrt(th) * thermal + np.sqrt(q) * rng.standard_normal(shape)
    return _quantise(u_mean + noise, R)


def measure_noise_figures(rng: np.random.Generator, R: int = R_CADC, *, n_ch: int = 64,
                          n_results: int = 400, sigma_noise_V: float = 20e-3,
                          v_ref_V: float = 3.0) -> NoiseFigures:
    """Measure :class:`NoiseFigures` from cycle mode (this is how the stored ones were made).

    Two runs of ``n_ch`` modulators with DC inputs spread over ``u`` in [-0.5, 0.5], each
    ``n_results`` continuous results after discarding 3 settling results: with
    ``sigma_noise_V`` for the thermal figures, and with no noise for the quantisation
    variance. Deviations are taken from the exact input ``u`` (the loop's DC gain is 1).
    """
    from bms_emu.afe.deltasigma import ModulatorState, modulate_decimate
    from bms_emu.afe.sinc3 import Sinc3State, sinc3_code_to_u

    u_dc = np.linspace(-0.5, 0.5, n_ch)

    def residuals(sigma: float) -> FloatArray:
        st = ModulatorState.new(n_ch, rng)
        codes = modulate_decimate(u_dc * v_ref_V, v_ref_V, st, Sinc3State.zeros(n_ch), R, sigma,
                                  n_samples=R * (n_results + 3))
        return sinc3_code_to_u(codes[3:], R) - u_dc

    q = residuals(0.0)
    q_var = float(np.mean(q**2))
    x = residuals(sigma_noise_V)
    var = float(np.mean(x**2))
    rho1 = float(np.mean(x[1:] * x[:-1]) / var)
    rho2 = float(np.mean(x[2:] * x[:-2]) / var)
    g = (var - q_var) * R / (sigma_noise_V / v_ref_V) ** 2
    return NoiseFigures(R=R, g_thermal=g, rho1=rho1, rho2=rho2, q_var_R5=q_var * float(R) ** 5)
