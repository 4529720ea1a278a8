"""Enumerated fault-injection campaign on the RTL (issue 7 item 5): every flop bit, three fault
models, ISO 26262 classification, SPFM / LFM, residual FIT and ppm, ``campaign.json``.

Pieces (the toplevel, its workload and what is observed are pluggable, so the same framework
can be pointed at ``afe_digital_top`` later: an *adapter* module supplies them, protocol in
:func:`run_campaign`; ``afe_campaign`` is the one for ``afe_datapath``):

* :class:`CampaignSpec`: the design (toplevel, sources, parameters), which output flag is
  which safety mechanism, which flops belong to a safety mechanism, and per mechanism a
  *probe*: a dangerous fault that mechanism must catch (for the latent-fault pass);
* the fault list (:func:`enumerate_faults`): every bit of every flop of the Verilator
  inventory (:mod:`flop_inventory`), as a single-event upset (bit flip after a seeded random
  clock edge of the workload) and as stuck-at-0 and stuck-at-1 for the whole run;
* injection (:class:`Injector`, inside the simulator): an upset is a bit flip written through
  VPI a quarter clock after a rising edge (the flop has its new value then; logic reading it
  is re-evaluated before the next edge); a stuck-at is cocotb's ``Force`` on the
  bit-select handle for the whole run. Verilator 5.048 holds a VPI force only on variables
  marked ``forceable``, so the campaign builds with a control file that marks every flop of
  the inventory (:func:`forceable_vlt`); ``test_fault_campaign.py`` checks that a forced bit
  holds on a flop that toggles every clock;
* classification of one run against the fault-free reference run (:func:`classify`):
  detected (a flag of a mechanism fired; which ones are recorded), residual (a reported C
  code differs by more than ``danger_codes`` with no alarm, or a result is missing), else
  safe; a permanent fault in a safety-mechanism flop that is safe on its own is run again
  with that mechanism's probe on top: if the pair is residual the fault is latent;
* metrics (:func:`summarize`): each fault weighted by its per-bit base FIT, ISO 26262-5
  SPFM = 1 - sum(lambda_residual) / sum(lambda), LFM = 1 - sum(lambda_latent) /
  (sum(lambda) - sum(lambda_residual)), over permanent faults for LFM (a transient upset does
  not stay latent: it is gone with the next write of the flop);
* ``campaign.json`` (schema in :func:`summarize`), which ``bms-emu sweep --rtl-campaign``
  puts into the sweep report.

Run outside pytest: ``python -m tests.rtl.fault_campaign --out campaign.json`` (``--help``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # python -m tests.rtl.fault_campaign: siblings by bare name
    sys.path.insert(0, str(_HERE))

from flop_inventory import Flop, flop_inventory  # noqa: E402

from bms_emu.report.rtl_campaign import SCHEMA  # noqa: E402
from bms_emu.sweep.budget import fit_to_ppm  # noqa: E402

KINDS = ("seu", "sa0", "sa1")

# Base failure rates per flop bit (assumptions; no foundry data is public):
#: soft errors: ~1000 FIT/Mbit, the order published for SRAM and flip-flops of 65-130 nm
#: at sea level (Baumann, IEEE Design & Test 2005), as configs/sweeps/*.yaml's trim budget
#: assumes; 1000 / 2**20 FIT per bit.
FIT_SEU_PER_BIT = 1000.0 / 2**20
#: permanent faults: assumption 1e-4 FIT per flop (a 10 k-flop digital core at ~1 FIT, a
#: small share of the ~30 FIT die total the sweep budget assumes), split evenly over
#: stuck-at-0 and stuck-at-1.
FIT_PERMANENT_PER_BIT = 1e-4
#: mission profile: 10 years at 100 % duty (a stationary storage BMS monitors around the
#: clock), 87 660 h; 1 FIT over it = 87.7 ppm (REFERENCE.md section 7).
MISSION_H = 10 * 8766.0
#: chips per pack for the pack figure: the sweep budget's assumption (configs/sweeps, 192s
#: LFP rack of 12 modules of 16s).
CHIPS_PER_PACK = 12
#: the chip's channel count, for scaling per-channel flops of the N_CH-channel instance
CHIP_CHANNELS = 16


@dataclass(frozen=True)
class Fault:
    """One injection: ``bit`` of flop ``path``; ``kind`` seu / sa0 / sa1; ``cycle`` of the
    upset (clock index after which the bit flips; None for stuck-at)."""

    path: str
    bit: int
    kind: str
    cycle: int | None = None


@dataclass(frozen=True)
class Probe:
    """A dangerous fault a mechanism must catch, added on top of a fault in the latent pass.

    ``injections``: (path, bit, kind) stuck-at or upsets applied with the fault; ``variant``:
    a named change of the workload (e.g. an analog error on the C inputs), understood by the
    workload adapter.
    """

    injections: tuple[tuple[str, int, str], ...] = ()
    variant: str | None = None


@dataclass(frozen=True)
class CampaignSpec:
    """What the framework needs to know about a design (see the module docstring)."""

    name: str
    top: str
    sources: tuple[Path, ...]
    parameters: dict[str, Any]
    alarms: dict[str, str]                  # output flag port -> mechanism
    mechanism_rules: tuple[tuple[str, str], ...]   # (regex on the flop path, mechanism)
    probes: dict[str, Probe]
    danger_codes: int                       # |delta code| above this is dangerous
    inventory_top: str | None = None        # design whose flops are injected (default top)
    inventory_parameters: dict[str, Any] | None = None
    hdl_prefix: str = ""                    # instance path of that design under the top
    per_channel: str = r"^(g_ch\[\d+\]|u_cs)\."   # flops that scale with the channel count
    n_ch: int = 2
    bit_mechanism: Callable[[str, int], str | None] | None = None
    build_args: tuple[str, ...] = ()

    def mechanism(self, path: str, bit: int) -> str | None:
        """The safety mechanism a flop bit belongs to (None: the function itself, or a
        mechanism this design variant does not have)."""
        m = self.bit_mechanism(path, bit) if self.bit_mechanism is not None else None
        if m is None:
            m = next((mech for rx, mech in self.mechanism_rules if re.search(rx, path)), None)
        return m if m in self.alarms.values() else None

    def inventory(self) -> list[Flop]:
        from rtl_bench import setup_verilator_env

        setup_verilator_env()
        top = self.inventory_top or self.top
        params = self.parameters if self.inventory_parameters is None else \
            self.inventory_parameters
        srcs = [s for s in self.sources if s.stem != self.top or top == self.top]
        return flop_inventory(srcs, top, params)


def enumerate_faults(flops: Iterable[Flop], cycles: tuple[int, int], seed: int,
                     seu_per_bit: int = 1) -> list[Fault]:
    """Every bit of every flop x (``seu_per_bit`` upsets at seeded random clocks in
    ``[cycles[0], cycles[1])``, stuck-at-0, stuck-at-1). Deterministic for a seed."""
    lo, hi = cycles
    if not 0 <= lo < hi or seu_per_bit < 1:
        raise ValueError(f"bad upset window {cycles} or seu_per_bit {seu_per_bit}")
    out = []
    for i, f in enumerate(flops):
        rng = np.random.default_rng([seed, i])
        times = rng.integers(lo, hi, (f.width, seu_per_bit))
        for b in range(f.width):
            out += [Fault(f.path, b, "seu", int(t)) for t in times[b]]
            out += [Fault(f.path, b, "sa0"), Fault(f.path, b, "sa1")]
    return out


# ---- simulator side --------------------------------------------------------------------


_HANDLES: dict[tuple[int, str], Any] = {}


def resolve(dut: Any, path: str) -> Any:
    """cocotb handle of ``path`` (``g_ch[0].u_c.u_sinc3.i1_q``) under ``dut`` (cached: a
    campaign looks each flop up thousands of times)."""
    key = (id(dut), path)
    if key not in _HANDLES:
        h = dut
        for part in path.split("."):
            m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
            h = getattr(h, m.group(1))[int(m.group(2))] if m else getattr(h, part)
        _HANDLES[key] = h
    return _HANDLES[key]


class Injector:
    """Applies one fault set to a running simulation.

    Stuck-at: :meth:`arm` forces the one bit (a bit-select handle with cocotb's ``Force``;
    Verilator holds it because the campaign build marks every flop ``forceable``, see
    :func:`forceable_vlt`) for the whole run; :meth:`release` ends it. Upset: the workload
    driver calls :meth:`flip` after clock :attr:`seu_clock`, at a time when the edge's updates
    are in (the flop then holds the flipped value until its next write).
    """

    def __init__(self, dut: Any, faults: Iterable[tuple[str, int, str, int | None]]) -> None:
        self._f = [(resolve(dut, p), b, kind, cyc) for p, b, kind, cyc in faults]
        seu = {cyc for _, _, kind, cyc in self._f if kind == "seu"}
        if len(seu) > 1:
            raise ValueError(f"upsets at several clocks in one run: {sorted(seu)}")
        self.seu_clock: int | None = seu.pop() if seu else None
        self._forced: list[Any] = []

    def arm(self) -> None:
        from cocotb.handle import Force

        for h, b, kind, _ in self._f:
            if kind in ("sa0", "sa1"):
                bit = h[b] if hasattr(h, "__getitem__") else h   # a 1-bit flop: itself
                bit.value = Force(int(kind == "sa1"))
                self._forced.append(bit)

    def release(self) -> None:
        from cocotb.handle import Release

        for bit in self._forced:
            bit.value = Release()
        self._forced.clear()

    def flip(self) -> None:
        for h, b, kind, _ in self._f:
            if kind == "seu":
                v = h.value.to_unsigned() if hasattr(h.value, "to_unsigned") else int(h.value)
                h.value = v ^ (1 << b)


def forceable_vlt(flops: Iterable[Flop]) -> str:
    """A Verilator control file marking every flop variable ``forceable``: Verilator then
    honours a VPI force (cocotb ``Force``) on it, bit by bit; without it a Force is accepted
    and not held."""
    lines = ["`verilator_config"]
    for mod, var in sorted({(f.module, f.path.rsplit(".", 1)[-1]) for f in flops}):
        lines.append(f'forceable -module "{mod}" -var "{var}"')
    return "\n".join(lines) + "\n"


# ---- classification and metrics ---------------------------------------------------------


def classify(ref: dict[str, Any], got: dict[str, Any], alarms: dict[str, str],
             danger_codes: int) -> dict[str, Any]:
    """Outcome of one run vs the fault-free ``ref`` (traces as :class:`Trace` dicts).

    A run stopped early (``stopped_at`` set) was stopped by a flag: detected; its output
    difference is over the results before the stop.

    Returns {"cls": detected | residual | safe, "by": [mechanisms], "max_dc": max |delta C
    code| over the results read (None if results are missing), "dangerous": bool,
    "s_changed": bool, "stopped_at": clock or None}.
    """
    by = sorted({alarms[p] for p, v in got["flags"].items()
                 if p in alarms and v != ref["flags"][p]})
    stopped = got.get("stopped_at")
    n = len(got["c"])
    if n != len(ref["c"]) and stopped is None:
        max_dc = None
    else:  # plain Python: a few dozen small tuples per run
        max_dc = max((abs(a - b) for g, r in zip(got["c"], ref["c"][:n], strict=True)
                      for a, b in zip(g, r, strict=True)), default=0)
    dangerous = max_dc is None or max_dc > danger_codes
    cls = "detected" if by else ("residual" if dangerous else "safe")
    return {"cls": cls, "by": by, "max_dc": max_dc, "dangerous": dangerous,
            "s_changed": got["s"] != ref["s"][:len(got["s"])], "stopped_at": stopped}


@dataclass
class Tally:
    """Counts and FIT of one group of faults."""

    n: dict[str, int] = field(default_factory=dict)
    fit: dict[str, float] = field(default_factory=dict)

    def add(self, cls: str, fit: float) -> None:
        self.n[cls] = self.n.get(cls, 0) + 1
        self.fit[cls] = self.fit.get(cls, 0.0) + fit


def fault_fit(kind: str, scale: float = 1.0) -> float:
    """Base FIT of one fault of ``kind`` on one bit (x ``scale`` for channel scaling)."""
    per = FIT_SEU_PER_BIT if kind == "seu" else FIT_PERMANENT_PER_BIT / 2
    return per * scale


def _block(path: str) -> str:
    """Block of a flop for the breakdown: the instance path without channel index."""
    p = re.sub(r"\[\d+\]", "[*]", path)
    parts = p.split(".")
    return ".".join(parts[:-1]) or "(top)"


def metrics(records: list[dict[str, Any]], *, scale: Callable[[str], float] | None = None
            ) -> dict[str, Any]:
    """SPFM, LFM and FIT sums of classified fault records (each: path, kind, cls, and the
    number of upsets per bit ``n_seu`` for SEU records, whose FIT is shared among them)."""
    lam = {"total": 0.0, "residual": 0.0, "latent": 0.0, "perm": 0.0, "perm_residual": 0.0}
    for r in records:
        s = scale(r["path"]) if scale else 1.0
        f = fault_fit(r["kind"], s) / (r.get("n_seu", 1) if r["kind"] == "seu" else 1)
        lam["total"] += f
        if r["cls"] == "residual":
            lam["residual"] += f
        if r["kind"] != "seu":
            lam["perm"] += f
            if r["cls"] == "residual":
                lam["perm_residual"] += f
            if r["cls"] == "latent":
                lam["latent"] += f
    spfm = 1.0 - lam["residual"] / lam["total"] if lam["total"] > 0 else None
    denom = lam["perm"] - lam["perm_residual"]
    lfm = 1.0 - lam["latent"] / denom if denom > 0 else None
    return {"spfm": spfm, "lfm": lfm, "lambda_total_fit": lam["total"],
            "lambda_residual_fit": lam["residual"], "lambda_latent_fit": lam["latent"]}


def summarize(spec: CampaignSpec, flops: list[Flop], records: list[dict[str, Any]], *,
              seed: int, seu_per_bit: int, workload: dict[str, Any], wall_s: float
              ) -> dict[str, Any]:
    """The ``campaign.json`` document.

    Keys: schema, design (toplevel, parameters, flops, bits), workload, fault_models (FIT
    per bit and sources), mission (hours, profile, chips per pack), counts[kind][class],
    detected_by[mechanism], blocks[block][class] (counts), metrics (campaign instance) and
    metrics_chip (per-channel flops scaled to 16 channels), residual FIT and ppm (chip and
    pack, scaled), gaps (the residual and latent faults, grouped by block), wall_s.
    """
    rx = re.compile(spec.per_channel)
    k = CHIP_CHANNELS / spec.n_ch

    def chip_scale(path: str) -> float:
        return k if rx.search(path) else 1.0

    counts = {kind: Tally() for kind in KINDS}
    blocks: dict[str, Tally] = {}
    by_mech: dict[str, int] = {}
    gaps: dict[str, dict[str, int]] = {}
    late = dict.fromkeys(KINDS, 0)
    for r in records:
        f = fault_fit(r["kind"]) / (r.get("n_seu", 1) if r["kind"] == "seu" else 1)
        counts[r["kind"]].add(r["cls"], f)
        late[r["kind"]] += int(r["cls"] == "detected" and bool(r.get("dangerous")))
        blocks.setdefault(_block(r["path"]), Tally()).add(r["cls"], f)
        for m in r.get("by", []):
            by_mech[m] = by_mech.get(m, 0) + 1
        if r["cls"] in ("residual", "latent"):
            g = gaps.setdefault(f"{r['cls']}: {r['kind']} {r['path']}", {"n": 0})
            g["n"] += 1
    m_inst = metrics(records)
    m_chip = metrics(records, scale=chip_scale)
    res_fit = m_chip["lambda_residual_fit"]
    return {
        "schema": SCHEMA,
        "design": {"name": spec.name, "toplevel": spec.top, "parameters": spec.parameters,
                   "n_flops": len(flops), "n_bits": sum(f.width for f in flops),
                   "mechanisms": sorted(set(spec.alarms.values()))},
        "workload": workload,
        "fault_models": {
            "seu": {"fit_per_bit": FIT_SEU_PER_BIT, "upsets_per_bit": seu_per_bit,
                    "source": "assumption: ~1000 FIT/Mbit soft-error rate (Baumann 2005 order "
                              "of magnitude, sea level)"},
            "sa0": {"fit_per_bit": FIT_PERMANENT_PER_BIT / 2,
                    "source": "assumption: 1e-4 FIT permanent per flop, half stuck-at-0"},
            "sa1": {"fit_per_bit": FIT_PERMANENT_PER_BIT / 2,
                    "source": "assumption: 1e-4 FIT permanent per flop, half stuck-at-1"},
            "stuck_at_method": "cocotb Force on the bit for the whole run (every flop "
                               "marked forceable in a generated Verilator control file)",
        },
        "mission": {"hours": MISSION_H, "profile": "10 years x 100 % duty (continuous)",
                    "chips_per_pack": CHIPS_PER_PACK},
        "danger": {"codes": spec.danger_codes,
                   "rule": f"a reported C code differs from the fault-free run by more than "
                           f"{spec.danger_codes} codes (+-1 mV at 150 uV/code) or a result is "
                           f"missing, with no alarm"},
        "n_faults": len(records),
        "seed": seed,
        "counts": {kind: t.n for kind, t in counts.items()},
        "fit": {kind: t.fit for kind, t in counts.items()},
        "detected_by": by_mech,
        # detected, but a C result more than danger_codes off was read before (or with) the
        # first flag: safe only if the host acts on the flag within the fault tolerant time
        "detected_after_wrong_output": late,
        "blocks": {b: t.n for b, t in sorted(blocks.items())},
        "metrics": m_inst,
        "metrics_chip": m_chip,
        "spfm": m_chip["spfm"],
        "lfm": m_chip["lfm"],
        "residual_fit": res_fit,
        "residual_ppm_mission": fit_to_ppm(res_fit, MISSION_H),
        "pack_residual_fit": CHIPS_PER_PACK * res_fit,
        "pack_residual_ppm_mission": fit_to_ppm(CHIPS_PER_PACK * res_fit, MISSION_H),
        "gaps": dict(sorted(gaps.items(), key=lambda kv: -kv[1]["n"])[:40]),
        "wall_s": round(wall_s, 1),
    }


# ---- the pytest / command-line driver ----------------------------------------------------


class _Request:
    """Minimal stand-in for pytest's request (run_bench only uses ``node.name``)."""

    def __init__(self, name: str) -> None:
        self.node = type("Node", (), {"name": name})()


def run_campaign(request: Any, design: str = "hardened", *, seu_per_bit: int = 1,
                 limit: int | None = None, seed: int = 7, out: Path | None = None,
                 adapter: str = "afe_campaign") -> dict[str, Any]:
    """Build the design, run the whole campaign in one simulator process, summarise.

    ``adapter``: module (in tests/rtl) describing the design and its workload: it provides
    ``SPEC_BY_NAME`` (design name -> :class:`CampaignSpec`), ``workload_info(spec)``, and
    for the simulator side ``stimulus(variant=None)``, ``golden(stim)``,
    ``upset_window(stim)``, ``play(dut, stim, injector=None, stop=False)`` (one run, trace as
    a dict c / s / flags / stopped_at) and ``check_forcing(dut, prefix)``.
    ``limit`` keeps a seeded sample of that many faults (for quick looks; the CI campaign
    runs them all). Writes ``out`` (campaign.json) if given; returns the document.
    """
    import importlib

    from rtl_bench import build_root, run_bench

    ad = importlib.import_module(adapter)
    if design not in ad.SPEC_BY_NAME:
        raise ValueError(f"design {design!r} unknown to {adapter} ({sorted(ad.SPEC_BY_NAME)})")
    spec = ad.SPEC_BY_NAME[design]
    flops = spec.inventory()
    work = build_root() / "fault_campaign"
    work.mkdir(parents=True, exist_ok=True)
    raw = work / f"{design}_{os.getpid()}.json"
    vlt = work / f"{design}_forceable.vlt"   # same content -> same build key
    text = forceable_vlt(flops)
    if not vlt.is_file() or vlt.read_text() != text:
        vlt.write_text(text)
    os.environ["BMS_EMU_CAMPAIGN"] = json.dumps({
        "adapter": adapter, "design": design, "seed": seed, "seu_per_bit": seu_per_bit,
        "limit": limit, "flops": [asdict(f) for f in flops], "out": str(raw)})
    t0 = time.perf_counter()
    try:
        run_bench(request, block=spec.top, test_module="test_fault_campaign",
                  parameters=spec.parameters, sources=[vlt, *spec.sources],
                  verilator_args=list(spec.build_args))
    finally:
        os.environ.pop("BMS_EMU_CAMPAIGN", None)
    if not raw.is_file():
        raise AssertionError(f"the campaign bench wrote no records ({raw}); see the sim.log "
                             f"under {build_root() / spec.top}")
    records = json.loads(raw.read_text())
    raw.unlink()
    doc = summarize(spec, flops, records["faults"], seed=seed, seu_per_bit=seu_per_bit,
                    workload={**ad.workload_info(spec), **records["reference"]},
                    wall_s=time.perf_counter() - t0)
    if out is not None:
        out.write_text(json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.rtl.fault_campaign",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("campaign.json"), help="campaign.json path")
    p.add_argument("--adapter", default="afe_campaign",
                   help="module describing the design and workload (tests/rtl)")
    p.add_argument("--design", default="hardened",
                   help="design variant of the adapter; afe_campaign: hardened (lockstep C "
                        "path + result parity) or baseline (without them)")
    p.add_argument("--seu-per-bit", type=int, default=4, help="upset times per flop bit")
    p.add_argument("--limit", type=int, help="seeded sample of this many faults")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    from rtl_bench import find_simulator

    sim, why = find_simulator()
    if sim is None:
        print(f"fault_campaign: {why}", file=sys.stderr)
        return 2
    doc = run_campaign(_Request(f"campaign_{a.design}"), a.design, seu_per_bit=a.seu_per_bit,
                       limit=a.limit, seed=a.seed, out=a.out, adapter=a.adapter)
    spfm, lfm = doc["spfm"], doc["lfm"]
    print(f"{a.design}: {doc['n_faults']} faults on {doc['design']['n_bits']} flop bits in "
          f"{doc['wall_s']} s; SPFM {spfm:.4%}, LFM "
          f"{'-' if lfm is None else f'{lfm:.4%}'}, residual {doc['residual_fit']:.3g} FIT "
          f"({doc['residual_ppm_mission']:.3g} ppm / mission); wrote {a.out}")
    return 0 if spfm is not None and math.isfinite(spfm) else 1


if __name__ == "__main__":
    sys.exit(main())
