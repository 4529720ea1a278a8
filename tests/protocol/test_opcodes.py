"""Opcode table against the published command lists.

Truth: REFERENCE.md 2.1 opcode list; ADI adBms6830CmdList.h (CLR*, PL*, *COMM, RDCSALL,
RDACSALL, RDASALL, RDSTATCERR); ADI adBms6830GenericType.c ADCV/ADSV/ADAX byte formulas
(transcribed below as arithmetic, not via our tables); foxBMS 2 *_INC and *_LEN columns.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bms_emu.protocol.opcodes import (
    ACTION,
    COMMANDS,
    EXTENSION_RANGES,
    FOREIGN_OPCODES,
    READ,
    WRITE,
    decode_opcode,
    encode_command,
    encode_opcode,
    is_extension_opcode,
)
from bms_emu.protocol.pec import pec15

REFERENCE_OPCODES = {
    "ADCV": 0x260, "ADSV": 0x168, "ADAX": 0x410, "ADAX2": 0x400,
    "WRCFGA": 0x001, "WRCFGB": 0x024, "RDCFGA": 0x002, "RDCFGB": 0x026,
    "RDCVA": 0x004, "RDCVB": 0x006, "RDCVC": 0x008, "RDCVD": 0x00A, "RDCVE": 0x009,
    "RDCVF": 0x00B, "RDCVALL": 0x00C,
    "RDSVA": 0x003, "RDSVB": 0x005, "RDSVC": 0x007, "RDSVD": 0x00D, "RDSVE": 0x00E,
    "RDSVF": 0x00F, "RDSVALL": 0x010,
    "RDFCA": 0x012, "RDFCB": 0x013, "RDFCC": 0x014, "RDFCD": 0x015, "RDFCE": 0x016,
    "RDFCF": 0x017, "RDFCALL": 0x018,
    "RDACA": 0x044, "RDACB": 0x046, "RDACC": 0x048, "RDACD": 0x04A, "RDACE": 0x049,
    "RDACF": 0x04B, "RDACALL": 0x04C,
    "RDAUXA": 0x019, "RDAUXB": 0x01A, "RDAUXC": 0x01B, "RDAUXD": 0x01F,
    "RDRAXA": 0x01C, "RDRAXB": 0x01D, "RDRAXC": 0x01E, "RDRAXD": 0x025,
    "RDSTATA": 0x030, "RDSTATB": 0x031, "RDSTATC": 0x032, "RDSTATD": 0x033, "RDSTATE": 0x034,
    "WRPWMA": 0x020, "WRPWMB": 0x021, "RDPWMA": 0x022, "RDPWMB": 0x023,
    "CLRFLAG": 0x717, "SNAP": 0x02D, "UNSNAP": 0x02F, "RDSID": 0x02C, "SRST": 0x027,
    "RSTCC": 0x02E, "MUTE": 0x028, "UNMUTE": 0x029,
}  # fmt: skip

ADI_LIB_OPCODES = {
    "CLRCELL": 0x711, "CLRAUX": 0x712, "CLRSPIN": 0x716, "CLRFC": 0x714, "CLOVUV": 0x715,
    "PLADC": 0x718, "PLAUT": 0x719, "PLCADC": 0x71C, "PLSADC": 0x71D, "PLAUX": 0x71E,
    "PLAUX2": 0x71F, "WRCOMM": 0x721, "RDCOMM": 0x722, "STCOMM": 0x723,
    "RDCSALL": 0x011, "RDACSALL": 0x051, "RDASALL": 0x035,
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "opcode"), sorted({**REFERENCE_OPCODES, **ADI_LIB_OPCODES}.items())
)
def test_base_opcodes(name: str, opcode: int) -> None:
    assert COMMANDS[name].opcode == opcode
    hit = decode_opcode(opcode)
    assert hit is not None
    assert hit[0].name == name
    assert all(v == 0 for v in hit[1].values())


def test_data_lengths_and_kinds() -> None:
    # foxBMS *_LEN: 6 for register reads/writes incl. CLRFLAG; ADI library *ALL sizes minus PEC.
    assert COMMANDS["CLRFLAG"].kind == WRITE
    assert COMMANDS["CLRFLAG"].data_len == 6
    for name in ("RDCVALL", "RDSVALL", "RDACALL", "RDFCALL"):
        assert COMMANDS[name].data_len == 32
    assert COMMANDS["RDCSALL"].data_len == 64
    assert COMMANDS["RDACSALL"].data_len == 64
    assert COMMANDS["RDASALL"].data_len == 68
    for spec in COMMANDS.values():
        if spec.kind in (READ, WRITE):
            assert spec.data_len > 0, spec.name
        else:
            assert spec.data_len == 0, spec.name


def test_counter_rules_follow_foxbms_inc_column() -> None:
    inc_1 = ["ADCV", "ADSV", "ADAX", "ADAX2", "WRCFGA", "WRCFGB", "SNAP", "UNSNAP", "MUTE",
             "UNMUTE", "CLRAUX", "CLRCELL", "CLRFLAG", "WRPWMA", "WRPWMB"]  # fmt: skip
    inc_0 = ["RDCFGA", "RDCFGB", "RDCVA", "RDACA", "RDFCA", "RDSVA", "RDAUXA", "RDRAXA",
             "RDSTATA", "RDPWMA", "RDPWMB", "RDSID", "RSTCC", "SRST"]  # fmt: skip
    assert all(COMMANDS[n].increments_cc for n in inc_1)
    assert not any(COMMANDS[n].increments_cc for n in inc_0)
    assert COMMANDS["RSTCC"].resets_cc


def adi_adcv(rd: int, cont: int, dcp: int, rstf: int, ow: int) -> bytes:
    # adBms6830_Adcv in ADI's adBms6830GenericType.c
    return bytes((0x02 + rd, (cont << 7) + (dcp << 4) + (rstf << 2) + (ow & 0x03) + 0x60))


def adi_adsv(cont: int, dcp: int, ow: int) -> bytes:
    return bytes((0x01, (cont << 7) + (dcp << 4) + (ow & 0x03) + 0x68))


def adi_adax(owaux: int, pup: int, ch: int) -> bytes:
    return bytes((0x04 + owaux, (pup << 7) + (((ch >> 4) & 0x01) << 6) + (ch & 0x0F) + 0x10))


@given(
    st.integers(0, 1), st.integers(0, 1), st.integers(0, 1), st.integers(0, 1), st.integers(0, 3)
)
def test_adcv_matches_adi_formula(rd: int, cont: int, dcp: int, rstf: int, ow: int) -> None:
    cmd = adi_adcv(rd, cont, dcp, rstf, ow)
    frame = encode_command("ADCV", RD=rd, CONT=cont, DCP=dcp, RSTF=rstf, OW=ow)
    assert frame[:2] == cmd
    assert int.from_bytes(frame[2:], "big") == pec15(cmd)
    hit = decode_opcode(int.from_bytes(cmd, "big"))
    assert hit is not None
    assert hit[0].name == "ADCV"
    assert hit[1] == {"RD": rd, "CONT": cont, "DCP": dcp, "RSTF": rstf, "OW": ow}


@given(st.integers(0, 1), st.integers(0, 1), st.integers(0, 3))
def test_adsv_matches_adi_formula(cont: int, dcp: int, ow: int) -> None:
    cmd = adi_adsv(cont, dcp, ow)
    assert encode_command("ADSV", CONT=cont, DCP=dcp, OW=ow)[:2] == cmd
    hit = decode_opcode(int.from_bytes(cmd, "big"))
    assert hit is not None
    assert hit[1] == {"CONT": cont, "DCP": dcp, "OW": ow}


@given(st.integers(0, 1), st.integers(0, 1), st.integers(0, 31))
def test_adax_matches_adi_formula(ow: int, pup: int, ch: int) -> None:
    cmd = adi_adax(ow, pup, ch)
    assert encode_command("ADAX", OW=ow, PUP=pup, CH=ch)[:2] == cmd
    hit = decode_opcode(int.from_bytes(cmd, "big"))
    assert hit is not None
    assert hit[0].name == "ADAX"
    assert hit[1] == {"OW": ow, "PUP": pup, "CH": ch}


def test_adax2_and_rdstatcerr() -> None:
    assert encode_command("ADAX2", CH=5)[:2] == bytes((0x04, 0x05))  # ADI: cmd[1] = ch & 0x0F
    assert encode_opcode("RDSTATC", ERR=1) == 0x072  # ADI: RDSTATCERR = 00 72
    hit = decode_opcode(0x072)
    assert hit is not None
    assert (hit[0].name, hit[1]) == ("RDSTATC", {"ERR": 1})


@given(st.integers(-(1 << 20), 1 << 20))
def test_decode_never_raises(op: int) -> None:
    hit = decode_opcode(op)
    if hit is not None:
        spec, params = hit
        assert encode_opcode(spec.name, **params) == op


def test_decode_rejects_non_int() -> None:
    assert decode_opcode("0x004") is None  # type: ignore[arg-type]


def test_every_known_opcode_round_trips() -> None:
    decoded = [op for op in range(0x800) if decode_opcode(op) is not None]
    # 11-bit space: the table is collision-free by construction; check coverage is sane.
    assert 0x004 in decoded
    assert 0x3F7 in decoded  # ADCV with every option bit set
    for op in decoded:
        hit = decode_opcode(op)
        assert hit is not None
        assert encode_opcode(hit[0].name, **hit[1]) == op


def test_extension_ranges_hold_only_bms_emu_commands() -> None:
    """No datasheet command (or parameterised family) reaches into the extension ranges; the
    only commands decoding there are our own, whose base opcode lies in the same range."""
    foreign = set(FOREIGN_OPCODES.values())
    for lo, hi in EXTENSION_RANGES.values():
        for op in range(lo, hi + 1):
            assert op not in foreign
            hit = decode_opcode(op)
            if hit is not None:
                assert lo <= hit[0].opcode <= hi, (hex(op), hit[0].name)
            assert is_extension_opcode(op)
    assert not is_extension_opcode(0x004)
    extension = {n for n, c in COMMANDS.items() if is_extension_opcode(c.opcode)}
    assert "RDI" in extension
    assert not extension & {"ADCV", "RDCVA", "WRCFGA", "RDSTATA"}


def test_encode_errors() -> None:
    with pytest.raises(KeyError, match="unknown command"):
        encode_opcode("NOPE")
    with pytest.raises(ValueError, match="no parameter"):
        encode_opcode("ADCV", FOO=1)
    with pytest.raises(ValueError, match=r"0\.\.3"):
        encode_opcode("ADCV", OW=4)
    assert encode_opcode("RDSALL") == 0x010  # ADI library alias


def test_action_kinds() -> None:
    for name in ("ADCV", "ADSV", "ADAX", "ADAX2", "SNAP", "MUTE", "RSTCC", "CLRCELL", "SRST"):
        assert COMMANDS[name].kind == ACTION
