"""Register layouts against the byte formulas of ADI's adBms6830 library and foxBMS 2.

The ``adi_*`` helpers below transcribe adBms6830CreateConfiga/b, adBms6830ParseStatusC/D/E,
adBms6830CreatePwma and SetOverVoltageThreshold as plain arithmetic; the layouts under test are
data tables, so the two are independent encodings of the same facts.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bms_emu.protocol.registers import (
    AUX_GROUP_CHANNELS,
    CELL_GROUP_CHANNELS,
    CTH_TABLE_MV,
    LAYOUTS,
    celsius_to_itmp_code,
    code_to_volts,
    itmp_code_to_celsius,
    pack_codes,
    pack_group,
    threshold_code_to_volts,
    unpack_codes,
    unpack_group,
    volts_to_code,
    volts_to_threshold_code,
)

u1 = st.integers(0, 1)


def adi_cfga(refon: int, cth: int, flag_d: int, soakon: int, owrng: int, owa: int, gpo: int,
             snap: int, mute: int, comm_bk: int, fc: int) -> bytes:  # fmt: skip
    return bytes(
        (
            ((refon & 1) << 7) | (cth & 7),
            flag_d & 0xFF,
            ((soakon & 1) << 7) | ((owrng & 1) << 6) | ((owa & 7) << 3),
            gpo & 0xFF,
            (gpo & 0x300) >> 8,
            ((snap & 1) << 5) | ((mute & 1) << 4) | ((comm_bk & 1) << 3) | (fc & 7),
        )
    )


def adi_cfgb(vuv: int, vov: int, dtmen: int, dtrng: int, dcto: int, dcc: int) -> bytes:
    return bytes(
        (
            vuv & 0xFF,
            ((vov & 0xF) << 4) | (vuv >> 8),
            (vov >> 4) & 0xFF,
            ((dtmen & 1) << 7) | ((dtrng & 1) << 6) | (dcto & 0x3F),
            dcc & 0xFF,
            dcc >> 8,
        )
    )


@given(u1, st.integers(0, 7), st.integers(0, 255), u1, u1, st.integers(0, 7),
       st.integers(0, 1023), u1, u1, u1, st.integers(0, 7))  # fmt: skip
def test_cfga_matches_adi_create(refon: int, cth: int, flag_d: int, soakon: int, owrng: int,
                                 owa: int, gpo: int, snap: int, mute: int, comm_bk: int,
                                 fc: int) -> None:  # fmt: skip
    fields = {"REFON": refon, "CTH": cth, "FLAG_D": flag_d, "SOAKON": soakon, "OWRNG": owrng,
              "OWA": owa, "GPO": gpo, "SNAP_ST": snap, "MUTE_ST": mute, "COMM_BK": comm_bk,
              "FC": fc}  # fmt: skip
    raw = adi_cfga(refon, cth, flag_d, soakon, owrng, owa, gpo, snap, mute, comm_bk, fc)
    assert pack_group("CFGA", fields) == raw
    assert unpack_group("CFGA", raw) == fields


@given(st.integers(0, 0xFFF), st.integers(0, 0xFFF), u1, u1, st.integers(0, 63),
       st.integers(0, 0xFFFF))  # fmt: skip
def test_cfgb_matches_adi_create(vuv: int, vov: int, dtmen: int, dtrng: int, dcto: int,
                                 dcc: int) -> None:  # fmt: skip
    fields = {"VUV": vuv, "VOV": vov, "DTMEN": dtmen, "DTRNG": dtrng, "DCTO": dcto, "DCC": dcc}
    raw = adi_cfgb(vuv, vov, dtmen, dtrng, dcto, dcc)
    assert pack_group("CFGB", fields) == raw
    assert unpack_group("CFGB", raw) == fields


def test_foxbms_default_configuration() -> None:
    # foxBMS ADI_DEFAULT_*: REFON 1, CTH 9.1 mV (code 2), GPO all 1, IIR 32 (FC 5),
    # VUV 0x800, VOV 0x7FF.
    cfga = pack_group("CFGA", {"REFON": 1, "CTH": 2, "GPO": 0x3FF, "FC": 5})
    assert cfga.hex() == "820000ff0305"
    cfgb = pack_group("CFGB", {"VUV": 0x800, "VOV": 0x7FF})
    assert cfgb.hex() == "00f87f000000"
    assert CTH_TABLE_MV[2] == 9.1


@given(st.binary(min_size=6, max_size=6))
def test_statc_matches_adi_and_foxbms_parse(raw: bytes) -> None:
    f = unpack_group("STATC", raw)
    assert f["CSFLT"] == raw[0] | raw[1] << 8
    # foxBMS: CT[10:6] = byte2[4:0], CT[5:0] = byte3[7:2], CTS = byte3[1:0]
    assert f["CT"] == ((raw[2] & 0x1F) << 6) | (raw[3] >> 2)
    assert f["CTS"] == raw[3] & 0x03
    names4 = ("SMED", "SED", "CMED", "CED", "VD_UV", "VD_OV", "VA_UV", "VA_OV")
    for bit, name in enumerate(names4):
        assert f[name] == (raw[4] >> bit) & 1
    # ADI: oscchk 0x01, tmodchk 0x02, thsd 0x04, sleep 0x08, spiflt 0x10, comp 0x20,
    # vdel 0x40, vde 0x80
    names5 = ("OSCCHK", "TMODCHK", "THSD", "SLEEP", "SPIFLT", "COMP", "VDEL", "VDE")
    for bit, name in enumerate(names5):
        assert f[name] == (raw[5] >> bit) & 1


@given(st.binary(min_size=6, max_size=6))
def test_statd_and_state_match_adi_parse(raw: bytes) -> None:
    d = unpack_group("STATD", raw)
    for cell in range(16):
        byte, pos = divmod(2 * cell, 8)
        assert d[f"C{cell + 1}UV"] == (raw[byte] >> pos) & 1
        assert d[f"C{cell + 1}OV"] == (raw[byte] >> (pos + 1)) & 1
    assert d["OC_CNTR"] == raw[5]
    e = unpack_group("STATE", raw)
    assert e["GPI"] == raw[4] + ((raw[5] & 0x03) << 8)
    assert e["REV"] == (raw[5] & 0xF0) >> 4


@given(st.lists(st.integers(0, 15), min_size=16, max_size=16))
def test_pwm_matches_adi_create(duty: list[int]) -> None:
    a = bytes((duty[2 * k + 1] << 4) | duty[2 * k] for k in range(6))
    b = bytes((duty[12 + 2 * k + 1] << 4) | duty[12 + 2 * k] for k in range(2)) + bytes(4)
    assert pack_group("PWMA", {f"PWM{n + 1}": duty[n] for n in range(12)}) == a
    assert pack_group("PWMB", {f"PWM{n + 13}": duty[n + 12] for n in range(4)}) == b


def test_stata_statb_are_signed_codes() -> None:
    raw = bytes.fromhex("1027ffff0080")
    assert unpack_group("STATA", raw) == {"VREF2": 10000, "ITMP": -1, "VREF3": -32768}
    assert unpack_group("STATB", raw) == {"VD": 10000, "VA": -1, "VRES": -32768}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_round_trip_every_layout(name: str) -> None:
    layout = LAYOUTS[name]
    for f in layout.fields:
        for value in {f.min, f.max, 0}:
            packed = layout.pack({f.name: value})
            assert layout.unpack(packed)[f.name] == value
    # Unpack then pack reproduces everything except reserved bits.
    used = 0
    for f in layout.fields:
        used |= f.mask
    raw = bytes(range(0xA0, 0xA6))
    assert int.from_bytes(layout.pack(layout.unpack(raw)), "little") == (
        int.from_bytes(raw, "little") & used
    )


def test_pack_errors() -> None:
    with pytest.raises(KeyError, match="no field"):
        pack_group("CFGA", {"NOPE": 1})
    with pytest.raises(ValueError, match="CTH"):
        pack_group("CFGA", {"CTH": 8})
    with pytest.raises(ValueError, match="6 bytes"):
        unpack_group("CFGA", bytes(5))


def test_pack_base_keeps_other_fields() -> None:
    base = pack_group("CFGB", {"VUV": 0x123, "DCC": 0xFFFF})
    out = pack_group("CFGB", {"DCC": 1}, base=base)
    assert unpack_group("CFGB", out)["VUV"] == 0x123
    assert unpack_group("CFGB", out)["DCC"] == 1


def test_result_codes_and_volts() -> None:
    # Atopile analyzer parse_voltage: signed little-endian * 150 uV + 1.5 V.
    raw = bytes.fromhex("e02e00800080")
    codes = unpack_codes(raw)
    assert codes == (12000, -32768, -32768)
    assert float(code_to_volts(codes[0])) == pytest.approx(3.3)
    assert pack_codes(codes) == raw
    assert unpack_codes(pack_codes([7])) == (7, -1, -1)
    assert int(volts_to_code(-10.0)) == -32768
    assert CELL_GROUP_CHANNELS["F"] == (16,)
    assert sum(len(c) for c in CELL_GROUP_CHANNELS.values()) == 16
    assert AUX_GROUP_CHANNELS["D"] == ("G10V", "VMV", "VPV")


@given(st.floats(-3.0, 6.0))
def test_volts_code_round_trip(v: float) -> None:
    assert abs(float(code_to_volts(volts_to_code(v))) - v) <= 75e-6 + 1e-12


def adi_threshold(voltage: float) -> int:
    # SetOverVoltageThreshold in ADI's adBms6830ParseCreate.c (truncates toward zero).
    value = (voltage - 1.5) / (16 * 0.000150)
    return int(value + 2 * (1 << 11)) & 0xFFF


@pytest.mark.parametrize("volts", [2.5, 2.8, 3.65, 4.2])
def test_threshold_matches_adi(volts: float) -> None:
    code = volts_to_threshold_code(volts)
    assert abs(code - adi_threshold(volts)) <= 1  # ADI truncates, we round
    assert abs(threshold_code_to_volts(code) - volts) <= 1.2e-3


def test_itmp_scale_matches_foxbms_constants() -> None:
    # foxBMS: T = (code * 150 uV + 1.5 V) / 7.5 mV - 273
    for code in (0, 4900, 8000):
        expected = (code * 150e-6 + 1.5) / 7.5e-3 - 273.0
        assert float(itmp_code_to_celsius(code)) == pytest.approx(expected)
    assert int(celsius_to_itmp_code(itmp_code_to_celsius(4321))) == 4321
