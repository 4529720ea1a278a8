"""cocotb bench of ``rtl_models/cell_code_map.sv`` against
``bms_emu.afe.adc_params.cell_code_from_raw``.

Vectors: the model's documented values (352000 -> 12000, 352007, 352008 -> 12001, 0 -> -10000),
every raw code within +-40 of the saturation points and of zero, the signed 24-bit extremes,
and random raw codes over the full range. Every RTL result must equal the model's.
"""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.afe.adc_params import RAW_CODE_ZERO, cell_code_from_raw

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import Timer
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None


if cocotb is not None:

    @cocotb.test()
    async def cell_map_vs_model(dut):
        """Documented, boundary, extreme and random raw codes."""
        from rtl_bench import assert_same, to_field

        rng = np.random.default_rng(0xCE11)
        lo, hi = -(1 << 23), (1 << 23) - 1
        sat_hi = RAW_CODE_ZERO + 16 * 32767  # first raw code of the top code, roughly
        sat_lo = RAW_CODE_ZERO - 16 * 32767
        edges = [e + o for e in (0, RAW_CODE_ZERO, sat_hi, sat_lo) for o in range(-40, 41)]
        raw = np.array([352000, 352007, 352008, 0, lo, lo + 1, hi - 1, hi, *edges,
                        *rng.integers(lo, hi + 1, 1000).tolist()], dtype=np.int64)
        got = []
        for v in raw.tolist():
            dut.raw.value = to_field(v, 24)
            await Timer(1, unit="ns")
            got.append(dut.code.value.to_signed())
        assert got[:4] == [12000, 12000, 12001, -10000]
        assert_same(got, cell_code_from_raw(raw).tolist(), "cell_code_map")


def test_cell_code_map_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/cell_code_map.sv and run the cocotb test above."""
    from rtl_bench import run_bench

    run_bench(request, block="cell_code_map", test_module="test_cell_code_map")
