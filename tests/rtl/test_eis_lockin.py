"""cocotb bench of ``rtl_models/eis_lockin.sv`` (+ ``eis_sin_rom.sv``) against
:mod:`bms_emu.afe.lockin` (``lockin_accumulate``, ``record_samples``, ``nco_sin_cos``).

Built with ``COUNT_BITS = 14`` (records up to 16383 samples, so the counter-full error is
reachable in a short run); the other widths are the defaults. Records, each checked bit for bit
(I/Q accumulators, the drift moments ``sum d`` and ``sum n d``, sample and period counts, the
clock ``done`` pulses, ``busy``, ``err``):

* a LUT sweep (FTW = 2**(P-L): one LUT point per sample, all 4096), with the RTL's sin/cos
  compared sample by sample with the model and with the full-wave formula;
* pure tones at several tuning words: dyadic (16 samples per period), the engine's 0.2 and
  0.01 Hz at 16 Hz (80 and 1600), odd (17), an FTW just below f_odr/2, a random FTW;
* full-scale codes: +-32767 / -32768 with the sign of cos and offsets at the other end
  (|d| = 65535, the accumulators' largest values), and DC at both ends with and without offset;
* seeded random codes, offsets, tuning words and period counts with random ``x_valid`` gaps,
  samples offered after ``done`` (ignored), a restart in the middle of a record;
* the error cases: FTW 0, FTW at f_odr/2, zero periods, records longer than the counter
  (full scale: every accumulator within 12.5 % - 0.1 % of its top bit).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from bms_emu.afe.lockin import (
    LockinFormat,
    lockin_accumulate,
    nco_phase,
    nco_sin_cos,
    record_samples,
    tuning_word,
)

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import NextTimeStep, ReadOnly, RisingEdge
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None

FMT = LockinFormat(code_bits=16, count_bits=14)
PARAMS = {"CODE_BITS": FMT.code_bits, "COUNT_BITS": FMT.count_bits,
          "PHASE_BITS": FMT.phase_bits, "PERIOD_BITS": 8}


def _tone(n: int, spp: float, amp: float, phi: float, dc: int) -> np.ndarray:
    y = dc + amp * np.cos(2 * np.pi * np.arange(n) / spp + phi)
    return np.clip(np.floor(y + 0.5), -32768, 32767).astype(np.int64)


def _directed(rng: np.random.Generator) -> list[tuple[str, int, int, int, np.ndarray]]:
    """(name, ftw, n_periods, x_offset, codes) records; codes may run past the record."""
    p, l_bits = FMT.phase_bits, FMT.lut_addr_bits
    recs = []
    ftw = 1 << (p - l_bits)  # one LUT point per sample
    recs.append(("lut_sweep", ftw, 1, 0, rng.integers(-32768, 32768, 4096 + 3)))
    for name, ftw, k, spp in [
        ("dyadic_1Hz_16Hz", tuning_word(1.0, 16.0), 3, 16.0),
        ("0.2Hz_16Hz", tuning_word(0.2, 16.0), 2, 80.0),
        ("0.01Hz_16Hz", tuning_word(0.01, 16.0), 1, 1600.0),
        ("odd_17", tuning_word(1.0, 17.0), 5, 17.0),
        ("near_nyquist", (1 << (p - 1)) - 12345, 20, 2.0),
        ("random_ftw", int(rng.integers(1 << 40, 1 << 45)), 3, 0.0),
    ]:
        n = record_samples(ftw, k, FMT)
        spp = spp or (1 << p) / ftw
        x = _tone(n + 5, spp, 30000.0, float(rng.uniform(-np.pi, np.pi)), 0)
        recs.append((name, ftw, k, int(rng.integers(-3000, 3000)), x))
    # full scale: d = +-65535 with the sign of cos (largest accumulator values)
    ftw = tuning_word(0.05, 16.0)
    n = record_samples(ftw, 2, FMT)
    _, cos = nco_sin_cos(nco_phase(ftw, n, FMT), FMT)
    recs.append(("full_scale_pos", ftw, 2, -32768, np.where(cos >= 0, 32767, -32768)))
    recs.append(("full_scale_neg", ftw, 2, 32767, np.where(cos >= 0, -32768, 32767)))
    recs.append(("full_scale_no_offset", ftw, 2, 0, np.where(cos >= 0, 32767, -32768)))
    for dc in (-32768, 32767):
        for ftw, k in ((tuning_word(0.2, 16.0), 2), (tuning_word(1.0, 17.0), 3)):
            n = record_samples(ftw, k, FMT)
            recs.append((f"dc_{dc}_ftw{ftw}", ftw, k, 0, np.full(n, dc)))
            recs.append((f"dc_{dc}_offset", ftw, k, dc, np.full(n, dc)))
    return recs


def _random(rng: np.random.Generator, count: int) -> list[tuple[str, int, int, int, np.ndarray]]:
    recs = []
    for i in range(count):
        k = int(rng.integers(1, 6))
        spp = float(rng.uniform(3.0, 400.0))
        ftw = math.ceil((1 << FMT.phase_bits) / spp)
        n = record_samples(ftw, k, FMT)
        recs.append((f"random_{i}", ftw, k, int(rng.integers(-32768, 32768)),
                     rng.integers(-32768, 32768, n + 4)))
    return recs


if cocotb is not None:

    async def _start(dut, ftw: int, n_periods: int, x_offset: int) -> None:
        from rtl_bench import to_field

        dut.start.value = 1
        dut.ftw.value = ftw
        dut.n_periods.value = n_periods
        dut.x_offset.value = to_field(x_offset, FMT.code_bits)
        dut.x_valid.value = 1  # a sample in the start clock must be ignored
        dut.x.value = to_field(-32768, FMT.code_bits)
        await RisingEdge(dut.clk)
        dut.start.value = 0
        dut.x_valid.value = 0

    async def _record(dut, rng, name, ftw, k, off, codes, *, gaps=0.0, check_lut=False):
        """Run one record; compare with the model; returns the number of samples taken."""
        from rtl_bench import to_field

        n_want = record_samples(ftw, k, FMT)
        assert codes.size >= n_want, name
        await _start(dut, ftw, k, off)
        if check_lut:
            sin_m, cos_m = nco_sin_cos(nco_phase(ftw, n_want, FMT), FMT)
        taken = 0
        for i, code in enumerate(codes.tolist()):
            while gaps and rng.random() < gaps:  # idle clocks: nothing may change
                dut.x_valid.value = 0
                await RisingEdge(dut.clk)
            dut.x_valid.value = 1
            dut.x.value = to_field(code, FMT.code_bits)
            if check_lut and i < n_want:
                await ReadOnly()
                got = (dut.lut_sin.value.to_signed(), dut.lut_cos.value.to_signed())
                assert got == (int(sin_m[i]), int(cos_m[i])), f"{name}: LUT at sample {i}"
                await RisingEdge(dut.clk)
            else:
                await RisingEdge(dut.clk)
            await ReadOnly()
            last = i == n_want - 1
            assert int(dut.done.value) == last, f"{name}: done at sample {i}"
            assert int(dut.busy.value) == (i < n_want - 1), f"{name}: busy at sample {i}"
            taken += i < n_want
            await NextTimeStep()
        dut.x_valid.value = 0
        await RisingEdge(dut.clk)
        await ReadOnly()
        want = lockin_accumulate(codes[:n_want, None], ftw, [off], FMT)
        got = (dut.acc_i.value.to_signed(), dut.acc_q.value.to_signed(),
               dut.sum_d.value.to_signed(), dut.sum_nd.value.to_signed())
        exp = (int(want.acc_i[0]), int(want.acc_q[0]), int(want.sum_d[0]), int(want.sum_nd[0]))
        assert got == exp, f"{name}: RTL {got}, model {exp}"
        assert int(dut.n_samples.value) == n_want and int(dut.periods.value) == k, name
        assert not int(dut.err.value) and not int(dut.done.value), name
        await NextTimeStep()
        return taken

    @cocotb.test()
    async def lockin_vs_model(dut):
        """Directed and seeded random records, bit for bit with bms_emu.afe.lockin."""
        from rtl_bench import reset, start_clock

        assert len(dut.acc_i) == FMT.acc_bits and len(dut.acc_q) == FMT.acc_bits
        assert (len(dut.sum_d), len(dut.sum_nd)) == (FMT.sum_d_bits, FMT.sum_nd_bits)
        dut.start.value = 0
        dut.x_valid.value = 0
        dut.x.value = 0
        await start_clock(dut)
        await reset(dut)
        rng = np.random.default_rng(0xE15)
        n_samples = 0
        for rec in _directed(rng):
            n_samples += await _record(dut, rng, *rec, check_lut=rec[0] == "lut_sweep")
        for rec in _random(rng, 12):
            n_samples += await _record(dut, rng, *rec, gaps=0.2)
        dut._log.info("lock-in: %d samples, accumulators bit-identical to the model", n_samples)

    @cocotb.test()
    async def lockin_errors_and_restart(dut):
        """Settings the model rejects raise err; a restart mid-record starts clean."""
        from rtl_bench import reset, start_clock, to_field

        dut.start.value = 0
        dut.x_valid.value = 0
        dut.x.value = 0
        await start_clock(dut)
        await reset(dut)
        for ftw, k in ((0, 3), (1 << (FMT.phase_bits - 1), 3), (1 << 40, 0)):
            with pytest.raises(ValueError):
                record_samples(ftw, k, FMT)
            await _start(dut, ftw, k, 0)
            await ReadOnly()
            assert int(dut.err.value) and not int(dut.busy.value), (ftw, k)
            await NextTimeStep()
        # records longer than the 14-bit counter stop at 16383 samples with err. Codes:
        # full scale with the sign of cos (acc_i reaches ~2**43 of its 46 bits), and d =
        # +-65535 throughout (sum_d and sum_nd at their exact worst case, within 0.1 % of
        # the top of their 31 and 44 bits)
        ftw = tuning_word(0.0005, 16.0)  # 32000 samples per period
        with pytest.raises(ValueError, match="counter"):
            record_samples(ftw, 1, FMT)
        rng = np.random.default_rng(5)
        _, cos = nco_sin_cos(nco_phase(ftw, FMT.max_samples, FMT), FMT)
        full = np.full(FMT.max_samples, 32767)
        for codes, off in ((np.where(cos >= 0, 32767, -32768), 0), (full, -32768),
                           (-1 - full, 32767)):
            await _start(dut, ftw, 1, off)
            dut.x_valid.value = 1
            for code in codes.tolist():
                dut.x.value = to_field(code, FMT.code_bits)
                await RisingEdge(dut.clk)
            dut.x_valid.value = 0
            await ReadOnly()
            assert int(dut.err.value) and not int(dut.busy.value) and not int(dut.done.value)
            want = lockin_accumulate(codes[:, None], ftw, [off], FMT)
            got = (dut.acc_i.value.to_signed(), dut.acc_q.value.to_signed(),
                   dut.sum_d.value.to_signed(), dut.sum_nd.value.to_signed())
            exp = (int(want.acc_i[0]), int(want.acc_q[0]), int(want.sum_d[0]),
                   int(want.sum_nd[0]))
            assert got == exp, f"counter full, offset {off}: RTL {got}, model {exp}"
            assert int(dut.n_samples.value) == FMT.max_samples
            if off == 0:
                assert exp[0] >= 1 << (FMT.acc_bits - 3)
            else:
                assert abs(exp[3]) > 0.999 * (1 << (FMT.sum_nd_bits - 1))
                assert abs(exp[2]) > 0.999 * (1 << (FMT.sum_d_bits - 1))
            await NextTimeStep()
        # restart in the middle of a record: the second record is unaffected by the first
        ftw = tuning_word(0.1, 16.0)
        await _start(dut, ftw, 2, 0)
        dut.x_valid.value = 1
        for code in rng.integers(-32768, 32768, 100).tolist():
            dut.x.value = to_field(code, FMT.code_bits)
            await RisingEdge(dut.clk)
        x = rng.integers(-32768, 32768, record_samples(ftw, 2, FMT) + 2)
        await _record(dut, rng, "restart", ftw, 2, -5, x)


def _rom_generator():
    path = __import__("rtl_bench").RTL_DIR / "gen_eis_sin_rom.py"
    spec = importlib.util.spec_from_file_location("gen_eis_sin_rom", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sin_rom_file_is_generated_from_the_model() -> None:
    """The committed ROM equals a fresh generation from bms_emu.afe.lockin (no simulator)."""
    gen = _rom_generator()
    assert gen.OUT.read_text() == gen.rom_text(), "run rtl_models/gen_eis_sin_rom.py"


def test_eis_lockin_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/eis_lockin.sv with its ROM and run the cocotb tests above."""
    from rtl_bench import RTL_DIR, run_bench

    run_bench(request, block="eis_lockin", test_module="test_eis_lockin", parameters=PARAMS,
              sources=[RTL_DIR / "eis_lockin.sv", RTL_DIR / "eis_sin_rom.sv"])
