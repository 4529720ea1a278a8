"""SECDED (22,16) trim-memory ECC: code properties from coding theory, exhaustive error patterns."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bms_emu.afe.ecc import CODE_BITS, EccStatus, decode, encode, flip_random_bits

# A spread of data words: edges, walking ones, and random words.
_RNG = np.random.default_rng(1234)
WORDS = np.unique(
    np.concatenate(
        [
            [0x0000, 0xFFFF, 0xAAAA, 0x5555, 0x8000, 0x7FFF],
            1 << np.arange(16),
            _RNG.integers(0, 1 << 16, 40),
        ]
    )
)


def scalar_encode(word: int) -> int:
    """Textbook extended Hamming, written independently: one bit at a time with Python ints."""
    bits = [0] * CODE_BITS
    positions = [i for i in range(1, CODE_BITS) if i not in (1, 2, 4, 8, 16)]
    for k, pos in enumerate(positions):
        bits[pos] = (word >> k) & 1
    for p in (1, 2, 4, 8, 16):
        bits[p] = sum(bits[i] for i in range(1, CODE_BITS) if i & p) % 2
    bits[0] = sum(bits[1:]) % 2
    return sum(b << i for i, b in enumerate(bits))


def test_encode_matches_scalar_reference_bit_for_bit() -> None:
    words = np.concatenate([WORDS, _RNG.integers(0, 1 << 16, 2000)])
    got = encode(words)
    assert got.dtype == np.uint32
    assert [int(c) for c in got] == [scalar_encode(int(w)) for w in words]


def test_minimum_distance_is_four() -> None:
    # For a linear code d_min = minimum weight of a nonzero code word; SECDED needs exactly 4.
    cw = encode(np.arange(1, 1 << 16))
    weights = np.array([bin(int(c)).count("1") for c in cw[::1]])
    assert weights.min() == 4
    # Every code word has even weight (the overall parity bit makes it so).
    assert np.all(weights % 2 == 0)
    # Linearity: enc(a ^ b) == enc(a) ^ enc(b).
    a, b = _RNG.integers(0, 1 << 16, (2, 500))
    np.testing.assert_array_equal(encode(a ^ b), encode(a) ^ encode(b))


def test_no_error_decodes_ok() -> None:
    data, status, fixed = decode(encode(WORDS))
    np.testing.assert_array_equal(data, WORDS)
    assert np.all(status == EccStatus.OK)
    np.testing.assert_array_equal(fixed, encode(WORDS))


def test_every_single_bit_error_is_corrected() -> None:
    cw = encode(WORDS)[:, None]  # (n_words, 1)
    flips = np.uint32(1) << np.arange(CODE_BITS, dtype=np.uint32)  # (22,)
    data, status, fixed = decode(cw ^ flips)  # (n_words, 22): every word x every bit
    assert np.all(status == EccStatus.CORRECTED)
    np.testing.assert_array_equal(data, np.broadcast_to(WORDS[:, None], data.shape))
    np.testing.assert_array_equal(fixed, np.broadcast_to(cw, fixed.shape))


def test_every_double_bit_error_is_detected() -> None:
    pairs = list(itertools.combinations(range(CODE_BITS), 2))
    assert len(pairs) == 231
    masks = np.array([(1 << i) | (1 << j) for i, j in pairs], dtype=np.uint32)
    cw = encode(WORDS)[:, None]
    _, status, _ = decode(cw ^ masks)
    assert np.all(status == EccStatus.UNCORRECTABLE)


def test_bits_above_the_code_word_are_ignored() -> None:
    data, status, _ = decode(encode(WORDS) | np.uint32(0xFFC0_0000))
    np.testing.assert_array_equal(data, WORDS)
    assert np.all(status == EccStatus.OK)


def test_flip_random_bits_rate() -> None:
    rng = np.random.default_rng(5)
    cw = encode(np.zeros(20000, dtype=np.int64))
    hit = flip_random_bits(cw, 0.01, rng)
    n_flipped = np.array([bin(int(c)).count("1") for c in hit ^ cw])
    # Binomial(22, 0.01): mean 0.22 flips per word.
    assert n_flipped.mean() == pytest.approx(0.22, rel=0.05)


def test_encode_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        encode([70000])
