"""The enumerated fault-injection campaign (issue 7 item 5) on ``rtl_models/afe_datapath.sv``
and checks of its framework (:mod:`fault_campaign`, :mod:`flop_inventory`, :mod:`afe_campaign`).

Without a simulator (Verilator only for the inventory):

* the Verilator inventory of ``sinc3_decimator`` equals the count derived from its source
  (six W-bit registers, the W-bit output, the log2 R phase counter, out_valid:
  7 W + log2 R + 1, W = 1 + 3 log2 R), and the datapath's totals are those of its blocks;
* classification and the SPFM / LFM arithmetic on hand-made records with hand-computed
  answers.

In the simulator (``campaign_bench`` below, one process for the whole campaign):

* the fault-free run equals the golden model (bms_emu) and raises no flag;
* a stuck-at (cocotb Force on one bit of a flop marked forceable) holds on a bit that
  toggles every clock, leaves the other bits counting, and ends with Release;
* every probe is dangerous and detected on its own;
* every flop bit x (upset at a seeded random clock, stuck-at-0, stuck-at-1), classified;
  latent pass for safe permanent faults of mechanism flops;
* no state leaks between runs: the reference and a sample of 30 faults re-run at the end
  (in reverse order) give the same outcome.

Asserted on the result (hardened design): SPFM >= 99 % (ISO 26262 ASIL D), every bit of the
inventory injected with all three models; ``campaign.json`` is written next to the run (and to
``$BMS_EMU_CAMPAIGN_JSON`` if set). A seeded sample of the baseline design (no lockstep, no
parity) shows the gap the two mechanisms close (SPFM < 99 %).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from flop_inventory import Flop, bits_by

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None


# ---- framework checks (no simulator) ------------------------------------------------------


def _verilator() -> str:
    import shutil

    from rtl_bench import setup_verilator_env

    setup_verilator_env()
    exe = shutil.which("verilator")
    if exe is None:
        pytest.skip("no Verilator for the flop inventory")
    return exe


@pytest.mark.parametrize("R", [16, 128, 1024])
def test_inventory_sinc3_matches_derived_count(R: int) -> None:
    from flop_inventory import flop_inventory
    from rtl_bench import RTL_DIR

    _verilator()
    log2r = R.bit_length() - 1
    W = 1 + 3 * log2r
    flops = flop_inventory([RTL_DIR / "sinc3_decimator.sv"], "sinc3_decimator", {"R": R})
    assert sum(f.width for f in flops) == 7 * W + log2r + 1
    assert {f.path for f in flops} == {"i1_q", "i2_q", "i3_q", "z1_q", "z2_q", "z3_q",
                                       "phase_q", "out_valid", "out_code"}


@pytest.mark.parametrize("design", ["hardened", "baseline"])
def test_inventory_datapath_totals(design: str) -> None:
    from afe_campaign import N_CH, R_C, SPEC_BY_NAME

    _verilator()
    spec = SPEC_BY_NAME[design]
    flops = spec.inventory()
    dup = spec.parameters["DUP_C"]
    par = spec.parameters["RES_PAR"]

    def sinc3(R: int) -> int:
        lg = R.bit_length() - 1
        return 7 * (1 + 3 * lg) + lg + 1

    trim_stage = 24 + 1                                   # corrected + out_valid
    per_ch = ((1 + dup) * (sinc3(R_C) + trim_stage) + sinc3(8 * R_C) + trim_stage
              + 8 * 16 + 2 * par)                          # paths, ring, parity bits
    shared = (10 * 22 + 2 * 16 * N_CH + 4 + 2 + 1          # trim memory, results, counters
              + 2 * N_CH + 4)                              # cs_compare, the 4 sticky flags
    assert sum(f.width for f in flops) == N_CH * per_ch + shared
    assert bits_by(flops, r"u_trim\.mem_q$") == 220
    assert bits_by(flops, r"\.g_dup\.") == dup * N_CH * (sinc3(R_C) + trim_stage)


def test_classify_and_metrics_by_hand() -> None:
    from fault_campaign import FIT_PERMANENT_PER_BIT, FIT_SEU_PER_BIT, classify, metrics

    ref = {"c": [[10, 20], [11, 21]], "s": [[10, 20]], "flags": {"csflt": 0, "par_flt": 0}}
    alarms = {"csflt": "cs", "par_flt": "par"}
    near = {**ref, "c": [[10, 26], [11, 21]]}
    far = {**ref, "c": [[10, 27], [11, 21]]}
    short = {**ref, "c": [[10, 20]]}
    flagged = {**far, "flags": {"csflt": 2, "par_flt": 0}}
    assert classify(ref, near, alarms, 6)["cls"] == "safe"
    assert classify(ref, far, alarms, 6)["cls"] == "residual"
    assert classify(ref, short, alarms, 6)["cls"] == "residual"
    got = classify(ref, flagged, alarms, 6)
    assert got["cls"] == "detected" and got["by"] == ["cs"] and got["dangerous"]
    recs = [{"path": "a", "kind": "seu", "cls": "residual", "n_seu": 2},
            {"path": "a", "kind": "seu", "cls": "safe", "n_seu": 2},
            {"path": "a", "kind": "sa0", "cls": "latent"},
            {"path": "a", "kind": "sa1", "cls": "detected"},
            {"path": "b", "kind": "seu", "cls": "detected", "n_seu": 1},
            {"path": "b", "kind": "sa0", "cls": "residual"},
            {"path": "b", "kind": "sa1", "cls": "safe"}]
    m = metrics(recs)
    s, p = FIT_SEU_PER_BIT, FIT_PERMANENT_PER_BIT / 2
    total = 2 * s + 4 * p
    assert m["lambda_total_fit"] == pytest.approx(total)
    assert m["spfm"] == pytest.approx(1 - (s / 2 + p) / total)
    assert m["lfm"] == pytest.approx(1 - p / (4 * p - p))


def test_enumerate_faults_complete_and_seeded() -> None:
    from fault_campaign import enumerate_faults

    flops = [Flop("x", 3, "m"), Flop("y", 1, "m")]
    f = enumerate_faults(flops, (5, 50), seed=1, seu_per_bit=2)
    assert len(f) == 4 * (2 + 2)
    assert {(x.path, x.bit) for x in f} == {("x", 0), ("x", 1), ("x", 2), ("y", 0)}
    assert all(5 <= x.cycle < 50 for x in f if x.kind == "seu")
    assert f == enumerate_faults(flops, (5, 50), seed=1, seu_per_bit=2)
    assert f != enumerate_faults(flops, (5, 50), seed=2, seu_per_bit=2)
    with pytest.raises(ValueError, match="upset window"):
        enumerate_faults(flops, (5, 5), seed=1)


# ---- the campaign (inside the simulator) ---------------------------------------------------


if cocotb is not None:

    @cocotb.test()
    async def campaign_bench(dut):
        """Reference, self-checks, every fault, latent pass; raw records to a JSON file.

        The design-specific parts come from the adapter module named in the configuration
        (``afe_campaign`` for afe_datapath; protocol in :mod:`fault_campaign`).
        """
        import importlib
        import time

        import numpy as np
        from fault_campaign import Injector, classify, enumerate_faults
        from rtl_bench import start_clock

        cfg = json.loads(os.environ["BMS_EMU_CAMPAIGN"])
        ad = importlib.import_module(cfg["adapter"])
        spec = ad.SPEC_BY_NAME[cfg["design"]]
        flops = [Flop(**f) for f in cfg["flops"]]
        pre = spec.hdl_prefix
        await start_clock(dut)
        stim = ad.stimulus()
        await ad.play(dut, stim)
        await ad.check_forcing(dut, pre)

        t0 = time.perf_counter()
        ref = await ad.play(dut, stim)
        t_run = time.perf_counter() - t0
        assert ref.pop("stopped_at") is None
        assert ref == ad.golden(stim), "fault-free run differs from the golden model"
        assert not any(ref["flags"].values()), f"fault-free run raised flags {ref['flags']}"

        variants = {None: stim}

        async def one(faults: list[tuple[str, int, str, int | None]],
                      variant: str | None = None, stop: bool = True) -> dict[str, Any]:
            if variant not in variants:
                variants[variant] = ad.stimulus(variant)
            inj = Injector(dut, [(pre + p, b, kind, cyc) for p, b, kind, cyc in faults])
            inj.arm()
            try:
                got = await ad.play(dut, variants[variant], inj, stop)
            finally:
                inj.release()
            return classify(ref, got, spec.alarms, spec.danger_codes)

        probes = {}
        for mech, pr in spec.probes.items():
            r = await one([(*i, None) for i in pr.injections], pr.variant, stop=False)
            assert r["dangerous"] and mech in r["by"], f"probe of {mech} not caught: {r}"
            probes[mech] = r
        faults = enumerate_faults(flops, ad.upset_window(stim), cfg["seed"],
                                  cfg["seu_per_bit"])
        if cfg["limit"] is not None and cfg["limit"] < len(faults):
            keep = np.random.default_rng(cfg["seed"]).choice(len(faults), cfg["limit"],
                                                             replace=False)
            faults = [faults[i] for i in sorted(keep)]
        records = []
        n_latent_runs = 0
        t1 = time.perf_counter()
        for f in faults:
            r = await one([(f.path, f.bit, f.kind, f.cycle)])
            rec = {"path": f.path, "bit": f.bit, "kind": f.kind, "cycle": f.cycle,
                   "n_seu": cfg["seu_per_bit"], **r}
            mech = spec.mechanism(f.path, f.bit)
            rec["mechanism"] = mech
            if r["cls"] == "safe" and f.kind != "seu" and mech is not None:
                pr = spec.probes[mech]
                r2 = await one([(f.path, f.bit, f.kind, None),
                                *[(*i, None) for i in pr.injections]], pr.variant)
                n_latent_runs += 1
                rec["with_probe"] = r2["cls"]
                if r2["cls"] == "residual":
                    rec["cls"] = "latent"
            records.append(rec)
        wall = time.perf_counter() - t1
        # no state leaks from run to run (a flop without reset, a force left on): the
        # reference and a seeded sample of faults, re-run in reverse order, give the same
        again = await ad.play(dut, stim)
        assert again.pop("stopped_at") is None and again == ref, "reference changed"
        pick = np.random.default_rng(cfg["seed"] + 1).choice(len(faults),
                                                               min(30, len(faults)),
                                                               replace=False)
        for i in sorted(pick.tolist(), reverse=True):
            f = faults[i]
            r = await one([(f.path, f.bit, f.kind, f.cycle)])
            first = {k: records[i][k] for k in ("by", "max_dc", "stopped_at")}
            assert {k: r[k] for k in first} == first, f"{f}: {r} vs {records[i]}"
        dut._log.info("campaign %s: %d faults + %d latent-pass runs in %.1f s (one run %.3f s)",
                      cfg["design"], len(faults), n_latent_runs, wall, t_run)
        Path(cfg["out"]).write_text(json.dumps({
            "faults": records,
            "reference": {"c_results": len(ref["c"]), "s_results": len(ref["s"]),
                          "golden_check": "bit-exact", "probes": probes,
                          "latent_pass_runs": n_latent_runs, "run_s": round(t_run, 4)}}))


def _needs_verilator(simulator_name: str) -> None:
    if simulator_name != "verilator":
        pytest.skip("the campaign build marks every flop forceable with a Verilator control "
                    "file (.vlt) so stuck-at forces hold; run it with SIM=verilator")


def test_fault_campaign_hardened(
    request: pytest.FixtureRequest, tmp_path: Path, simulator_name: str
) -> None:
    """The full enumeration on the hardened datapath: SPFM >= 99 %, campaign.json written."""
    _needs_verilator(simulator_name)
    from afe_campaign import SPEC_BY_NAME
    from fault_campaign import KINDS, run_campaign

    from bms_emu.report.rtl_campaign import load_rtl_campaign

    out = Path(os.environ.get("BMS_EMU_CAMPAIGN_JSON", tmp_path / "campaign.json"))
    doc = run_campaign(request, "hardened", seu_per_bit=1, out=out)
    assert load_rtl_campaign(out) == doc  # what the sweep report reads
    n_bits = doc["design"]["n_bits"]
    assert n_bits == sum(f.width for f in SPEC_BY_NAME["hardened"].inventory())
    for kind in KINDS:
        assert sum(doc["counts"][kind].values()) == n_bits, kind
    assert doc["n_faults"] == 3 * n_bits
    assert set(doc["detected_after_wrong_output"]) == set(KINDS)
    assert doc["spfm"] >= 0.99, f"SPFM {doc['spfm']:.4%} < 99 %; gaps {doc['gaps']}"
    assert doc["metrics"]["spfm"] >= 0.99
    assert doc["lfm"] is not None and 0.0 <= doc["lfm"] <= 1.0
    assert set(doc["detected_by"]) <= {"cs_compare", "ecc", "lockstep", "parity"}
    assert all(doc["detected_by"].get(m, 0) > 0 for m in ("cs_compare", "ecc", "lockstep",
                                                         "parity"))


def test_fault_campaign_baseline_sample(
    request: pytest.FixtureRequest, simulator_name: str
) -> None:
    """A seeded sample of the baseline (C-vs-S and ECC only): residual faults the lockstep
    and the parity close; its SPFM is below 99 %."""
    _needs_verilator(simulator_name)
    from fault_campaign import run_campaign

    doc = run_campaign(request, "baseline", seu_per_bit=1, limit=150)
    assert doc["counts"]["seu"].get("residual", 0) > 0
    assert doc["spfm"] < 0.99, f"baseline SPFM {doc['spfm']:.4%}"
