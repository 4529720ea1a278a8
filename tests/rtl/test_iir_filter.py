"""cocotb bench of ``rtl_models/iir_filter.sv`` against ``bms_emu.afe.iir.iir_filter``.

Stimulus: one continuous stream of blocks; each block has its own FC setting (every setting
0..7 appears several times, the state carries across changes, as in the chip) and its own code
pattern: uniform random codes over the full 16-bit range (including -32768 and 32767, which
exercise the output saturation and the bypass pass-through), steps between the extremes, slow
random walks (the fraction bits of the state) and constant inputs (settling / dead band).
``x_valid`` has random gaps. Every RTL output must equal the model's bit for bit, and so must
the Q16.16 state register after every sample (the output rounding would hide state LSB
errors: a state rounding bug can leave every output unchanged).
"""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.afe.iir import IirState, iir_filter

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import NextTimeStep, ReadOnly, RisingEdge
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None


def _blocks(rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """(fc, codes) blocks; codes int64 shape (n,)."""
    fcs = [*range(8), *range(8), *rng.integers(0, 8, 16).tolist(), 7, 0, 7]
    blocks = []
    for k, fc in enumerate(fcs):
        n = int(rng.integers(20, 120))
        kind = k % 4
        if kind == 0:
            x = rng.integers(-32768, 32768, n)
        elif kind == 1:
            x = np.where((np.arange(n) // 15) % 2 == 0, 32767, -32768)
        elif kind == 2:
            x = np.clip(np.cumsum(rng.integers(-3, 4, n)) + int(rng.integers(-30000, 30000)),
                        -32768, 32767)
        else:
            x = np.full(n, int(rng.integers(-32768, 32768)))
        blocks.append((int(fc), x.astype(np.int64)))
    return blocks


if cocotb is not None:

    @cocotb.test()
    async def iir_vs_model(dut):
        """All FC settings, setting changes mid-stream, extremes, random x_valid gaps."""
        from rtl_bench import assert_same, reset, start_clock, to_field

        dut.x_valid.value = 0
        dut.x.value = 0
        dut.fc.value = 0
        await start_clock(dut)
        await reset(dut)
        rng = np.random.default_rng(0x11F)
        state = IirState.from_codes(np.zeros(1, np.int64))  # the RTL's reset state
        n_checked = 0
        for fc, x in _blocks(rng):
            got: list[int] = []
            want: list[int] = []
            for code in x.tolist():
                while rng.random() < 0.15:  # idle clocks between samples
                    dut.x_valid.value = 0
                    await RisingEdge(dut.clk)
                    await ReadOnly()
                    assert not int(dut.y_valid.value)
                    await NextTimeStep()
                dut.x_valid.value = 1
                dut.fc.value = fc
                dut.x.value = to_field(code, 16)
                await RisingEdge(dut.clk)
                dut.x_valid.value = 0
                await ReadOnly()
                assert int(dut.y_valid.value)
                want.append(int(iir_filter([[code]], state, fc)[0, 0]))
                got.append(dut.y_out.value.to_signed())
                # the Q16.16 state too: output rounding alone would hide state LSB errors
                y_rtl = dut.y_q.value.to_signed()
                assert y_rtl == int(state.y[0]), f"FC={fc}: state {y_rtl} != model {state.y[0]}"
                await NextTimeStep()
            assert_same(got, want, f"FC={fc}")
            n_checked += len(want)
        dut._log.info("IIR: %d outputs bit-identical to bms_emu.afe.iir", n_checked)


def test_iir_filter_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/iir_filter.sv and run the cocotb test above."""
    from rtl_bench import run_bench

    run_bench(request, block="iir_filter", test_module="test_iir_filter")
