"""Register-group layouts of the ADBMS6830 as data, with pack/unpack and unit conversions.

A register group is 6 bytes. Every field is described by ``(lsb, width)`` segments in the
48-bit little-endian word ``byte0 | byte1 << 8 | ... | byte5 << 40``, so "byte 1 bit 4" is
bit 12. Most fields are one segment; the STATC conversion counter CT is split over two bytes
and has two segments. Reserved bits pack as 0 and are ignored when unpacking.

Result groups (cell, S, filtered, averaged, aux) hold 3 signed 16-bit little-endian codes;
``V = 1.5 V + code * 150 uV``. ``0x8000`` is the cleared value, ``0x7FFF`` the power-on value.

Sources: ADI adBms6830 library ``adBms6830ParseCreate.c`` / ``adBms6830Data.h`` (vendored in
NU-Formula-Racing/adbms) and foxBMS 2 ``adi_ades183x_defs.h``; where they disagree the choice is
recorded in ``docs/protocol.md`` ("Assumptions").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from bms_emu.protocol.bitfield import BitField

__all__ = [
    "AUX_GROUP_CHANNELS",
    "CELL_CLEARED_CODE",
    "CELL_GROUP_CHANNELS",
    "CELL_LSB_V",
    "CELL_OFFSET_V",
    "CELL_POWER_ON_CODE",
    "CTH_TABLE_MV",
    "CTH_TABLE_MV_ADI_LIB",
    "GROUP_SIZE",
    "IIR_CORNER_HZ",
    "LAYOUTS",
    "RAUX_GROUP_CHANNELS",
    "THRESHOLD_LSB_V",
    "Field",
    "RegisterLayout",
    "celsius_to_itmp_code",
    "code_to_volts",
    "itmp_code_to_celsius",
    "pack_codes",
    "pack_group",
    "threshold_code_to_volts",
    "unpack_codes",
    "unpack_group",
    "volts_to_code",
    "volts_to_threshold_code",
]

#: Bytes in one register group.
GROUP_SIZE: Final = 6
#: ADC LSB for cell, S, filtered, aux and status voltages (V).
CELL_LSB_V: Final = 150e-6
#: ADC zero-code voltage (V).
CELL_OFFSET_V: Final = 1.5
#: Result register value after a CLRCELL/CLRAUX/... (as a signed code).
CELL_CLEARED_CODE: Final = -0x8000
#: Result register value after power-on.
CELL_POWER_ON_CODE: Final = 0x7FFF
#: VUV/VOV threshold LSB: 16 ADC LSBs (V).
THRESHOLD_LSB_V: Final = 16 * CELL_LSB_V
#: Die temperature scale (V/K) and offset (K) for ITMP.
_ITMP_V_PER_K: Final = 7.5e-3
_ITMP_KELVIN_OFFSET: Final = 273.0

#: C-ADC vs S-ADC comparison threshold CTH[2:0] -> mV (foxBMS 2 ``ADI_COMPARISON_THRESHOLD_*``).
CTH_TABLE_MV: Final = (5.1, 8.1, 9.1, 10.05, 15.0, 19.95, 25.05, 45.05)
#: The same code as listed by the 2020 ADI adBms6830 library (``CTH`` enum); differs from
#: :data:`CTH_TABLE_MV` from code 2 on. Kept for comparison; not the default.
CTH_TABLE_MV_ADI_LIB: Final = (5.1, 8.1, 10.05, 15.0, 22.5, 45.0, 75.0, 135.0)
#: IIR filter FC[2:0] -> -3 dB corner (Hz); 0 = filter off (ADI ``IIR_FPA`` enum).
IIR_CORNER_HZ: Final = (None, 110.0, 45.0, 21.0, 10.0, 5.0, 1.25, 0.625)


@dataclass(frozen=True)
class Field(BitField):
    """One named field of a register group.

    ``segments`` are ``(lsb, width)`` pairs in the 48-bit little-endian group word, least
    significant part of the value first.
    """

    signed: bool = False

    @property
    def min(self) -> int:
        """Smallest value accepted by :meth:`RegisterLayout.pack`."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        """Largest value accepted by :meth:`RegisterLayout.pack`."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


def _at(byte: int, bit: int = 0) -> int:
    return byte * 8 + bit


def _f(name: str, byte: int, bit: int = 0, width: int = 1, signed: bool = False) -> Field:
    return Field(name, ((_at(byte, bit), width),), signed)


@dataclass(frozen=True)
class RegisterLayout:
    """Layout of one 6-byte register group.

    Examples
    --------
    >>> LAYOUTS["CFGA"].pack({"REFON": 1, "CTH": 2}).hex()
    '820000000000'
    >>> LAYOUTS["CFGA"].unpack(bytes.fromhex("820000000000"))["CTH"]
    2
    """

    name: str
    fields: tuple[Field, ...]
    size: int = GROUP_SIZE
    _by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        used = 0
        for f in self.fields:
            if f.mask & used:
                raise ValueError(f"{self.name}: field {f.name} overlaps another field")
            if f.mask >> (8 * self.size):
                raise ValueError(f"{self.name}: field {f.name} does not fit {self.size} bytes")
            used |= f.mask
        object.__setattr__(self, "_by_name", MappingProxyType({f.name: f for f in self.fields}))

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of all fields, in layout order."""
        return tuple(f.name for f in self.fields)

    def pack(self, values: Mapping[str, int], base: bytes | None = None) -> bytes:
        """Encode field values into the group's bytes.

        Parameters
        ----------
        values : mapping of str to int
            Field values; fields not given keep their value from ``base`` (or 0).
        base : bytes, optional
            Existing group contents to modify; default all zeros.

        Raises
        ------
        KeyError
            A name that is not a field of this group.
        ValueError
            A value out of the field's range.
        """
        word = int.from_bytes(base, "little") if base is not None else 0
        for name, value in values.items():
            try:
                f = self._by_name[name]
            except KeyError:
                raise KeyError(
                    f"{self.name} has no field {name!r} (fields: {', '.join(self._by_name)})"
                ) from None
            v = int(value)
            if not f.min <= v <= f.max:
                raise ValueError(f"{self.name}.{name} must be {f.min}..{f.max}, got {v}")
            word = (word & ~f.mask) | f.scatter(v)  # scatter keeps the low width bits
        return word.to_bytes(self.size, "little")

    def unpack(self, data: bytes) -> dict[str, int]:
        """Decode the group's bytes into a dict of every field value."""
        if len(data) != self.size:
            raise ValueError(f"{self.name} needs {self.size} bytes, got {len(data)}")
        word = int.from_bytes(data, "little")
        out: dict[str, int] = {}
        for f in self.fields:
            v = f.gather(word)
            if f.signed and v >> (f.width - 1):
                v -= 1 << f.width
            out[f.name] = v
        return out


def _flags(names: Iterable[str], byte: int) -> tuple[Field, ...]:
    """One-bit fields named in bit order 0..7 of ``byte`` (None-like '' skips a bit)."""
    return tuple(_f(n, byte, bit) for bit, n in enumerate(names) if n)


def _uv_ov_fields() -> tuple[Field, ...]:
    # STATD bytes 0..3: for cell n (1-based) bit 2(n-1) is CnUV and bit 2(n-1)+1 is CnOV.
    out: list[Field] = []
    for n in range(1, 17):
        bit = 2 * (n - 1)
        out.append(Field(f"C{n}UV", ((bit, 1),)))
        out.append(Field(f"C{n}OV", ((bit + 1, 1),)))
    return tuple(out)


# STATC bytes 4 and 5 flag names, bit 0 first. VDEL/VDE order follows the ADI library; foxBMS
# has them swapped (see docs/protocol.md, Assumptions).
_STATC4 = ("SMED", "SED", "CMED", "CED", "VD_UV", "VD_OV", "VA_UV", "VA_OV")
_STATC5 = ("OSCCHK", "TMODCHK", "THSD", "SLEEP", "SPIFLT", "COMP", "VDEL", "VDE")
_CLRFLAG5 = ("OSCCHK", "TMODCHK", "THSD", "SLEEP", "SPIFLT", "", "VDEL", "VDE")

#: All register-group layouts by name (read-only mapping).
LAYOUTS: Mapping[str, RegisterLayout] = MappingProxyType(
    {
        layout.name: layout
        for layout in (
            RegisterLayout(
                "CFGA",
                (
                    _f("CTH", 0, 0, 3),
                    _f("REFON", 0, 7),
                    _f("FLAG_D", 1, 0, 8),
                    _f("OWA", 2, 3, 3),
                    _f("OWRNG", 2, 6),
                    _f("SOAKON", 2, 7),
                    _f("GPO", 3, 0, 10),  # GPO1..GPO10 -> bits 0..9 (spans bytes 3-4)
                    _f("FC", 5, 0, 3),
                    _f("COMM_BK", 5, 3),
                    _f("MUTE_ST", 5, 4),
                    _f("SNAP_ST", 5, 5),
                ),
            ),
            RegisterLayout(
                "CFGB",
                (
                    _f("VUV", 0, 0, 12),  # byte0 + byte1[3:0]
                    _f("VOV", 1, 4, 12),  # byte1[7:4] + byte2
                    _f("DCTO", 3, 0, 6),
                    _f("DTRNG", 3, 6),
                    _f("DTMEN", 3, 7),
                    _f("DCC", 4, 0, 16),  # DCC1..DCC16 -> bits 0..15
                ),
            ),
            RegisterLayout(
                "STATA",
                (
                    _f("VREF2", 0, 0, 16, signed=True),
                    _f("ITMP", 2, 0, 16, signed=True),
                    _f("VREF3", 4, 0, 16, signed=True),
                ),
            ),
            RegisterLayout(
                "STATB",
                (
                    _f("VD", 0, 0, 16, signed=True),
                    _f("VA", 2, 0, 16, signed=True),
                    _f("VRES", 4, 0, 16, signed=True),
                ),
            ),
            RegisterLayout(
                "STATC",
                (
                    _f("CSFLT", 0, 0, 16),  # CS1FLT..CS16FLT -> bits 0..15
                    # CT[10:0]: CT[5:0] at byte3 bits 7..2, CT[10:6] at byte2 bits 4..0 (foxBMS)
                    Field("CT", ((_at(3, 2), 6), (_at(2, 0), 5))),
                    _f("CTS", 3, 0, 2),
                    *_flags(_STATC4, 4),
                    *_flags(_STATC5, 5),
                ),
            ),
            RegisterLayout(
                "STATD",
                (
                    *_uv_ov_fields(),
                    _f("OC_CNTR", 5, 0, 8),
                ),
            ),
            RegisterLayout(
                "STATE",
                (
                    _f("GPI", 4, 0, 10),  # GPIO1..GPIO10 input state, bits 0..9
                    _f("REV", 5, 4, 4),
                ),
            ),
            RegisterLayout(
                "CLRFLAG",
                (
                    _f("CSFLT", 0, 0, 16),
                    *_flags(_STATC4, 4),
                    *_flags(_CLRFLAG5, 5),
                ),
            ),
            RegisterLayout(
                "PWMA",
                tuple(_f(f"PWM{n}", (n - 1) // 2, 4 * ((n - 1) % 2), 4) for n in range(1, 13)),
            ),
            RegisterLayout(
                "PWMB",
                tuple(_f(f"PWM{n}", (n - 13) // 2, 4 * ((n - 13) % 2), 4) for n in range(13, 17)),
            ),
            RegisterLayout("SID", (_f("SID", 0, 0, 48),)),
            RegisterLayout(
                "COMM",
                tuple(
                    f
                    for k in range(3)
                    for f in (
                        _f(f"FCOMM{k}", 2 * k, 0, 4),
                        _f(f"ICOMM{k}", 2 * k, 4, 4),
                        _f(f"D{k}", 2 * k + 1, 0, 8),
                    )
                ),
            ),
        )
    }
)


def pack_group(name: str, values: Mapping[str, int], base: bytes | None = None) -> bytes:
    """Pack field values into the 6 bytes of group ``name`` (see :meth:`RegisterLayout.pack`).

    Examples
    --------
    >>> pack_group("CFGB", {"VUV": 0x123, "VOV": 0xABC, "DCC": 0x8001}).hex()
    '23c1ab000180'
    """
    return LAYOUTS[name].pack(values, base)


def unpack_group(name: str, data: bytes) -> dict[str, int]:
    """Unpack the 6 bytes of group ``name`` into a dict of field values.

    Examples
    --------
    >>> unpack_group("CFGB", bytes.fromhex("23c1ab000180"))["VOV"] == 0xABC
    True
    """
    return LAYOUTS[name].unpack(data)


# --- result groups ---------------------------------------------------------------------

#: Cell channels (1-based) in each cell-type result group; group F holds cell 16 only.
CELL_GROUP_CHANNELS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "A": (1, 2, 3),
        "B": (4, 5, 6),
        "C": (7, 8, 9),
        "D": (10, 11, 12),
        "E": (13, 14, 15),
        "F": (16,),
    }
)
#: Aux result groups: GPIO voltages, then VMV (V-) and VPV (V+) in group D.
AUX_GROUP_CHANNELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "A": ("G1V", "G2V", "G3V"),
        "B": ("G4V", "G5V", "G6V"),
        "C": ("G7V", "G8V", "G9V"),
        "D": ("G10V", "VMV", "VPV"),
    }
)
#: Redundant aux result groups (GPIO 1..10 only).
RAUX_GROUP_CHANNELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "A": ("G1V", "G2V", "G3V"),
        "B": ("G4V", "G5V", "G6V"),
        "C": ("G7V", "G8V", "G9V"),
        "D": ("G10V",),
    }
)


def unpack_codes(data: bytes) -> tuple[int, ...]:
    """Signed 16-bit little-endian codes from a result group (3 per 6 bytes; 16 per 32).

    Examples
    --------
    >>> unpack_codes(bytes.fromhex("0080ff7f0000"))
    (-32768, 32767, 0)
    """
    if len(data) % 2:
        raise ValueError(f"result data must have an even length, got {len(data)}")
    return tuple(int(c) for c in np.frombuffer(data, dtype="<i2"))


def pack_codes(codes: Sequence[int], n_slots: int = 3, fill: int = -1) -> bytes:
    """Pack signed 16-bit codes little-endian into ``n_slots`` slots, padding with ``fill``.

    ``fill=-1`` gives ``0xFFFF`` in unused slots (group F carries only cell 16; what the real
    part returns in the unused slots is an assumption, see docs/protocol.md).

    Examples
    --------
    >>> pack_codes([1, -1, 0x7FFF]).hex()
    '0100ffffff7f'
    >>> pack_codes([5], n_slots=3).hex()
    '0500ffffffff'
    """
    if len(codes) > n_slots:
        raise ValueError(f"{len(codes)} codes do not fit {n_slots} slots")
    arr = np.full(n_slots, fill, dtype="<i2")
    src = np.asarray(codes, dtype=np.int64)
    if src.size and (src.min() < -0x8000 or src.max() > 0x7FFF):
        raise ValueError("codes must be signed 16-bit values")
    arr[: src.size] = src
    return arr.tobytes()


def code_to_volts(code: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Volts for signed ADC codes: ``1.5 V + code * 150 uV`` (any shape).

    Examples
    --------
    >>> float(code_to_volts(12000))
    3.3
    """
    return CELL_OFFSET_V + np.asarray(code, dtype=np.float64) * CELL_LSB_V


def volts_to_code(volts: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Nearest signed 16-bit code for a voltage, saturating at the int16 range (any shape).

    Examples
    --------
    >>> int(volts_to_code(3.3))
    12000
    >>> int(volts_to_code(100.0))
    32767
    """
    c = np.rint((np.asarray(volts, dtype=np.float64) - CELL_OFFSET_V) / CELL_LSB_V)
    return np.clip(c, -0x8000, 0x7FFF).astype(np.int16)


def threshold_code_to_volts(code: int) -> float:
    """Volts for a 12-bit VUV/VOV code (two's complement, 16 ADC LSBs per step).

    Examples
    --------
    >>> round(threshold_code_to_volts(0x2BC), 4)
    3.18
    """
    if not 0 <= code <= 0xFFF:
        raise ValueError(f"threshold code must be 0..0xFFF, got {code}")
    signed = code - 0x1000 if code & 0x800 else code
    return CELL_OFFSET_V + signed * THRESHOLD_LSB_V


def volts_to_threshold_code(volts: float) -> int:
    """12-bit VUV/VOV code nearest to ``volts`` (saturating).

    Examples
    --------
    >>> hex(volts_to_threshold_code(3.18))
    '0x2bc'
    >>> hex(volts_to_threshold_code(-10.0))
    '0x800'
    """
    c = round((volts - CELL_OFFSET_V) / THRESHOLD_LSB_V)
    c = max(-0x800, min(0x7FF, c))
    return c & 0xFFF


def itmp_code_to_celsius(code: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Die temperature (deg C) from the STATA ITMP code: ``V / 7.5 mV/K - 273``.

    Examples
    --------
    >>> round(float(itmp_code_to_celsius(4900)), 2)
    25.0
    """
    return code_to_volts(code) / _ITMP_V_PER_K - _ITMP_KELVIN_OFFSET


def celsius_to_itmp_code(temp_C: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Inverse of :func:`itmp_code_to_celsius` (nearest code).

    Examples
    --------
    >>> int(celsius_to_itmp_code(25.0))
    4900
    """
    volts = (np.asarray(temp_C, dtype=np.float64) + _ITMP_KELVIN_OFFSET) * _ITMP_V_PER_K
    return volts_to_code(volts)
