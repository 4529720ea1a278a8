"""cocotb bench of ``rtl_models/secded22_decode.sv`` against ``bms_emu.afe.ecc.decode``.

Vectors: for 48 data words (0, 0xFFFF, one-hot and random), the clean code word, every single
flip (22) and every double flip (231) of it; then 3000 arbitrary 22-bit words (every syndrome
and parity combination, the s >= 22 "single" patterns included). Data, status and the
corrected code word must equal the model's for every vector, and each status must occur.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bms_emu.afe import ecc

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import Timer
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None


def _vectors(rng: np.random.Generator) -> np.ndarray:
    data = [0, 0xFFFF, *(1 << k for k in range(16)), *rng.integers(0, 1 << 16, 30).tolist()]
    words = []
    for cw in ecc.encode(np.array(data)).tolist():
        words.append(cw)
        words += [cw ^ (1 << i) for i in range(22)]
        words += [cw ^ (1 << i) ^ (1 << j) for i, j in itertools.combinations(range(22), 2)]
    words += rng.integers(0, 1 << 22, 3000).tolist()
    return np.array(words, dtype=np.uint32)


if cocotb is not None:

    @cocotb.test()
    async def secded_vs_model(dut):
        """Clean, single-, double-error and arbitrary words: data, status, fixed word."""
        from rtl_bench import assert_same

        cw = _vectors(np.random.default_rng(0xECC))
        data, status, fixed = ecc.decode(cw)
        got: dict[str, list[int]] = {"data": [], "status": [], "fixed": []}
        for w in cw.tolist():
            dut.cw.value = w
            await Timer(1, unit="ns")
            for name, vals in got.items():
                vals.append(getattr(dut, name).value.to_unsigned())
        assert_same(got["data"], data.tolist(), "data")
        assert_same(got["status"], status.tolist(), "status")
        assert_same(got["fixed"], fixed.tolist(), "fixed")
        assert set(got["status"]) == {0, 1, 2}


def test_secded22_decode_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/secded22_decode.sv and run the cocotb test above."""
    from rtl_bench import run_bench

    run_bench(request, block="secded22_decode", test_module="test_secded22_decode")
