"""ADC path constants and the cell-data code format (ADBMS6830 personality).

Timing (REFERENCE.md 2.1: C-ADC single conversion 1 ms, S-ADC 8 ms)
---------------------------------------------------------------------
* Modulator clock ``F_MOD_HZ = 1.024 MHz``. Chosen so that a power-of-two decimation ratio gives
  exactly 1 ms: ``R_CADC = 1024`` -> C-ADC output data rate 1000 Hz, and ``R_SADC = 8192`` ->
  S-ADC output data rate 125 Hz (8 ms). Powers of two keep the sinc3 register width an integer
  ``1 + 3*log2(R)`` (31 bits for the C-ADC, 40 bits for the S-ADC) and make the code scaling a
  pure shift.
* sinc3 settling: the impulse response spans ``3R - 2`` modulator samples, so after a step (or
  after a reset of the filter) the first fully settled result is the third output: 3 ms for the
  C-ADC, 24 ms for the S-ADC. In continuous mode every later output is a full 1 ms conversion.

Analog scaling (an assumption; no public figure)
------------------------------------------------
The front end presents the modulator with ``v_in_V = G_IN * v_cell_V`` (attenuation by 3, no
level shift), so a reference error is a gain error of the *whole* cell voltage: ppm of reading,
which is how REFERENCE.md section 3 budgets it (+-1 mV = +-303 ppm at 3.3 V). With the nominal
reference ``V_REF_NOM_V = 3.0 V``, ``u = v_in_V / v_ref_V = +-1`` (full scale) is
``v_cell_V = +-9.0 V`` (``FS_CELL_V``); cells of 0-5 V use ``u <= 0.56`` and the whole 16-bit
code range (-3.4 V .. 6.4 V) ``|u| <= 0.71``, inside the stable input range of the second-order
1-bit loop (about ``|u| < 0.8``).

Digital path, bit-true (the RTL copies this)
--------------------------------------------
1. sinc3 output ``D`` (unsigned, ``0..R**3``; ``R**3/2`` is ``u = 0``) to the *raw code*, signed
   24 bit, LSB ``RAW_LSB_V = 150 uV / 16 = 9.375 uV``, zero at 0 V: one unit of ``u`` is
   ``FS_CELL_V / RAW_LSB_V = 960000`` raw codes (an integer)::

       raw = sat24(round_half_up((2 D - R**3) * 960000 / R**3))     # R**3 = 2**30: ">>> 30"

   ``2D - R**3`` is ``2 + 3 log2 R`` bits signed (32 for R = 1024), times the 20-bit constant
   -> 52 bits (61 for R = 8192): fits int64.
2. Trim correction on the raw code (:func:`bms_emu.afe.trim.correct_code`, same LSB).
3. Raw code to the 16-bit cell code: remove the 1.5 V code zero (160000 raw codes) and drop 4
   fraction bits with rounding::

       code = sat16((raw - 160000 + 8) >>> 4)

Code format (REFERENCE.md 2.1)
------------------------------
Cell data is a signed 16-bit code, ``V = 1.5 V + code * 150 uV``. ``0x8000`` (-32768) means
"cleared" and ``0x7FFF`` is the power-on value, so conversion results saturate to
``[-32767, 32767]`` (``CODE_MIN``/``CODE_MAX``) and never produce the "cleared" marker.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bms_emu.afe.fixed_point import quantize

__all__ = [
    "CODE_MAX",
    "CODE_MIN",
    "FS_CELL_V",
    "FS_CODES",
    "F_MOD_HZ",
    "G_IN",
    "LSB_V",
    "RAW_BITS",
    "RAW_CODE_ZERO",
    "RAW_LSB_V",
    "RAW_PER_U",
    "R_CADC",
    "R_SADC",
    "V_CODE_ZERO_V",
    "V_REF_NOM_V",
    "cell_code_from_raw",
    "cell_code_from_sinc3",
    "cell_code_from_volts",
    "cell_volts_from_code",
    "modulator_input_V",
    "odr_Hz",
    "raw_code_from_sinc3",
]

#: Modulator clock (Hz): 1.024 MHz, so R = 1024 gives a 1 ms conversion.
F_MOD_HZ = 1_024_000
#: C-ADC decimation ratio: 1 ms per result at F_MOD_HZ.
R_CADC = 1024
#: S-ADC (redundant) decimation ratio: 8 ms per result at F_MOD_HZ.
R_SADC = 8192
#: Code zero of the cell data format (V).
V_CODE_ZERO_V = 1.5
#: Cell data LSB (V).
LSB_V = 150e-6
#: Nominal modulator reference the digital scaling assumes (V).
V_REF_NOM_V = 3.0
#: Front-end attenuation from the cell-referred input to the modulator input (assumption).
G_IN = 1.0 / 3.0
#: Cell-referred span of one unit of modulator input u at the nominal reference (V).
FS_CELL_V = V_REF_NOM_V / G_IN
#: Codes per unit of u: FS_CELL_V / LSB_V = 60000 exactly.
FS_CODES = 60000
#: Raw (pre-trim) code: LSB 150 uV / 16, signed 24 bit, zero at 0 V.
RAW_LSB_V = LSB_V / 16
RAW_BITS = 24
#: Raw codes per unit of u: FS_CELL_V / RAW_LSB_V = 960000 exactly.
RAW_PER_U = 960_000
#: Raw code of the cell format's code zero (1.5 V).
RAW_CODE_ZERO = 160_000
#: Saturation limits of a conversion result (-32768 is reserved for "cleared").
CODE_MIN = -32767
CODE_MAX = 32767

IntArray = NDArray[np.int64]


def odr_Hz(R: int, f_mod_Hz: float = F_MOD_HZ) -> float:
    """Output data rate of a sinc3 decimator with ratio ``R`` (Hz)."""
    return f_mod_Hz / R


def modulator_input_V(v_cell_V: ArrayLike) -> NDArray[np.float64]:
    """Cell-referred ADC input (V) -> differential modulator input ``v_in_V`` (V), any shape.

    >>> float(modulator_input_V(4.5))
    1.5
    """
    return G_IN * np.asarray(v_cell_V, dtype=np.float64)


def raw_code_from_sinc3(d: ArrayLike, R: int) -> IntArray:
    """Bit-true map from the unsigned sinc3 output to the signed 24-bit raw code.

    Parameters
    ----------
    d : array_like of int, any shape
        sinc3 output ``D`` in ``[0, R**3]``; ``D = R**3/2`` is ``u = 0``.
    R : int
        Decimation ratio.

    Returns
    -------
    ndarray of int64, same shape: ``round_half_up((2D - R**3) * 960000 / R**3)``, saturated
    to 24 bits signed; LSB ``RAW_LSB_V``.

    >>> raw_code_from_sinc3([2**29, 2**29 + 2**26, 0], 1024).tolist()  # u = 0, +0.125, -1
    [0, 120000, -960000]
    """
    r3 = R**3
    x = (2 * np.asarray(d, dtype=np.int64) - r3) * np.int64(RAW_PER_U)
    # floor((x + r3/2) / r3) is round-half-up; for R = 2**k it is exactly (x + 2**(3k-1)) >> 3k
    raw = (x + r3 // 2) // r3
    lim = (1 << (RAW_BITS - 1)) - 1
    return np.minimum(np.maximum(raw, -lim - 1), lim).astype(np.int64)


def cell_code_from_raw(raw: ArrayLike) -> IntArray:
    """Raw (or trim-corrected) code -> signed 16-bit cell code, bit-true.

    ``(raw - 160000 + 8) >>> 4`` (round half up), saturated to ``[CODE_MIN, CODE_MAX]``.

    >>> cell_code_from_raw([352000, 352007, 352008, 0]).tolist()  # 3.3 V, just below, tie
    [12000, 12000, 12001, -10000]
    """
    x = np.asarray(raw, dtype=np.int64) - RAW_CODE_ZERO + 8
    return np.minimum(np.maximum(x >> 4, CODE_MIN), CODE_MAX).astype(np.int64)


def cell_code_from_sinc3(d: ArrayLike, R: int) -> IntArray:
    """Untrimmed path: sinc3 output -> raw code -> 16-bit cell code (both steps bit-true).

    >>> cell_code_from_sinc3([2**29 + 2**26 * 3], 1024).tolist()  # u = 0.375: 3.375 V
    [12500]
    """
    return cell_code_from_raw(raw_code_from_sinc3(d, R))


def cell_code_from_volts(v_cell_V: ArrayLike) -> IntArray:
    """Cell-referred volts -> nearest 16-bit code (round half up, saturating), any shape.

    >>> cell_code_from_volts([1.5, 1.5 + 150e-6, 3.3, 100.0]).tolist()
    [0, 1, 12000, 32767]
    """
    code = quantize(np.asarray(v_cell_V, dtype=np.float64) - V_CODE_ZERO_V, LSB_V, 16)
    return np.minimum(np.maximum(code, CODE_MIN), CODE_MAX)


def cell_volts_from_code(code: ArrayLike) -> NDArray[np.float64]:
    """16-bit cell code -> volts: ``1.5 V + code * 150 uV``, any shape.

    >>> float(cell_volts_from_code(12000))
    3.3
    """
    return V_CODE_ZERO_V + np.asarray(code, dtype=np.float64) * LSB_V
