"""The +-1 mV check (issue 7 item 4) on ``rtl_models/cell_adc_path.sv``: modulator bitstreams
from bms_emu's cycle mode for the ``bmic_target_1mV`` chip, through the RTL sinc3 decimator,
raw-code map, trim datapath and cell-code map.

Population: ``make_population`` of the chip profile (two-temperature factory trim + board trim,
trim codes as the population holds them), evaluated just after the board trim
(``after_reflow``). For each device, ambient temperature (0, 25, 45, 65 C: the 0-65 C range)
and LFP cell voltage (2.5, 3.3, 3.65 V) on one channel:

* the analog chain from bms_emu's models: front end (:func:`~bms_emu.afe.frontend.adc_input_V`),
  path and reference errors at the steady-state die temperature
  (:func:`~bms_emu.afe.trim.raw_code_real` gives the modulator input ``u``), die sensor code
  (:func:`~bms_emu.afe.die_thermal.die_temp_code`, noise-free);
* cycle mode: :func:`bms_emu.afe.deltasigma.modulate` with the chip's thermal noise, 3 C-ADC
  conversions per point in one continuous bitstream per device (the RTL is reset between
  devices, as the model's decimator);
* the Python path: :class:`~bms_emu.afe.sinc3.Sinc3Decimator`, ``raw_code_from_sinc3``,
  ``trim.correct_code``, ``cell_code_from_raw`` on the same bits.

Asserted: every RTL result (raw, corrected and cell code of every conversion, settling ones
included) is bit-identical to the Python path, and every settled reading (the third conversion
after a step) is within +-1 mV of the true cell voltage.
"""

from __future__ import annotations

import numpy as np
import pytest
from rtl_bench import REPO

from bms_emu.afe.adc_params import (
    G_IN,
    RAW_PER_U,
    cell_code_from_raw,
    cell_volts_from_code,
    raw_code_from_sinc3,
)
from bms_emu.afe.chip import make_population
from bms_emu.afe.deltasigma import ModulatorState, modulate
from bms_emu.afe.die_thermal import die_temp_code, steady_state_die_temp_C
from bms_emu.afe.frontend import adc_input_V
from bms_emu.afe.reference import v_ref_V
from bms_emu.afe.sinc3 import Sinc3Decimator
from bms_emu.afe.trim import correct_code, raw_code_real
from bms_emu.config import load_chip

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import RisingEdge
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None

CHIP = REPO / "configs" / "chips" / "bmic_target_1mV.yaml"
N_DEVICES = 3
SEED = 2026
TEMPS_C = np.array([0.0, 25.0, 45.0, 65.0])
V_CELL_V = np.array([2.5, 3.3, 3.65])
CHANNEL = 5
CONV_PER_POINT = 3  # outputs 0 and 1 after a step are partial; output 2 is settled
TOL_V = 1e-3


def _parameters() -> dict[str, int]:
    spec = load_chip(CHIP)
    fmt = spec.trim_format
    return {
        "R": spec.adc.c_decimation, "RAW_PER_U": RAW_PER_U, "RAW_BITS": fmt.raw_bits,
        "GAIN_FRAC": fmt.gain_frac_bits, "TEMPCO_FRAC": fmt.tempco_frac_bits,
        "DT_FRAC": fmt.die_temp_frac_bits, "DIE_TEMP_BITS": fmt.die_temp_bits,
        "OFFSET_FRAC": fmt.offset_frac_bits, "T_REF_CODE": fmt.t_ref_code,
        "TRIM_BITS": fmt.code_bits,
    }


def _operating_points():
    """Population and its analog operating points.

    Returns (spec, pop, die_code (n, nT), v_ref (n, nT), u (n, nT, nV)).
    """
    spec = load_chip(CHIP)
    pop = make_population(spec, N_DEVICES, seed=SEED)
    fmt = spec.trim_format
    t_h = pop.lifetime_h("after_reflow")
    state = pop.state_at(t_h)
    n = pop.n_devices
    t_die = steady_state_die_temp_C(pop.die, np.broadcast_to(TEMPS_C, (n, TEMPS_C.size)))
    d_code = die_temp_code(t_die, pop.devices.sensor, lsb_C=fmt.die_temp_lsb_C,
                           bits=fmt.die_temp_bits)
    v_ref = v_ref_V(pop.devices.reference, state, t_die, t_h)
    grid = np.broadcast_to(V_CELL_V, (n, spec.n_channels, V_CELL_V.size))
    v_adc = adc_input_V(pop.frontend, grid)[:, CHANNEL, :]
    raw_real = raw_code_real(pop.devices, state, v_adc[:, None, :], t_die[:, :, None], t_h,
                             fmt=fmt)
    # modulator input u = G_IN v_path / V_ref; raw_code_real is v_path v_nom / V_ref / raw LSB
    u = raw_real * fmt.raw_lsb_V * G_IN / pop.devices.reference.v_nom_V[:, None, None]
    return spec, pop, d_code, v_ref, u


if cocotb is not None:

    @cocotb.test()
    async def one_mV_check(dut):
        """Cycle-mode bits through the RTL chain: bit-exact to Python, settled within 1 mV."""
        from rtl_bench import assert_same, reset, start_clock, to_field

        spec, pop, d_code, v_ref, u = _operating_points()
        fmt = spec.trim_format
        R = int(cocotb.plusargs["R"])
        assert R == spec.adc.c_decimation
        dut.bit_valid.value = 0
        dut.bit_in.value = 0
        await start_clock(dut)
        worst = 0.0
        n_res = 0
        for i in range(pop.n_devices):
            await reset(dut)
            codes = {"gain": pop.codes.gain[i], "board": pop.codes.board[i],
                     "tempco": pop.codes.tempco[i], "offset": pop.codes.offset[i]}
            for port, v in codes.items():
                getattr(dut, port).value = to_field(int(v), fmt.code_bits)
            mod = ModulatorState.new(1, np.random.default_rng([SEED, i]))
            dec = Sinc3Decimator(R, 1)
            for j in range(TEMPS_C.size):
                dut.die_temp.value = to_field(int(d_code[i, j]), fmt.die_temp_bits)
                for k in range(V_CELL_V.size):
                    vr = float(v_ref[i, j])
                    bits = modulate(np.full((CONV_PER_POINT * R, 1), u[i, j, k] * vr), vr, mod,
                                    sigma_noise_V=spec.adc.thermal_noise_V)
                    raw = raw_code_from_sinc3(dec.process(bits).ravel(), R)
                    corr = correct_code(raw, codes["gain"], codes["tempco"], codes["offset"],
                                        d_code[i, j], codes["board"], fmt=fmt)
                    code = cell_code_from_raw(corr)
                    got: dict[str, list[int]] = {"raw": [], "corrected": [], "code": []}
                    dut.bit_valid.value = 1
                    for b in bits[:, 0].tolist():
                        dut.bit_in.value = int(b > 0)
                        await RisingEdge(dut.clk)
                        if int(dut.res_valid.value):
                            for name, vals in got.items():
                                vals.append(getattr(dut, name).value.to_signed())
                    dut.bit_valid.value = 0
                    for _ in range(3):  # flush: the last result comes two clocks later
                        await RisingEdge(dut.clk)
                        if int(dut.res_valid.value):
                            for name, vals in got.items():
                                vals.append(getattr(dut, name).value.to_signed())
                    where = f"device {i}, {TEMPS_C[j]} C, {V_CELL_V[k]} V"
                    assert_same(got["raw"], raw.tolist(), f"raw, {where}")
                    assert_same(got["corrected"], corr.tolist(), f"corrected, {where}")
                    assert_same(got["code"], code.tolist(), f"code, {where}")
                    n_res += len(code)
                    err = float(cell_volts_from_code(got["code"][-1])) - V_CELL_V[k]
                    assert abs(err) <= TOL_V, f"{where}: error {err * 1e3:+.3f} mV > 1 mV"
                    worst = max(worst, abs(err))
        dut._log.info("+-1 mV check: %d RTL results bit-identical to the Python path; worst "
                      "settled error %.3f mV over %d devices x %d temperatures x %d voltages",
                      n_res, worst * 1e3, pop.n_devices, TEMPS_C.size, V_CELL_V.size)


def test_cell_adc_path_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/cell_adc_path.sv (+ its submodules) and run the +-1 mV check."""
    from rtl_bench import RTL_DIR, run_bench

    blocks = ("sinc3_decimator", "raw_code_map", "trim_correct", "cell_code_map",
              "cell_adc_path")
    run_bench(request, block="cell_adc_path", test_module="test_cell_adc_path",
              parameters=_parameters(), sources=[RTL_DIR / f"{b}.sv" for b in blocks])
