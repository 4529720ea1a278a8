"""Bit-true lock-in of the EIS engine: NCO (phase accumulator + sine LUT) and I/Q accumulators.

The chip demodulates the result codes at the excitation frequency on die: a numerically
controlled oscillator gives ``cos`` and ``sin`` of its phase for every sample, and two
multiply-accumulate units sum ``(x - x_offset) * cos`` and ``(x - x_offset) * sin`` over a
whole number of NCO periods; two more accumulators (``sum d``, ``sum n d``) carry what a
linear drift needs. The host turns the accumulators into a phasor (:func:`lockin_phasor`,
:func:`amplitude_phase`, or :func:`drift_corrected_phasor` with a linear drift removed). The
RTL is ``rtl_models/eis_lockin.sv``; its bench compares it with :func:`lockin_accumulate` bit
for bit.

Arithmetic (names of :class:`LockinFormat`; numbers for the defaults)
----------------------------------------------------------------------
* **Phase accumulator** ``P = 48`` bits, cleared to 0 by start: ``acc[n] = n * FTW mod 2**P``,
  the NCO phase at sample ``n`` is ``2 pi acc[n] / 2**P``.
* **Tuning word** ``FTW = ceil(f 2**P / f_odr)`` (:func:`tuning_word`). Frequency resolution
  ``f_odr / 2**P`` (5.7e-14 Hz at the engine's 16 Hz, 3.6e-12 Hz at the C-ADC's 1 kHz); the
  NCO is never slower than ``f``: ``0 <= f_nco - f < f_odr / 2**P`` (:func:`nco_frequency_Hz`).
  Why ceil and 48 bits: the record ends at the ``K``-th carry out of the accumulator
  (:func:`record_samples`, ``ceil(K 2**P / FTW)`` samples). With ``spp = f_odr / f`` an integer
  this is exactly ``K spp`` samples as long as ``K spp (FTW - 2**P / spp) < FTW``, i.e. for
  ``K spp**2 < 2**P``: 1.1e8 periods of 0.01 Hz at 16 Hz, 2.8e4 at 1 kHz. Rounding to nearest
  instead makes a slow NCO end one sample late half the time; with 32 bits the guarantee
  would end at 0.4 periods of 0.01 Hz at 1 kHz.
* **Sine LUT**: ``L = 12`` address bits (4096 points per turn). The phase is rounded to the
  nearest point, ``m = ((acc + 2**(P-L-1)) >> (P-L)) mod 2**L`` (round half up; phase error
  ``|rho| <= pi / 2**L``, zero when ``FTW`` is a multiple of ``2**(P-L)``). Only a quarter wave
  is stored (:func:`sin_quarter_table`): ``T[k] = floor(A sin(2 pi k / 2**L) + 1/2)``,
  ``k = 0 .. 2**(L-2)`` (1025 entries, both ends included), amplitude ``A = 2**15 - 1`` (a
  16-bit signed LUT, ``|lut| <= A``; ``T[0] = 0``, ``T[1024] = A``). With
  ``Q = 2**(L-2)``, quadrant ``q = m >> (L-2)`` and ``r = m mod Q``:
  ``sin = T[r], T[Q-r], -T[r], -T[Q-r]`` for ``q = 0..3`` (exact: sin(pi/2 + x) = sin(pi/2 - x),
  sin(pi + x) = -sin x), and ``cos(m) = sin(m + Q)`` (a quarter turn later).
* **Offset**: the MAC input is ``d = x - x_offset`` (``CODE_BITS + 1`` bits), ``x_offset``
  latched at start (the engine uses the record's first sample). Over whole periods the DFT of a
  constant is zero, but the LUT's rounding breaks the exact symmetry for odd samples per period
  and the DC of a cell (12000 codes at 3.3 V) would leak: with the offset only the swing
  ``|x - x_offset|`` can leak.
* **Widths** (:class:`LockinFormat`): ``|d| <= 2**CODE_BITS - 1`` and ``|lut| <= A < 2**(LUT_BITS
  - 1)``, so ``|d lut| < 2**(CODE_BITS + LUT_BITS - 1)``: products ``CODE_BITS + LUT_BITS``
  signed bits (32 for 16-bit codes). A record has at most ``2**COUNT_BITS - 1`` samples (the
  sample counter), so ``|I|, |Q| < 2**(CODE_BITS + LUT_BITS - 1 + COUNT_BITS)``: accumulators
  ``ACC_BITS = CODE_BITS + LUT_BITS + COUNT_BITS`` signed bits, which can never overflow
  (57 for 16-bit codes and ``COUNT_BITS = 25``: 33.5e6 samples, 9.3 h at 1 kHz, covering 255
  periods of 0.01 Hz = 2.55e7 samples; 63 for the engine's 22-bit block sums, still int64).
* **Host** (float): ``X = 2 (I - j Q) / (N A)`` in code units, ``x[n] ~ x_offset
  + Re{X exp(j w n / f_odr)}`` with ``n`` counted from the first sample of the record; so
  amplitude ``|X|``, phase ``angle(X)`` (the convention of :func:`bms_emu.afe.eis.fit_tone`).

Error bound (:func:`error_bound`): for samples ``x[n] = y[n] + q[n]`` (``y`` real, ``|q| <=
q_max`` the input rounding), over whole periods of ``f`` (so the offset's DFT vanishes),
``X - (2/N) sum y[n] exp(-j w n) = (2/(N A)) sum d[n] (L[n] - A exp(-j w n)) + (2/N) sum q[n]
exp(-j w n)`` with ``L = cos_lut - j sin_lut``. Each LUT value is the exact phasor at the
rounded phase plus a rounding of at most 1/2 per component, and the rounded phase is off by at
most ``rho_max`` (index rounding) plus ``Delta n`` (NCO frequency error ``Delta = 2 pi (FTW /
2**P - f / f_odr)`` per sample), so ``|L - A exp(-j w n)| <= A (rho_max + Delta n) + 1/sqrt 2``,
and ``|X - X_dft| <= 2 mean|d| (rho_max + Delta (N - 1) + 1/(sqrt 2 A)) + 2 q_max``. For a tone
of amplitude ``a`` codes and a dyadic FTW (``rho_max = 0``) that is ``~1 + 4.3e-5 a`` codes;
otherwise ``rho_max = pi/4096`` dominates: ``1.5e-3 a``, a worst case (the index errors are
pseudo-random; typical errors are ~``sqrt(N)`` times smaller).

Linear drift (:func:`drift_corrected_phasor`): two more accumulators, ``S0 = sum d`` and
``S1 = sum n d``, let the host fit ``y = c + beta (n - nbar) + Re{X exp(j w n)}`` (the float
engine's sine + linear-drift least squares) in closed form. Over whole periods (``sum
exp(j w n) = 0``, no image term for ``spp >= 3``) with ``nbar = (N - 1)/2``,
``W = sum (n - nbar) exp(j w n) = N / (exp(j w) - 1)``, ``M2 = sum (n - nbar)**2 =
N (N**2 - 1) / 12`` and ``K1 = (2/N) conj(W)`` (the DFT of the ramp):
``X_lockin = X + beta K1`` and ``S1 - nbar S0 = beta M2 + Re{X W}``, so
``beta = (S1 - nbar S0 - Re{X_lockin W}) / (M2 - (2/N) |W|**2)`` and ``X = X_lockin - beta
K1`` (the denominator is positive by Bessel's inequality). Widths: ``|S0| < 2**(code_bits +
count_bits)``, ``|S1| < 2**(code_bits + 2 count_bits - 1)`` (66 bits for the defaults: the
model keeps ``S1`` in Python ints). Error (:func:`drift_error_bound`): with ``|X_lockin -
X_dft| <= E`` and ``|S1 - nbar S0 - sum (n - nbar) y| <= q_max N**2 / 4``, the corrected
phasor is within ``E + |K1| (q_max N**2/4 + E |W|) / (M2 - (2/N)|W|**2)`` of the float fit's.

Arrays: codes are time-major ``(n_samples, *channels)``; one NCO serves all channels (the RTL
holds one channel; a chip would time-share the MAC), accumulators have the channel shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bms_emu.afe.fixed_point import signed_range

__all__ = [
    "LockinFormat",
    "LockinResult",
    "amplitude_phase",
    "drift_corrected_phasor",
    "drift_corrected_phasors",
    "drift_error_bound",
    "drift_error_bounds",
    "error_bound",
    "frequency_resolution_Hz",
    "lockin_accumulate",
    "lockin_phasor",
    "nco_frequency_Hz",
    "nco_phase",
    "nco_sin_cos",
    "record_samples",
    "sin_quarter_table",
    "tuning_word",
]

IntArray = NDArray[np.int64]

#: Samples processed per numpy chunk (bounds memory for long records: 2**16 x channels int64).
_CHUNK = 1 << 16


@dataclass(frozen=True)
class LockinFormat:
    """Widths of the lock-in (defaults: 16-bit cell codes; see the module docstring).

    Attributes
    ----------
    code_bits : int
        Signed input width (16 for result codes; 22 for sums of 62 codes).
    count_bits : int
        Sample counter width: a record has at most ``2**count_bits - 1`` samples.
    phase_bits : int
        Phase accumulator width ``P``.
    lut_addr_bits : int
        Points per turn ``2**L`` (``L >= 3``).
    lut_bits : int
        Signed LUT width; amplitude ``A = 2**(lut_bits - 1) - 1``.
    """

    code_bits: int = 16
    count_bits: int = 25
    phase_bits: int = 48
    lut_addr_bits: int = 12
    lut_bits: int = 16

    def __post_init__(self) -> None:
        if not 2 <= self.code_bits <= 30:  # 30: a chunk's sum n d stays in int64
            raise ValueError(f"code_bits must be 2..30, got {self.code_bits}")
        if not 1 <= self.count_bits <= 32:
            raise ValueError(f"count_bits must be 1..32, got {self.count_bits}")
        if not 3 <= self.lut_addr_bits < self.phase_bits <= 62:
            raise ValueError("need 3 <= lut_addr_bits < phase_bits <= 62")
        if not 3 <= self.lut_bits <= 24:
            raise ValueError(f"lut_bits must be 3..24, got {self.lut_bits}")
        if self.acc_bits > 63:  # the model accumulates in int64
            raise ValueError(f"accumulators would need {self.acc_bits} bits (> 63)")

    @property
    def amplitude(self) -> int:
        """LUT amplitude ``A`` (full scale of the signed LUT, symmetric)."""
        return (1 << (self.lut_bits - 1)) - 1

    @property
    def diff_bits(self) -> int:
        """Width of ``d = x - x_offset``."""
        return self.code_bits + 1

    @property
    def prod_bits(self) -> int:
        """Width of ``d * lut``: ``|d lut| < 2**(code_bits + lut_bits - 1)``."""
        return self.code_bits + self.lut_bits

    @property
    def acc_bits(self) -> int:
        """Accumulator width: no overflow over ``max_samples`` worst-case products."""
        return self.prod_bits + self.count_bits

    @property
    def sum_d_bits(self) -> int:
        """Width of ``sum d``: ``|sum d| <= N (2**code_bits - 1)``."""
        return self.code_bits + self.count_bits + 1

    @property
    def sum_nd_bits(self) -> int:
        """Width of ``sum n d``: ``<= (2**code_bits - 1) N (N - 1) / 2``."""
        return self.code_bits + 2 * self.count_bits

    @property
    def max_samples(self) -> int:
        """Longest record (the sample counter's largest value)."""
        return (1 << self.count_bits) - 1


@dataclass(frozen=True)
class LockinResult:
    """Accumulators after a record.

    Attributes
    ----------
    acc_i, acc_q : ndarray of int64, channel shape
        ``sum d cos_lut`` and ``sum d sin_lut``.
    n_samples : int
        Samples accumulated ``N``.
    sum_d : ndarray of int64, channel shape
        ``sum d`` (drift moment 0).
    sum_nd : ndarray of object (Python int), channel shape
        ``sum n d``, ``n = 0 .. N-1`` (drift moment 1; up to ``code_bits + 2 count_bits``
        bits, beyond int64 for long records).
    """

    acc_i: IntArray
    acc_q: IntArray
    n_samples: int
    sum_d: IntArray
    sum_nd: NDArray[np.object_]


def frequency_resolution_Hz(f_odr_Hz: float, fmt: LockinFormat = LockinFormat()) -> float:
    """NCO frequency step ``f_odr / 2**P``.

    >>> frequency_resolution_Hz(16.0) == 16.0 / 2**48
    True
    """
    return f_odr_Hz / float(1 << fmt.phase_bits)


def tuning_word(f_Hz: float, f_odr_Hz: float, fmt: LockinFormat = LockinFormat()) -> int:
    """``FTW = ceil(f 2**P / f_odr)`` (exact rational arithmetic on the two floats).

    Raises ValueError unless ``0 < f < f_odr / 2``.

    >>> tuning_word(1.0, 16.0) == 2**44   # 16 samples per period: dyadic
    True
    >>> tuning_word(0.01, 16.0) - 2**48 // 1600   # ceil: the NCO is never slow
    1
    """
    if not (math.isfinite(f_Hz) and math.isfinite(f_odr_Hz) and f_odr_Hz > 0):
        raise ValueError(f"bad frequencies f = {f_Hz}, f_odr = {f_odr_Hz}")
    if not 0 < f_Hz < f_odr_Hz / 2:
        raise ValueError(f"f = {f_Hz} Hz must be in (0, f_odr/2 = {f_odr_Hz / 2}) Hz")
    ratio = Fraction(f_Hz) * (1 << fmt.phase_bits) / Fraction(f_odr_Hz)
    return math.ceil(ratio)


def nco_frequency_Hz(ftw: int, f_odr_Hz: float, fmt: LockinFormat = LockinFormat()) -> float:
    """Frequency the NCO runs at: ``FTW f_odr / 2**P``."""
    return float(Fraction(ftw) * Fraction(f_odr_Hz) / (1 << fmt.phase_bits))


def _check_ftw(ftw: int, fmt: LockinFormat) -> int:
    ftw = int(ftw)
    if not 1 <= ftw < 1 << (fmt.phase_bits - 1):
        raise ValueError(f"FTW {ftw} must be in 1 .. 2**{fmt.phase_bits - 1} - 1 (below f_odr/2)")
    return ftw


def record_samples(ftw: int, n_periods: int, fmt: LockinFormat = LockinFormat()) -> int:
    """Samples in ``n_periods`` NCO turns: the record ends at the ``K``-th carry out.

    After sample ``n`` (0-based) the phase is ``(n + 1) FTW``; the ``K``-th carry comes with
    the first ``n`` where that reaches ``K 2**P``, so ``N = ceil(K 2**P / FTW)``.

    >>> record_samples(tuning_word(0.01, 16.0), 3)   # whole periods of 1600 samples
    4800
    """
    ftw = _check_ftw(ftw, fmt)
    if n_periods < 1:
        raise ValueError(f"n_periods must be >= 1, got {n_periods}")
    n = -((-n_periods << fmt.phase_bits) // ftw)
    if n > fmt.max_samples:
        raise ValueError(
            f"{n_periods} periods take {n} samples, more than the counter's {fmt.max_samples}"
        )
    return n


def sin_quarter_table(fmt: LockinFormat = LockinFormat()) -> IntArray:
    """Quarter-wave table ``T[k] = floor(A sin(2 pi k / 2**L) + 1/2)``, ``k = 0 .. 2**(L-2)``.

    >>> t = sin_quarter_table()
    >>> (t.size, int(t[0]), int(t[-1]), int(t[512]))   # 0, A, A sin(pi/4)
    (1025, 0, 32767, 23170)
    """
    return _quarter_table(fmt).copy()


@lru_cache(maxsize=8)
def _quarter_table(fmt: LockinFormat) -> IntArray:
    """The table, built once per format (read-only)."""
    q = 1 << (fmt.lut_addr_bits - 2)
    k = np.arange(q + 1)
    t = np.floor(fmt.amplitude * np.sin(2 * np.pi * k / (4 * q)) + 0.5).astype(np.int64)
    t.setflags(write=False)
    return t


def nco_phase(ftw: int, n_samples: int, fmt: LockinFormat = LockinFormat(), start: int = 0
              ) -> NDArray[np.uint64]:
    """Phase accumulator at samples ``start .. start + n_samples - 1``: ``n FTW mod 2**P``."""
    ftw = _check_ftw(ftw, fmt)
    n = np.arange(start, start + n_samples, dtype=np.uint64)
    # uint64 products wrap mod 2**64, and 2**P divides 2**64: the low P bits are exact
    return (n * np.uint64(ftw)) & np.uint64((1 << fmt.phase_bits) - 1)


def nco_sin_cos(phase: ArrayLike, fmt: LockinFormat = LockinFormat()) -> tuple[IntArray, IntArray]:
    """LUT outputs ``(sin, cos)`` for phase accumulator values (any shape, int64 each)."""
    shift = fmt.phase_bits - fmt.lut_addr_bits
    ph = np.asarray(phase, dtype=np.uint64)
    m = ((ph + np.uint64(1 << (shift - 1))) >> np.uint64(shift)).astype(np.int64)
    m &= (1 << fmt.lut_addr_bits) - 1
    return _lut_sin(m, fmt), _lut_sin((m + (1 << (fmt.lut_addr_bits - 2)))
                                      & ((1 << fmt.lut_addr_bits) - 1), fmt)


def _lut_sin(m: IntArray, fmt: LockinFormat) -> IntArray:
    """Quarter-wave fold of index ``m`` (0 .. 2**L - 1) onto the table."""
    table = _quarter_table(fmt)
    qb = fmt.lut_addr_bits - 2
    q = m >> qb
    r = m & ((1 << qb) - 1)
    mag = table[np.where(q & 1, (1 << qb) - r, r)]  # quadrants 1 and 3 run backwards
    return np.where(q >= 2, -mag, mag)


def _as_codes(x: ArrayLike, what: str) -> IntArray:
    """Integer codes as int64; non-integer values are an error, not a silent truncation."""
    a = np.asarray(x)
    if a.dtype.kind not in "iub":
        if a.dtype.kind != "f" or not np.all(np.isfinite(a)) or np.any(a != np.floor(a)):
            raise ValueError(f"{what} must be integer codes")
    return a.astype(np.int64)


def _check_codes(x: IntArray, fmt: LockinFormat, what: str) -> None:
    lo, hi = signed_range(fmt.code_bits)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"{what} outside the signed {fmt.code_bits}-bit range [{lo}, {hi}]")


def lockin_accumulate(
    x_codes: ArrayLike,
    ftw: int,
    x_offset: ArrayLike = 0,
    fmt: LockinFormat = LockinFormat(),
) -> LockinResult:
    """Accumulate every sample of ``x_codes`` (the RTL's record when given its ``N`` samples).

    Parameters
    ----------
    x_codes : array_like of int, shape (n_samples, *channels)
        Signed ``code_bits`` codes at the output data rate; row 0 is sample 0 (NCO phase 0).
    ftw : int
        Tuning word (:func:`tuning_word`).
    x_offset : array_like of int, shape broadcastable to ``channels``
        Code subtracted before the multiply (latched at start).
    fmt : LockinFormat

    Returns
    -------
    LockinResult

    >>> r = lockin_accumulate([[1], [0], [-1], [0]], tuning_word(0.25, 1.0))
    >>> (r.acc_i.tolist(), r.acc_q.tolist(), r.n_samples)   # cos = A, 0, -A, 0
    ([65534], [0], 4)
    """
    x = _as_codes(x_codes, "codes")
    if x.ndim < 1:
        raise ValueError("x_codes needs a time axis (axis 0)")
    off = np.broadcast_to(_as_codes(x_offset, "x_offset"), x.shape[1:])
    _check_codes(x, fmt, "codes")
    _check_codes(off, fmt, "x_offset")
    n = x.shape[0]
    if n > fmt.max_samples:
        raise ValueError(f"{n} samples exceed the counter's {fmt.max_samples}")
    acc_i = np.zeros(x.shape[1:], dtype=np.int64)
    acc_q = np.zeros(x.shape[1:], dtype=np.int64)
    sum_d = np.zeros(x.shape[1:], dtype=np.int64)
    sum_nd = np.zeros(x.shape[1:], dtype=object)
    extra = (1,) * (x.ndim - 1)
    for s in range(0, n, _CHUNK):  # chunks over time; numpy over samples and channels
        d = x[s : s + _CHUNK] - off
        sin, cos = nco_sin_cos(nco_phase(ftw, d.shape[0], fmt, start=s), fmt)
        acc_i += np.sum(d * cos.reshape(-1, *extra), axis=0)
        acc_q += np.sum(d * sin.reshape(-1, *extra), axis=0)
        k = np.arange(d.shape[0], dtype=np.int64).reshape(-1, *extra)
        sd = np.sum(d, axis=0)
        # sum (s + k) d = s sum d + sum k d: each int64 (k < 2**16), combined in Python ints
        sum_nd = sum_nd + s * sd.astype(object) + np.sum(k * d, axis=0).astype(object)
        sum_d += sd
    return LockinResult(acc_i, acc_q, n, sum_d, np.asarray(sum_nd, dtype=object))


def lockin_phasor(
    acc_i: ArrayLike, acc_q: ArrayLike, n_samples: int, fmt: LockinFormat = LockinFormat()
) -> NDArray[np.complex128]:
    """Host side: ``X = 2 (I - j Q) / (N A)`` in code units (phase of sample 0).

    >>> complex(lockin_phasor(65534, 0, 4)[()])
    (1+0j)
    """
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    i = np.asarray(acc_i, dtype=np.float64)
    q = np.asarray(acc_q, dtype=np.float64)
    return np.asarray(2.0 * (i - 1j * q) / (n_samples * fmt.amplitude))


def amplitude_phase(
    acc_i: ArrayLike, acc_q: ArrayLike, n_samples: int, fmt: LockinFormat = LockinFormat()
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Host side: amplitude (codes) and phase (rad) with ``x ~ a cos(w n + phase)``."""
    x = lockin_phasor(acc_i, acc_q, n_samples, fmt)
    return np.abs(x), np.angle(x)


def _ramp_terms(n: int, f_Hz: float, f_odr_Hz: float) -> complex:
    """``W = sum (n - nbar) exp(j w n) = N / (exp(j w) - 1)`` over whole periods (float)."""
    w = 2 * math.pi * f_Hz / f_odr_Hz
    # exp(j w) - 1 = 2j sin(w/2) exp(j w/2): no cancellation at low frequency
    return n / (2j * math.sin(w / 2) * complex(math.cos(w / 2), math.sin(w / 2)))


def _check_tones(n: int, freqs_Hz: Sequence[float], f_odr_Hz: float) -> list[complex]:
    """Whole periods of every tone, distinct tones, >= 3 samples per period; returns the W's."""
    if not freqs_Hz:
        raise ValueError("no tones")
    if len({round(n * f / f_odr_Hz) for f in freqs_Hz}) != len(freqs_Hz):
        raise ValueError(f"tones {list(freqs_Hz)} repeat (each needs its own whole periods)")
    for f in freqs_Hz:
        periods = n * f / f_odr_Hz
        if abs(periods - round(periods)) > 1e-6 or f_odr_Hz / f < 3:
            raise ValueError(
                f"drift correction needs whole periods and >= 3 samples per period: {n} "
                f"samples hold {periods:g} periods of {f} Hz at {f_odr_Hz} Hz"
            )
    return [_ramp_terms(n, f, f_odr_Hz) for f in freqs_Hz]


def drift_corrected_phasors(
    results: Sequence[LockinResult],
    freqs_Hz: Sequence[float],
    f_odr_Hz: float,
    fmt: LockinFormat = LockinFormat(),
) -> tuple[NDArray[np.complex128], NDArray[np.float64]]:
    """Host side: the phasors of several tones with one linear drift removed jointly.

    One lock-in (NCO) per tone over the same record; the drift moments do not depend on the
    tone, so the first result's are used (they must all agree). Least squares of ``y = c +
    beta (n - nbar) + sum_k Re{X_k exp(j w_k n)}``: the tones are orthogonal to each other and
    to ``c`` over whole periods, but each projects on the ramp, so ``beta = (S1 - nbar S0 -
    sum_k Re{X_lockin,k W_k}) / (M2 - (2/N) sum_k |W_k|**2)`` and ``X_k = X_lockin,k - beta
    K1_k`` (the module docstring's one-tone case summed over tones).

    Returns
    -------
    phasors : complex, shape (n_tones, *channels)
    beta : float, channel shape (codes per sample)
    """
    if len(results) != len(freqs_Hz):
        raise ValueError(f"{len(results)} lock-in results for {len(freqs_Hz)} tones")
    res0 = results[0]
    n = res0.n_samples
    for r in results[1:]:
        if r.n_samples != n or not (np.array_equal(r.sum_d, res0.sum_d)
                                    and np.array_equal(r.sum_nd, res0.sum_nd)):
            raise ValueError("the lock-in results are not from one record")
    wsums = _check_tones(n, freqs_Hz, f_odr_Hz)
    x_l = np.stack([lockin_phasor(r.acc_i, r.acc_q, n, fmt) for r in results])
    # 2 S1c = 2 S1 - (N - 1) S0 is exact in integers; one float conversion at the end
    s1c = np.asarray(
        [float(2 * a - (n - 1) * int(b)) / 2.0
         for a, b in zip(np.ravel(res0.sum_nd), np.ravel(res0.sum_d), strict=True)]
    ).reshape(np.shape(res0.sum_d))
    den = n * (n * n - 1) / 12.0 - sum(2.0 / n * abs(w) ** 2 for w in wsums)
    beta = (s1c - sum(np.real(x * w) for x, w in zip(x_l, wsums, strict=True))) / den
    k1 = np.asarray([2.0 / n * np.conj(w) for w in wsums]).reshape(-1, *([1] * s1c.ndim))
    return np.asarray(x_l - beta * k1), np.asarray(beta)


def drift_corrected_phasor(
    res: LockinResult, f_Hz: float, f_odr_Hz: float, fmt: LockinFormat = LockinFormat()
) -> tuple[NDArray[np.complex128], NDArray[np.float64]]:
    """Host side: one tone's phasor with a linear drift removed, and the drift (codes/sample).

    The closed-form least squares of ``y = c + beta (n - nbar) + Re{X exp(j w n)}`` from the
    four accumulators (module docstring); ``res`` must span whole periods of ``f_Hz``.

    >>> n = np.arange(64)
    >>> x = np.floor(100 + 5.0 * n + 1000 * np.cos(2 * np.pi * n / 16) + 0.5)
    >>> X, beta = drift_corrected_phasor(lockin_accumulate(x, 1 << 44), 1.0, 16.0)
    >>> round(abs(complex(X[()]))), round(float(beta[()]), 3)   # the codes are rounded
    (1000, 5.0)
    """
    x, beta = drift_corrected_phasors([res], [f_Hz], f_odr_Hz, fmt)
    return np.asarray(x[0]), beta


def drift_error_bounds(
    e_bounds: Sequence[ArrayLike],
    n_samples: int,
    freqs_Hz: Sequence[float],
    f_odr_Hz: float,
    *,
    q_max: float = 0.5,
) -> NDArray[np.float64]:
    """Bounds on :func:`drift_corrected_phasors`' distance to the float least squares.

    ``e_bounds[k]`` is :func:`error_bound` of tone ``k``'s lock-in. With ``|S1 - nbar S0 -
    sum (n - nbar) y| <= q_max N**2 / 4``: ``|d beta| <= (q_max N**2/4 + sum_k E_k |W_k|) /
    den`` and ``|d X_k| <= E_k + |d beta| |K1_k|``. Shape (n_tones, *channels).
    """
    wsums = _check_tones(n_samples, freqs_Hz, f_odr_Hz)
    n = n_samples
    e = np.stack([np.asarray(b, dtype=float) for b in e_bounds])
    den = n * (n * n - 1) / 12.0 - sum(2.0 / n * abs(w) ** 2 for w in wsums)
    d_beta = (q_max * n * n / 4.0 + sum(ek * abs(w) for ek, w in zip(e, wsums, strict=True)))
    d_beta = d_beta / den
    k1 = np.asarray([2.0 / n * abs(w) for w in wsums]).reshape(-1, *([1] * (e.ndim - 1)))
    return np.asarray(e + d_beta * k1)


def drift_error_bound(
    e_bound: ArrayLike, n_samples: int, f_Hz: float, f_odr_Hz: float, *, q_max: float = 0.5
) -> NDArray[np.float64]:
    """Bound on :func:`drift_corrected_phasor`'s distance to the float sine + linear-drift fit.

    ``e_bound`` is :func:`error_bound` of the same record (the plain lock-in's bound), codes.
    """
    return np.asarray(drift_error_bounds([e_bound], n_samples, [f_Hz], f_odr_Hz, q_max=q_max)[0])


def error_bound(
    mean_abs_d: ArrayLike,
    n_samples: int,
    ftw: int,
    f_Hz: float,
    f_odr_Hz: float,
    *,
    q_max: float = 0.5,
    fmt: LockinFormat = LockinFormat(),
) -> NDArray[np.float64]:
    """Bound on ``|X - (2/N) sum y[n] exp(-j w n)|`` (codes) over whole periods of ``f``.

    ``2 mean|d| (rho_max + Delta (N - 1) + 1/(sqrt 2 A)) + 2 q_max`` (module docstring):
    ``mean_abs_d`` the mean of ``|x - x_offset|`` over the record, ``q_max`` the largest
    ``|x - y|`` (0.5 for rounded codes, 0 for integer-valued ``y``).
    """
    ftw = _check_ftw(ftw, fmt)
    shift = fmt.phase_bits - fmt.lut_addr_bits
    rho_max = 0.0 if ftw % (1 << shift) == 0 else math.pi / (1 << fmt.lut_addr_bits)
    delta = 2 * math.pi * float(
        Fraction(ftw, 1 << fmt.phase_bits) - Fraction(f_Hz) / Fraction(f_odr_Hz)
    )
    per = rho_max + abs(delta) * (n_samples - 1) + 1.0 / (math.sqrt(2.0) * fmt.amplitude)
    return np.asarray(2.0 * np.asarray(mean_abs_d, dtype=float) * per + 2.0 * q_max)
