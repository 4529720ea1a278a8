"""EIS engine through the real protocol: HostDriver -> SPI frames -> DaisyChain -> Device ->
EisBlock -> ChipAnalog (issue 5, item 4). Truth: VirtualPack.impedance per cell, and the
fixed-point formats of bms_emu.protocol.eis_format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bms_emu.config import load_chip, load_pack
from bms_emu.device import DaisyChain, Device, IdealAnalog
from bms_emu.emulator import build_emulator
from bms_emu.host import HostDriver
from bms_emu.protocol.eis_format import (
    Z_LSB_OHM,
    EisConfig,
    decode_results,
    decode_uncertainty,
    encode_results,
    encode_uncertainty,
)
from bms_emu.protocol.opcodes import COMMANDS, EXTENSION_RANGES

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TARGET = load_chip(CONFIGS / "chips" / "bmic_target_1mV.yaml")
LFP = load_pack(CONFIGS / "packs" / "lfp_16s_280Ah.yaml")


def test_eis_commands_live_in_the_reserved_range():
    lo, hi = EXTENSION_RANGES["EIS"]
    names = [n for n, c in COMMANDS.items() if lo <= c.opcode <= hi]
    assert set(names) == {"WREISC", "RDEISC", "WREISF", "RDEISF", "EISSTART", "EISSTOP",
                          "RDEISS", "WREISP", "RDEISR", "RDEISU"}  # fmt: skip
    assert all(COMMANDS[n].increments_cc for n in names if not n.startswith("RD"))


def test_fixed_point_formats_round_trip_with_their_lsb():
    rng = np.random.default_rng(0)
    z = (rng.uniform(-1e-3, 1e-3, 8) + 1j * rng.uniform(-1e-3, 1e-3, 8)).astype(complex)
    z[3] = np.nan
    back = decode_results(encode_results(z))
    ok = np.isfinite(z)
    assert np.all(np.abs(back[ok] - z[ok]) <= 0.5 * Z_LSB_OHM * np.sqrt(2) + 1e-18)
    assert np.isnan(back[3])
    big = decode_results(encode_results([3.0 + 0j] + [0j] * 7))[0]
    assert big.real == pytest.approx((2**31 - 1) * Z_LSB_OHM)  # saturates, never the marker
    u = decode_uncertainty(encode_uncertainty([2.5e-5, 1.0] + [np.nan] * 14))
    assert u[0] == pytest.approx(2.5e-5) and u[1] == pytest.approx(0xFFFE * 1e-7)
    assert np.isnan(u[2])


def _chain(n_dev=2, seed=11):
    emu = build_emulator(TARGET, LFP, n_dev, seed=seed)
    host = HostDriver(emu.chain.transfer, n_dev, delay=emu.chain.delay)
    return emu, host


def _wait_done(host, max_s=600.0):
    """Poll once a second (a silent chain sleeps after ~2 s and loses its registers)."""
    waited = 0.0
    while waited < max_s:
        st = host.eis_status()
        if all(s["state"] == "done" for s in st):
            return st
        host.wait(1.0)
        waited += 1.0
    raise AssertionError(f"EIS not done after {max_s} s: {st}")


def test_host_runs_a_sweep_on_a_2_device_chain_and_reads_fixed_point_results():
    emu, host = _chain()
    freqs = (0.5, 1.0)
    host.eis_configure(freqs, amplitude_A=1.0, n_periods=3, min_integration_s=8)
    cfg = EisConfig.decode(host.read("RDEISC")[0])
    assert (cfg.nf, cfg.amp_mA, cfg.tmin_s, cfg.detrend) == (2, 1000, 8, 2)
    host.eis_start()
    st = host.eis_status()
    assert [s["state"] for s in st] == ["running", "running"]
    assert 19 <= st[0]["remaining_s"] <= 20  # (2 s settling + 8 s) + (1 s + 8 s), whole s
    z_early, _ = host.eis_read_results(2)
    assert np.isnan(z_early).all()  # nothing before the record completes
    _wait_done(host)
    z, u95 = host.eis_read_results(2)
    assert z.shape == (2, 2, 16) and np.isfinite(z).all() and np.isfinite(u95).all()
    # each chip measured its own module: compare with that module's truth (+ busbar in span)
    for d in range(2):
        pack = emu.modules[d].pack
        r_bb = pack._r_bb_Ohm
        for k, f in enumerate(freqs):
            zt = pack.impedance(f)[0] + r_bb
            err = np.abs(z[d, k] - zt)
            assert np.all(np.abs(np.abs(z[d, k]) / np.abs(zt) - 1) < 0.05)
            assert np.mean(err <= u95[d, k] + 2e-9) > 0.7
    assert host.expected_counters == [d.command_counter for d in emu.chain.devices]
    # a new start clears the results until the next record completes
    host.eis_start()
    assert np.isnan(host.eis_read_results(1)[0]).all()
    host.eis_stop()
    assert [s["state"] for s in host.eis_status()] == ["idle", "idle"]


def test_bad_settings_and_ideal_analog_report_errors():
    _emu, host = _chain(1)
    host.write("WREISC", [EisConfig(nf=0).encode()])  # no frequency slot
    host.eis_start()
    assert host.eis_status()[0]["state"] == "error" and host.eis_status()[0]["error"] == 1
    host.eis_configure((0.03,))  # 16 Hz / 0.03 Hz is not an integer
    host.eis_start()
    assert host.eis_status()[0]["error"] == 1
    chain = DaisyChain([Device(IdealAnalog(lambda t: np.full(16, 3.3)))])
    h2 = HostDriver(chain.transfer, 1, delay=chain.delay)
    h2.eis_configure((1.0,))
    h2.eis_start()
    assert h2.eis_status()[0] == {"state": "error", "error": 2, "n_done": 0, "remaining_s": 0}


def test_driver_argument_checks():
    _, host = _chain(1)
    with pytest.raises(ValueError):
        host.eis_configure(())
    with pytest.raises(ValueError):
        host.eis_configure((1.0,), excitation="pulse")
