"""ADC signal chain benchmark: cycle-mode real-time factor, conversion-mode throughput, and the
sinc3 / IIR rejection of 50 and 60 Hz. Prints one JSON document.

Run: ``python -m benchmarks.bench_adc`` (add ``--quick`` for a short smoke run).

* cycle mode: one 16-channel chip = 16 C-ADC modulators (sinc3 R = 1024) + 16 S-ADC modulators
  (R = 8192) at f_mod = 1.024 MHz with thermal noise, streamed in 64 ki-sample blocks.
  Real-time factor = simulated seconds / wall seconds (best and median of repeats; the machine
  may be shared). Reported for the numba kernel and for the numpy reference loop.
* conversion mode: settled DC conversions over a population (devices x 16 channels), and
  continuous conversions of a time-varying input.
* rejection: measured from cycle mode by a sine fit at the aliased frequency, next to the
  analytic |sinc3|; the IIR settings' extra rejection is analytic (their response is verified
  in the tests).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.machine import emit
from bms_emu.afe import conversion as cv
from bms_emu.afe import deltasigma as ds
from bms_emu.afe.adc_params import F_MOD_HZ, R_CADC, R_SADC, modulator_input_V
from bms_emu.afe.iir import IIR_K_Q16
from bms_emu.afe.sinc3 import Sinc3State, sinc3_code_to_u, sinc3_magnitude


def _chip_run(sim_s: float, backend: str, block: int = 1 << 16) -> float:
    """Wall seconds to simulate ``sim_s`` of one chip (16 C + 16 S modulators + sinc3)."""
    rng = np.random.default_rng(1)
    v_in = modulator_input_V(np.linspace(2.8, 3.6, 16))
    c_mod, s_mod = ds.ModulatorState.new(16, rng), ds.ModulatorState.new(16, rng)
    c_sinc, s_sinc = Sinc3State.zeros(16), Sinc3State.zeros(16)
    n_total = round(sim_s * F_MOD_HZ)
    # warm-up (numba compile / cache load) outside the timing
    ds.modulate_decimate(v_in, 3.0, c_mod.copy(), Sinc3State.zeros(16), R_CADC, 2e-3,
                         n_samples=R_CADC, backend=backend)
    t0 = time.perf_counter()
    done = 0
    while done < n_total:
        n = min(block, n_total - done)
        ds.modulate_decimate(v_in, 3.0, c_mod, c_sinc, R_CADC, cv.SIGMA_NOISE_V, n_samples=n,
                             backend=backend)
        ds.modulate_decimate(v_in, 3.0, s_mod, s_sinc, R_SADC, cv.SIGMA_NOISE_V, n_samples=n,
                             backend=backend)
        done += n
    return time.perf_counter() - t0


def bench_cycle(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"modulators": 32, "f_mod_Hz": F_MOD_HZ, "R_cadc": R_CADC,
                           "R_sadc": R_SADC}
    sim_np = 0.01 if quick else 0.05
    wall = _chip_run(sim_np, "numpy")
    out["numpy_reference"] = {"sim_s": sim_np, "real_time_factor": sim_np / wall}
    if ds.HAVE_NUMBA:
        sim_s = 0.25 if quick else 1.0
        walls = [_chip_run(sim_s, "numba") for _ in range(3 if quick else 5)]
        out["numba"] = {"sim_s": sim_s, "real_time_factor_best": sim_s / min(walls),
                        "real_time_factor_median": sim_s / float(np.median(walls)),
                        "ns_per_modulator_sample_best":
                            min(walls) / (sim_s * F_MOD_HZ * 32) * 1e9}
    return out


def bench_conversion(quick: bool) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    n_dev = 2000 if quick else 20000
    v_in = modulator_input_V(rng.uniform(2.5, 3.65, size=(n_dev, 16)))
    v_ref = rng.normal(3.0, 0.003, size=(n_dev, 1))
    cv.convert_dc(v_in, v_ref, rng)
    walls = []
    for _ in range(5):
        t0 = time.perf_counter()
        cv.convert_dc(v_in, v_ref, rng)
        walls.append(time.perf_counter() - t0)
    dc_rate = v_in.size / min(walls)
    # continuous: 1 s of a 1 Hz sine, one input, 64 noise realisations (channels)
    n = F_MOD_HZ // (10 if quick else 1)

    def sine(t_s: np.ndarray) -> np.ndarray:
        return modulator_input_V(3.3 + 0.2 * np.sin(2 * np.pi * t_s))[:, None]

    t0 = time.perf_counter()
    d = cv.convert_continuous(sine, 3.0, rng, n_samples=n, pop_shape=(64,))
    cont_rate = d.size / (time.perf_counter() - t0)
    return {"dc_population": {"n_devices": n_dev, "n_channels": 16,
                              "channel_conversions_per_s": dc_rate},
            "continuous_1Hz_sine_64ch": {"channel_conversions_per_s": cont_rate,
                                         "note": "includes evaluating the input at f_mod"}}


def _measured_gain_dB(f_Hz: float, R: int, n_out: int) -> float:
    n_ch = 2
    st = ds.ModulatorState.new(n_ch, np.random.default_rng(3))
    ph = np.array([0.3, 1.9])
    amp = 0.5

    def tone(t_s: np.ndarray) -> np.ndarray:
        return amp * np.sin(2 * np.pi * f_Hz * t_s[:, None] + ph)

    codes = ds.modulate_decimate(tone, 1.0, st, Sinc3State.zeros(n_ch), R, 0.0,
                                 n_samples=R * n_out)
    u = sinc3_code_to_u(codes[3:], R)
    t = (np.arange(3, n_out) + 1) * R / F_MOD_HZ
    fa = f_Hz - np.round(f_Hz * R / F_MOD_HZ) * F_MOD_HZ / R
    basis = np.stack([np.cos(2 * np.pi * fa * t), np.sin(2 * np.pi * fa * t), np.ones_like(t)],
                     1)
    coef, *_ = np.linalg.lstsq(basis, u, rcond=None)
    return float(20 * np.log10(np.mean(np.hypot(coef[0], coef[1])) / amp))


def _iir_dB(f_Hz: float, fc: int, f_odr_Hz: float) -> float:
    k = IIR_K_Q16[fc] / 2**16
    z = np.exp(-2j * np.pi * f_Hz / f_odr_Hz)
    return float(20 * np.log10(abs(k / (1 - (1 - k) * z))))


def bench_rejection(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, R, n_out in (("cadc", R_CADC, 150), ("sadc", R_SADC, 60)):
        odr = F_MOD_HZ / R
        rows = {}
        for f in (50.0, 60.0):
            rows[f"{f:g}Hz"] = {
                "sinc3_analytic_dB": float(20 * np.log10(sinc3_magnitude(f, F_MOD_HZ, R))),
                "sinc3_measured_dB": _measured_gain_dB(f, R, n_out if not quick else 40),
            }
            if name == "cadc":
                rows[f"{f:g}Hz"]["with_iir_analytic_dB"] = {
                    f"FC{fc}": rows[f"{f:g}Hz"]["sinc3_analytic_dB"] + _iir_dB(f, fc, odr)
                    for fc in range(1, 8)}
        f_off = 1.01 * odr
        rows["1pct_beside_first_notch"] = {
            "f_Hz": f_off,
            "sinc3_analytic_dB": float(20 * np.log10(sinc3_magnitude(f_off, F_MOD_HZ, R))),
        }
        out[name] = {"odr_Hz": odr, **rows}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    args = ap.parse_args()
    emit("adc", {"cycle_mode": bench_cycle(args.quick),
                 "conversion_mode": bench_conversion(args.quick),
                 "rejection": bench_rejection(args.quick),
                 "numba_available": ds.HAVE_NUMBA})


if __name__ == "__main__":
    main()
