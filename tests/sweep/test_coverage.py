"""Coverage campaigns: each diagnostic's detection physics on directed injections, determinism,
design sensitivity, and the budget through ``run_sweep`` (summary, junit, report).

Truth: the CTH table and the dangerous threshold (a C-path gain fault worth k x CTH at the cell
voltage moves the C reading by k x CTH while S stays), the VREF2 window 2.988-3.012 V (+-4000 ppm),
shared vs separate references (REFERENCE.md 7: common cause), SECDED (one flip corrected, two in
a word detected), PEC10 over the reply, the open-wire test currents.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from bms_emu.afe.chip import make_population
from bms_emu.config import BudgetConfig, DesignConfig, FailureModeConfig, load_chip, load_pack
from bms_emu.device import DaisyChain, Device
from bms_emu.device.chip_analog import ChipAnalog
from bms_emu.host import HostDriver
from bms_emu.host.driver import PecError
from bms_emu.protocol.registers import CTH_TABLE_MV
from bms_emu.sources import VirtualPackSource
from bms_emu.sweep.coverage import (
    DIAGNOSTICS,
    CampaignTask,
    _Link,
    run_campaign_chunk,
    run_injection,
)
from bms_emu.sweep.execute import run_sweep

ROOT = Path(__file__).resolve().parents[2] / "configs"
TARGET = load_chip(ROOT / "chips" / "bmic_target_1mV.yaml")  # shared C/S reference
ADBMS = load_chip(ROOT / "chips" / "adbms6830_like.yaml")  # separate S reference
LFP = load_pack(ROOT / "packs" / "lfp_16s_280Ah.yaml")
CTH = 2  # 9.1 mV


def _budget(**kw) -> BudgetConfig:
    doc = {"pack": "p.yaml", "chips_per_pack": 8, "cell_fit": 1.0, "cell_fit_source": "test",
           "dangerous_error_mV": 10.0, "cth": CTH, "injections": 4, "pool_devices": 8,
           "temp_ambient_C": [25.0, 25.0],
           "designs": [{"name": "d", "chip": "c.yaml"}],
           "modes": [{"name": "m", "kind": "none", "fit": 1.0, "fit_source": "t"}]}
    doc.update(kw)
    return BudgetConfig.model_validate(doc)


def _inject(kind, magnitude=None, *, chip=TARGET, index=0, hook=None, diagnostics=None,
            **budget_kw):
    design = DesignConfig(name="d", chip="c.yaml", **(
        {} if diagnostics is None else {"diagnostics": diagnostics}))
    mode = FailureModeConfig(name=kind, kind=kind, fit=1.0, fit_source="t")
    r = run_injection(spec=chip, pack=LFP, budget=_budget(**budget_kw), design=design,
                      mode=mode, seed=11, index=index, magnitude=magnitude, hook=hook)
    r["by"] = {d for i, d in enumerate(DIAGNOSTICS) if r["diag_mask"] >> i & 1}
    return r


def _gain_ppm(k_cth: float, v_cell: float = 3.3) -> float:
    return k_cth * CTH_TABLE_MV[CTH] * 1e-3 / v_cell * 1e6


def test_healthy_chip_is_neither_flagged_nor_dangerous():
    for i in range(3):
        r = _inject("none", index=i)
        assert not r["detected"] and not r["dangerous"]
        assert r["err_V"] < 1.5e-3  # a 1-mV-class chip plus noise


def test_gain_fault_above_cth_is_caught_by_c_vs_s_and_below_it_is_not():
    big = _inject("c_gain_drift", _gain_ppm(3.0))
    assert "cs_compare" in big["by"] and big["dangerous"]  # ~27 mV: dangerous, but detected
    small = _inject("c_gain_drift", _gain_ppm(0.5))
    assert not small["detected"]
    assert 3e-3 < small["err_V"] < 6e-3  # ~4.5 mV on the faulty channel
    assert not small["dangerous"]  # below the 10 mV dangerous threshold: safe
    # the same 0.5 x CTH fault against a 2 mV hazard threshold is undetected dangerous
    strict = _inject("c_gain_drift", _gain_ppm(0.5), dangerous_error_mV=2.0)
    assert not strict["detected"] and strict["dangerous"]


def test_shared_reference_shift_inside_the_vref2_window_is_undetected_dangerous():
    shift = 3500.0  # ~11.5 mV at 3.3 V: above 10 mV, inside +-4000 ppm
    r = _inject("ref_drift_shared", shift)
    assert r["err_V"] > 10e-3 and r["dangerous"] and not r["detected"]
    # a larger shift leaves the VREF2 window
    assert "vref2_window" in _inject("ref_drift_shared", 6000.0)["by"]
    # with a separate S reference the C-vs-S comparison sees the same shift
    sep = _inject("ref_drift_shared", shift, chip=ADBMS)
    assert "cs_compare" in sep["by"]


def test_open_wire_is_found_by_the_open_wire_test():
    for i in range(2):
        r = _inject("open_wire", index=i)
        assert "open_wire" in r["by"]
    # the emulator's floating pin is held at its node by the filter network and relaxes back
    # to it (chip_analog.OPEN_PIN_TAU_S): without a test current nothing disturbs it, so the
    # danger of an open wire is measured after the open-wire test has pulled the pin
    r = _inject("open_wire", diagnostics=("pec", "command_counter"))
    assert not r["detected"] and not r["dangerous"]


def test_trim_memory_single_flip_is_corrected_double_flip_is_flagged_by_ecc():
    one = _inject("trim_bit_flips", 1)
    assert not one["detected"] and not one["dangerous"]
    two = _inject("trim_bit_flips", 2)
    assert "status_flags" in two["by"]


def test_dead_chip_and_broken_link_are_caught_by_pec():
    for kind in ("dead_chip", "no_comm"):
        for i in range(2):
            r = _inject(kind, index=i)
            assert "pec" in r["by"] and r["dangerous"]


def test_corrupted_reply_fails_pec_and_corrupted_command_shows_in_the_counter():
    pop = make_population(TARGET, 1, 0)
    src = VirtualPackSource.from_config(LFP, None, seed=0)
    dev = Device(ChipAnalog(pop, 0, src, seed=0))
    chain = DaisyChain([dev])
    link = _Link(chain)
    host = HostDriver(link.transfer, 1, raise_on_counter_mismatch=False, delay=chain.delay)
    host.write_config_a({"REFON": 1})
    link.mode, link.flip_mosi, link.bit_positions = "corrupt", False, [0.37]
    link.target = link.count  # the next window: a read reply with one bit flipped
    with pytest.raises(PecError):
        host.read("RDCVA")
    link.flip_mosi, link.target = True, link.count  # next: an action command's frame
    host.command("ADCV")  # PEC15 fails in the device: ignored, counter does not advance
    host.read("RDCVA")
    assert host.counter_faults == [True]


def test_silent_comparator_is_a_latent_fault():
    def silent(_analog, dev):
        dev.inject["comp_silent"] = True

    r = _inject("c_gain_drift", _gain_ppm(3.0), hook=silent)
    assert r["dangerous"] and "cs_compare" not in r["by"]
    lat = _inject("comparator_silent")
    assert not lat["detected"] and not lat["dangerous"]  # latent: only a second fault shows it


def test_redundant_second_chip_catches_the_common_cause_reference_shift():
    diags = ("pec", "command_counter", "cs_compare", "vref2_window", "redundant_chip")
    r = _inject("ref_drift_shared", 3500.0, diagnostics=diags)
    assert r["by"] == {"redundant_chip"}


def _task(design, spec, mode, lo, hi, seed=5):
    return CampaignTask(0, 0, lo, hi, design, mode, spec, LFP, _budget(), seed)


def test_campaign_is_deterministic_and_chunking_free():
    design = DesignConfig(name="d", chip="c.yaml")
    mode = FailureModeConfig.model_validate({
        "name": "g", "kind": "c_gain_drift", "fit": 1.0, "fit_source": "t",
        "magnitude": {"dist": "loguniform", "lo": 100, "hi": 1e5, "signed": True}})
    whole = run_campaign_chunk(_task(design, TARGET, mode, 0, 4))
    again = run_campaign_chunk(_task(design, TARGET, mode, 0, 4))
    parts = [run_campaign_chunk(_task(design, TARGET, mode, lo, lo + 2)) for lo in (0, 2)]
    for k in whole:
        np.testing.assert_array_equal(whole[k], again[k])
        np.testing.assert_array_equal(whole[k], np.concatenate([p[k] for p in parts]))
    other = run_campaign_chunk(_task(design, TARGET, mode, 0, 4, seed=6))
    assert not np.array_equal(whole["magnitude"], other["magnitude"])


def test_separate_s_reference_raises_the_measured_coverage_of_reference_drift():
    mode = FailureModeConfig.model_validate({
        "name": "ref", "kind": "ref_drift_shared", "fit": 1.0, "fit_source": "t",
        "magnitude": {"dist": "loguniform", "lo": 3100, "hi": 3900, "signed": True}})
    det = {}
    for name, spec in (("shared", TARGET), ("separate", ADBMS)):
        out = run_campaign_chunk(_task(DesignConfig(name=name, chip="c.yaml"), spec, mode, 0, 6))
        assert out["dangerous"].all()  # 3100-3900 ppm of ~3.3 V > 10 mV
        det[name] = int(out["detected"].sum())
    assert det["shared"] == 0 and det["separate"] == 6


def test_budget_through_run_sweep(tmp_path, make_sweep):
    budget = {
        "pack": str(ROOT / "packs" / "lfp_16s_280Ah.yaml"), "chips_per_pack": 12,
        "cell_fit": 1.0, "cell_fit_source": "test", "dangerous_error_mV": 10.0,
        "injections": 3, "chunk_injections": 2, "pool_devices": 4,
        "designs": [{"name": "t", "chip": str(ROOT / "chips" / "bmic_target_1mV.yaml")}],
        "modes": [
            {"name": "dead", "kind": "dead_chip", "fit": 3.0, "fit_source": "t",
             "danger": "always"},
            {"name": "ref", "kind": "ref_drift_shared", "fit": 3.0, "fit_source": "t",
             "magnitude": {"dist": "fixed", "value": 3500.0}},
        ],
        "requirements": [
            {"name": "pack residual <= 10 ppm over mission", "design": "t",
             "metric": "pack_residual_ppm", "limit": 10.0, "basis": "point"},
            {"name": "SPFM >= 99 %", "design": "t", "metric": "spfm", "limit": 0.99,
             "basis": "point", "expect": "fail"},
        ],
    }
    cfg = make_sweep(tmp_path, n=100, chunk=100, budget=budget)
    res = run_sweep(cfg, tmp_path / "o", progress=False, curves=False)
    b = res.summary["budget"]
    dead, ref = b["modes"]
    assert (dead["detected"], dead["undetected_dangerous"]) == (3, 0)
    assert (ref["detected"], ref["undetected_dangerous"]) == (0, 3)  # common cause, hidden
    # residual 3 FIT (all reference faults) x 12 chips = 36 FIT -> 3151 ppm over 87660 h
    assert b["totals"]["pack_residual_ppm_mission"] == pytest.approx(
        1e6 * (1 - np.exp(-36e-9 * 87_660)))
    pack_req, spfm_req = b["requirements"]
    assert pack_req["verdict"] == "fail" and not pack_req["ok"]  # fails honestly
    assert spfm_req["verdict"] == "fail" and spfm_req["ok"]
    assert res.exit_code == 1
    junit = ET.parse(tmp_path / "o" / "junit.xml").getroot()
    failed = {tc.get("name"): tc.find("failure") is not None for tc in junit.iter("testcase")}
    assert failed["pack residual <= 10 ppm over mission [expect pass]"]
    assert not failed["SPFM >= 99 % [expect fail]"]
    html = (tmp_path / "o" / "report.html").read_text()
    assert "Failure-rate budget" in html and "ref_drift" not in html.split("<h3>")[0]
    assert "largest residual contributors" in html
    assert res.run_info["budget_injections_per_s"] > 0
    # same config, other chunking of the campaign: identical summary bytes
    res2 = run_sweep(cfg, tmp_path / "o2", progress=False, curves=False, report=False)
    assert json.dumps(res2.summary, sort_keys=True) == json.dumps(res.summary, sort_keys=True)


def test_supply_below_the_chips_uv_flag_is_caught_only_by_the_host_supply_window():
    def vd_low(analog, _dev):  # VD at -15 %: above the chip's own 2.7 V UV flag
        analog.faults.va_V, analog.faults.vd_V = None, 3.3 * 0.85

    r = _inject("supply", 0.0, hook=vd_low)
    assert r["dangerous"] and not r["detected"]  # danger: always (off the operating range)
    base = DesignConfig(name="d", chip="c.yaml").diagnostics
    r = _inject("supply", 0.0, hook=vd_low, diagnostics=(*base, "supply_window"))
    assert r["by"] == {"supply_window"}
