"""cocotb bench of ``rtl_models/sinc3_decimator.sv`` against ``bms_emu.afe.sinc3``.

Stimulus per R (16: fast, many outputs; 1024: the C-ADC value, a few outputs):

* modulator bitstreams from bms_emu's cycle mode (:func:`bms_emu.afe.deltasigma.modulate`,
  second-order loop with thermal noise) for a slow sine and DC inputs across the cell range,
* directed full-scale segments: all +1 (D = R**3, the wrap-around corner) and all -1 (D = 0),
* random bits, clock-enable gaps (``bit_valid`` low) and a reset in the middle of a period.

Every RTL output, partial settling outputs included, must equal the model's
(:class:`bms_emu.afe.sinc3.Sinc3Decimator`) bit for bit, and the count must match.
"""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.afe.adc_params import V_REF_NOM_V
from bms_emu.afe.deltasigma import ModulatorState, modulate
from bms_emu.afe.sinc3 import Sinc3Decimator, sinc3_width_bits

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import RisingEdge
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None


def _stimulus(R: int, n_out_mod: int, seed: int) -> np.ndarray:
    """+-1 bitstream, shape (n,): cycle-mode modulator bits, then full-scale and random bits."""
    rng = np.random.default_rng(seed)
    n_mod = n_out_mod * R
    t = np.arange(n_mod)
    u = 0.35 + 0.3 * np.sin(2 * np.pi * t / (7.3 * R))  # slow sine, |u| <= 0.65
    v_in = (u * V_REF_NOM_V)[:, None]
    st = ModulatorState.new(1, rng)
    bits = modulate(v_in, V_REF_NOM_V, st, sigma_noise_V=300e-6, backend="numpy")[:, 0]
    ones = np.ones(3 * R, np.int8)
    rand = rng.choice(np.array([-1, 1], np.int8), size=2 * R)
    return np.concatenate([bits, ones, -ones, rand, ones[: R // 2]])


async def _run_stream(
    dut, bits: np.ndarray, gap_prob: float, rng: np.random.Generator
) -> list[int]:
    """Drive ``bits`` (+-1), one per enabled clock; return the out_code values seen."""
    out: list[int] = []
    i = 0
    while i < len(bits):
        if gap_prob and rng.random() < gap_prob:
            dut.bit_valid.value = 0
        else:
            dut.bit_valid.value = 1
            dut.bit_in.value = int(bits[i] > 0)
            i += 1
        await RisingEdge(dut.clk)
        if int(dut.out_valid.value):
            out.append(int(dut.out_code.value))
    dut.bit_valid.value = 0
    for _ in range(2):  # the last sample's output appears one clock later
        await RisingEdge(dut.clk)
        if int(dut.out_valid.value):
            out.append(int(dut.out_code.value))
    return out


def _compare(got: list[int], bits: np.ndarray, dec: Sinc3Decimator) -> None:
    from rtl_bench import assert_same

    assert_same(got, dec.process(bits[:, None]).ravel().tolist(), "sinc3 outputs")


if cocotb is not None:

    @cocotb.test()
    async def sinc3_vs_model(dut):
        """Cycle-mode bitstream + full-scale + random bits; then a reset mid-period."""
        from rtl_bench import reset, start_clock

        R = int(cocotb.plusargs["R"])
        assert len(dut.out_code) == sinc3_width_bits(R)
        dut.bit_valid.value = 0
        dut.bit_in.value = 0
        await start_clock(dut)
        await reset(dut)
        rng = np.random.default_rng(R)
        fast = R <= 64
        bits = _stimulus(R, n_out_mod=200 if fast else 4, seed=R)
        dec = Sinc3Decimator(R, 1)
        got = await _run_stream(dut, bits, 0.1 if fast else 0.0, rng)
        _compare(got, bits, dec)
        assert R**3 in got and 0 in got  # full-scale corners: D = R**3 needs all W bits

        # reset in the middle of a period, then a fresh stream against a fresh model
        await _run_stream(dut, bits[: R // 3], 0.0, rng)
        await reset(dut)
        bits2 = _stimulus(R, n_out_mod=40 if fast else 2, seed=R + 1)
        _compare(await _run_stream(dut, bits2, 0.0, rng), bits2, Sinc3Decimator(R, 1))


@pytest.mark.parametrize("R", [16, 1024])
def test_sinc3_decimator_rtl(request: pytest.FixtureRequest, R: int) -> None:
    """Build rtl_models/sinc3_decimator.sv for this R and run the cocotb test above."""
    from rtl_bench import run_bench

    run_bench(request, block="sinc3_decimator", test_module="test_sinc3_decimator",
              parameters={"R": R})
