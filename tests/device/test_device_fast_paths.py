"""Device and chip-analog per-conversion fast paths against the numpy forms they replaced."""

from __future__ import annotations

import numpy as np
from device_testlib import make_chain

from bms_emu.afe.conversion import _noise_var_u, noise_figures
from bms_emu.afe.iir import IIR_K_Q16, IirState, iir_filter
from bms_emu.device import Device
from bms_emu.device.chip_analog import noise_sd_u
from bms_emu.device.conversion_kernel import iir_step
from bms_emu.device.device import _CFGB, _codes, _put
from bms_emu.protocol.registers import volts_to_code


def _ovuv_array(codes: np.ndarray, uv: int, ov: int) -> int:
    """``Device._update_ovuv``'s flag word as it was computed on arrays."""
    uv_bit = 2 * np.arange(16, dtype=np.int64)
    c = codes.astype(np.int32)
    bits = ((c < uv).astype(np.int64) << uv_bit) + ((c > ov).astype(np.int64) << (uv_bit + 1))
    return int(bits.sum())


def test_ovuv_flags_equal_array_form() -> None:
    chain, _analogs, _host = make_chain(1)
    dev: Device = chain.devices[0]
    rng = np.random.default_rng(11)
    for _ in range(300):
        vuv, vov = (int(x) for x in rng.integers(0, 0x1000, 2))
        w = _put(dev._words["CFGB"], _CFGB["VUV"], vuv)
        dev._words["CFGB"] = _put(w, _CFGB["VOV"], vov)
        assert (dev._cfgb("VUV"), dev._cfgb("VOV")) == (vuv, vov)
        uv = (vuv - 0x1000 if vuv & 0x800 else vuv) * 16
        ov = (vov - 0x1000 if vov & 0x800 else vov) * 16
        # codes spread over the range and right on the thresholds
        codes = rng.integers(-32768, 32768, 16).astype(np.int16)
        codes[:4] = np.clip([uv, ov, uv - 1, ov + 1], -32768, 32767)
        dev._update_ovuv(codes)
        assert dev._ovuv == _ovuv_array(codes, uv, ov)


def test_codes_equal_volts_to_code() -> None:
    rng = np.random.default_rng(12)
    v = np.concatenate((rng.uniform(-5.0, 8.0, 4000), 1.5 + 150e-6 * (rng.integers(
        -40000, 40000, 2000) + 0.5), [-3.5, 6.4, 1.5, 1.5 - 75e-6, 1.5 + 75e-6]))  # fmt: skip
    for chunk in np.array_split(v, 400):
        assert np.array_equal(_codes(chunk.copy()), volts_to_code(chunk))


def test_noise_sd_equals_array_form() -> None:
    rng = np.random.default_rng(13)
    for r in (1024, 8192):
        pairs = zip(rng.uniform(0.5, 5.0, 2000), rng.uniform(1e-6, 1e-4, 2000), strict=True)
        for v_ref, sigma in pairs:
            th, q = _noise_var_u(float(sigma), np.array([v_ref]), r, noise_figures(r))
            assert noise_sd_u(float(sigma), float(v_ref), r) == float(np.sqrt(th + q)[0])


def test_iir_step_equals_iir_filter() -> None:
    rng = np.random.default_rng(14)
    for fc in range(1, 8):
        codes = rng.integers(-32767, 32768, (200, 16))
        codes[50:60] = 32767  # saturated runs: the state at the range edge
        codes[60:70] = -32767
        state = IirState.from_codes(codes[0])
        y = state.y.copy()
        ref = iir_filter(codes, state, fc)
        for n in range(codes.shape[0]):
            got = iir_step(codes[n].astype(np.int16), y, IIR_K_Q16[fc])
            assert got.dtype == np.int16
            assert np.array_equal(got, ref[n])
        assert np.array_equal(y, state.y)
