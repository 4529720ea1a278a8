"""cocotb bench of ``rtl_models/cs_compare.sv`` against the device model's C-vs-S rule
(:func:`bms_emu.device.device.c_average_codes` and :func:`~bms_emu.device.device.cs_mismatch_mask`,
the functions ``Device`` uses to set CSxFLT).

Vectors, for every CTH setting 0..7:

* a sweep of S - C_avg over -310..310 codes spread over the 16 channels (crosses every
  threshold of the table from both sides, at every integer step),
* C histories (8 results per channel) with random spread, including sums whose mean ends in
  exactly .5 (the round-half-to-even ties of the average) and histories at the code extremes
  with S at the opposite extreme,
* random CLRFLAG strobes: the sticky CSxFLT register must equal the OR of the model's masks
  since the last clear; the per-compare mismatch bits must equal the model's mask.
"""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.device.device import c_average_codes, cs_mismatch_mask

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import NextTimeStep, ReadOnly, RisingEdge
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None

N_CH, N_AVG, CODE_BITS = 16, 8, 16
SUM_BITS = CODE_BITS + 3


def _pack(values: np.ndarray, bits: int) -> int:
    word = 0
    for i, v in enumerate(values.tolist()):
        word |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    return word


def _cases(rng: np.random.Generator):
    """(cth, ring (N_AVG, N_CH) int16, s (N_CH,) int16) compare strobes."""
    lo, hi = -(1 << 15), (1 << 15) - 1
    for cth in range(8):
        diffs = np.arange(-310, 311)
        for start in range(0, len(diffs), N_CH):
            d = np.resize(diffs[start:start + N_CH], N_CH)
            base = rng.integers(-30000, 30000, N_CH)
            ring = base + rng.integers(-20, 21, (N_AVG, N_CH))
            if start % (2 * N_CH) == 0:  # force exact .5 means on every channel
                ring[0] += 4 - (ring.sum(axis=0) % N_AVG)
            ring = ring.astype(np.int16)
            c_avg = c_average_codes(list(ring)).astype(np.int64)
            yield cth, ring, np.clip(c_avg + d, lo, hi).astype(np.int16)
        for top in (lo, hi):  # extremes: C at one end, S at the other
            ring = np.full((N_AVG, N_CH), top, np.int16)
            ring[:, ::2] = rng.integers(lo, hi + 1, (N_AVG, N_CH // 2))
            yield cth, ring, np.where(np.arange(N_CH) % 3 == 0, -1 - top, top).astype(np.int16)


if cocotb is not None:

    @cocotb.test()
    async def cs_vs_model(dut):
        """Threshold sweeps for every CTH, ties, extremes, sticky flags with random clears."""
        from rtl_bench import reset, start_clock

        for name in ("cmp_valid", "clr", "cth", "s_codes", "c_sums"):
            getattr(dut, name).value = 0
        await start_clock(dut)
        await reset(dut)
        rng = np.random.default_rng(0xC5)
        sticky = 0
        n = n_flagged = n_ties = 0
        for cth, ring, s in _cases(rng):
            clr = bool(rng.random() < 0.1)
            want = cs_mismatch_mask(s, c_average_codes(list(ring)), cth)
            sums = ring.astype(np.int64).sum(axis=0)
            n_ties += int(np.sum(sums % N_AVG == N_AVG // 2))
            dut.cth.value = cth
            dut.s_codes.value = _pack(s, CODE_BITS)
            dut.c_sums.value = _pack(sums, SUM_BITS)
            dut.cmp_valid.value = 1
            dut.clr.value = int(clr)
            await RisingEdge(dut.clk)
            await ReadOnly()
            sticky = 0 if clr else sticky | want
            got = int(dut.mismatch.value)
            assert got == want, f"CTH={cth}: mismatch {got:#06x}, model {want:#06x}"
            assert int(dut.csflt.value) == sticky, f"CSxFLT {int(dut.csflt.value):#06x}"
            await NextTimeStep()
            dut.cmp_valid.value = 0
            dut.clr.value = 0
            n += 1
            n_flagged += bin(want).count("1")
        assert 0 < n_flagged < n * N_CH and n_ties > 100
        dut._log.info("C-vs-S: %d compares x %d channels identical (%d flagged, %d ties)",
                      n, N_CH, n_flagged, n_ties)


def test_cs_compare_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/cs_compare.sv and run the cocotb test above."""
    from rtl_bench import run_bench

    run_bench(request, block="cs_compare", test_module="test_cs_compare",
              parameters={"N_CH": N_CH, "CODE_BITS": CODE_BITS, "N_AVG": N_AVG})
