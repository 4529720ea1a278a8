"""Device bookkeeping written on Python ints against the numpy forms it replaced."""

from __future__ import annotations

import numpy as np
from device_testlib import make_chain

from bms_emu.device import Device
from bms_emu.device.device import _CFGB, _put


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
