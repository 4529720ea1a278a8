"""Daisy-chain frame order against a physical shift-register model of the chain.

Truth: on a write the bytes enter the device nearest the host and are shifted onward, so the
first bytes sent end in the farthest device (Linduino write_68, ADI spiWriteData "the last IC
on the stack ... first configuration written is received by the last IC"). On a read the
device nearest the host answers first (ADI spiReadData stores the first block in ic[0]).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bms_emu.protocol.frames import (
    CMD_LEN,
    build_command_frame,
    build_read_frame,
    build_read_reply,
    build_write_frame,
    parse_command,
    split_read_reply,
    split_write_frame,
)
from bms_emu.protocol.pec import check_data_pec


def shift_through_chain(payload: bytes, n_devices: int, block: int = 8) -> list[bytes]:
    """What each device holds after ``payload`` was shifted into the chain, nearest first.

    Models the chain as one long shift register: each new byte enters at the host end and
    pushes everything one byte toward the far end.
    """
    pipe: list[int] = [0] * (n_devices * block)  # pipe[0] is at the host end
    for b in payload:
        pipe.insert(0, b)
        pipe.pop()
    # Device k occupies pipe[k*block:(k+1)*block], its first-received byte deepest inside.
    return [bytes(reversed(pipe[k * block : (k + 1) * block])) for k in range(n_devices)]


@given(st.integers(1, 6), st.data())
def test_write_frame_lands_in_the_right_device(n: int, data: st.DataObject) -> None:
    payloads = [data.draw(st.binary(min_size=6, max_size=6)) for _ in range(n)]
    frame = build_write_frame(0x001, payloads)
    assert len(frame) == CMD_LEN + 8 * n
    assert parse_command(frame) == (0x001, True)
    held = shift_through_chain(frame[CMD_LEN:], n)
    for k in range(n):
        assert held[k][:6] == payloads[k]
        assert check_data_pec(held[k]) == (True, 0)
    # The device-side splitter agrees with the physical model.
    op, ok, blocks = split_write_frame(frame, n)
    assert (op, ok) == (0x001, True)
    assert [b.data for b in blocks] == payloads
    assert all(b.pec_ok and b.command_counter == 0 for b in blocks)


def test_read_reply_order_nearest_first() -> None:
    miso = build_read_reply([b"\xaa" * 6, b"\xbb" * 6, b"\xcc" * 6], [1, 2, 3])
    assert miso[:CMD_LEN] == b"\xff" * CMD_LEN
    assert miso[CMD_LEN : CMD_LEN + 6] == b"\xaa" * 6  # nearest device's bytes come first
    replies = split_read_reply(miso, 3)
    assert [r.data[0] for r in replies] == [0xAA, 0xBB, 0xCC]
    assert [r.command_counter for r in replies] == [1, 2, 3]
    assert all(r.pec_ok for r in replies)


def test_read_reply_flags_corruption_per_device() -> None:
    miso = bytearray(build_read_reply([bytes(6), bytes(6)], [5, 5]))
    miso[CMD_LEN + 8 + 2] ^= 0x10  # corrupt device 1's data
    replies = split_read_reply(bytes(miso), 2)
    assert [r.pec_ok for r in replies] == [True, False]


def test_all_read_lengths() -> None:
    data = bytes(range(32))
    miso = build_read_reply([data], [7])
    (reply,) = split_read_reply(miso, 1, data_len=32)
    assert reply.data == data
    assert reply.pec_ok


def test_read_frame_is_command_plus_dummies() -> None:
    frame = build_read_frame(0x004, 4)
    assert frame[:CMD_LEN] == build_command_frame(0x004)
    assert frame[CMD_LEN:] == b"\xff" * 32


def test_length_errors() -> None:
    with pytest.raises(ValueError, match="needs 12 bytes"):
        split_read_reply(bytes(11), 1)
    with pytest.raises(ValueError, match="needs 12 bytes"):
        split_write_frame(bytes(13), 1)
    with pytest.raises(ValueError, match="payload 1"):
        build_write_frame(0x001, [bytes(6), bytes(5)])
    with pytest.raises(ValueError, match="opcode"):
        build_command_frame(0x800)
