"""Pure parts of the transports: SIL frame codec, bridge framing (COBS, CRC), go-back-N.

Truth: the published CRC-16/CCITT-FALSE check value, COBS's defining property (no zero byte,
exact inverse), and the go-back-N rules of docs/bridge-protocol.md section 3.
"""

from __future__ import annotations

import doctest
import importlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil import bridge_link as bl
from hil import sil_protocol as sp

DOCTESTED = ["hil.sil_protocol", "hil.bridge_link", "hil.bridge_pc", "hil.server",
             "hil.transport"]


@pytest.mark.parametrize("name", DOCTESTED)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0


@given(st.binary(max_size=1200))
def test_cobs_round_trip_has_no_zero_byte(data: bytes) -> None:
    enc = bl.cobs_encode(data)
    assert 0 not in enc
    assert bl.cobs_decode(enc) == data


def test_crc_check_value_and_frames_survive_only_intact() -> None:
    assert bl.crc16_ccitt(b"123456789") == 0x29B1
    frame = bl.encode_frame(bl.SHADOW_UPDATE, 513, bytes(range(40)))
    dec = bl.FrameDecoder()
    assert dec.feed(frame) == [(bl.SHADOW_UPDATE, 513, bytes(range(40)))]
    rng = random.Random(3)
    for _ in range(200):  # any single changed or dropped byte: rejected, never misread
        k = rng.randrange(len(frame) - 1)
        bad = bytearray(frame)
        if rng.random() < 0.5:
            bad[k] ^= 1 << rng.randrange(8)
        else:
            del bad[k]
        assert dec.feed(bytes(bad)) == []
    assert dec.stats.bad_frames >= 150  # a flip to 0x00 splits one frame into two bad ones


def test_decoder_resyncs_after_garbage_and_split_reads() -> None:
    frames = [bl.encode_frame(bl.CMD_FORWARD, i, bytes([i]) * i) for i in range(5)]
    stream = b"\x13\x37garbage" + b"\x00" + frames[0] + b"\xff" * 5000 + b"\x00" + b"".join(
        frames[1:])
    dec = bl.FrameDecoder()
    got = []
    for i in range(0, len(stream), 7):  # arbitrary read boundaries
        got += dec.feed(stream[i : i + 7])
    assert [seq for _, seq, _ in got] == [0, 1, 2, 3, 4]
    assert dec.stats.bad_frames == 2


def test_go_back_n_resends_from_the_gap_and_acks_are_cumulative() -> None:
    stats_tx, stats_rx = bl.LinkStats(), bl.LinkStats()
    wire: list[bytes] = []
    tx = bl.ReliableSender(wire.append, stats_tx, rto_s=0.05)
    rx = bl.ReliableReceiver(stats_rx)
    for i in range(4):
        tx.send(bl.SHADOW_UPDATE, bytes([i]), now_s=0.0)
    dec = bl.FrameDecoder()
    seqs = [dec.feed(f)[0][1] for f in wire]
    assert seqs == [0, 1, 2, 3]
    assert rx.accept(0, 0.0) == "ok"
    assert rx.accept(2, 0.0) == "gap"  # 1 was lost
    assert rx.accept(3, 0.001) == "gap-quiet"  # one NACK per burst
    tx.on_nack(rx.expected, now_s=0.002)
    assert tx.pending == 3 and [dec.feed(f)[0][1] for f in wire[4:]] == [1, 2, 3]
    for s in (1, 2, 3):
        assert rx.accept(s, 0.003) == "ok"
    assert rx.accept(2, 0.004) == "dup"
    tx.on_ack(3, now_s=0.005)
    assert tx.pending == 0
    tx.send(bl.SHADOW_UPDATE, b"x", now_s=1.0)
    tx.poll(1.01)
    assert stats_tx.retransmits == 3
    tx.poll(1.06)  # RTO passed with no ACK
    assert stats_tx.retransmits == 4


def test_sequence_numbers_wrap() -> None:
    tx = bl.ReliableSender(lambda b: None, bl.LinkStats())
    tx.reset(next_seq=65534)
    for _ in range(4):
        tx.send(bl.SHADOW_UPDATE, b"", 0.0)
    tx.on_ack(0, 0.0)  # 65534, 65535, 0 acknowledged across the wrap
    assert tx.pending == 1 and tx.oldest_unacked == 1
    rx = bl.ReliableReceiver(bl.LinkStats())
    rx.reset(65535)
    assert [rx.accept(s, 0.0) for s in (65535, 0, 65535)] == ["ok", "ok", "dup"]


def test_sil_header_checks() -> None:
    assert sp.parse_header(sp.encode_frame(sp.INFO, 2**32 - 1)) == (sp.INFO, 2**32 - 1, 0)
    with pytest.raises(sp.FrameError) as exc:
        sp.encode_frame(sp.TRANSFER, 1, bytes(sp.MAX_PAYLOAD + 1))
    assert exc.value.code == sp.E_TOO_LARGE
    assert sp.decode_error(sp.encode_error(5, sp.E_MODE, "x" * 500)[sp.HEADER_LEN:]) == (
        sp.E_MODE, "x" * 200)
