"""cocotb bench of ``rtl_models/trim_correct.sv`` against ``bms_emu.afe.trim.correct_code``.

The HDL parameters come from a :class:`bms_emu.afe.trim.TrimFormat` (the default format, and a
second one with other fraction bits, so the parameterisation is exercised too); the bench
rebuilds the same format from the plusargs and calls the model with it.

Vectors (one per clock, pipelined):

* every combination of the extremes {min, -1, 0, max} of raw, gain, board, tempco, offset and
  die temperature (4**6 = 4096 vectors: saturation at both ends, the widest products),
* uniformly random values over the full ranges (mostly saturating),
* realistic values: raw codes of 0..5 V, trim codes of a few hundred ppm, die temperatures of
  -40..125 C (the in-range datapath and its round-half-up ties).

Every RTL result must equal the model's bit for bit.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bms_emu.afe.trim import TrimFormat, correct_code

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import RisingEdge
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None

#: HDL parameter -> TrimFormat field.
_PARAM_FIELDS = {
    "RAW_BITS": "raw_bits",
    "CODE_BITS": "code_bits",
    "GAIN_FRAC": "gain_frac_bits",
    "TEMPCO_FRAC": "tempco_frac_bits",
    "DT_FRAC": "die_temp_frac_bits",
    "DIE_TEMP_BITS": "die_temp_bits",
    "OFFSET_FRAC": "offset_frac_bits",
}
FORMATS = {
    "default": TrimFormat(),
    "alt": TrimFormat(gain_frac_bits=18, tempco_frac_bits=22, die_temp_frac_bits=3,
                      offset_frac_bits=3),
}
_PORTS = ("raw", "gain", "board", "tempco", "offset", "die_temp")


def _parameters(fmt: TrimFormat) -> dict[str, int]:
    params = {p: int(getattr(fmt, f)) for p, f in _PARAM_FIELDS.items()}
    params["T_REF_CODE"] = fmt.t_ref_code
    return params


def _format_from_plusargs(plusargs: dict[str, str]) -> TrimFormat:
    kw = {f: int(plusargs[p]) for p, f in _PARAM_FIELDS.items()}
    t_ref_C = int(plusargs["T_REF_CODE"]) * 2.0 ** -kw["die_temp_frac_bits"]
    return TrimFormat(**kw, t_ref_C=t_ref_C)


def _vectors(
    fmt: TrimFormat, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Vectors per port (int64 arrays of one length) and the port widths."""
    widths = dict(zip(_PORTS, [fmt.raw_bits] + [fmt.code_bits] * 4 + [fmt.die_temp_bits],
                      strict=True))
    ext = {k: [-(1 << (w - 1)), -1, 0, (1 << (w - 1)) - 1] for k, w in widths.items()}
    corners = np.array(list(itertools.product(*ext.values())), dtype=np.int64).T
    n_rand, n_real = 1500, 1500
    rand = np.stack([rng.integers(-(1 << (w - 1)), 1 << (w - 1), n_rand)
                     for w in widths.values()])
    raw_5V = int(5.0 / fmt.raw_lsb_V)
    real = np.stack([
        rng.integers(0, raw_5V, n_real),
        rng.integers(-3000, 3000, n_real),
        rng.integers(-300, 300, n_real),
        rng.integers(-400, 400, n_real),
        rng.integers(-2000, 2000, n_real),
        rng.integers(int(-40 / fmt.die_temp_lsb_C), int(125 / fmt.die_temp_lsb_C), n_real),
    ])
    allv = np.concatenate([corners, rand, real], axis=1)
    return {k: allv[i] for i, k in enumerate(_PORTS)}, widths


if cocotb is not None:

    @cocotb.test()
    async def trim_vs_model(dut):
        """Corners, random and realistic vectors, one per clock."""
        from rtl_bench import assert_same, reset, start_clock, to_field

        fmt = _format_from_plusargs(cocotb.plusargs)
        dut.in_valid.value = 0
        for port in _PORTS:
            getattr(dut, port).value = 0
        await start_clock(dut)
        await reset(dut)
        vec, widths = _vectors(fmt, np.random.default_rng(0x7219))
        want = correct_code(vec["raw"], vec["gain"], vec["tempco"], vec["offset"],
                            vec["die_temp"], vec["board"], fmt=fmt).tolist()
        got: list[int] = []
        n = len(want)
        for i in range(n + 1):
            if i < n:
                dut.in_valid.value = 1
                for port in _PORTS:
                    getattr(dut, port).value = to_field(int(vec[port][i]), widths[port])
            else:
                dut.in_valid.value = 0
            await RisingEdge(dut.clk)
            if int(dut.out_valid.value):  # the previous clock's vector (value before this edge)
                got.append(dut.corrected.value.to_signed())
        await RisingEdge(dut.clk)
        if int(dut.out_valid.value):
            got.append(dut.corrected.value.to_signed())
        assert_same(got, want, "trim_correct")
        lim = (1 << (fmt.raw_bits - 1)) - 1
        n_sat = sum(abs(v) >= lim for v in want)
        assert 0 < n_sat < n, "the vectors must cover both saturation and the linear range"
        dut._log.info("trim: %d vectors bit-identical (%d saturated)", n, n_sat)


@pytest.mark.parametrize("fmt_name", list(FORMATS))
def test_trim_correct_rtl(request: pytest.FixtureRequest, fmt_name: str) -> None:
    """Build rtl_models/trim_correct.sv for this TrimFormat and run the cocotb test above."""
    from rtl_bench import run_bench

    run_bench(request, block="trim_correct", test_module="test_trim_correct",
              parameters=_parameters(FORMATS[fmt_name]))
