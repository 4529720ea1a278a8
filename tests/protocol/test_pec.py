"""PEC15 / PEC10 against independent truth.

Truth used here, none of it derived from bms_emu.protocol.pec:
* published PEC15 values (REFERENCE.md 2.1; Linduino LTC681x ``wrcfg`` sends 00 01 3D 6E; ADI's
  adBms6830CmdList.h sends STCOMM as 07 23 B9 E4),
* published table entries (foxBMS 2 adi_ades183x_pec.c CRC15/CRC10 tables),
* a reference CRC written here from the polynomial definition as plain GF(2) polynomial
  division on Python integers (no shift register, no table).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bms_emu.protocol import pec as pec_mod
from bms_emu.protocol.pec import (
    append_data_pec,
    append_pec15,
    check_data_pec,
    check_pec15,
    data_pec_bytes,
    pec10,
    pec15,
)

# Generator polynomials written out from their definitions.
G15 = (1 << 15) | (1 << 14) | (1 << 10) | (1 << 8) | (1 << 7) | (1 << 4) | (1 << 3) | 1
G10 = (1 << 10) | (1 << 7) | (1 << 3) | (1 << 2) | (1 << 1) | 1
SEED = 0x0010


def gf2_mod(value: int, poly: int) -> int:
    """Remainder of the GF(2) polynomial ``value`` divided by ``poly``."""
    deg = poly.bit_length() - 1
    while value.bit_length() > deg:
        value ^= poly << (value.bit_length() - 1 - deg)
    return value


def crc_by_division(message: int, n_bits: int, poly: int, seed: int) -> int:
    """MSB-first CRC with initial register ``seed`` of an ``n_bits``-bit message.

    A CRC register preloaded with ``seed`` contributes ``seed * x^n``; the message contributes
    ``M(x) * x^W``; the result is their sum modulo the generator.
    """
    width = poly.bit_length() - 1
    return gf2_mod((message << width) ^ (seed << n_bits), poly)


def ref_pec15(data: bytes) -> int:
    return crc_by_division(int.from_bytes(data, "big"), 8 * len(data), G15, SEED) << 1


def ref_pec10(data: bytes, cc: int) -> int:
    message = (int.from_bytes(data, "big") << 6) | cc
    return crc_by_division(message, 8 * len(data) + 6, G10, SEED)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00\x01", 0x3D6E),  # REFERENCE.md 2.1; Linduino wrcfg cmd[2:4]
        (b"\x03\x60", 0xF46C),  # REFERENCE.md 2.1
        (b"\x00\x04", 0x07C2),  # REFERENCE.md 2.1
        (b"\x07\x23", 0xB9E4),  # ADI adBms6830CmdList.h STCOMM frame
    ],
)
def test_pec15_published_vectors(data: bytes, expected: int) -> None:
    assert pec15(data) == expected
    assert ref_pec15(data) == expected  # the reference itself reproduces the published values


def test_tables_match_published_entries() -> None:
    # foxBMS 2 adi_crc15Table / adi_crc10Table entries.
    t15 = pec_mod._T15
    assert (t15[0], t15[1], t15[2], t15[0x42], t15[0x48], t15[255]) == (
        0x0000,
        0x4599,
        0x4EAB,
        0x3D6E,
        0x07C2,
        0x0095,
    )
    t10 = pec_mod._T10
    assert (t10[0], t10[1], t10[2], t10[8], t10[255]) == (0x000, 0x08F, 0x11E, 0x0F7, 0x0BE)


@given(st.binary(min_size=1, max_size=70))
def test_pec15_matches_polynomial_division(data: bytes) -> None:
    assert pec15(data) == ref_pec15(data)


@given(st.binary(min_size=1, max_size=70), st.integers(0, 63))
def test_pec10_matches_polynomial_division(data: bytes, cc: int) -> None:
    assert pec10(data, cc) == ref_pec10(data, cc)


def test_pec15_lsb_is_zero_and_value_fits() -> None:
    for op in range(0x800):
        v = pec15(bytes((op >> 8, op & 0xFF)))
        assert v & 1 == 0
        assert 0 <= v <= 0xFFFE


def test_pec10_rejects_bad_counter() -> None:
    with pytest.raises(ValueError, match=r"0\.\.63"):
        pec10(bytes(6), 64)
    with pytest.raises(ValueError):
        pec10(bytes(6), -1)


@given(st.binary(min_size=6, max_size=6), st.integers(0, 63))
def test_data_pec_layout(data: bytes, cc: int) -> None:
    two = data_pec_bytes(data, cc)
    assert two[0] >> 2 == cc
    assert ((two[0] & 0x03) << 8 | two[1]) == ref_pec10(data, cc)
    assert check_data_pec(data + two) == (True, cc)


@given(st.binary(min_size=6, max_size=6), st.integers(0, 63), st.integers(0, 63))
def test_any_single_bit_error_is_detected(data: bytes, cc: int, bit: int) -> None:
    group = bytearray(append_data_pec(data, cc))
    bit %= 8 * len(group)
    group[bit // 8] ^= 1 << (bit % 8)
    assert check_data_pec(bytes(group))[0] is False


@given(st.binary(min_size=2, max_size=2), st.integers(0, 31))
def test_command_single_bit_error_is_detected(cmd: bytes, bit: int) -> None:
    frame = bytearray(append_pec15(cmd))
    assert check_pec15(bytes(frame))
    frame[bit // 8] ^= 1 << (bit % 8)
    assert not check_pec15(bytes(frame))


def test_host_write_pec_equals_counter_zero() -> None:
    # foxBMS ADI_Pec10(receive=false) shifts six zero bits: identical to counter 0.
    data = bytes(range(6))
    assert data_pec_bytes(data)[0] >> 2 == 0
    assert pec10(data) == ref_pec10(data, 0)
