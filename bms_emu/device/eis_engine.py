"""The chip's EIS engine in emulated time: excite, sample synchronously, estimate Z per cell.

Drives one :class:`~bms_emu.device.chip_analog.ChipAnalog` over its
:class:`~bms_emu.sources.VirtualPackSource` with the maths of :mod:`bms_emu.afe.eis`.

Sample path (what the engine assumes the chip does)
----------------------------------------------------
The C-ADCs run continuously at 1 kHz. Every ``1/f_sample_Hz`` (default 16 Hz) the engine takes
the mean of the last ``n_avg`` 16-bit cell codes of every channel (default 62: every result
of the tick, a CIC-1 stage in the digital core) and, in the same conversion windows, the
current channel. Samples are time-stamped at the end of the last conversion
(``t_tick``); the engine divides each phasor by the path response (sinc3 window delay
``W/2``, block average delay ``(K-1)/2 T``, their magnitudes;
:func:`bms_emu.afe.eis.path_response`), which refers it to ``t_tick``. The emulated record
is :meth:`ChipAnalog.measure_record` with ``n_avg`` (its averaged fast path) at the block
centres ``t_tick - W/2 - (K-1)/2 T``.

What the chip knows
-------------------
* ``external``: the current from its current channel (shunt + amplifier errors; the model's
  channel is noise-free), sampled with the voltages. The excitation is ``A sin`` added to
  ``dc_offset_A`` on the pack current; the engine commands it, so during a record the pack is
  driven directly with the exact mean current of each of its steps (``pack_step_max_s``,
  ``pack_steps_per_period``)
  (the source's profile is bypassed and resumes at ``dc_offset_A`` afterwards).
* ``balance``: its own switch state; the bleed current per sample is
  ``duty * V_meas / (R_bleed + R_on)`` from its own cell measurement (nominal resistances:
  their tolerance is a |Z| gain error). Cells are excited in 4 interleaved groups (cells
  ``g, g+4, g+8, g+12``), one record per group, so each excited cell has unexcited neighbours
  (which see the sense-wire drop: the *crosstalk* impedance) and there are quiet cells two
  away (which see only what is common to the die: the self-heating reference modulation).

Corrections and systematic effects
----------------------------------
* Drift: joint fit of the tone and a Legendre polynomial of degree ``detrend_degree`` over the
  integration span (0 = the plain single-bin DFT; REFERENCE.md 5).
* Crosstalk (balance): the bleed current of cell i flows through sense wires i and i+1, adding
  ``r_sw,i + r_sw,i+1`` (~100 mOhm, 300x the cell) to cell i's reading and
  ``-r_sw,i+1`` / ``-r_sw,i`` to the neighbours above / below. The neighbours' responses
  measure exactly those wires, so ``Z_i = Z_meas,i + Z_xt,i-1 + Z_xt,i+1``; for the end cells
  (one neighbour) the missing wire is assumed equal to the measured one (exact for the model's
  uniform wires, an assumption on hardware). The crosstalk Z is reported.
* Self-heating (balance): the switches' ``I^2 R_on`` heats the die at ``f``, the reference
  follows (after the trim's tempco correction). The quiet cells' relative response at ``f``
  is reported as ``common_mode_ppm`` and, if ``common_mode_correction``, removed from the
  excited cells (``V_i -= eps * mean(V_i)``).
* Reference 1/f noise and OCV drift enter the residual and so the uncertainty.

Demodulation (``EisSettings.demodulation``)
-------------------------------------------
``fit`` (default): the float least-squares fit above. ``lockin``: the V and I phasors come from
the chip's bit-true lock-in (:mod:`bms_emu.afe.lockin`) run on integer sample codes at the
engine rate: per cell the sum of the ``n_avg`` 16-bit codes of a sample (``16 + ceil(log2
n_avg)`` bits: the CIC-1 output before any division), the current as its RDI code (1 mA),
tuning word ``tuning_word(f, f_sample_Hz)``, offset = the first integration sample, record
= the integration span (whole NCO periods, checked). External or multisine excitation (one
NCO per tone over the shared record), ``detrend_degree`` 0 or 1. With 0 the lock-in is
the plain DFT and agrees with the fit (the same estimator) to within
:func:`bms_emu.afe.lockin.error_bound` (the sample rounding and the NCO/LUT quantisation);
with 1 the host removes a linear drift with the lock-in's two moment accumulators, jointly
over a multisine's tones (their sines are orthogonal to each other but each projects on the
drift ramp; :func:`bms_emu.afe.lockin.drift_corrected_phasors`), which is the sines +
linear-drift least squares (``fit_tone`` without ``samples_per_period``; the engine's own fit
uses the periodic model) to within :func:`bms_emu.afe.lockin.drift_error_bounds`. The
bound, propagated to Z, is reported as ``EisResult.lockin_bound_Ohm``. The uncertainty is
still the fit residual's (a chip would need a sum-of-squares accumulator for it; not
modelled).

Uncertainty: the standard uncertainty of each complex component from the fit residual
(:func:`bms_emu.afe.eis.fit_tone`), propagated through ``Z = -V/I`` (and, for balance, the
crosstalk and common-mode corrections, in quadrature), plus for external excitation the
current channel's gain and shunt tolerance from the chip's spec (1 sigma, relative, added in
quadrature as if circular: conservative for a radial error); reported as the radius of a 95 %
circle (:data:`bms_emu.afe.eis.COVERAGE_K95` x u). Not included: the bleed resistor tolerance
(the model's resistor is exact; on hardware a 1 % resistor is a 1 % |Z| error).

Truth: ``VirtualPack.impedance(f)`` at the middle of each integration span, plus the busbar in
the cell's sense span (the chip measures between its pins; cells 1.. include one busbar), plus
the OCV branch ``dOCV/dSOC / (j w 3600 Q)`` (:func:`_ocv_branch_Ohm`: the SOC swing at ``f`` is
periodic, so no detrending removes it; 0.3 % of |Z| at 10 mHz).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bms_emu.afe import lockin
from bms_emu.afe.adc_params import F_MOD_HZ, LSB_V, V_CODE_ZERO_V
from bms_emu.afe.eis import (
    COVERAGE_K95,
    clip_optimise_phases,
    fit_tone,
    integer_period_record,
    path_response,
    schroeder_phases,
)

__all__ = ["EisResult", "EisSettings", "run_eis", "sweep_duration_s"]

#: Interleave of the balancing groups (cells g, g+4, ...): neighbours unexcited, quiet cells.
BALANCE_GROUP_STRIDE = 4


@dataclass(frozen=True)
class EisSettings:
    """What the host programs into the EIS engine.

    Attributes
    ----------
    freqs_Hz : tuple of float
        Each must divide ``f_sample_Hz`` an integer number of times (and twice that for
        ``balance``).
    excitation : {"external", "balance", "multisine"}
        ``multisine``: the external source plays all frequencies at once (one record of
        the lowest frequency's period; Schroeder phases refined by iterative clipping).
    amplitude_A : float
        External sine amplitude, per tone for the multisine (ignored for balance: the bleed
        resistor sets the current).
    n_periods : int
        Minimum integration periods (>= 3 recommended).
    settle_periods : float
        Settling time before integration, in periods.
    min_integration_s : float
        Integration span floor (noise: REFERENCE.md 5).
    f_sample_Hz : float
        Engine sample rate.
    n_avg : int
        C-ADC results averaged per sample.
    pack_steps_per_period : int
        External excitation: at least this many pack steps per period (whole steps per sample).
        The pack holds the current over each step; with 256 its discretisation error is below
        0.1 % / 0.05 deg at every frequency (measured against ``VirtualPack.impedance``).
    pack_step_max_s : float
        External excitation: longest pack step (the Warburg ladder's short time constants need
        it at low frequencies too).
    detrend_degree : int
        Polynomial degree of the joint drift fit; 0 = off (plain single-bin DFT).
    dc_offset_A : float
        DC pack current during the sweep (makes the OCV drift).
    preroll_s : float
        Time the pack carries ``dc_offset_A`` before the first record (lets the polarisation
        settle so the drift is the OCV's, not an RC transient).
    cells : tuple of int or None
        Cells to measure (default all).
    common_mode_correction : bool
        Balance: remove the quiet cells' common response (self-heating) from excited cells.
    demodulation : {"fit", "lockin"}
        ``fit``: float least squares; ``lockin``: the chip's bit-true lock-in (external or
        multisine excitation, ``detrend_degree`` 0 or 1; module docstring).
    """

    freqs_Hz: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    excitation: str = "external"
    amplitude_A: float = 1.0
    n_periods: int = 3
    settle_periods: float = 1.0
    min_integration_s: float = 60.0
    f_sample_Hz: float = 16.0
    n_avg: int = 62
    pack_steps_per_period: int = 256
    pack_step_max_s: float = 1.0 / 64.0
    detrend_degree: int = 2
    dc_offset_A: float = 0.0
    preroll_s: float = 0.0
    cells: tuple[int, ...] | None = None
    common_mode_correction: bool = True
    demodulation: str = "fit"

    def __post_init__(self) -> None:
        if self.excitation not in ("external", "balance", "multisine"):
            raise ValueError(
                f"excitation must be 'external', 'balance' or 'multisine', got {self.excitation!r}"
            )
        if not self.freqs_Hz:
            raise ValueError("freqs_Hz is empty")
        per = 2 if self.excitation == "balance" else 1
        for f in self.freqs_Hz:
            if not (f > 0 and math.isfinite(f)):
                raise ValueError(f"f = {f} Hz: must be > 0")
            spp = self.f_sample_Hz / (per * f)
            if abs(spp - round(spp)) > 1e-9 * spp or round(spp) < 1:
                raise ValueError(
                    f"f = {f} Hz: f_sample_Hz / f = {self.f_sample_Hz / f:g} must be an integer"
                    + (" and even (balance toggles twice per period)" if per == 2 else "")
                )
        if self.excitation == "multisine":
            f0 = min(self.freqs_Hz)
            for f in self.freqs_Hz:
                if abs(f / f0 - round(f / f0)) > 1e-9 * f / f0:
                    raise ValueError(f"multisine: {f} Hz is not a multiple of {f0} Hz")
            if len(set(self.freqs_Hz)) != len(self.freqs_Hz):
                raise ValueError("multisine: repeated frequency")
        if self.n_avg < 1 or self.n_avg * 1e-3 > 1.0 / self.f_sample_Hz:
            raise ValueError(f"n_avg = {self.n_avg} does not fit in a 1/f_sample_Hz tick")
        if self.detrend_degree < 0:
            raise ValueError("detrend_degree must be >= 0")
        if self.demodulation not in ("fit", "lockin"):
            raise ValueError(f"demodulation must be 'fit' or 'lockin', got {self.demodulation!r}")
        if self.demodulation == "lockin" and (
            self.excitation == "balance" or self.detrend_degree > 1
        ):
            raise ValueError(
                "demodulation 'lockin' needs excitation 'external' or 'multisine' and "
                "detrend_degree 0 or 1 (its drift moments are linear), got "
                f"{self.excitation!r}, {self.detrend_degree}"
            )


@dataclass
class EisResult:
    """Measured and true impedance per frequency and cell.

    Arrays are shaped ``(n_f, n_cells_measured)``; complex ones in Ohm.

    Attributes
    ----------
    f_Hz : ndarray, shape (n_f,)
    cells : ndarray of int, shape (n_cells_measured,)
    z_Ohm, z_true_Ohm : complex
    u95_Ohm : float
        Radius of the 95 % uncertainty circle around ``z_Ohm``.
    u_Ohm : float
        Standard uncertainty per complex component.
    z_crosstalk_Ohm : complex
        Balance: mean response of the excited cell's neighbours per unit bleed current (NaN for
        external excitation).
    common_mode_ppm : complex, shape (n_f,)
        Balance: quiet cells' relative response at f (self-heating through the reference).
    i_amplitude_A : float, shape (n_f, n_cells_measured)
        Fundamental amplitude of the excitation current.
    t_start_s, t_end_s : float
    lockin_bound_Ohm : float, shape (n_f, n_cells_measured), or None
        ``demodulation = "lockin"``: bound on the distance of ``Z`` to the float estimate
        from the same samples (plain DFT for ``detrend_degree = 0``, sine + linear-drift
        least squares for 1); None for ``fit``.
    """

    f_Hz: npt.NDArray[np.float64]
    cells: npt.NDArray[np.int64]
    z_Ohm: npt.NDArray[np.complex128]
    z_true_Ohm: npt.NDArray[np.complex128]
    u_Ohm: npt.NDArray[np.float64]
    u95_Ohm: npt.NDArray[np.float64]
    z_crosstalk_Ohm: npt.NDArray[np.complex128]
    common_mode_ppm: npt.NDArray[np.complex128]
    i_amplitude_A: npt.NDArray[np.float64]
    t_start_s: float = 0.0
    t_end_s: float = 0.0
    settings: EisSettings = field(default_factory=EisSettings)
    lockin_bound_Ohm: npt.NDArray[np.float64] | None = None

    @property
    def mag_error_pct(self) -> npt.NDArray[np.float64]:
        """``100 (|Z| / |Z_true| - 1)``."""
        return np.asarray(100.0 * (np.abs(self.z_Ohm) / np.abs(self.z_true_Ohm) - 1.0))

    @property
    def phase_error_deg(self) -> npt.NDArray[np.float64]:
        """``angle(Z / Z_true)`` in degrees."""
        return np.asarray(np.degrees(np.angle(self.z_Ohm / self.z_true_Ohm)))

    @property
    def covered(self) -> npt.NDArray[np.bool_]:
        """``|Z - Z_true| <= u95`` per point."""
        return np.asarray(np.abs(self.z_Ohm - self.z_true_Ohm) <= self.u95_Ohm)


def _record_plan(s: EisSettings, f: float) -> tuple[int, int]:
    """(settle samples, integration samples) for one frequency."""
    settle_s, n_int = integer_period_record(
        f,
        n_periods=s.n_periods,
        settle_periods=s.settle_periods,
        min_integration_s=s.min_integration_s,
        f_sample_Hz=s.f_sample_Hz,
    )
    return math.ceil(settle_s * s.f_sample_Hz - 1e-9), n_int


def sweep_duration_s(s: EisSettings) -> float:
    """Emulated time a sweep takes (all frequencies; balance: times the number of groups)."""
    if s.excitation == "multisine":
        return float(sum(_record_plan(s, min(s.freqs_Hz)))) / s.f_sample_Hz
    n = sum(sum(_record_plan(s, f)) for f in s.freqs_Hz) / s.f_sample_Hz
    if s.excitation == "balance":
        n_cells = 16 if s.cells is None else len(s.cells)
        n *= min(BALANCE_GROUP_STRIDE, n_cells)
    return float(n)


def _ocv_branch_Ohm(pack: object, f_Hz: float) -> npt.NDArray[np.complex128]:
    """The OCV's own impedance ``dOCV/dSOC / (j w 3600 Q)`` per cell, shape (n_cells,).

    A sine current swings the SOC at ``f``; the OCV follows (a capacitance of
    ``3600 Q / (dOCV/dSOC)``, ~1.2 uOhm at 10 mHz for 280 Ah LFP mid-plateau, 0.3 % of |Z|).
    :meth:`VirtualPack.impedance` leaves it out; a measurement at ``f`` cannot remove it (it is
    periodic, not drift), so the engine's truth adds it. The slope is the pack's OCV table's
    local slope at the present SOC (central difference, +-0.1 % SOC).
    """
    table = getattr(pack, "_ocv25", None)
    if table is None:
        return np.zeros(0, dtype=complex)
    soc = pack.soc()  # type: ignore[attr-defined]
    slope = (table(soc + 1e-3) - table(soc - 1e-3)) / 2e-3
    q_As = 3600.0 * pack.cell_parameters()["capacity_Ah"]  # type: ignore[attr-defined]
    return np.asarray(slope / (2j * np.pi * f_Hz * q_As))


def _busbar_Ohm(source: object, n: int) -> npt.NDArray[np.float64]:
    pack = getattr(source, "pack", None)
    r = getattr(pack, "_r_bb_Ohm", None)  # the busbar in each cell's sense span
    return np.zeros(n) if r is None else np.asarray(r, dtype=float)


def run_eis(
    analog: object,
    settings: EisSettings,
    *,
    t_start_s: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> EisResult:
    """Run a sweep on ``analog`` (a ChipAnalog over a VirtualPackSource).

    Parameters
    ----------
    analog : ChipAnalog
    settings : EisSettings
    t_start_s : float, optional
        Earliest start (default: the chip's and pack's present time); the first record starts
        on the next sample tick after the preroll.
    progress : callable, optional
        Called with the emulated seconds done after each record.

    Returns
    -------
    EisResult
    """
    from bms_emu.device.chip_analog import ChipAnalog

    if not isinstance(analog, ChipAnalog):
        raise TypeError("run_eis needs a ChipAnalog")
    src: Any = analog.source
    if not hasattr(src, "set_current_A") or not hasattr(src, "pack"):
        raise TypeError("the EIS engine needs a virtual pack source (it drives the current)")
    s = settings
    n_ch = analog.n_channels
    cells = np.arange(n_ch) if s.cells is None else np.unique(np.asarray(s.cells, dtype=int))
    if cells.size == 0 or cells.min() < 0 or cells.max() >= n_ch:
        raise ValueError(f"cells must be in 0..{n_ch - 1}")
    h = 1.0 / s.f_sample_Hz
    r = analog.spec.adc.c_decimation
    t_conv = r / F_MOD_HZ
    window = 3 * r / F_MOD_HZ  # sinc3 span (3R - 2) plus the modulator's clock, rounded up
    delay = 0.5 * window + 0.5 * (s.n_avg - 1) * t_conv  # block centre -> tick stamp
    fe = analog._fe_c
    r_bleed = fe.bleed_resistance_Ohm + fe.switch_on_resistance_Ohm
    r_bb = _busbar_Ohm(src, n_ch)
    # the current channel's gain and shunt tolerance (the chip's spec, 1 sigma) scale Z
    cc = analog.spec.current_channel
    u_gain_rel = 1e-6 * math.hypot(cc.gain_error_ppm_sigma, cc.shunt_tol_ppm_sigma)

    # start on the sample grid (dyadic for 16 Hz: uniform pack steps)
    if t_start_s is not None and t_start_s > src.pack.t_s:
        src.advance_to(t_start_s)
    src.set_current_A(s.dc_offset_A)
    if s.preroll_s > 0:
        src.advance_to(src.pack.t_s + s.preroll_s)
    t0 = math.ceil(max(analog._t_s, src.pack.t_s) / h - 1e-9) * h
    src.advance_to(t0)
    src.set_current_A(s.dc_offset_A)
    t_start = t0
    n_f = len(s.freqs_Hz)
    z = np.full((n_f, cells.size), np.nan + 0j)
    z_true = np.full((n_f, cells.size), np.nan + 0j)
    u = np.full((n_f, cells.size), np.nan)
    z_xt = np.full((n_f, cells.size), np.nan + 0j)
    cm = np.full(n_f, np.nan + 0j)
    i_amp = np.full((n_f, cells.size), np.nan)
    lk_bound = np.full((n_f, cells.size), np.nan) if s.demodulation == "lockin" else None
    done = 0.0
    if s.excitation == "multisine":
        t0 = _multisine_record(
            analog, src, s, cells, t0, h, t_conv, window, delay, r_bb, u_gain_rel,
            z, u, z_true, i_amp, lk_bound,
        )  # fmt: skip
        if progress is not None:
            progress(t0 - t_start)
    for fi, f in enumerate(() if s.excitation == "multisine" else s.freqs_Hz):
        n_settle, n_int = _record_plan(s, f)
        spp = round(s.f_sample_Hz / f)
        h_path = complex(
            path_response(f, t_dec_s=t_conv, window_s=window, n_avg=s.n_avg, t_conv_s=t_conv)
        )
        groups = (
            [cells]
            if s.excitation == "external"
            else [cells[cells % BALANCE_GROUP_STRIDE == g] for g in range(BALANCE_GROUP_STRIDE)]
        )
        for grp in groups:
            if grp.size == 0:
                continue
            t_a = t0
            t_c = t_a + h * np.arange(1, n_settle + n_int + 1)  # block centres
            duty = None
            if s.excitation == "external":
                # exact mean of dc + A sin(w (t - t_a)) over each of the pack's sub-steps
                n_sub = max(
                    math.ceil(1.0 / (s.f_sample_Hz * s.pack_step_max_s) - 1e-9),
                    math.ceil(s.pack_steps_per_period * f / s.f_sample_Hz - 1e-9),
                )
                edges = h * np.arange(t_c.size * n_sub + 1) / n_sub  # (n * n_sub + 1,)
                w = 2 * np.pi * f
                mean = (
                    s.amplitude_A
                    * (np.cos(w * edges[:-1]) - np.cos(w * edges[1:]))
                    / (w * (edges[1:] - edges[:-1]))
                )
                drive = (s.dc_offset_A + mean).reshape(t_c.size, n_sub)
            else:
                # square wave: on during the first half of each period; duty[k] holds over
                # (t[k-1], t[k]], so sample k is "on" if that interval is in an on half
                phase = ((np.arange(n_settle + n_int) * h) * f) % 1.0
                on = phase < 0.5 - 1e-9
                duty = np.zeros((t_c.size, n_ch))
                duty[np.ix_(on, grp)] = 1.0
                drive = np.full((t_c.size, 1), s.dc_offset_A)
            # settle + first half of the integration, truth at the middle, second half
            n_first = n_settle + n_int // 2
            v1, i1 = analog.measure_record(
                t_c[:n_first],
                n_avg=s.n_avg,
                with_current=True,
                duty=None if duty is None else duty[:n_first],
                pack_current_A=drive[:n_first],
            )
            zt = src.pack.impedance(f)[0] + r_bb
            z_ocv = _ocv_branch_Ohm(src.pack, f)
            if z_ocv.size:
                zt = zt + z_ocv
            v2, i2 = analog.measure_record(
                t_c[n_first:],
                n_avg=s.n_avg,
                with_current=True,
                duty=None if duty is None else duty[n_first:],
                pack_current_A=drive[n_first:],
            )
            assert i1 is not None and i2 is not None
            v = np.concatenate([v1, v2])[n_settle:]
            t_tick = (t_c[n_settle:] - t_a) + delay
            if s.excitation == "external":
                cur = np.concatenate([i1, i2])[n_settle:]
                fit_i = fit_tone(t_tick, cur, f, s.detrend_degree, spp)
                i_ph = np.full(n_ch, fit_i.phasor[0] / h_path)
                u_i = np.full(n_ch, fit_i.u_phasor[0] / abs(h_path))
            else:
                analog.set_balance(float(t_c[-1]), np.zeros(n_ch))
                dsel = duty[n_settle:] if duty is not None else np.zeros_like(v)
                cur_cells = dsel * v / r_bleed  # the chip's own estimate of each bleed current
                fit_i = fit_tone(t_tick, cur_cells, f, s.detrend_degree, spp)
                i_ph = fit_i.phasor / h_path
                u_i = fit_i.u_phasor / abs(h_path)
            fit_v = fit_tone(t_tick, v, f, s.detrend_degree, spp)
            v_ph = fit_v.phasor / h_path
            u_v = fit_v.u_phasor / abs(h_path)
            if lk_bound is not None:
                v_lk, i_lk, rel = _lockin_v_i(v, cur, t_tick, [f], s)
                v_ph, i_ph = v_lk[0] / h_path, np.full(n_ch, i_lk[0] / h_path)
                lk_bound[fi, np.searchsorted(cells, grp)] = (np.abs(v_ph / i_ph) * rel[0])[grp]
            if s.excitation == "external":
                zz = -v_ph / i_ph
                uu = np.abs(zz) * np.sqrt(
                    (u_v / np.abs(v_ph)) ** 2 + (u_i / np.abs(i_ph)) ** 2 + u_gain_rel**2
                )
                sel = np.searchsorted(cells, grp)
                z[fi, sel] = zz[grp]
                u[fi, sel] = uu[grp]
                z_true[fi, sel] = zt[grp]
                i_amp[fi, sel] = np.abs(i_ph[grp])
            else:
                _balance_group(
                    grp, cells, fi, v_ph, u_v, i_ph, u_i, np.mean(v, axis=0), zt,
                    s.common_mode_correction, z, u, z_true, z_xt, cm, i_amp,
                )  # fmt: skip
            src.set_current_A(s.dc_offset_A)  # the source's profile resumes from here
            t0 = float(t_c[-1])
            done += (n_settle + n_int) * h
            if progress is not None:
                progress(done)
    src.set_current_A(s.dc_offset_A)
    return EisResult(
        f_Hz=np.asarray(s.freqs_Hz, dtype=float),
        cells=cells,
        z_Ohm=z,
        z_true_Ohm=z_true,
        u_Ohm=u,
        u95_Ohm=COVERAGE_K95 * u,
        z_crosstalk_Ohm=z_xt,
        common_mode_ppm=cm,
        i_amplitude_A=i_amp,
        t_start_s=t_start,
        t_end_s=t0,
        settings=s,
        lockin_bound_Ohm=lk_bound,
    )


def _lockin_v_i(
    v: npt.NDArray[np.float64], cur: npt.NDArray[np.float64], t_tick: npt.ArrayLike,
    freqs: list[float], s: EisSettings,
) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.complex128], npt.NDArray[np.float64]]:
    """Lock-in V phasors (n_tones, n_ch), I phasors (n_tones,) and the relative Z bounds.

    ``|Z' - Z| <= |Z| (bV/|V| + bI/|I|) / (1 - bI/|I|)`` for errors ``bV``, ``bI``.
    """
    v_lk, b_v = _lockin_phasors(v, t_tick, freqs, s, "V")
    i_lk, b_i = _lockin_phasors(cur[:, None], t_tick, freqs, s, "I")
    rel_i = b_i[:, 0] / np.abs(i_lk[:, 0])
    with np.errstate(divide="ignore"):  # a current within its own bound: no bound at all
        rel = (b_v / np.abs(v_lk) + rel_i[:, None]) / np.maximum(1.0 - rel_i[:, None], 0.0)
    return v_lk, i_lk[:, 0], np.asarray(rel)


def _lockin_phasors(
    y: npt.NDArray[np.float64], t_tick: npt.ArrayLike, freqs: list[float], s: EisSettings,
    kind: str,
) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.float64]]:
    """Phasors (V or A, at ``t = 0`` like :func:`fit_tone`) and bounds, (n_tones, n_channels).

    One lock-in per tone over the integration span ``y`` (n, n_channels): volts of the mean
    cell code (``V``, turned into the sum of the ``n_avg`` codes) or amperes (``I``, turned
    into 1 mA codes); with ``detrend_degree = 1`` one linear drift is removed jointly.
    """
    from bms_emu.device.device import CURRENT_LSB_A

    if kind == "V":
        unit = LSB_V / s.n_avg
        y_codes = (y - V_CODE_ZERO_V) / unit
    else:
        unit = CURRENT_LSB_A
        y_codes = y / unit
    fmt = lockin.LockinFormat(code_bits=16 + math.ceil(math.log2(s.n_avg)))
    x = np.floor(y_codes + 0.5).astype(np.int64)
    n = x.shape[0]
    mean_abs_d = np.abs(x - x[0]).mean(axis=0)
    res, bounds = [], []
    for f in freqs:
        ftw = lockin.tuning_word(f, s.f_sample_Hz, fmt)
        if lockin.record_samples(ftw, round(n * f / s.f_sample_Hz), fmt) != n:
            raise ValueError(f"{f} Hz: the record is not whole NCO periods")  # K spp^2 >= 2**P
        res.append(lockin.lockin_accumulate(x, ftw, x[0], fmt))
        bounds.append(lockin.error_bound(mean_abs_d, n, ftw, f, s.f_sample_Hz, fmt=fmt))
    if s.detrend_degree == 1:
        ph = lockin.drift_corrected_phasors(res, freqs, s.f_sample_Hz, fmt)[0]
        bound = lockin.drift_error_bounds(bounds, n, freqs, s.f_sample_Hz, q_max=0.5)
    else:
        ph = np.stack([lockin.lockin_phasor(r.acc_i, r.acc_q, n, fmt) for r in res])
        bound = np.stack(bounds)
    # the lock-in's phase is that of the first sample: refer it to t = 0 like fit_tone
    t_first = float(np.asarray(t_tick)[0])
    rot = np.exp(-2j * np.pi * np.asarray(freqs) * t_first)[:, None]
    return np.asarray(ph * unit * rot), np.asarray(bound * unit)


def _multisine_record(
    analog: Any,
    src: Any,
    s: EisSettings,
    cells: npt.NDArray[np.int64],
    t_a: float,
    h: float,
    t_conv: float,
    window: float,
    delay: float,
    r_bb: npt.NDArray[np.float64],
    u_gain_rel: float,
    z: npt.NDArray[np.complex128],
    u: npt.NDArray[np.float64],
    z_true: npt.NDArray[np.complex128],
    i_amp: npt.NDArray[np.float64],
    lk_bound: npt.NDArray[np.float64] | None = None,
) -> float:
    """One record with every tone at once (fills the outputs); returns its end time."""
    freqs = np.asarray(s.freqs_Hz, dtype=float)
    f0 = float(freqs.min())
    n_settle, n_int = _record_plan(s, f0)
    spp = round(s.f_sample_Hz / f0)
    order = np.argsort(freqs)
    ph = np.empty(freqs.size)
    ph[order] = clip_optimise_phases(
        freqs[order], schroeder_phases(freqs.size), f_base_Hz=f0, n_samples=max(4096, 4 * spp)
    )
    n_sub = max(
        math.ceil(1.0 / (s.f_sample_Hz * s.pack_step_max_s) - 1e-9),
        math.ceil(s.pack_steps_per_period * float(freqs.max()) / s.f_sample_Hz - 1e-9),
    )
    n = n_settle + n_int
    t_c = t_a + h * np.arange(1, n + 1)
    edges = h * np.arange(n * n_sub + 1) / n_sub
    # exact mean of sum_k A cos(w_k t + phi_k) over each pack step: (n * n_sub, n_tones) @ 1
    w = 2 * np.pi * freqs
    a, b = edges[:-1, None], edges[1:, None]
    mean = (s.amplitude_A * (np.sin(w * b + ph) - np.sin(w * a + ph)) / (w * (b - a))).sum(1)
    drive = (s.dc_offset_A + mean).reshape(n, n_sub)
    n_first = n_settle + n_int // 2
    v1, i1 = analog.measure_record(
        t_c[:n_first], n_avg=s.n_avg, with_current=True, pack_current_A=drive[:n_first]
    )
    zt_all = src.pack.impedance(freqs) + r_bb  # (n_f, n_cells)
    v2, i2 = analog.measure_record(
        t_c[n_first:], n_avg=s.n_avg, with_current=True, pack_current_A=drive[n_first:]
    )
    v = np.concatenate([v1, v2])[n_settle:]
    cur = np.concatenate([i1, i2])[n_settle:]
    t_tick = (t_c[n_settle:] - t_a) + delay
    if lk_bound is not None:  # one NCO per tone over the shared record, drift removed jointly
        v_lk, i_lk, rel_lk = _lockin_v_i(v, cur, t_tick, [float(f) for f in freqs], s)
    for fi, f in enumerate(freqs):
        h_path = complex(
            path_response(f, t_dec_s=t_conv, window_s=window, n_avg=s.n_avg, t_conv_s=t_conv)
        )
        fit_i = fit_tone(t_tick, cur, f, s.detrend_degree, spp)
        fit_v = fit_tone(t_tick, v, f, s.detrend_degree, spp)
        i_ph = fit_i.phasor[0] / h_path
        v_ph = fit_v.phasor / h_path
        if lk_bound is not None:
            v_ph, i_ph = v_lk[fi] / h_path, i_lk[fi] / h_path
            lk_bound[fi] = (np.abs(v_ph / i_ph) * rel_lk[fi])[cells]
        zz = -v_ph / i_ph
        rel = (fit_v.u_phasor / abs(h_path)) / np.abs(v_ph)
        uu = np.abs(zz) * np.sqrt(
            rel**2 + (fit_i.u_phasor[0] / abs(h_path) / abs(i_ph)) ** 2 + u_gain_rel**2
        )
        z_ocv = _ocv_branch_Ohm(src.pack, float(f))
        zt = zt_all[fi] + (z_ocv if z_ocv.size else 0.0)
        z[fi] = zz[cells]
        u[fi] = uu[cells]
        z_true[fi] = zt[cells]
        i_amp[fi] = abs(i_ph)
    src.set_current_A(s.dc_offset_A)
    return float(t_c[-1])


def _balance_group(
    grp: npt.NDArray[np.int64],
    cells: npt.NDArray[np.int64],
    fi: int,
    v_ph: npt.NDArray[np.complex128],
    u_v: npt.NDArray[np.float64],
    i_ph: npt.NDArray[np.complex128],
    u_i: npt.NDArray[np.float64],
    v_mean: npt.NDArray[np.float64],
    zt: npt.NDArray[np.complex128],
    cm_correct: bool,
    z: npt.NDArray[np.complex128],
    u: npt.NDArray[np.float64],
    z_true: npt.NDArray[np.complex128],
    z_xt: npt.NDArray[np.complex128],
    cm: npt.NDArray[np.complex128],
    i_amp: npt.NDArray[np.float64],
) -> None:
    """Crosstalk and common-mode corrections for one balancing group (fills the outputs)."""
    n_ch = v_ph.size
    exc = np.zeros(n_ch, bool)
    exc[grp] = True
    near = np.zeros(n_ch, bool)
    near[1:] |= exc[:-1]
    near[:-1] |= exc[1:]
    quiet = ~exc & ~near
    eps, u_eps = 0j, 0.0
    if quiet.any():
        eps = complex(np.mean(v_ph[quiet] / v_mean[quiet]))
        u_eps = float(np.sqrt(np.sum((u_v[quiet] / v_mean[quiet]) ** 2)) / np.count_nonzero(quiet))
        cm[fi] = eps * 1e6
    if not cm_correct:
        eps, u_eps = 0j, 0.0
    v_corr = v_ph - eps * v_mean
    for c in grp:
        i_c = i_ph[c]
        z_meas = -v_corr[c] / i_c
        u2 = (u_v[c] / abs(i_c)) ** 2 + (abs(z_meas) * u_i[c] / abs(i_c)) ** 2
        nbs = [nb for nb in (c - 1, c + 1) if 0 <= nb < n_ch]
        xts = [-v_corr[nb] / i_c for nb in nbs]
        if len(xts) == 1:
            # end cell: the missing wire assumed equal to the measured one (2x one estimate)
            xts.append(xts[0])
            u2 += 4.0 * (u_v[nbs[0]] / abs(i_c)) ** 2
            v_sum = v_mean[c] + 2.0 * v_mean[nbs[0]]
        else:
            u2 += sum((u_v[nb] / abs(i_c)) ** 2 for nb in nbs)
            v_sum = v_mean[c] + sum(v_mean[nb] for nb in nbs)
        # the common-mode estimate is subtracted from all three coherently
        u2 += (v_sum * u_eps / abs(i_c)) ** 2
        j = int(np.searchsorted(cells, c))
        z[fi, j] = z_meas + sum(xts)
        u[fi, j] = math.sqrt(u2)
        z_true[fi, j] = zt[c]
        z_xt[fi, j] = 0.5 * sum(xts)
        i_amp[fi, j] = abs(i_c)
