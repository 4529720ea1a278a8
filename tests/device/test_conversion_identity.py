"""Register bytes of a mixed conversion scenario on 4-device chains, against stored hashes.

The hashes were computed from the code before the conversion path was sped up (commit 74a84f3,
ReferenceNoise on scipy lfilter, every per-conversion constant recomputed): speed work on the
conversion chain must leave every register byte unchanged. Covers single-shot and continuous
ADCV (RD on and off), ADSV, ADAX, status and current reads, an open-wire test with an open
pin, a reference-shift fault, idle gaps (noise skips), a large host step (fast-forward), and
both record paths of :meth:`ChipAnalog.measure_record`; for a chip that shares one reference
between C and S and one with a separate S reference.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bms_emu.config import load_chip, load_pack
from bms_emu.device.conversion_kernel import HAVE_NUMBA
from bms_emu.emulator import build_emulator
from bms_emu.host import HostDriver
from bms_emu.paths import shipped_config
from bms_emu.profile import CurrentProfile

GOLDEN = {
    "bmic_target_1mV": "573fc741eb7c1592983e192ff9c216cd1a2b64203fc28f5cdec7564677e414e5",
    "adbms6830_like": "11eab146c11cdfdc8b82deac8a4b78c31b0be8327536be7d94380cbf76c59614",
}


def scenario_hash(chip_name: str, n_devices: int = 4, seed: int = 3) -> str:
    """SHA-256 over every register group read in the scenario, plus two records."""
    chip = load_chip(shipped_config(f"chips/{chip_name}.yaml"))
    prof = CurrentProfile([0.0, 0.05, 0.4], [-100.0, 100.0, -60.0], "linear")
    emu = build_emulator(chip, load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), n_devices,
                         seed=seed, profile=prof)
    host = HostDriver(emu.chain.transfer, n_devices, delay=emu.chain.delay)
    h = hashlib.sha256()

    def read_cells() -> None:
        for kind in ("C", "S", "A", "F"):
            h.update(host.read_cell_codes(kind).tobytes())

    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    for i in range(6):
        host.start_cell_conversion()
        host.wait(1.3e-3 + 1e-4 * i)
        read_cells()
    host.start_cell_conversion(rd=True)
    host.wait(9e-3)
    read_cells()
    host.command("ADSV")
    host.wait(9e-3)
    read_cells()
    host.command("ADAX")
    host.wait(3e-3)
    for group in ("RDAUXA", "RDAUXB", "RDAUXC", "RDAUXD"):
        for data in host.read(group):
            h.update(bytes(data))
    h.update(repr(host.read_status()).encode())
    h.update(repr(host.read_current()).encode())
    emu.analogs[1].faults.open_pins.add(5)
    emu.analogs[2].faults.ref_shift_ppm = 300.0
    host.start_cell_conversion(cont=True, ow=1)
    host.wait(12e-3)
    read_cells()
    emu.analogs[1].faults.open_pins.clear()
    host.start_cell_conversion(cont=True, rd=True)
    for _ in range(40):
        host.wait(1e-3)
        read_cells()
    host.wait(0.3)
    read_cells()
    for _ in range(10):
        host.wait(0.7e-3)
        read_cells()
    rec, _ = emu.analogs[0].measure_record(np.arange(1, 301) / 64.0 + 1.0, "C")
    h.update(rec.tobytes())
    rec, _ = emu.analogs[3].measure_record(np.arange(1, 41) / 16.0 + 30.0, "C", n_avg=62,
                                           t_conv_s=1e-3)
    h.update(rec.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("chip_name", sorted(GOLDEN))
def test_register_bytes_unchanged_by_the_fast_conversion_path(chip_name: str) -> None:
    assert scenario_hash(chip_name) == GOLDEN[chip_name]


def test_scalar_trim_correction_and_die_step_match_the_array_models() -> None:
    """ChipAnalog's one-device float/int paths against the array models they replace."""
    from bms_emu.afe.die_thermal import step_die_temp_C
    from bms_emu.afe.reference import hysteresis_update
    from bms_emu.afe.trim import correct_code

    chip = load_chip(shipped_config("chips/adbms6830_like.yaml"))
    emu = build_emulator(chip, load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), 2, seed=5)
    a = emu.analogs[1]
    rng = np.random.default_rng(11)
    fmt = chip.trim_format
    for i in range(300):
        path = "CS"[i % 2]
        raw = rng.integers(-(1 << 23), 1 << 23, 16)
        raw[:2] = [-(1 << 23), (1 << 23) - 1]  # saturation at both ends
        a._temp_die_C = float(rng.uniform(-40.0, 160.0))
        a._rng_misc = np.random.default_rng(i)
        got = a._correct(raw, path)
        a._rng_misc = np.random.default_rng(i)
        codes, _ = a._trim(path)
        die = a._die_code(np.array([a._temp_die_C]))[0]
        want = correct_code(raw, codes.gain[0], codes.tempco[0], codes.offset[0], die,
                            codes.board[0], fmt=fmt)
        np.testing.assert_array_equal(got, want)
    for _ in range(300):
        t0, temp0 = a._t_s, a._temp_die_C
        m0, ms0 = float(a._state.hyst_m[0]), float(a._s_state.hyst_m[0])
        a.faults.die_heat_W = float(rng.uniform(0.0, 3.0))
        t1 = t0 + float(rng.choice([1e-3, 0.37, 50.0]))
        a._advance(t1, np.full(16, 3.3))
        dt = t1 - t0
        want_t = step_die_temp_C(a._die, np.array([temp0]), a.temp_ambient_C,
                                 np.array([a.faults.die_heat_W]), dt)[0]
        assert a._temp_die_C == want_t
        assert a._state.hyst_m[0] == hysteresis_update(a._ref, np.array([m0]), want_t)[0]
        assert a._s_state.hyst_m[0] == hysteresis_update(a._s_ref, np.array([ms0]), want_t)[0]


def test_convert_matches_the_array_formulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_convert`` gives the codes of the former array formulation (reference broadcast to
    every channel, die code through the array model, ``correct_code``), and the noise sigma
    it hands to ``convert_dc`` is the (n_channels,) array's to the bit (a 0-d reference would
    square with ``pow``, which differs from ``x * x`` in ~0.1 % of values)."""
    import copy

    import bms_emu.device.chip_analog as ca
    from bms_emu.afe.adc_params import (
        G_IN,
        cell_code_from_raw,
        cell_volts_from_code,
        raw_code_from_sinc3,
    )
    from bms_emu.afe.conversion import _noise_var_u, convert_dc, noise_figures
    from bms_emu.afe.trim import correct_code

    seen: list[tuple[np.ndarray, float]] = []

    def recording_convert_dc(v_in, v_ref, rng, sigma, *, R):  # type: ignore[no-untyped-def]
        seen.append((np.asarray(v_ref), sigma))
        return convert_dc(v_in, v_ref, rng, sigma, R=R)

    monkeypatch.setattr(ca, "convert_dc", recording_convert_dc)
    chip = load_chip(shipped_config("chips/adbms6830_like.yaml"))
    emu = build_emulator(chip, load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), 1, seed=9)
    a = emu.analogs[0]
    rng = np.random.default_rng(4)
    for i in range(60):
        path = "CS"[i % 2]
        r = chip.adc.c_decimation if path == "C" else chip.adc.s_decimation
        t = 0.01 + 0.013 * i
        a._temp_die_C = float(rng.uniform(-20.0, 120.0))
        v_adc = rng.uniform(-0.5, 5.0, 16)
        b = copy.deepcopy(a)
        got = a._convert(v_adc, path, t, r)
        g_ppm, o_uV = b._path_c if path == "C" else b._path_s
        v = v_adc * (1 + 1e-6 * g_ppm) + 1e-6 * o_uV
        v_ref = b._v_ref(path, t) * np.ones_like(v)
        d = convert_dc(G_IN * v, v_ref, b._rng_c if path == "C" else b._rng_s,
                       chip.adc.thermal_noise_V, R=r)
        codes, _ = b._trim(path)
        die = b._die_code(np.array([b._temp_die_C]))[0]
        corr = correct_code(raw_code_from_sinc3(d, r), codes.gain[0], codes.tempco[0],
                            codes.offset[0], die, codes.board[0], fmt=chip.trim_format)
        np.testing.assert_array_equal(got, cell_volts_from_code(cell_code_from_raw(corr)))
        v_ref_seen, sigma = seen[-1]  # the call of a._convert
        th, q = _noise_var_u(sigma, v_ref_seen, r, noise_figures(r))
        th16, q16 = _noise_var_u(sigma, np.full(16, v_ref_seen.ravel()[0]), r, noise_figures(r))
        assert np.all(np.sqrt(th + q) == np.sqrt(th16 + q16))
    # the same shape of reference over many values (one call rarely shows a pow/square split)
    shape = seen[-1][0].shape
    for x in np.random.default_rng(5).uniform(2.9, 3.1, 5000):
        th, q = _noise_var_u(sigma, np.full(shape, x), 1024, noise_figures(1024))
        th16, q16 = _noise_var_u(sigma, np.full(16, x), 1024, noise_figures(1024))
        assert np.all(np.sqrt(th + q) == np.sqrt(th16 + q16)), x


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
def test_compiled_cell_conversion_matches_the_array_models() -> None:
    """The compiled measure_cells chain (conversion_kernel) against adc_input_V + faults +
    _convert on numpy, same generators: random inputs past both ends of the range, random
    fault gains/offsets, both paths, with and without trim-memory bit flips."""
    import copy

    from bms_emu.afe.frontend import adc_input_V

    chip = load_chip(shipped_config("chips/adbms6830_like.yaml"))
    emu = build_emulator(chip, load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), 3, seed=2)
    a = emu.analogs[2]
    rng = np.random.default_rng(8)
    for i in range(400):
        path = "CS"[i % 2]
        r = chip.adc.c_decimation if path == "C" else chip.adc.s_decimation
        t = 0.02 + 0.011 * i
        a._temp_die_C = float(rng.uniform(-20.0, 120.0))
        a.faults.trim_bit_flips = [(1, 3)] if i % 5 == 0 else []
        gain = rng.normal(0.0, 2000.0, 16) * (i % 3 == 0)
        off = rng.normal(0.0, 500.0, 16) * (i % 4 == 0)
        v_diff = rng.uniform(-1.0, 6.0, 16) if i % 7 else rng.uniform(-12.0, 12.0, 16)
        b = copy.deepcopy(a)
        got = a._convert_cells_compiled(v_diff, path, t, r, gain, off)
        fe = b._fe_c if path == "C" else b._fe_s
        v_adc = adc_input_V(fe, v_diff[np.newaxis, :])[0]
        v_adc = v_adc * (1 + 1e-6 * gain) + 1e-6 * off
        want = b._convert(v_adc, path, t, r)
        np.testing.assert_array_equal(got, want)
        assert a._rng_c.bit_generator.state == b._rng_c.bit_generator.state
        assert a._rng_misc.bit_generator.state == b._rng_misc.bit_generator.state


def test_current_channel_float_path_matches_the_array_model() -> None:
    """ChipAnalog.measure_current_A (floats) against afe.current_channel.measure_current_A."""
    from bms_emu.afe.current_channel import measure_current_A

    chip = load_chip(shipped_config("chips/bmic_target_1mV.yaml"))
    emu = build_emulator(chip, load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), 2, seed=6)
    a = emu.analogs[1]
    rng = np.random.default_rng(3)
    for i in range(500):
        t = 0.001 * (i + 1)
        current = float(rng.uniform(-3000.0, 3000.0))  # past full scale at both ends
        emu.modules[1].set_current_A(current)
        a._temp_die_C = float(rng.uniform(-40.0, 150.0))
        got = a.measure_current_A(t, t)
        true_A = a._hist.at(t).current_A
        want = measure_current_A(a._current, np.array([true_A]), a._temp_die_C)[0]
        assert got == want
