"""EIS engine maths: excitation waveforms, the tone estimator, path compensation (pure).

The on-chip EIS engine (an extension of the ADBMS6830 personality, REFERENCE.md 5) excites the
cells with a current at frequency ``f``, samples every cell voltage (and the current)
synchronously at a modest rate ``f_s`` and estimates the complex amplitude at ``f`` over an
integer number of periods after a settling time. This module holds the pure parts; the engine
that drives a chip and a pack in emulated time is :mod:`bms_emu.device.eis_engine`.

Excitation
----------
* **external** (:func:`sine_breakpoints`, :func:`multisine`): an external current source (or the
  pack's own current controller) adds ``A sin(2 pi f t)`` to the pack current; every cell of the
  string sees it. A multisine puts all frequencies in one record; the crest factor is lowered
  with Schroeder phases (:func:`schroeder_phases`) and optionally iterative clipping
  (:func:`clip_optimise_phases`). The engine knows the current through the chip's current
  channel (sampled in the same ticks as the voltages; shunt gain error is a |Z| gain error).
* **balance** (:func:`square_wave_fundamental`): the cell's own bleed switch is toggled on/off at
  ``f`` (50 % square wave), so the cell is discharged by ``I_on = V/R_bleed`` (~100 mA for
  30 Ohm) during the "on" half-periods. The fundamental has amplitude ``2/pi I_on`` (63.7 % of the
  peak); the odd harmonics at 3f, 5f, ... fall on DFT bins orthogonal to ``f`` over integer
  periods, so they do not bias the estimate. The DC part ``I_on/2`` drifts the SOC (removed by
  detrending). The engine derives the bleed current from its own measurement of the cell
  voltage: ``I_b = s(t) V_meas / (R_bleed + R_on)`` with the switch state ``s`` it commands
  (bleed resistor tolerance is a direct |Z| gain error). The alternative "sine-PWM" (duty
  ``(1 + sin)/2`` updated in steps) has a purer spectrum but the same fundamental at half
  the peak; see :class:`bms_emu.device.eis_engine.EisSettings`.

Estimation
----------
Samples ``y[n]`` at times ``t[n]`` over an integer number of periods are fitted by linear least
squares with ``y = sum_k c_k P_k(t) + a cos(w t) + b sin(w t)`` (:func:`fit_tone`), ``P_k``
Legendre polynomials of degree ``0..poly_degree`` over the record (the joint "sine + drift" fit
of REFERENCE.md 5). With ``poly_degree = 0`` this is exactly the single-bin DFT over integer
periods (:func:`dft_bin`), which leaks a linear drift ``a`` (V/s) into the bin as ``a/(pi f)``
(:func:`drift_leakage`). The phasor convention is ``y = Re{X exp(j w t)}``, i.e.
``X = a - j b``. The standard uncertainty comes from the residual: ``sigma^2 (A^T A)^-1``
(for white residuals this is ``sigma sqrt(2/M)`` per component, REFERENCE.md 5).

Path compensation
-----------------
A sample stamped at the *end* of its conversion is the sinc3-weighted mean of the input over the
window before it: a pure delay of half the window (:func:`sinc3_response`), and the magnitude
``|sinc(f T_dec)|^3`` (negligible below 1 Hz). Averaging ``K`` consecutive conversions adds a
boxcar (:func:`boxcar_response`), the chip's IIR post-filter ``k/(1-(1-k) z^-1)`` a phase of
up to ``-arctan`` class (:func:`iir_response`). :func:`path_response` multiplies them; the
estimator divides the voltage and current phasors by the response of their own path, so only
the difference of the paths matters for Z, but both are compensated.

Arrays: records are time-major, ``(n_samples, n_channels)``; phasors ``(n_channels,)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "COVERAGE_K95",
    "ToneFit",
    "boxcar_response",
    "clip_optimise_phases",
    "crest_factor",
    "dft_bin",
    "drift_leakage",
    "fit_tone",
    "iir_response",
    "integer_period_record",
    "multisine",
    "path_response",
    "schroeder_phases",
    "sinc3_response",
    "sine_breakpoints",
    "square_wave_fundamental",
]

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]

#: Radius factor of a 95 % circle for a circular complex Gaussian error with per-component
#: standard deviation ``u``: ``P(|e| <= k u) = 1 - exp(-k^2 / 2)`` -> ``k = sqrt(-2 ln 0.05)``.
COVERAGE_K95 = math.sqrt(-2.0 * math.log(0.05))


# --------------------------------------------------------------------------------- excitation


def sine_breakpoints(
    f_Hz: float,
    amplitude_A: float,
    duration_s: float,
    *,
    points_per_period: int = 64,
    dc_offset_A: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Breakpoints of ``dc + A sin(2 pi f t)`` on ``[0, duration_s]`` for linear interpolation.

    Parameters
    ----------
    f_Hz, amplitude_A : float
    duration_s : float
        Span; an integer number of periods keeps the end at the DC value.
    points_per_period : int
        Breakpoints per period (64: the linear interpolation's fundamental is low by
        ``sinc^2(1/64) ~ 0.08 %``, which the engine's current measurement sees as well).
    dc_offset_A : float

    Returns
    -------
    t_s, current_A : ndarray, shape (n,)

    >>> t, i = sine_breakpoints(1.0, 2.0, 1.0, points_per_period=4)
    >>> np.round(i, 12).tolist()
    [0.0, 2.0, 0.0, -2.0, -0.0]
    """
    n = max(1, round(duration_s * f_Hz * points_per_period))
    t = np.linspace(0.0, duration_s, n + 1)
    return t, dc_offset_A + amplitude_A * np.sin(2 * np.pi * f_Hz * t)


def schroeder_phases(n_tones: int) -> FloatArray:
    """Schroeder phases ``phi_k = -pi k (k - 1) / n`` (k = 1..n) for equal-amplitude tones.

    >>> schroeder_phases(3).round(4).tolist()
    [-0.0, -2.0944, -6.2832]
    """
    k = np.arange(1, n_tones + 1)
    return -np.pi * k * (k - 1) / n_tones


def multisine(
    t_s: ArrayLike, f_Hz: ArrayLike, amplitude_A: ArrayLike, phase_rad: ArrayLike
) -> FloatArray:
    """``sum_k A_k cos(2 pi f_k t + phi_k)``, shape of ``t_s``.

    Parameters
    ----------
    t_s : array_like, shape (n,)
    f_Hz, amplitude_A, phase_rad : array_like, shape (n_tones,) (amplitude may be scalar)
    """
    t = np.asarray(t_s, dtype=float)
    f = np.asarray(f_Hz, dtype=float)
    a = np.broadcast_to(np.asarray(amplitude_A, dtype=float), f.shape)
    ph = np.asarray(phase_rad, dtype=float)
    # (n, n_tones) @ (n_tones,) replaces the loop over tones
    return np.cos(2 * np.pi * t[..., None] * f + ph) @ a


def crest_factor(x: ArrayLike) -> float:
    """Peak over RMS of a zero-mean record.

    >>> round(crest_factor(np.sin(np.linspace(0, 2 * np.pi, 1000, endpoint=False))), 4)
    1.4142
    """
    v = np.asarray(x, dtype=float)
    return float(np.max(np.abs(v)) / np.sqrt(np.mean(v * v)))


def clip_optimise_phases(
    f_Hz: ArrayLike,
    phase_rad: ArrayLike,
    *,
    f_base_Hz: float,
    n_iter: int = 50,
    n_samples: int = 4096,
    clip: float = 0.9,
) -> FloatArray:
    """Lower the crest factor by iterative clipping (Van der Ouderaa 1988).

    One period of ``1/f_base_Hz`` on ``n_samples`` points: clip the signal at ``clip`` x its
    peak, keep the phases of the clipped signal at the tone bins, repeat; returns the best.

    Parameters
    ----------
    f_Hz : array_like, shape (n_tones,)
        Multiples of ``f_base_Hz``.
    phase_rad : array_like, shape (n_tones,)
        Start phases (e.g. Schroeder).
    """
    f = np.asarray(f_Hz, dtype=float)
    bins = np.rint(f / f_base_Hz).astype(int)
    if np.any(np.abs(bins * f_base_Hz - f) > 1e-9 * f) or bins.max() >= n_samples // 2:
        raise ValueError("tones must be multiples of f_base_Hz below n_samples/2")
    ph = np.asarray(phase_rad, dtype=float).copy()
    t = np.arange(n_samples) / (n_samples * f_base_Hz)
    best, best_cf = ph.copy(), crest_factor(multisine(t, f, 1.0, ph))
    for _ in range(n_iter):
        x = multisine(t, f, 1.0, ph)
        peak = np.max(np.abs(x))
        spec = np.fft.rfft(np.clip(x, -clip * peak, clip * peak))
        ph = np.angle(spec[bins])
        cf = crest_factor(multisine(t, f, 1.0, ph))
        if cf < best_cf:
            best, best_cf = ph.copy(), cf
    return best


def square_wave_fundamental(peak_A: float, duty: float = 0.5) -> float:
    """Amplitude of the fundamental of a 0/``peak_A`` pulse train with ``duty``.

    ``2 peak sin(pi duty) / pi``; 50 % gives ``2/pi peak``.

    >>> round(square_wave_fundamental(0.1), 6)
    0.063662
    """
    return 2.0 * peak_A * math.sin(math.pi * duty) / math.pi


def integer_period_record(
    f_Hz: float,
    *,
    n_periods: int = 3,
    settle_periods: float = 1.0,
    min_integration_s: float = 0.0,
    f_sample_Hz: float = 20.0,
) -> tuple[float, int]:
    """Settling time and number of integration samples for one frequency.

    The integration span is the smallest whole number of periods ``>= n_periods`` and
    ``>= min_integration_s``; it is also a whole number of samples when ``f_sample_Hz / f_Hz`` is
    an integer (checked).

    Returns
    -------
    settle_s : float
    n_samples : int
    """
    if n_periods < 1:
        raise ValueError(f"n_periods must be >= 1, got {n_periods}")
    spp = f_sample_Hz / f_Hz
    if abs(spp - round(spp)) > 1e-9 * spp:
        raise ValueError(f"f_sample_Hz / f_Hz = {spp} must be an integer (samples per period)")
    periods = max(n_periods, math.ceil(min_integration_s * f_Hz - 1e-9))
    return settle_periods / f_Hz, round(periods * spp)


# --------------------------------------------------------------------------------- estimation


@dataclass(frozen=True)
class ToneFit:
    """Result of :func:`fit_tone`.

    Attributes
    ----------
    phasor : ndarray, complex, shape (n_channels,)
        ``X`` with ``y ~ Re{X exp(j w t)}`` (the estimate at ``f``).
    u_phasor : ndarray, shape (n_channels,)
        Standard uncertainty of each of Re X and Im X (the larger of the two), from the residual.
    sigma : ndarray, shape (n_channels,)
        Residual standard deviation per sample.
    poly : ndarray, shape (n_terms, n_channels)
        Drift coefficients (Legendre basis over the record: degrees 0.. for the sine model,
        1.. for the periodic model).
    """

    phasor: ComplexArray
    u_phasor: FloatArray
    sigma: FloatArray
    poly: FloatArray


def _legendre_columns(t: FloatArray, degrees: range) -> FloatArray:
    """Legendre polynomials of the given degrees over the span of ``t``, shape (n, len)."""
    span = t[-1] - t[0]
    x = 2 * (t - t[0]) / span - 1 if span > 0 else np.zeros(t.size)
    eye = np.eye(max(degrees.stop, 1))
    cols = [np.polynomial.legendre.legval(x, eye[k]) for k in degrees]
    return np.stack(cols, axis=1) if cols else np.zeros((t.size, 0))


def fit_tone(
    t_s: ArrayLike,
    y: ArrayLike,
    f_Hz: float,
    poly_degree: int = 1,
    samples_per_period: int | None = None,
) -> ToneFit:
    """Tone at ``f_Hz`` plus a polynomial drift by linear least squares, vectorised over channels.

    Two models, both linear least squares:

    * ``samples_per_period = None``: ``y = sum_k c_k P_k(t) + a cos(w t) + b sin(w t)``
      (``P_k`` Legendre, degree ``0..poly_degree``); the noise ``sigma`` is the residual's.
    * ``samples_per_period = N`` with ``n`` a multiple (>= 2) of ``N``: ``y = sum_k c_k P_k(t)
      + p(t)`` with ``p`` *any* N-periodic waveform (the tone and all its harmonics: a square
      wave's odd harmonics would otherwise leak into the drift terms, which are not orthogonal
      to them, and count as noise) and ``k = 1..poly_degree``. Solved by Frisch-Waugh-Lovell:
      the periodic part is the synchronous average over the periods, the drift is fitted to the
      residuals of both ``y`` and the polynomials after removing their synchronous averages;
      the tone is the fundamental DFT bin of the periodic part. Its noise variance is the
      same as the single-tone fit's (``2 sigma^2 / n``); ``sigma`` has ``n - N - poly_degree``
      degrees of freedom (Pintelon & Schoukens' nonparametric noise estimate).

    ``poly_degree = 0`` gives the plain single-bin DFT over integer periods (no detrending).

    Parameters
    ----------
    t_s : array_like, shape (n,)
        Sample times (s), uniformly spaced over an integer number of periods of ``f_Hz``.
    y : array_like, shape (n,) or (n, n_channels)
    f_Hz : float
    poly_degree : int
    samples_per_period : int, optional

    Returns
    -------
    ToneFit
    """
    t = np.asarray(t_s, dtype=float)
    yy = np.asarray(y, dtype=float)
    one = yy.ndim == 1
    if one:
        yy = yy[:, None]
    n = t.size
    if yy.shape[0] != n:
        raise ValueError(f"y has {yy.shape[0]} samples, t_s {n}")
    w = 2 * np.pi * f_Hz
    spp = samples_per_period
    if spp is not None and spp > 2 and n % spp == 0 and n // spp >= 2:
        ph, u, sigma, coef = _fit_periodic(t, yy, w, poly_degree, spp)
    else:
        ph, u, sigma, coef = _fit_sine(t, yy, w, poly_degree)
    if one:
        return ToneFit(ph[:1], u[:1], sigma[:1], coef[:, :1])
    return ToneFit(ph, u, sigma, coef)


def _fit_sine(
    t: FloatArray, yy: FloatArray, w: float, poly_degree: int
) -> tuple[ComplexArray, FloatArray, FloatArray, FloatArray]:
    n = t.size
    p = poly_degree + 1
    if n <= p + 2:
        raise ValueError("record too short for the fit")
    a = np.concatenate(
        [_legendre_columns(t, range(p)), np.cos(w * t)[:, None], np.sin(w * t)[:, None]], axis=1
    )  # (n, p + 2)
    # one factorisation for all channels replaces a per-channel lstsq loop
    q, r = np.linalg.qr(a)
    coef = np.linalg.solve(r, q.T @ yy)  # (p + 2, n_ch)
    res = yy - a @ coef
    sigma = np.sqrt(np.sum(res * res, axis=0) / (n - p - 2))
    rinv = np.linalg.inv(r)
    cov = rinv @ rinv.T  # (A^T A)^-1
    u = sigma * math.sqrt(max(cov[p, p], cov[p + 1, p + 1]))
    return coef[p] - 1j * coef[p + 1], u, sigma, coef[:p]


def _sync_avg(x: FloatArray, spp: int) -> FloatArray:
    """Synchronous average over periods, tiled back to the record: (n, m) -> (n, m)."""
    per = x.reshape(x.shape[0] // spp, spp, -1)
    return np.broadcast_to(per.mean(axis=0), per.shape).reshape(x.shape)


def _fit_periodic(
    t: FloatArray, yy: FloatArray, w: float, poly_degree: int, spp: int
) -> tuple[ComplexArray, FloatArray, FloatArray, FloatArray]:
    n = t.size
    pc = _legendre_columns(t, range(1, poly_degree + 1))  # (n, d), no constant (in the periodic)
    pr = pc - _sync_avg(pc, spp) if pc.shape[1] else pc
    y_r = yy - _sync_avg(yy, spp)
    if pc.shape[1]:
        # drift from the de-periodised data (Frisch-Waugh-Lovell); one lstsq for all channels
        coef, *_ = np.linalg.lstsq(pr, y_r, rcond=None)  # (d, n_ch)
        res = y_r - pr @ coef
        periodic_in = yy - pc @ coef
    else:
        coef = np.zeros((0, yy.shape[1]))
        res = y_r
        periodic_in = yy
    dof = n - spp - pc.shape[1]
    sigma = np.sqrt(np.sum(res * res, axis=0) / max(dof, 1))
    e = np.exp(-1j * w * t)
    ph = (2.0 / n) * (e @ periodic_in)
    # exact variance of Re/Im of the tone for white noise: weights g - P_r (P_r^T P_r)^-1 P^T g
    g = np.stack([(2.0 / n) * np.cos(w * t), -(2.0 / n) * np.sin(w * t)], axis=1)  # (n, 2)
    if pc.shape[1]:
        g = g - pr @ np.linalg.solve(pr.T @ pr, pc.T @ g)
    u = sigma * math.sqrt(float(np.max(np.sum(g * g, axis=0))))
    return np.asarray(ph, dtype=complex), u, sigma, np.asarray(coef, dtype=float)


def dft_bin(y: ArrayLike, f_Hz: float, f_sample_Hz: float, t0_s: float = 0.0) -> ComplexArray:
    """Single-bin DFT ``(2/M) sum y[n] exp(-j w t_n)``, ``t_n = t0 + n/f_s``, over axis 0.

    Over an integer number of periods this equals :func:`fit_tone` with ``poly_degree=0``.

    Parameters
    ----------
    y : array_like, shape (M,) or (M, n_channels)
    """
    yy = np.asarray(y, dtype=float)
    m = yy.shape[0]
    t = t0_s + np.arange(m) / f_sample_Hz
    e = np.exp(-2j * np.pi * f_Hz * t)
    return np.asarray((2.0 / m) * np.tensordot(e, yy, axes=(0, 0)))


def drift_leakage(drift_V_per_s: float, f_Hz: float) -> float:
    """Magnitude a linear drift leaks into the single bin over integer periods: ``a/(pi f)``.

    >>> round(drift_leakage(10e-6, 0.01) * 1e6, 1)
    318.3
    """
    return abs(drift_V_per_s) / (math.pi * f_Hz)


# --------------------------------------------------------------------------- path compensation


def sinc3_response(
    f_Hz: ArrayLike, t_dec_s: float, window_s: float, f_mod_Hz: float | None = None
) -> ComplexArray:
    """Response of a sinc3 conversion stamped at the window end: ``|H| e^{-jw W/2}``.

    ``|H| = (sin(pi f R / f_mod) / (R sin(pi f / f_mod)))^3`` with ``R = t_dec f_mod``, or its
    continuous limit ``sinc^3(f T_dec)`` when ``f_mod_Hz`` is None (identical to 1e-9 for
    R = 1024 below 1 kHz).

    Parameters
    ----------
    f_Hz : array_like
    t_dec_s : float
        Decimation period ``R / f_mod``.
    window_s : float
        Time from the start of the sinc3 window to the time stamp (twice the delay: the kernel
        is symmetric).
    f_mod_Hz : float, optional
        Modulator clock.
    """
    f = np.asarray(f_Hz, dtype=float)
    if f_mod_Hz is None:
        mag = np.sinc(f * t_dec_s) ** 3
    else:
        r = t_dec_s * f_mod_Hz
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.sin(np.pi * f * t_dec_s) / (r * np.sin(np.pi * f / f_mod_Hz))
        mag = np.where(f == 0, 1.0, d) ** 3
    return np.asarray(mag * np.exp(-1j * np.pi * f * window_s), dtype=complex)


def boxcar_response(f_Hz: ArrayLike, n_avg: int, t_conv_s: float) -> ComplexArray:
    """Mean of ``n_avg`` results ``t_conv_s`` apart, stamped at the last one.

    ``sin(pi f K T) / (K sin(pi f T)) e^{-j pi f (K - 1) T}``.
    """
    f = np.asarray(f_Hz, dtype=float)
    x = np.pi * f * t_conv_s
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = np.where(x == 0, 1.0, np.sin(n_avg * x) / (n_avg * np.sin(x)))
    return np.asarray(mag * np.exp(-1j * x * (n_avg - 1)), dtype=complex)


def iir_response(f_Hz: ArrayLike, k: float, f_odr_Hz: float = 1000.0) -> ComplexArray:
    """``k / (1 - (1 - k) e^{-j w / f_odr})``, the chip's IIR post-filter at ``f``.

    >>> bool(abs(iir_response(0.0, 1 / 16) - 1) < 1e-12)
    True
    """
    f = np.asarray(f_Hz, dtype=float)
    return np.asarray(k / (1 - (1 - k) * np.exp(-2j * np.pi * f / f_odr_Hz)), dtype=complex)


def path_response(
    f_Hz: ArrayLike,
    *,
    t_dec_s: float,
    window_s: float,
    n_avg: int = 1,
    t_conv_s: float = 1e-3,
    iir_k: float | None = None,
) -> ComplexArray:
    """Total response of the sample path (sinc3 window, block average, optional IIR).

    Divide a measured phasor by this to refer it to the input at the sample time stamps.
    """
    h = sinc3_response(f_Hz, t_dec_s, window_s) * boxcar_response(f_Hz, n_avg, t_conv_s)
    if iir_k is not None:
        h = h * iir_response(f_Hz, iir_k, 1.0 / t_conv_s)
    return np.asarray(h)
