"""ADBMS6830 command set as data: opcodes, parameter bit fields, kinds and data lengths.

An opcode is 11 bits (CMD0 holds bits 10..8, CMD1 bits 7..0; the top 5 bits of CMD0 are 0).
Parameterised commands (ADCV, ADSV, ADAX, ADAX2, RDSTATC) carry option bits inside the opcode;
:func:`decode_opcode` recognises them by masking those bits out. Decoding is one lookup in a
2048-entry table built at import time.

Sources (see ``docs/protocol.md`` for the details and for where sources disagree):
ADI adBms6830 library ``adBms6830CmdList.h`` / ``adBms6830GenericType.c`` (vendored in
NU-Formula-Racing/adbms), foxBMS 2 ``src/app/driver/afe/adi/common/ades183x/adi_ades183x_defs.h``
(opcodes, data lengths and which commands increment the command counter), atopile
``adbms6830-saleae-analyzer/HighLevelAnalyzer.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from bms_emu.protocol.bitfield import BitField
from bms_emu.protocol.pec import append_pec15

__all__ = [
    "ACTION",
    "ALIASES",
    "COMMANDS",
    "EXTENSION_RANGES",
    "FOREIGN_OPCODES",
    "OPCODE_BITS",
    "POLL",
    "READ",
    "WRITE",
    "CommandSpec",
    "ParamField",
    "decode_opcode",
    "encode_command",
    "encode_opcode",
    "is_extension_opcode",
]

#: Opcodes are 11-bit values.
OPCODE_BITS: Final = 11
_OPCODE_SPACE: Final = 1 << OPCODE_BITS

#: Kind: the host clocks out dummy bytes and devices answer with data + PEC10 + counter.
READ: Final = "read"
#: Kind: the host sends per-device data + PEC10 after the command.
WRITE: Final = "write"
#: Kind: command only (4 bytes), no data phase.
ACTION: Final = "action"
#: Kind: command only; SDO then signals conversion status while the host keeps clocking.
POLL: Final = "poll"


@dataclass(frozen=True)
class ParamField(BitField):
    """One option field inside an opcode.

    ``segments`` are ``(lsb, width)`` pairs in the 11-bit opcode, least significant part of the
    value first (ADAX's CH is split: CH[3:0] at bits 3..0, CH[4] at bit 6).
    """

    def insert(self, value: int) -> int:
        """Opcode bits for ``value`` (which must fit in :attr:`width`)."""
        if not 0 <= value < (1 << self.width):
            raise ValueError(
                f"parameter {self.name} must be 0..{(1 << self.width) - 1}, got {value}"
            )
        return self.scatter(value)

    def extract(self, opcode: int) -> int:
        """Value of this field in ``opcode``."""
        return self.gather(opcode)


@dataclass(frozen=True)
class CommandSpec:
    """One command of the device's command set.

    Attributes
    ----------
    name : str
        Datasheet mnemonic, e.g. ``"RDCVA"``.
    opcode : int
        Base opcode (all parameter bits 0).
    kind : str
        One of :data:`READ`, :data:`WRITE`, :data:`ACTION`, :data:`POLL`.
    data_len : int
        Register bytes per device in the data phase, excluding the 2 PEC bytes (0 if none).
    group : str or None
        Register group (a key of :data:`bms_emu.protocol.registers.LAYOUTS`, or a result-group
        name such as ``"CVA"`` / ``"CVALL"``) the command reads or writes.
    increments_cc : bool
        True if a device that accepts this command increments its command counter.
    resets_cc : bool
        True if the command sets the command counter to 0 (RSTCC, SRST).
    params : tuple of ParamField
        Option fields inside the opcode.
    trailing_bytes : int
        Extra clock bytes the host sends after the command (STCOMM).
    """

    name: str
    opcode: int
    kind: str
    data_len: int = 0
    group: str | None = None
    increments_cc: bool = False
    resets_cc: bool = False
    params: tuple[ParamField, ...] = field(default=())
    trailing_bytes: int = 0

    @property
    def param_mask(self) -> int:
        """Opcode bits used by the parameters."""
        m = 0
        for p in self.params:
            m |= p.mask
        return m

    @property
    def frame_bytes_per_device(self) -> int:
        """Bytes per device in the data phase including the 2 PEC bytes (0 if no data)."""
        return self.data_len + 2 if self.data_len else 0


def _p(name: str, lsb: int, width: int = 1) -> ParamField:
    return ParamField(name, ((lsb, width),))


_R, _W, _A, _PL = READ, WRITE, ACTION, POLL

# (name, opcode, kind, data_len, group, increments_cc, resets_cc, params, trailing_bytes)
# Which commands increment the counter follows foxBMS' *_INC column (writes and actions yes,
# reads no; RSTCC/SRST reset it). Poll, COMM and clear commands absent from foxBMS follow the
# same rule by kind: an assumption, see docs/protocol.md.
_Row = tuple[str, int, str, int, "str | None", bool, bool, tuple[ParamField, ...], int]

# fmt: off
_TABLE: tuple[_Row, ...] = (
    # --- conversions (parameterised) ---------------------------------------------------
    ("ADCV", 0x260, _A, 0, None, True, False,
     (_p("RD", 8), _p("CONT", 7), _p("DCP", 4), _p("RSTF", 2), _p("OW", 0, 2)), 0),
    ("ADSV", 0x168, _A, 0, None, True, False,
     (_p("CONT", 7), _p("DCP", 4), _p("OW", 0, 2)), 0),
    ("ADAX", 0x410, _A, 0, None, True, False,
     (_p("OW", 8), _p("PUP", 7), ParamField("CH", ((0, 4), (6, 1)))), 0),
    ("ADAX2", 0x400, _A, 0, None, True, False, (_p("CH", 0, 4),), 0),
    # --- configuration -----------------------------------------------------------------
    ("WRCFGA", 0x001, _W, 6, "CFGA", True, False, (), 0),
    ("WRCFGB", 0x024, _W, 6, "CFGB", True, False, (), 0),
    ("RDCFGA", 0x002, _R, 6, "CFGA", False, False, (), 0),
    ("RDCFGB", 0x026, _R, 6, "CFGB", False, False, (), 0),
    # --- C-ADC results -----------------------------------------------------------------
    ("RDCVA", 0x004, _R, 6, "CVA", False, False, (), 0),
    ("RDCVB", 0x006, _R, 6, "CVB", False, False, (), 0),
    ("RDCVC", 0x008, _R, 6, "CVC", False, False, (), 0),
    ("RDCVD", 0x00A, _R, 6, "CVD", False, False, (), 0),
    ("RDCVE", 0x009, _R, 6, "CVE", False, False, (), 0),
    ("RDCVF", 0x00B, _R, 6, "CVF", False, False, (), 0),
    ("RDCVALL", 0x00C, _R, 32, "CVALL", False, False, (), 0),
    # --- averaged C-ADC results --------------------------------------------------------
    ("RDACA", 0x044, _R, 6, "ACA", False, False, (), 0),
    ("RDACB", 0x046, _R, 6, "ACB", False, False, (), 0),
    ("RDACC", 0x048, _R, 6, "ACC", False, False, (), 0),
    ("RDACD", 0x04A, _R, 6, "ACD", False, False, (), 0),
    ("RDACE", 0x049, _R, 6, "ACE", False, False, (), 0),
    ("RDACF", 0x04B, _R, 6, "ACF", False, False, (), 0),
    ("RDACALL", 0x04C, _R, 32, "ACALL", False, False, (), 0),
    # --- S-ADC (redundant) results -----------------------------------------------------
    ("RDSVA", 0x003, _R, 6, "SVA", False, False, (), 0),
    ("RDSVB", 0x005, _R, 6, "SVB", False, False, (), 0),
    ("RDSVC", 0x007, _R, 6, "SVC", False, False, (), 0),
    ("RDSVD", 0x00D, _R, 6, "SVD", False, False, (), 0),
    ("RDSVE", 0x00E, _R, 6, "SVE", False, False, (), 0),
    ("RDSVF", 0x00F, _R, 6, "SVF", False, False, (), 0),
    ("RDSVALL", 0x010, _R, 32, "SVALL", False, False, (), 0),
    # --- combined reads ----------------------------------------------------------------
    ("RDCSALL", 0x011, _R, 64, "CSALL", False, False, (), 0),
    ("RDACSALL", 0x051, _R, 64, "ACSALL", False, False, (), 0),
    ("RDASALL", 0x035, _R, 68, "ASALL", False, False, (), 0),
    # --- IIR-filtered results ----------------------------------------------------------
    ("RDFCA", 0x012, _R, 6, "FCA", False, False, (), 0),
    ("RDFCB", 0x013, _R, 6, "FCB", False, False, (), 0),
    ("RDFCC", 0x014, _R, 6, "FCC", False, False, (), 0),
    ("RDFCD", 0x015, _R, 6, "FCD", False, False, (), 0),
    ("RDFCE", 0x016, _R, 6, "FCE", False, False, (), 0),
    ("RDFCF", 0x017, _R, 6, "FCF", False, False, (), 0),
    ("RDFCALL", 0x018, _R, 32, "FCALL", False, False, (), 0),
    # --- auxiliary and redundant auxiliary ---------------------------------------------
    ("RDAUXA", 0x019, _R, 6, "AUXA", False, False, (), 0),
    ("RDAUXB", 0x01A, _R, 6, "AUXB", False, False, (), 0),
    ("RDAUXC", 0x01B, _R, 6, "AUXC", False, False, (), 0),
    ("RDAUXD", 0x01F, _R, 6, "AUXD", False, False, (), 0),
    ("RDRAXA", 0x01C, _R, 6, "RAXA", False, False, (), 0),
    ("RDRAXB", 0x01D, _R, 6, "RAXB", False, False, (), 0),
    ("RDRAXC", 0x01E, _R, 6, "RAXC", False, False, (), 0),
    ("RDRAXD", 0x025, _R, 6, "RAXD", False, False, (), 0),
    # --- status ------------------------------------------------------------------------
    ("RDSTATA", 0x030, _R, 6, "STATA", False, False, (), 0),
    ("RDSTATB", 0x031, _R, 6, "STATB", False, False, (), 0),
    # ERR (bit 6) = RDSTATCERR 0x072: read STATC with an injected error.
    ("RDSTATC", 0x032, _R, 6, "STATC", False, False, (_p("ERR", 6),), 0),
    ("RDSTATD", 0x033, _R, 6, "STATD", False, False, (), 0),
    ("RDSTATE", 0x034, _R, 6, "STATE", False, False, (), 0),
    # --- balancing PWM -----------------------------------------------------------------
    ("WRPWMA", 0x020, _W, 6, "PWMA", True, False, (), 0),
    ("WRPWMB", 0x021, _W, 6, "PWMB", True, False, (), 0),
    ("RDPWMA", 0x022, _R, 6, "PWMA", False, False, (), 0),
    ("RDPWMB", 0x023, _R, 6, "PWMB", False, False, (), 0),
    # --- clears ------------------------------------------------------------------------
    ("CLRCELL", 0x711, _A, 0, None, True, False, (), 0),
    ("CLRAUX", 0x712, _A, 0, None, True, False, (), 0),
    ("CLRFC", 0x714, _A, 0, None, True, False, (), 0),
    ("CLOVUV", 0x715, _A, 0, None, True, False, (), 0),
    ("CLRSPIN", 0x716, _A, 0, None, True, False, (), 0),
    ("CLRFLAG", 0x717, _W, 6, "CLRFLAG", True, False, (), 0),
    # --- polls -------------------------------------------------------------------------
    ("PLADC", 0x718, _PL, 0, None, False, False, (), 0),
    ("PLAUT", 0x719, _PL, 0, None, False, False, (), 0),
    ("PLCADC", 0x71C, _PL, 0, None, False, False, (), 0),
    ("PLSADC", 0x71D, _PL, 0, None, False, False, (), 0),
    ("PLAUX", 0x71E, _PL, 0, None, False, False, (), 0),
    ("PLAUX2", 0x71F, _PL, 0, None, False, False, (), 0),
    # --- GPIO serial bridge (COMM) -----------------------------------------------------
    ("WRCOMM", 0x721, _W, 6, "COMM", True, False, (), 0),
    ("RDCOMM", 0x722, _R, 6, "COMM", False, False, (), 0),
    ("STCOMM", 0x723, _A, 0, None, True, False, (), 9),
    # --- control -----------------------------------------------------------------------
    ("MUTE", 0x028, _A, 0, None, True, False, (), 0),
    ("UNMUTE", 0x029, _A, 0, None, True, False, (), 0),
    ("SNAP", 0x02D, _A, 0, None, True, False, (), 0),
    ("UNSNAP", 0x02F, _A, 0, None, True, False, (), 0),
    ("RSTCC", 0x02E, _A, 0, None, False, True, (), 0),
    ("SRST", 0x027, _A, 0, None, False, True, (), 0),
    ("RDSID", 0x02C, _R, 6, "SID", False, False, (), 0),
    # --- bms-emu extensions (EXTENSION_RANGES; docs/protocol.md "Extensions") -----------
    ("RDI", 0x6E0, _R, 6, "CUR", False, False, (), 0),
    # EIS engine (bms_emu.protocol.eis_format: groups and fixed-point formats)
    ("WREISC", 0x6C0, _W, 6, "EISC", True, False, (), 0),
    ("RDEISC", 0x6C1, _R, 6, "EISC", False, False, (), 0),
    ("WREISF", 0x6C2, _W, 6, "EISF", True, False, (), 0),
    ("RDEISF", 0x6C3, _R, 6, "EISF", False, False, (), 0),
    ("EISSTART", 0x6C4, _A, 0, None, True, False, (), 0),
    ("EISSTOP", 0x6C5, _A, 0, None, True, False, (), 0),
    ("RDEISS", 0x6C6, _R, 6, "EISS", False, False, (), 0),
    ("WREISP", 0x6C7, _W, 6, "EISP", True, False, (), 0),
    ("RDEISR", 0x6C8, _R, 64, "EISR", False, False, (), 0),
    ("RDEISU", 0x6C9, _R, 32, "EISU", False, False, (), 0),
)
# fmt: on

#: All commands by name (read-only mapping).
COMMANDS: Mapping[str, CommandSpec] = MappingProxyType(
    {
        row[0]: CommandSpec(
            name=row[0],
            opcode=row[1],
            kind=row[2],
            data_len=row[3],
            group=row[4],
            increments_cc=row[5],
            resets_cc=row[6],
            params=row[7],
            trailing_bytes=row[8],
        )
        for row in _TABLE
    }
)

#: Other names used for the same commands in public sources (alias -> our name).
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "RDSALL": "RDSVALL",  # ADI library name
        "WRPWM1": "WRPWMA",
        "WRPWM2": "WRPWMB",
        "RDPWM1": "RDPWMA",
        "RDPWM2": "RDPWMB",
        "PLAUX1": "PLAUX",
        "DIAGN": "CLOVUV",  # same 0x715 in the ADI library
    }
)

#: Opcodes used by related ADI parts or other public sources that this device does not
#: implement (name -> base opcode; their parameter bits, if any, are not public to us). The
#: extension range must avoid them.
FOREIGN_OPCODES: Mapping[str, int] = MappingProxyType(
    {
        # atopile analyzer (ADBMS6832/6948-class current and extra config commands)
        "ADI1": 0x200,
        "ADI2": 0x108,
        "ADCIV": 0x240,
        "WRCFGC": 0x081,
        "WRCFGD": 0x0A4,
        "WRCFGE": 0x073,
        "WRCFGF": 0x075,
        "WRCFGG": 0x077,
        "WRCFGH": 0x079,
        "WRCFGI": 0x07B,
        "RDCFGC": 0x082,
        "RDCFGD": 0x0A6,
        "RDCFGE": 0x074,
        "RDCFGF": 0x076,
        "RDCFGG": 0x078,
        "RDCFGH": 0x07A,
        "RDCFGI": 0x07C,
        # foxBMS ADES183x defs only
        "RDAUXE": 0x036,
    }
)

#: Opcode ranges reserved for bms-emu extensions (inclusive bounds). 0x600-0x6FF is not used
#: by any command in the sources above nor reachable by any parameterised family.
EXTENSION_RANGES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "EIS": (0x6C0, 0x6DF),
        "CURRENT": (0x6E0, 0x6EF),
        "SPARE": (0x6F0, 0x6FF),
    }
)


def is_extension_opcode(opcode: int) -> bool:
    """True if ``opcode`` lies in one of :data:`EXTENSION_RANGES`.

    Examples
    --------
    >>> is_extension_opcode(0x6C0), is_extension_opcode(0x260)
    (True, False)
    """
    return any(lo <= opcode <= hi for lo, hi in EXTENSION_RANGES.values())


def _build_decode_table() -> tuple[tuple[CommandSpec, dict[str, int]] | None, ...]:
    table: list[tuple[CommandSpec, dict[str, int]] | None] = [None] * _OPCODE_SPACE
    for spec in COMMANDS.values():
        pmask = spec.param_mask
        if spec.opcode & pmask:
            raise AssertionError(f"{spec.name}: base opcode overlaps its parameter bits")
        # Enumerate every subset of the parameter mask (submask enumeration).
        sub = pmask
        while True:
            op = spec.opcode | sub
            if table[op] is not None:
                other = table[op]
                assert other is not None
                raise AssertionError(
                    f"opcode 0x{op:03X}: {spec.name} collides with {other[0].name}"
                )
            params = {p.name: p.extract(op) for p in spec.params}
            table[op] = (spec, params)
            if sub == 0:
                break
            sub = (sub - 1) & pmask
    return tuple(table)


_DECODE: Final = _build_decode_table()


def decode_opcode(opcode: int) -> tuple[CommandSpec, dict[str, int]] | None:
    """Identify the command for an 11-bit opcode, with its parameter values.

    Parameters
    ----------
    opcode : int
        ``CMD0 << 8 | CMD1``.

    Returns
    -------
    tuple of (CommandSpec, dict) or None
        The command and its parameters (empty dict if none), or None for an unknown opcode
        (including anything outside 0..0x7FF). Never raises.

    Examples
    --------
    >>> spec, params = decode_opcode(0x3F3)
    >>> spec.name, params
    ('ADCV', {'RD': 1, 'CONT': 1, 'DCP': 1, 'RSTF': 0, 'OW': 3})
    >>> decode_opcode(0x004)[0].name
    'RDCVA'
    >>> decode_opcode(0x6C0)[0].name  # EIS engine extension
    'WREISC'
    >>> decode_opcode(0x6DF) is None
    True
    """
    if not isinstance(opcode, int) or not 0 <= opcode < _OPCODE_SPACE:
        return None
    hit = _DECODE[opcode]
    if hit is None:
        return None
    return hit[0], hit[1].copy()  # a copy: callers may modify it


def _spec(name: str) -> CommandSpec:
    key = ALIASES.get(name, name)
    try:
        return COMMANDS[key]
    except KeyError:
        raise KeyError(f"unknown command {name!r}") from None


def encode_opcode(name: str, **params: int) -> int:
    """11-bit opcode for command ``name`` with the given parameter values (others 0).

    Raises
    ------
    KeyError
        Unknown command name.
    ValueError
        Unknown parameter, or a value that does not fit its field.

    Examples
    --------
    >>> hex(encode_opcode("ADCV", CONT=1, RD=1))
    '0x3e0'
    >>> hex(encode_opcode("ADAX", CH=16))
    '0x450'
    """
    spec = _spec(name)
    fields = {p.name: p for p in spec.params}
    op = spec.opcode
    for key, value in params.items():
        if key not in fields:
            allowed = ", ".join(fields) or "none"
            raise ValueError(f"{spec.name} has no parameter {key!r} (allowed: {allowed})")
        op |= fields[key].insert(int(value))
    return op


def encode_command(name: str, **params: int) -> bytes:
    """The 4-byte command frame ``CMD0, CMD1, PEC15 high, PEC15 low``.

    Examples
    --------
    >>> encode_command("WRCFGA").hex()
    '00013d6e'
    >>> encode_command("ADCV", CONT=1, RSTF=1).hex()[:4]
    '02e4'
    """
    op = encode_opcode(name, **params)
    return append_pec15(bytes((op >> 8, op & 0xFF)))
