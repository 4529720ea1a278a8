"""The EIS engine with the chip's bit-true lock-in (``EisSettings.demodulation = "lockin"``).

Truth: the same engine run with the float fit on the same seed, so both see the same samples.
Without detrending the two are the same estimator (the plain DFT) and must agree to within the
bound derived in :mod:`bms_emu.afe.lockin` (sample rounding + NCO/LUT quantisation,
propagated to Z). With linear detrending (the lock-in's two drift moments) they are different
least-squares models (sine + linear drift vs the engine's periodic model), so they must agree
to a fraction of the reported uncertainty; and the lock-in must meet issue 5's accuracy target
against the pack's analytic impedance with the OCV drift present.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from bms_emu.config import load_chip, load_pack
from bms_emu.device.eis_engine import EisSettings, run_eis
from bms_emu.emulator import build_emulator

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TARGET = load_chip(CONFIGS / "chips" / "bmic_target_1mV.yaml")
LFP = load_pack(CONFIGS / "packs" / "lfp_16s_280Ah.yaml")
#: The engine's default frequencies, OCV drift present (as tests/eis/test_eis_engine.py).
SETTINGS = EisSettings(amplitude_A=1.0, detrend_degree=0, dc_offset_A=10.0, preroll_s=600.0)


@cache
def _run(demodulation: str, detrend_degree: int = 0):
    emu = build_emulator(TARGET, LFP, 1, seed=3)
    s = dataclasses.replace(SETTINGS, demodulation=demodulation, detrend_degree=detrend_degree)
    return run_eis(emu.analogs[0], s)


def test_lockin_agrees_with_the_float_dft_within_the_derived_bound() -> None:
    fit, lk = _run("fit"), _run("lockin")
    assert fit.lockin_bound_Ohm is None and lk.lockin_bound_Ohm is not None
    # same samples (the demodulation draws no random numbers), same truth
    np.testing.assert_array_equal(fit.z_true_Ohm, lk.z_true_Ohm)
    diff = np.abs(lk.z_Ohm - fit.z_Ohm)
    assert np.all(diff <= lk.lockin_bound_Ohm)
    # the worst case stays inside the 2 % accuracy target; it is dominated by rounding each
    # sample (a sum of 62 codes, ~70-180 units of swing here) to an integer: <= 1 unit
    rel_bound = lk.lockin_bound_Ohm / np.abs(fit.z_Ohm)
    assert rel_bound.max() < 0.02
    # the actual agreement is far tighter (measured: 4.5e-4 at worst, 4 % of the bound; the
    # noise-free current channel's 1 mA rounding repeats every period, so it does not average)
    assert (diff / np.abs(fit.z_Ohm)).max() < 1e-3
    assert (diff / lk.lockin_bound_Ohm).max() < 0.1
    np.testing.assert_allclose(lk.mag_error_pct, fit.mag_error_pct, atol=0.1)
    np.testing.assert_allclose(lk.u_Ohm, fit.u_Ohm, rtol=1e-3)  # uncertainty: the residual's
    np.testing.assert_allclose(lk.i_amplitude_A, 1.0, rtol=0.01)


def test_lockin_with_linear_drift_removal_meets_the_2pct_1deg_target_with_drift() -> None:
    lk, fit = _run("lockin", 1), _run("fit", 1)
    assert lk.lockin_bound_Ohm is not None
    # issue 5's target (1 A external, OCV drift present) against the analytic impedance:
    # measured worst 1.23 % / 0.59 deg (the float fit with degree 2: 1.25 % / 0.60 deg)
    assert np.max(np.abs(lk.mag_error_pct)) <= 2.0
    assert np.max(np.abs(lk.phase_error_deg)) <= 1.0
    # against the engine's periodic-model fit: a small part of the standard uncertainty
    # (measured: at most 0.16 u, 0.054 % of |Z|)
    assert np.all(np.abs(lk.z_Ohm - fit.z_Ohm) <= 0.5 * fit.u_Ohm)
    # without the drift moments the same samples miss the target at 10 mHz
    plain = _run("lockin", 0)
    assert np.max(np.abs(plain.mag_error_pct[0])) > 2.0


def test_multisine_lockin_one_nco_per_tone_agrees_with_the_fit_within_the_bound() -> None:
    s = EisSettings(freqs_Hz=(0.05, 0.1, 0.2, 0.5, 1.0), excitation="multisine",
                    amplitude_A=1.0, min_integration_s=60.0, cells=(0, 5, 10, 15),
                    detrend_degree=0)
    runs = {}
    for dem in ("fit", "lockin"):
        emu = build_emulator(TARGET, LFP, 1, seed=2)
        runs[dem] = run_eis(emu.analogs[0], dataclasses.replace(s, demodulation=dem))
    fit, lk = runs["fit"], runs["lockin"]
    assert lk.lockin_bound_Ohm is not None
    assert np.all(np.abs(lk.z_Ohm - fit.z_Ohm) <= lk.lockin_bound_Ohm)
    # worst case ~2 % (five tones swing each sample further from the offset); actual < 0.1 %
    assert np.max(lk.lockin_bound_Ohm / np.abs(fit.z_Ohm)) < 0.03
    assert np.max(np.abs(lk.z_Ohm - fit.z_Ohm) / np.abs(fit.z_Ohm)) < 1e-3
    assert np.max(np.abs(lk.mag_error_pct)) <= 2.0 and np.max(np.abs(lk.phase_error_deg)) <= 1.0


def test_multisine_lockin_with_joint_drift_removal_meets_the_target_with_drift() -> None:
    """Multisine with OCV drift: the tones' drift is removed jointly (one solve per record).

    Measured: 1.22 % / 0.68 deg worst (the float periodic fit: 1.21 % / 0.68 deg), at most
    0.09 u from the fit."""
    s = EisSettings(freqs_Hz=(0.05, 0.1, 0.2, 0.5, 1.0), excitation="multisine",
                    amplitude_A=1.0, min_integration_s=60.0, cells=(0, 5, 10, 15),
                    detrend_degree=1, dc_offset_A=10.0, preroll_s=600.0)
    runs = {}
    for dem in ("fit", "lockin"):
        emu = build_emulator(TARGET, LFP, 1, seed=2)
        runs[dem] = run_eis(emu.analogs[0], dataclasses.replace(s, demodulation=dem))
    fit, lk = runs["fit"], runs["lockin"]
    assert np.max(np.abs(lk.mag_error_pct)) <= 2.0 and np.max(np.abs(lk.phase_error_deg)) <= 1.0
    assert np.all(np.abs(lk.z_Ohm - fit.z_Ohm) <= 0.5 * fit.u_Ohm)


def test_lockin_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="detrend_degree 0 or 1"):
        EisSettings(demodulation="lockin")  # default detrend_degree is 2
    with pytest.raises(ValueError, match="external"):
        EisSettings(demodulation="lockin", detrend_degree=0, excitation="balance")
    with pytest.raises(ValueError, match="detrend_degree 0 or 1"):
        EisSettings(demodulation="lockin", detrend_degree=2, excitation="multisine",
                    freqs_Hz=(0.5, 1.0))
    with pytest.raises(ValueError, match="'fit' or 'lockin'"):
        EisSettings(demodulation="goertzel")
    assert EisSettings().demodulation == "fit"
