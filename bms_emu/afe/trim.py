"""Factory and board trim of the reference / measurement path, the trim memory image, and the
bit-true fixed-point correction the chip applies to every raw conversion result.

Measurement chain (analog, per device)::

    raw = (V_in (1 + 1e-6 path_gain_error_ppm) + 1e-6 path_offset_uV) * v_nom_V / V_ref(T, t)
          / raw_lsb_V

``raw`` is the decimated ADC result before correction, in units of ``raw_lsb_V`` (default
150 uV / 16: finer than the 150 uV register LSB so that ppm-level corrections survive; the
reduction to the register format belongs to the conversion path, not here).

Correction (digital, bit-true; an RTL implementation must match :func:`correct_code` exactly)::

    corrected = raw * (1 + (gain_code + board_code) 2^-Fg + tempco_code 2^-Ft (d - d_ref) 2^-Fd)
                + offset_code 2^-Fo

with ``d`` the die-temperature sensor code (LSB ``2^-Fd`` C, code 0 = 0 C) and ``d_ref`` the
code of 25 C. Default formats (:class:`TrimFormat`):

=================  ======  ==========================================  =====================
signal             width   format / LSB                                range
=================  ======  ==========================================  =====================
raw_code           s24     raw LSB (9.375 uV)                          +-78.6 V (headroom)
gain_code          s16     Q.19: 2^-19 = 1.907 ppm                     +-62500 ppm
board_code         s16     Q.19: 2^-19 = 1.907 ppm                     +-62500 ppm
tempco_code        s16     2^-24 /C = 0.0596 ppm/C                     +-1953 ppm/C
offset_code        s16     2^-2 raw LSB = 2.344 uV                     +-76.8 mV
die_temp_code      s16     2^-4 C = 0.0625 C, 0 = 0 C; d_ref = 400     +-2048 C
dT = d - d_ref     s17     2^-4 C
p = tempco * dT    s33     Q.28 (2^-24 * 2^-4)
m = 2^28 + (gain + board) << 9 + p
                   s35     Q.28 multiplier (1.0 = 2^28)
acc = raw * m + offset << 26
                   s60     Q.28 raw LSB
corrected          s24     round-half-up(acc / 2^28) = (acc + 2^27) >>> 28, saturated to s24
=================  ======  ==========================================  =====================

Every step before the final shift is exact, so ``corrected = floor(x + 1/2)`` of the exact real
value ``x`` of the formula above: the integer datapath is within 1/2 LSB of the real-number
reference (not merely 1 LSB), and equal to it after rounding. All intermediates fit int64.

Trim memory image (per device, 5 words of 16 data bits, each stored as a (22,16) SECDED code
word, see :mod:`bms_emu.afe.ecc`)::

    word 0  header: bits 3..0 scheme id (0 none, 1 one-point, 2 two-temperature,
            3 two-voltage), bits 7..4 format version (1), bit 8 board trim valid, rest 0
    word 1  gain_code    (two's complement)
    word 2  tempco_code  (two's complement)
    word 3  offset_code  (two's complement)
    word 4  board_code   (two's complement)

On read, a word with an uncorrectable error makes the chip fall back to the untrimmed state
(all codes 0) and report :attr:`EccStatus.UNCORRECTABLE` (assumption: the datasheet only says
the trim ECC fault is flagged).

Trim schemes (tester arithmetic in float64; the tester averages many conversions, and the
chip's own noise dithers the output rounding, so a measured result is taken as real-valued):

* ``two_temp``: one input voltage ``v_trim_V`` at two die temperatures: ``k_i = target / raw_i``;
  ``tempco = (k2 - k1) / (T2 - T1)`` (temperatures as read by the chip's own sensor, so a
  sensor offset cancels), quantised first; then ``gain`` centres the two points:
  ``mean_i(k_i - 1 - tempco_q (T_i - 25))``. Curvature (a2) is not correctable with two points:
  the residual is ``a2 (T - T1)(T - T2)`` (reference-referred).
* ``two_voltage``: two input voltages at one temperature: ``g = (c2 - c1)/(raw2 - raw1)``,
  offset centred: ``mean_i(c_i - m_q raw_i)``; tempco is a fixed default (population mean).
* ``one_point``: gain only, at one voltage and temperature; tempco is the default.
* ``none``: all codes 0.
* :func:`board_trim`: after reflow, one-point gain re-trim at the board temperature against an
  external reference, stored in ``board_code`` (added to the gain).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bms_emu.afe.adc_params import RAW_LSB_V
from bms_emu.afe.die_thermal import (
    TempSensorParams,
    TempSensorSpec,
    die_temp_code,
    sample_temp_sensor,
)
from bms_emu.afe.ecc import EccStatus
from bms_emu.afe.ecc import decode as ecc_decode
from bms_emu.afe.ecc import encode as ecc_encode
from bms_emu.afe.fixed_point import (
    from_field,
    quantize,
    round_shift_right,
    saturate,
    to_field,
)
from bms_emu.afe.per_device import PerDevice
from bms_emu.afe.reference import (
    ReferenceParams,
    ReferenceSpec,
    ReferenceState,
    per_device,
    sample_reference,
    v_ref_V,
)
from bms_emu.errors import check_spec_fields

__all__ = [
    "IMAGE_WORDS",
    "Devices",
    "MeasurementPath",
    "PathSpec",
    "TrimCodes",
    "TrimConditions",
    "TrimFormat",
    "TrimResult",
    "TrimScheme",
    "TrimTesterSpec",
    "board_trim",
    "correct_code",
    "correct_code_float",
    "effective_reference_error_ppm",
    "measurement_error",
    "pack_trim_image",
    "raw_code_real",
    "read_trim_image",
    "sample_devices",
    "trim",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

IMAGE_WORDS = 5
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrimFormat:
    """Bit widths and LSBs of the trim codes and the correction datapath (the RTL constants).

    Attributes
    ----------
    raw_lsb_V : LSB of raw and corrected codes.
    raw_bits : signed width of raw and corrected codes.
    code_bits : signed width of each trim code (one 16-bit memory word each).
    gain_frac_bits : gain / board code LSB = 2^-gain_frac_bits.
    tempco_frac_bits : tempco code LSB = 2^-tempco_frac_bits per C.
    die_temp_frac_bits : die-temperature code LSB = 2^-die_temp_frac_bits C.
    die_temp_bits : signed width of the die-temperature code.
    offset_frac_bits : offset code LSB = 2^-offset_frac_bits raw LSB.
    t_ref_C : temperature at which the tempco term is zero (must be on the sensor grid).
    """

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - strict config section

    raw_lsb_V: float = RAW_LSB_V
    raw_bits: int = 24
    code_bits: int = 16
    gain_frac_bits: int = 19
    tempco_frac_bits: int = 24
    die_temp_frac_bits: int = 4
    die_temp_bits: int = 16
    offset_frac_bits: int = 2
    t_ref_C: float = 25.0

    def __post_init__(self) -> None:
        if self.acc_frac_bits < max(self.gain_frac_bits, self.offset_frac_bits):
            raise ValueError("tempco_frac_bits + die_temp_frac_bits must cover gain and offset")
        if self.code_bits > 16:
            raise ValueError("trim codes are stored in 16-bit words")
        ref = self.t_ref_C / self.die_temp_lsb_C
        if ref != round(ref):
            raise ValueError("t_ref_C must be a multiple of the die-temperature LSB")
        if self.acc_bits > 62:
            raise ValueError(f"accumulator needs {self.acc_bits} bits: does not fit int64")

    @property
    def acc_frac_bits(self) -> int:
        """Fraction bits of the multiplier and accumulator (Q.acc_frac_bits)."""
        return self.tempco_frac_bits + self.die_temp_frac_bits

    @property
    def gain_lsb(self) -> float:
        """Gain / board code LSB (dimensionless)."""
        return 2.0**-self.gain_frac_bits

    @property
    def tempco_lsb_per_C(self) -> float:
        """Tempco code LSB, 1/C."""
        return 2.0**-self.tempco_frac_bits

    @property
    def die_temp_lsb_C(self) -> float:
        """Die-temperature code LSB, C."""
        return 2.0**-self.die_temp_frac_bits

    @property
    def offset_lsb_V(self) -> float:
        """Offset code LSB, V."""
        return self.raw_lsb_V * 2.0**-self.offset_frac_bits

    @property
    def t_ref_code(self) -> int:
        """Die-temperature code of ``t_ref_C``."""
        return round(self.t_ref_C / self.die_temp_lsb_C)

    @property
    def widths(self) -> dict[str, int]:
        """Signed bit widths of the datapath intermediates (worst case over all inputs)."""
        dt = self.die_temp_bits + 1
        p = self.code_bits + dt
        gain_sum = self.code_bits + 1 + self.acc_frac_bits - self.gain_frac_bits
        m = max(p, gain_sum, self.acc_frac_bits + 1) + 2
        prod = self.raw_bits + m
        off = self.code_bits + self.acc_frac_bits - self.offset_frac_bits
        return {"dT": dt, "p": p, "m": m, "acc": max(prod, off) + 1}

    @property
    def acc_bits(self) -> int:
        """Signed width of the accumulator."""
        return self.widths["acc"]


# ---- the bit-true correction ---------------------------------------------------------------


def _lead(x: ArrayLike, ndim: int, dtype: type) -> NDArray[Any]:
    """Expand a per-device array ``(n_devices,)`` over the trailing axes of an ``ndim`` grid."""
    a: NDArray[Any] = np.asarray(x, dtype=dtype)
    if a.ndim == 0 or a.ndim >= ndim:
        return a
    return a.reshape(a.shape + (1,) * (ndim - a.ndim))


def correct_code(
    raw_code: ArrayLike,
    gain_code: ArrayLike,
    tempco_code: ArrayLike,
    offset_code: ArrayLike,
    die_temp_code: ArrayLike,
    board_code: ArrayLike = 0,
    *,
    fmt: TrimFormat | None = None,
) -> IntArray:
    """Bit-true trim correction of raw conversion codes (see the module docstring table).

    Parameters
    ----------
    raw_code : array_like of int, shape (n_devices,) or (n_devices, ...)
        Signed ``raw_bits`` codes.
    gain_code, tempco_code, offset_code, board_code : array_like of int
        Scalar or shaped ``(n_devices,)`` (expanded over the trailing axes of ``raw_code``).
    die_temp_code : array_like of int
        Scalar, ``(n_devices,)`` or the shape of ``raw_code``.
    fmt : TrimFormat, optional

    Returns
    -------
    ndarray of int64, shape of ``raw_code``
        Corrected codes, same LSB as ``raw_code``, saturated to ``raw_bits``.

    >>> int(correct_code(100000, 0, 0, 0, 400))           # no trim: identity
    100000
    >>> int(correct_code(100000, 5243, 0, 0, 400))        # +5243 * 2^-19 = +1 % gain
    101000
    """
    fmt = fmt or TrimFormat()
    raw = np.asarray(raw_code, dtype=np.int64)
    nd = max(raw.ndim, 1)
    gain = _lead(gain_code, nd, np.int64)
    tc = _lead(tempco_code, nd, np.int64)
    off = _lead(offset_code, nd, np.int64)
    board = _lead(board_code, nd, np.int64)
    d = _lead(die_temp_code, nd, np.int64)
    f = fmt.acc_frac_bits
    d_t = d - np.int64(fmt.t_ref_code)
    m = np.int64(1 << f) + ((gain + board) << np.int64(f - fmt.gain_frac_bits)) + tc * d_t
    acc = raw * m + (off << np.int64(f - fmt.offset_frac_bits))
    return saturate(round_shift_right(acc, f), fmt.raw_bits)


def _multiplier(
    gain_code: ArrayLike,
    tempco_code: ArrayLike,
    die_temp_code: ArrayLike,
    board_code: ArrayLike,
    fmt: TrimFormat,
    nd: int,
) -> FloatArray:
    """Real value of the correction multiplier ``m / 2^acc_frac_bits``."""
    g = _lead(gain_code, nd, np.float64) + _lead(board_code, nd, np.float64)
    d_t = _lead(die_temp_code, nd, np.float64) - fmt.t_ref_code
    return (
        1.0
        + g * fmt.gain_lsb
        + _lead(tempco_code, nd, np.float64) * fmt.tempco_lsb_per_C * (d_t * fmt.die_temp_lsb_C)
    )


def correct_code_float(
    raw: ArrayLike,
    gain_code: ArrayLike,
    tempco_code: ArrayLike,
    offset_code: ArrayLike,
    die_temp_code: ArrayLike,
    board_code: ArrayLike = 0,
    *,
    fmt: TrimFormat | None = None,
) -> FloatArray:
    """Real-number reference of :func:`correct_code` (no final rounding, no saturation).

    Same arguments and shapes as :func:`correct_code`; ``raw`` may be real-valued.
    """
    fmt = fmt or TrimFormat()
    r = np.asarray(raw, dtype=np.float64)
    nd = max(r.ndim, 1)
    m = _multiplier(gain_code, tempco_code, die_temp_code, board_code, fmt, nd)
    return r * m + _lead(offset_code, nd, np.float64) * 2.0**-fmt.offset_frac_bits


# ---- devices and the analog chain ---------------------------------------------------------


@dataclass(frozen=True)
class MeasurementPath(PerDevice):
    """Per-device errors of the measurement path (front end + ADC), each ``(n_devices,)``.

    Assumed temperature-independent (the ratiometric ADC leaves the reference as the dominant
    temperature term).
    """

    gain_error_ppm: FloatArray
    offset_uV: FloatArray

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            a = np.asarray(getattr(self, f.name), dtype=np.float64)
            if a.ndim != 1:
                raise ValueError(f"{f.name}: expected shape (n_devices,), got {a.shape}")
            object.__setattr__(self, f.name, a)
        if self.gain_error_ppm.shape != self.offset_uV.shape:
            raise ValueError("gain_error_ppm and offset_uV must have the same shape")

    @classmethod
    def ideal(cls, n_devices: int) -> MeasurementPath:
        """No path error."""
        return cls(np.zeros(n_devices), np.zeros(n_devices))


@dataclass(frozen=True)
class PathSpec:
    """Population figures of the path errors (zero-mean normals; assumed values)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - strict config section

    gain_error_sigma_ppm: float = 300.0
    offset_sigma_uV: float = 100.0

    def __post_init__(self) -> None:
        check_spec_fields(self)


@dataclass(frozen=True)
class Devices:
    """A population of chips: reference, measurement path and die-temperature sensor.

    Every component holds arrays shaped ``(n_devices,)``.
    """

    reference: ReferenceParams
    path: MeasurementPath
    sensor: TempSensorParams

    def __post_init__(self) -> None:
        n = self.reference.n_devices
        if self.path.gain_error_ppm.shape != (n,) or self.sensor.offset_C.shape != (n,):
            raise ValueError("reference, path and sensor must describe the same n_devices")

    @property
    def n_devices(self) -> int:
        """Number of devices."""
        return self.reference.n_devices

    @classmethod
    def with_ideal_path(cls, reference: ReferenceParams) -> Devices:
        """Devices whose only error is the reference (ideal path and sensor)."""
        n = reference.n_devices
        return cls(reference, MeasurementPath.ideal(n), TempSensorParams.ideal(n))


def sample_devices(
    n_devices: int,
    rng: np.random.Generator,
    *,
    reference: ReferenceSpec,
    path: PathSpec | None = None,
    sensor: TempSensorSpec | None = None,
) -> Devices:
    """Draw a population (reference, then path, then sensor, from one generator)."""
    ref = sample_reference(n_devices, reference, rng)
    path = path or PathSpec()
    z = rng.standard_normal((2, n_devices))
    mp = MeasurementPath(path.gain_error_sigma_ppm * z[0], path.offset_sigma_uV * z[1])
    return Devices(ref, mp, sample_temp_sensor(n_devices, sensor or TempSensorSpec(), rng))


def raw_code_real(
    devices: Devices,
    state: ReferenceState | None,
    v_in_V: ArrayLike,
    temp_die_C: ArrayLike,
    t_h: ArrayLike = 0.0,
    *,
    fmt: TrimFormat | None = None,
) -> FloatArray:
    """Noise-free raw conversion result (real-valued, before rounding), raw LSB.

    Shapes broadcast with axis 0 = devices (see :func:`bms_emu.afe.reference.v_ref_V`);
    ``v_in_V`` may be scalar, ``(n_devices,)`` or a grid.
    """
    fmt = fmt or TrimFormat()
    v_ref = v_ref_V(devices.reference, state, temp_die_C, t_h)
    v_in = np.asarray(v_in_V, dtype=np.float64)
    nd = max(v_ref.ndim, v_in.ndim, 1)
    v_in = per_device(v_in, nd) if v_in.ndim == 1 else v_in
    v_ref = per_device(v_ref, nd)
    p = devices.path
    v_path = v_in * (1 + 1e-6 * per_device(p.gain_error_ppm, nd)) + 1e-6 * per_device(
        p.offset_uV, nd
    )
    return v_path * per_device(devices.reference.v_nom_V, nd) / v_ref / fmt.raw_lsb_V


# ---- trim codes and the memory image ------------------------------------------------------


class TrimScheme(Enum):
    """Factory trim scheme; the value is the id stored in the image header."""

    NONE = 0
    ONE_POINT = 1
    TWO_TEMP = 2
    TWO_VOLTAGE = 3


@dataclass(frozen=True)
class TrimCodes(PerDevice):
    """Integer trim codes per device, each int64 ``(n_devices,)``."""

    gain: IntArray
    tempco: IntArray
    offset: IntArray
    board: IntArray

    @classmethod
    def zeros(cls, n_devices: int) -> TrimCodes:
        """Untrimmed."""
        z = np.zeros(n_devices, dtype=np.int64)
        return cls(z, z.copy(), z.copy(), z.copy())

    def replace(self, **kw: ArrayLike) -> TrimCodes:
        """Copy with some codes replaced."""
        return dataclasses.replace(self, **{k: np.asarray(v, np.int64) for k, v in kw.items()})


def pack_trim_image(
    codes: TrimCodes, scheme: TrimScheme, board_valid: ArrayLike, *, fmt: TrimFormat | None = None
) -> NDArray[np.uint32]:
    """Trim codes -> ECC-protected memory image, shape ``(n_devices, IMAGE_WORDS)`` of code words.

    Layout in the module docstring.
    """
    fmt = fmt or TrimFormat()
    n = codes.gain.shape[0]
    header = np.full(n, scheme.value | (_FORMAT_VERSION << 4), dtype=np.int64)
    header |= np.asarray(board_valid, dtype=np.int64) << 8
    b = fmt.code_bits
    data = np.stack(
        [
            header,
            to_field(codes.gain, b),
            to_field(codes.tempco, b),
            to_field(codes.offset, b),
            to_field(codes.board, b),
        ],
        axis=1,
    )
    return ecc_encode(data)


def read_trim_image(
    image: ArrayLike, *, fmt: TrimFormat | None = None
) -> tuple[TrimCodes, IntArray, NDArray[np.bool_], NDArray[np.uint8]]:
    """Decode a trim image as the chip does at power-up.

    Parameters
    ----------
    image : array_like, shape (n_devices, IMAGE_WORDS)
        Code words (possibly with bit errors).

    Returns
    -------
    codes : TrimCodes
        Codes in use (all 0 for a device with an uncorrectable word).
    scheme_id : ndarray of int64, (n_devices,)
    board_valid : ndarray of bool, (n_devices,)
    status : ndarray of uint8, (n_devices,)
        Worst :class:`EccStatus` over the device's words.
    """
    fmt = fmt or TrimFormat()
    data, status, _ = ecc_decode(image)
    worst = status.max(axis=1)
    bad = worst == EccStatus.UNCORRECTABLE
    d = np.where(bad[:, None], 0, data.astype(np.int64))
    b = fmt.code_bits
    codes = TrimCodes(*(from_field(d[:, i], b) for i in range(1, IMAGE_WORDS)))
    return codes, d[:, 0] & 0xF, (d[:, 0] >> 8 & 1).astype(bool), worst


@dataclass(frozen=True)
class TrimResult:
    """Outcome of a trim step.

    Attributes
    ----------
    scheme : TrimScheme
    codes : TrimCodes
        ``(n_devices,)`` each.
    board_valid : ndarray of bool, (n_devices,)
    image : ndarray of uint32, (n_devices, IMAGE_WORDS)
        ECC-protected memory image holding ``codes``.
    """

    scheme: TrimScheme
    codes: TrimCodes
    board_valid: NDArray[np.bool_]
    image: NDArray[np.uint32]


@dataclass(frozen=True)
class TrimTesterSpec:
    """Errors of the production tester (or end-of-line reference) at each trim point.

    Attributes
    ----------
    noise_uV : rms random error of one averaged reading, input-referred (independent per device
        and point; includes the chip's own noise after averaging).
    gain_error_ppm : systematic error of the applied voltage (same for every device).
    offset_uV : systematic offset of the applied voltage.
    """

    noise_uV: float = 0.0
    gain_error_ppm: float = 0.0
    offset_uV: float = 0.0


@dataclass(frozen=True)
class TrimConditions:
    """Trim points (die temperatures, input voltages).

    Attributes
    ----------
    t1_C, t2_C : die temperatures of the two-temperature trim (measured in this order); the
        one-point and two-voltage trims use ``t1_C``.
    v_trim_V : input voltage of the one-point and two-temperature trims.
    v_lo_V, v_hi_V : the two input voltages of the two-voltage trim.
    tempco_default_ppm_per_C : tempco stored by schemes that do not measure it.
    """

    t1_C: float = 25.0
    t2_C: float = 85.0
    v_trim_V: float = 3.3
    v_lo_V: float = 2.0
    v_hi_V: float = 4.0
    tempco_default_ppm_per_C: float = 0.0


def _measure(
    devices: Devices,
    state: ReferenceState,
    v_nominal_V: float,
    temp_die_C: float,
    t_h: float,
    tester: TrimTesterSpec,
    rng: np.random.Generator,
    fmt: TrimFormat,
) -> tuple[FloatArray, IntArray]:
    """One tester reading: raw code (averaged, real-valued) and the die-temperature code."""
    n = devices.n_devices
    state.observe_temperature(devices.reference, temp_die_C)
    v_applied = v_nominal_V * (1 + 1e-6 * tester.gain_error_ppm) + 1e-6 * tester.offset_uV
    raw = raw_code_real(devices, state, v_applied, np.full(n, temp_die_C), t_h, fmt=fmt)
    raw = raw + tester.noise_uV * 1e-6 / fmt.raw_lsb_V * rng.standard_normal(n)
    d = die_temp_code(
        np.full(n, temp_die_C),
        devices.sensor,
        lsb_C=fmt.die_temp_lsb_C,
        bits=fmt.die_temp_bits,
        rng=rng,
    )
    return raw, d


def trim(
    devices: Devices,
    scheme: TrimScheme | str,
    rng: np.random.Generator,
    *,
    state: ReferenceState | None = None,
    conditions: TrimConditions | None = None,
    tester: TrimTesterSpec | None = None,
    t_h: float = 0.0,
    fmt: TrimFormat | None = None,
) -> TrimResult:
    """Factory trim of a population: measure at the trim points, solve, quantise, pack.

    Parameters
    ----------
    devices : Devices
        ``n_devices`` chips.
    scheme : TrimScheme or its name (``"two_temp"``, ...)
    rng : numpy.random.Generator
        Tester noise and sensor noise.
    state : ReferenceState, optional
        Updated in place: the trim temperatures are hysteresis excursions (so a hot second
        trim point leaves the reference in its hot-excursion state). Default: fresh devices.
    conditions : TrimConditions, optional
    tester : TrimTesterSpec, optional
        Default: an ideal tester.
    t_h : float
        Lifetime at trim, h (0 = factory).
    fmt : TrimFormat, optional

    Returns
    -------
    TrimResult
        Codes ``(n_devices,)`` and the image ``(n_devices, IMAGE_WORDS)``; ``board_code = 0``.
    """
    fmt = fmt or TrimFormat()
    scheme = TrimScheme[scheme.upper()] if isinstance(scheme, str) else scheme
    state = state if state is not None else ReferenceState.new(devices.n_devices)
    cond = conditions or TrimConditions()
    tester = tester or TrimTesterSpec()
    n = devices.n_devices
    b = fmt.code_bits
    tc_default = np.full(
        n, quantize(cond.tempco_default_ppm_per_C * 1e-6, fmt.tempco_lsb_per_C, b), np.int64
    )
    codes = TrimCodes.zeros(n)

    def meas(v_V: float, temp_C: float) -> tuple[FloatArray, FloatArray]:
        # Reading and the sensor's temperature relative to t_ref, C.
        raw, d = _measure(devices, state, v_V, temp_C, t_h, tester, rng, fmt)
        return raw, (d - fmt.t_ref_code).astype(np.float64) * fmt.die_temp_lsb_C

    if scheme is TrimScheme.TWO_TEMP:
        c = cond.v_trim_V / fmt.raw_lsb_V
        raw1, ts1 = meas(cond.v_trim_V, cond.t1_C)
        raw2, ts2 = meas(cond.v_trim_V, cond.t2_C)
        k1, k2 = c / raw1, c / raw2
        tc = quantize((k2 - k1) / (ts2 - ts1), fmt.tempco_lsb_per_C, b)
        tc_q = tc * fmt.tempco_lsb_per_C
        gain = 0.5 * ((k1 - 1 - tc_q * ts1) + (k2 - 1 - tc_q * ts2))
        codes = codes.replace(gain=quantize(gain, fmt.gain_lsb, b), tempco=tc)
    elif scheme is TrimScheme.ONE_POINT:
        raw1, ts1 = meas(cond.v_trim_V, cond.t1_C)
        tc_q = tc_default * fmt.tempco_lsb_per_C
        gain = cond.v_trim_V / fmt.raw_lsb_V / raw1 - 1 - tc_q * ts1
        codes = codes.replace(gain=quantize(gain, fmt.gain_lsb, b), tempco=tc_default)
    elif scheme is TrimScheme.TWO_VOLTAGE:
        c_lo, c_hi = cond.v_lo_V / fmt.raw_lsb_V, cond.v_hi_V / fmt.raw_lsb_V
        raw_lo, ts_lo = meas(cond.v_lo_V, cond.t1_C)
        raw_hi, ts_hi = meas(cond.v_hi_V, cond.t1_C)
        ts = 0.5 * (ts_lo + ts_hi)
        tc_q = tc_default * fmt.tempco_lsb_per_C
        g = (c_hi - c_lo) / (raw_hi - raw_lo)
        gain_code = quantize(g - 1 - tc_q * ts, fmt.gain_lsb, b)
        m_q = 1 + gain_code * fmt.gain_lsb + tc_q * ts
        off = 0.5 * ((c_lo - m_q * raw_lo) + (c_hi - m_q * raw_hi))  # raw LSB
        codes = codes.replace(
            gain=gain_code, tempco=tc_default, offset=quantize(off, 2.0**-fmt.offset_frac_bits, b)
        )
    valid = np.zeros(n, dtype=bool)
    return TrimResult(scheme, codes, valid, pack_trim_image(codes, scheme, valid, fmt=fmt))


def board_trim(
    devices: Devices,
    factory: TrimResult,
    state: ReferenceState,
    rng: np.random.Generator,
    *,
    temp_die_C: float = 25.0,
    t_h: float = 0.0,
    v_ext_V: float = 3.3,
    tester: TrimTesterSpec | None = None,
    fmt: TrimFormat | None = None,
) -> TrimResult:
    """End-of-line one-point gain re-trim after board assembly, against an external reference.

    The end-of-line station reads the trim image (through the ECC), applies ``v_ext_V`` (with the
    errors of ``tester``), reads the chip's corrected output at the board temperature and
    stores the gain still needed in ``board_code`` (a second trim replaces the first).

    Parameters
    ----------
    devices : Devices
    factory : TrimResult
        The factory trim (its ``image`` is what is read).
    state : ReferenceState
        Updated in place (hysteresis); normally already assembled (``state.assemble``).
    rng : numpy.random.Generator
    temp_die_C : float
        Die temperature at end of line.
    t_h : float
        Lifetime at end of line, h (the reflow recovery goes on after it).
    v_ext_V : float
    tester : TrimTesterSpec, optional
    fmt : TrimFormat, optional

    Returns
    -------
    TrimResult
        Same scheme, ``board_valid`` True, new image.
    """
    fmt = fmt or TrimFormat()
    tester = tester or TrimTesterSpec()
    codes, _, _, _ = read_trim_image(factory.image, fmt=fmt)
    raw, d = _measure(devices, state, v_ext_V, temp_die_C, t_h, tester, rng, fmt)
    m = _multiplier(codes.gain, codes.tempco, d, codes.board, fmt, 1)
    corrected = raw * m + codes.offset * 2.0**-fmt.offset_frac_bits
    target = v_ext_V / fmt.raw_lsb_V
    # corrected = raw m + off, so the extra gain that makes it hit the target is
    # (target - corrected) / raw (the multiplier is additive in the board code).
    board_gain = codes.board * fmt.gain_lsb + (target - corrected) / raw
    codes = codes.replace(board=quantize(board_gain, fmt.gain_lsb, fmt.code_bits))
    valid = np.ones(devices.n_devices, dtype=bool)
    image = pack_trim_image(codes, factory.scheme, valid, fmt=fmt)
    return TrimResult(factory.scheme, codes, valid, image)


# ---- error of the corrected measurement ---------------------------------------------------


def _reading_V(
    devices: Devices,
    codes: TrimCodes,
    state: ReferenceState | None,
    temp_die_C: ArrayLike,
    t_h: ArrayLike,
    v_in_V: ArrayLike,
    fmt: TrimFormat,
) -> FloatArray:
    raw = raw_code_real(devices, state, v_in_V, temp_die_C, t_h, fmt=fmt)
    temp = np.broadcast_to(np.asarray(temp_die_C, dtype=np.float64), raw.shape)
    d = die_temp_code(temp, devices.sensor, lsb_C=fmt.die_temp_lsb_C, bits=fmt.die_temp_bits)
    corr = correct_code_float(raw, codes.gain, codes.tempco, codes.offset, d, codes.board, fmt=fmt)
    return corr * fmt.raw_lsb_V


def measurement_error(
    devices: Devices,
    codes: TrimCodes,
    state: ReferenceState | None,
    temp_die_C: ArrayLike,
    t_h: ArrayLike = 0.0,
    v_in_V: ArrayLike = 3.3,
    *,
    fmt: TrimFormat | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Error of the corrected reading, ``reading - v_in``, in ppm of ``v_in`` and in mV.

    Noise-free; the die temperature goes through the (noise-free, quantised) sensor; the
    correction is the real-number datapath (the final rounding to the raw LSB, at most
    1/2 raw LSB, is left out so the result is the trim accuracy, not the output resolution).

    Parameters
    ----------
    devices : Devices
    codes : TrimCodes
        ``(n_devices,)`` each (e.g. ``trim(...).codes``).
    state : ReferenceState or None
        Hysteresis and assembly state (not changed).
    temp_die_C : array_like
        Scalar or ``(n_devices, n_temps, ...)`` grid (axis 0 = devices).
    t_h, v_in_V : array_like
        Broadcast against ``temp_die_C`` (scalar, ``(n_devices,)`` or grids).

    Returns
    -------
    err_ppm, err_mV : ndarray
        Shape ``(n_devices, ...)`` of the broadcast inputs. TME = max ``|err_mV|`` over the grid.
    """
    fmt = fmt or TrimFormat()
    v_in = np.asarray(v_in_V, dtype=np.float64)
    reading = _reading_V(devices, codes, state, temp_die_C, t_h, v_in, fmt)
    v = per_device(v_in, reading.ndim) if v_in.ndim == 1 else v_in
    err_V = reading - v
    return 1e6 * err_V / v, 1e3 * err_V


def effective_reference_error_ppm(
    devices: Devices,
    codes: TrimCodes,
    state: ReferenceState | None,
    temp_die_C: ArrayLike,
    t_h: ArrayLike = 0.0,
    v_in_V: ArrayLike = 3.3,
    *,
    fmt: TrimFormat | None = None,
) -> FloatArray:
    """Residual reference error after correction, ``1e6 (v_in / reading - 1)``.

    Reference-referred: positive means the corrected chip behaves as if its reference were
    high (readings low). For a pure reference error it equals ``V_ref_true / V_ref_assumed - 1``
    with ``V_ref_assumed`` the reference the trimmed correction implies. Same arguments and
    shapes as :func:`measurement_error`.
    """
    fmt = fmt or TrimFormat()
    v_in = np.asarray(v_in_V, dtype=np.float64)
    reading = _reading_V(devices, codes, state, temp_die_C, t_h, v_in, fmt)
    v = per_device(v_in, reading.ndim) if v_in.ndim == 1 else v_in
    return 1e6 * (v / reading - 1.0)
