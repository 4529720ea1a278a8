"""Diagnostic-coverage campaigns: inject faults into the emulated chip, count what is flagged.

Coverage is measured, never typed in: each injection builds a one-chip emulator (a device of a
trimmed population in front of a virtual 16-cell module, :class:`~bms_emu.device.Device` on a
:class:`~bms_emu.device.DaisyChain`), injects one fault with a random magnitude, channel and
device, and runs the diagnostic cycle of a reference host master
(:func:`reference_master_cycle`) in emulated time through the real protocol
(:class:`~bms_emu.host.HostDriver`: PEC10, command counter). The outcome of an injection:

* **detected**: at least one enabled diagnostic flagged (detection wins: it is not classified
  further);
* **undetected dangerous**: nothing flagged and the reported cell voltage is off by more than
  the dangerous threshold on some channel (or the mode is ``danger: always``: no data, or an
  effect the emulator does not couple into the readings);
* **undetected safe**: nothing flagged, error within the threshold.

Determinism: injection ``i`` of (design, mode) draws everything from the stream named
``budget.<mode>.<i>`` of the budget seed (the same for every design: paired comparisons); the
population of a design comes from the seed too. A chunk is a range of injection indices, so
counts never depend on the chunking or on where a chunk runs. :func:`run_campaign_chunk` is
pure apart from the in-process emulator (no files, no clocks); it returns integer arrays the
sweep engine checkpoints and aggregates.

Diagnostics (bits of ``diag_mask``), in :data:`DIAGNOSTICS` order:

``pec``               any reply failed its PEC10 (or no device answered at all)
``command_counter``   a device reported a command counter the host did not expect
``cs_compare``        a CSxFLT bit (C-vs-S comparison with CTH, ADCV RD=1 continuous)
``vref2_window``      VREF2 (ADAX CH=11, read through the C path) outside its valid window
``open_wire``         :func:`bms_emu.host.open_wire_check` reports an open pin
``status_flags``      STATC: THSD, VA/VD OV/UV, OSCCHK, CMED/SMED (uncorrectable trim ECC), COMP,
                      SPIFLT (a *corrected* single trim-memory error, CED/SED, is not a fault)
``cell_plausibility`` a cell OV/UV flag (STATD, against ``plausible_cell_V``) or a reading that
                      is the cleared/power-on code
``redundant_chip``    a second chip measuring the same module disagrees by more than the threshold
``supply_window``     VA / VD converted (ADAX CH=13/12) outside nominal
                      +- ``supply_window_fraction`` (a host check tighter than the chip's flags)
``latent_test``       the latent-fault test of the flag path: a flag forced through the FLAG_D
                      bits of CFGA must read back in STATC (:func:`latent_fault_test`)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bms_emu.afe.chip import ChipPopulation, ChipSpec, make_population
from bms_emu.config import BudgetConfig, DesignConfig, FailureModeConfig, PackConfig
from bms_emu.device import DaisyChain, Device
from bms_emu.device.chip_analog import VA_NOM_V, VD_NOM_V, ChipAnalog
from bms_emu.host import HostDriver, open_wire_check
from bms_emu.host.driver import CommandCounterError, PecError, ProtocolError
from bms_emu.protocol.registers import CELL_LSB_V
from bms_emu.sim import RandomStreams
from bms_emu.sources import VirtualPackSource

__all__ = [
    "DIAGNOSTICS",
    "CampaignTask",
    "CycleResult",
    "Injection",
    "campaign_tasks",
    "inject",
    "reference_master_cycle",
    "run_campaign_chunk",
    "run_injection",
]

DIAGNOSTICS: tuple[str, ...] = (
    "pec", "command_counter", "cs_compare", "vref2_window", "open_wire", "status_flags",
    "cell_plausibility", "redundant_chip", "latent_test", "supply_window",
)
_BIT = {name: 1 << i for i, name in enumerate(DIAGNOSTICS)}
#: STATC flags that mean "this chip is faulty" (CED/SED: a corrected single error is not).
_FAULT_FLAGS = ("THSD", "VA_OV", "VA_UV", "VD_OV", "VD_UV", "OSCCHK", "CMED", "SMED", "COMP",
                "SPIFLT")
#: STATD cell OV/UV flags.
_CELL_OVUV = tuple(f"C{n}{w}" for n in range(1, 17) for w in ("UV", "OV"))
#: Emulated time of a continuous redundant (RD) conversion run before the reads: REFUP is
#: already done (the open-wire test ran before); two S results (8 ms each) compared with
#: the mean of the last 8 C results.
RD_RUN_S = 0.017
#: VREF2 conversion (ADAX CH = 11): one aux channel plus margin.
AUX_WAIT_S = 0.002
#: ADAX CH code of VREF2 alone (bms_emu.device.device.AUX_SEQUENCE).
ADAX_VREF2 = 11
#: ADAX CH codes of VD and VA alone.
ADAX_VD, ADAX_VA = 12, 13
#: Trim memory: words 0-9 (C path 0-4, S path 5-9), 22-bit words (chip_analog.AnalogFaults).
TRIM_WORDS, TRIM_BITS = 10, 22


# ---- one injection ------------------------------------------------------------------------


@dataclass
class Injection:
    """What was injected (for tests and the magnitude record)."""

    kind: str
    magnitude: float = 0.0
    channel: int = -1
    always_dangerous: bool = False


class _Link:
    """The SPI link between host and chain, with injectable faults.

    ``mode``: ``None`` (healthy), ``"miso_high"`` / ``"miso_low"`` (the return path is stuck:
    the chain still executes), ``"mosi_open"`` (nothing reaches the chain; time still passes),
    ``"corrupt"`` (the ``target``-th window gets ``bits`` flipped in MOSI or MISO).
    """

    def __init__(self, chain: DaisyChain) -> None:
        self.chain = chain
        self.mode: str | None = None
        self.count = 0
        self.target = -1
        self.flip_mosi = False
        self.bit_positions: list[float] = []

    def transfer(self, mosi: bytes) -> bytes:
        k = self.count
        self.count += 1
        if self.mode == "mosi_open":
            self.chain.delay(self.chain.window_duration_s(len(mosi)))
            return b"\xff" * len(mosi)
        if self.mode == "corrupt" and k == self.target and self.flip_mosi:
            mosi = _flip(mosi, self.bit_positions, 0)
        miso = self.chain.transfer(mosi)
        if self.mode == "miso_high":
            return b"\xff" * len(miso)
        if self.mode == "miso_low":
            return b"\x00" * len(miso)
        if self.mode == "corrupt" and k == self.target and not self.flip_mosi:
            miso = _flip(miso, self.bit_positions, 4)  # reply bytes only (after the command)
        return miso


def _flip(frame: bytes, positions: list[float], first_byte: int) -> bytes:
    """Flip bits at ``positions`` (fractions in [0, 1) of the frame's bits from ``first_byte``)."""
    n_bits = 8 * (len(frame) - first_byte)
    if n_bits <= 0:
        return frame
    b = bytearray(frame)
    for u in {int(p * n_bits) for p in positions}:
        b[first_byte + u // 8] ^= 0x80 >> (u % 8)
    return bytes(b)


def _draw(mag: Any, rng: np.random.Generator) -> float:
    """One magnitude from a :class:`~bms_emu.config.MagnitudeConfig` (1.0 if None)."""
    if mag is None:
        return 1.0
    if mag.dist == "fixed":
        x = float(mag.value)
    elif mag.dist == "uniform":
        x = float(rng.uniform(mag.lo, mag.hi))
    elif mag.dist == "loguniform":
        x = float(math.exp(rng.uniform(math.log(mag.lo), math.log(mag.hi))))
    else:
        w = np.ones(len(mag.values)) if mag.weights is None else np.asarray(mag.weights, float)
        x = float(mag.values[int(rng.choice(len(mag.values), p=w / w.sum()))])
    if mag.signed and rng.random() < 0.5:
        x = -x
    return x


def inject(
    kind: str, analog: ChipAnalog, device: Device, link: _Link, rng: np.random.Generator,
    magnitude: float, n_windows: int,
) -> Injection:
    """Apply one fault of ``kind`` with ``magnitude`` (unit per kind, docs/sweep.md).

    Channel/pin/word choices come from ``rng``. ``n_windows``: SPI windows of a healthy cycle
    (the transient-corruption target is uniform over them).
    """
    f = analog.faults
    n = analog.n_channels
    inj = Injection(kind, magnitude)
    if kind == "none":
        pass
    elif kind == "dead_chip":
        # the chip takes part in no window any more (no reply, no command executed)
        def _dead(t_s: float, _d: Device = device) -> bool:
            _d.advance_to(t_s)
            return False

        device.window_start = _dead  # type: ignore[method-assign]
        inj.always_dangerous = True
    elif kind == "no_comm":
        link.mode = ("miso_high", "miso_low", "mosi_open")[int(rng.integers(3))]
        inj.always_dangerous = True
    elif kind == "spi_bit_errors":
        link.mode = "corrupt"
        link.target = int(rng.integers(n_windows))
        link.flip_mosi = bool(rng.random() < 0.5)
        link.bit_positions = [float(u) for u in rng.random(max(1, round(magnitude)))]
    elif kind == "stuck_output":
        # the C result of one channel is stuck at ``magnitude`` volts whatever the input
        inj.channel = ch = int(rng.integers(n))
        f.c_gain_ppm[ch] = -1e6
        f.c_offset_uV[ch] = magnitude * 1e6
    elif kind == "mux_stuck":
        inj.channel = int(rng.integers(n))
        f.mux_stuck_channel = inj.channel
    elif kind == "ref_drift_shared":
        f.ref_shift_ppm = magnitude
    elif kind == "ref_drift_s":
        f.s_ref_shift_ppm = magnitude
    elif kind in ("c_gain_drift", "s_gain_drift", "c_offset_drift"):
        inj.channel = ch = int(rng.integers(n))
        arr = {"c_gain_drift": f.c_gain_ppm, "s_gain_drift": f.s_gain_ppm,
               "c_offset_drift": f.c_offset_uV}[kind]
        arr[ch] = magnitude
    elif kind == "open_wire":
        inj.channel = int(rng.integers(n + 1))
        f.open_pins.add(inj.channel)
    elif kind == "trim_bit_flips":
        # ``magnitude`` bits of one word: a multi-bit upset hits neighbouring cells of one
        # word (the hard case for SECDED; single flips in different words are each corrected)
        k = min(TRIM_BITS, max(1, round(abs(magnitude))))
        word = int(rng.integers(TRIM_WORDS))
        bits = rng.choice(TRIM_BITS, size=k, replace=False)
        f.trim_bit_flips.extend((word, int(b)) for b in bits)
    elif kind == "supply":
        # one rail moved by ``magnitude`` (fraction of nominal, signed)
        if rng.random() < 0.5:
            f.va_V = VA_NOM_V * (1.0 + magnitude)
        else:
            f.vd_V = VD_NOM_V * (1.0 + magnitude)
        inj.always_dangerous = True
    elif kind == "oscillator":
        f.osc_fault = True
        inj.always_dangerous = True
    elif kind == "die_heat":
        f.die_heat_W = magnitude
    elif kind == "comparator_silent":
        device.inject["comp_silent"] = True
    else:  # pragma: no cover - the config's Literal lists the kinds
        raise ValueError(f"unknown fault kind {kind!r}")
    return inj


@dataclass
class CycleResult:
    """What one reference-master cycle saw."""

    cells_V: NDArray[np.float64]  # (n_devices, 16); NaN where no valid reading
    diag_mask: int  # DIAGNOSTICS bits that flagged


def reference_master_cycle(
    host: HostDriver, budget: BudgetConfig, diagnostics: tuple[str, ...]
) -> CycleResult:
    """One diagnostic cycle of the reference host master (emulated time ~60 ms).

    1. WRCFGA (REFON, CTH), WRCFGB (VUV/VOV = the plausibility window);
    2. open-wire check (three ADSV single shots with the OW currents) if enabled;
    3. ADCV continuous with RD=1 for :data:`RD_RUN_S`: the C-vs-S comparison runs;
    4. read the C results (RDCVA..F), STATC (flags, CSxFLT), STATD (cell OV/UV);
    5. ADAX CH=11 (VREF2), read STATA.

    Protocol errors are caught per step (the master goes on; the data of that step is lost).
    """
    mask = 0
    n = host.n_devices
    cells = np.full((n, 16), np.nan)

    def step(fn: Callable[[], Any]) -> Any:
        nonlocal mask
        try:
            return fn()
        except PecError:
            mask |= _BIT["pec"]
        except CommandCounterError:  # pragma: no cover - the driver is set not to raise
            mask |= _BIT["command_counter"]
        except ProtocolError:  # pragma: no cover
            mask |= _BIT["pec"]
        return None

    lo_V, hi_V = budget.plausible_cell_V
    vuv = round((lo_V - 1.5) / CELL_LSB_V / 16) & 0xFFF
    vov = round((hi_V - 1.5) / CELL_LSB_V / 16) & 0xFFF
    step(lambda: host.write_config_a({"REFON": 1, "CTH": budget.cth}))
    step(lambda: host.write_config_b({"VUV": vuv, "VOV": vov}))
    if "open_wire" in diagnostics:
        ow = step(lambda: open_wire_check(host, threshold_V=budget.open_wire_threshold_V))
        if ow is not None and any(ow):
            mask |= _BIT["open_wire"]
    else:
        host.wait(0.005)  # REFUP
    step(lambda: host.start_cell_conversion(cont=True, rd=True))
    host.wait(RD_RUN_S)
    got = step(lambda: host.read_cells("C"))
    if got is not None:
        cells = got
    st = step(lambda: host.read_status("CD"))
    if st is not None:
        for s in st:
            if s["CSFLT"]:
                mask |= _BIT["cs_compare"]
            if any(s[k] for k in _FAULT_FLAGS):
                mask |= _BIT["status_flags"]
            if any(s[k] for k in _CELL_OVUV):
                mask |= _BIT["cell_plausibility"]
    step(lambda: host.command("ADAX", CH=ADAX_VREF2))
    host.wait(AUX_WAIT_S)
    sa = step(lambda: host.read_status("A"))
    if sa is not None:
        lo, hi = budget.vref2_window_V
        for s in sa:
            v = 1.5 + s["VREF2"] * CELL_LSB_V
            if not lo <= v <= hi:
                mask |= _BIT["vref2_window"]
    if "supply_window" in diagnostics:
        for ch in (ADAX_VD, ADAX_VA):
            step(functools.partial(host.command, "ADAX", CH=ch))
            host.wait(AUX_WAIT_S)
        sb = step(lambda: host.read_status("B"))
        if sb is not None:
            w = budget.supply_window_fraction
            for s in sb:
                for key, nom in (("VA", VA_NOM_V), ("VD", VD_NOM_V)):
                    if abs((1.5 + s[key] * CELL_LSB_V) / nom - 1.0) > w:
                        mask |= _BIT["supply_window"]
    if got is not None and np.isnan(got).any():
        mask |= _BIT["cell_plausibility"]  # cleared / power-on code where a result should be
    if any(host.counter_faults):
        mask |= _BIT["command_counter"]
    return CycleResult(cells, mask)


def latent_fault_test(host: HostDriver) -> bool:
    """Latent-fault test of the status-flag path (True: the path is found faulty).

    Forces THSD through the FLAG_D bits of CFGA, reads STATC, releases and clears it (the
    ADBMS6830 force bits exist for exactly this). It tests the flag path, not the C-vs-S
    comparator: the emulated device offers no way to force a comparison mismatch (an S
    conversion with open-wire currents on skips the comparison), so a silent comparator stays
    latent; docs/sweep.md says what would find it.
    """
    host.write_config_a({"REFON": 1, "FLAG_D": 0x10})
    st = host.read_status("C")
    ok = all(s["THSD"] for s in st)
    host.write_config_a({"REFON": 1, "FLAG_D": 0})
    host.clear_flags({"THSD": 1})
    return not ok


# ---- populations and emulators ------------------------------------------------------------

_POP_CACHE: dict[tuple[str, int, int, str | None], ChipPopulation] = {}


def _population(spec: ChipSpec, design: str, n: int, seed: int, strategy: str | None
                ) -> ChipPopulation:
    key = (f"{design}:{spec.name}", n, seed, strategy)
    pop = _POP_CACHE.get(key)
    if pop is None:
        if len(_POP_CACHE) > 16:
            _POP_CACHE.clear()
        pop = _POP_CACHE[key] = make_population(spec, n, seed, strategy)
    return pop


def _chip(pop: ChipPopulation, idx: int, pack: PackConfig, module_seed: int, seed: int,
          temp_C: float) -> tuple[ChipAnalog, Device, DaisyChain, VirtualPackSource]:
    src = VirtualPackSource.from_config(pack, None, seed=module_seed)
    analog = ChipAnalog(pop, idx, src, seed=seed, temp_ambient_C=temp_C)
    dev = Device(analog, sid=0x4000 + idx)
    return analog, dev, DaisyChain([dev]), src


@dataclass(frozen=True)
class CampaignTask:
    """A range of injections of one (design, mode) (picklable, Dask-ready)."""

    design_index: int
    mode_index: int
    lo: int
    hi: int
    design: DesignConfig
    mode: FailureModeConfig
    spec: ChipSpec
    pack: PackConfig
    budget: BudgetConfig
    seed: int

    @property
    def key(self) -> str:
        """Stable chunk name (checkpoint file stem); also names the chunk's streams."""
        return f"b{self.design_index:02d}_m{self.mode_index:02d}_i{self.lo:07d}-{self.hi:07d}"

    @property
    def n(self) -> int:
        return self.hi - self.lo


def run_injection(
    *, spec: ChipSpec, pack: PackConfig, budget: BudgetConfig, design: DesignConfig,
    mode: FailureModeConfig, seed: int, index: int,
    magnitude: float | None = None,
    hook: Callable[[ChipAnalog, Device], None] | None = None,
) -> dict[str, Any]:
    """Injection ``index`` of (design, mode): build, inject, run the cycle, classify.

    ``magnitude`` overrides the drawn magnitude (directed tests); ``hook`` may adjust the chip
    after the injection (directed tests). Returns ``detected``, ``dangerous``,
    ``diag_mask``, ``err_V`` (largest |reading - true cell voltage|, NaN without a reading),
    ``magnitude``, ``injection``.
    """
    # the stream names the mode and the index, not the design: every design sees the same
    # injections (paired comparison, like the accuracy sweep's shared wafer seeds)
    rng = RandomStreams(seed).generator(f"budget.{mode.name}.{index}")
    pop = _population(spec, design.name, budget.pool_devices, seed, design.strategy)
    idx = int(rng.integers(budget.pool_devices))
    module_seed = pack.seed + int(rng.integers(budget.chips_per_pack))
    temp_C = float(rng.uniform(*budget.temp_ambient_C))
    mag = _draw(mode.magnitude, rng) if magnitude is None else float(magnitude)
    chip_seed = int(rng.integers(2**31))
    analog, dev, chain, src = _chip(pop, idx, pack, module_seed, chip_seed, temp_C)
    link = _Link(chain)
    inj = inject(mode.kind, analog, dev, link, rng, mag,
                 _healthy_windows(budget, design, pop, pack))
    if hook is not None:
        hook(analog, dev)
    host = HostDriver(link.transfer, 1, raise_on_counter_mismatch=False, delay=chain.delay)
    diags = tuple(design.diagnostics)
    res = reference_master_cycle(host, budget, diags)
    mask = res.diag_mask
    true_V = src.pack.cell_voltage_V()
    err = float(np.nanmax(np.abs(res.cells_V[0] - true_V))) if np.isfinite(
        res.cells_V[0]).any() else math.nan
    if "redundant_chip" in diags:
        # a second chip of the population, on its own chain, measuring the same module
        # (a module of the same seed and load is the same cells: the pack model is deterministic)
        idx2 = (idx + 1 + int(rng.integers(budget.pool_devices - 1))) % budget.pool_devices
        _a2, _d2, chain2, _src2 = _chip(pop, idx2, pack, module_seed, chip_seed + 1, temp_C)
        host2 = HostDriver(chain2.transfer, 1, raise_on_counter_mismatch=False,
                           delay=chain2.delay)
        host2.write_config_a({"REFON": 1})
        host2.wait(0.005)
        host2.start_cell_conversion()
        host2.wait(0.002)
        ref = host2.read_cells("C")[0]
        d = np.abs(res.cells_V[0] - ref)
        if not np.isfinite(d).all() or np.nanmax(d) > 1e-3 * budget.redundant_threshold_mV:
            mask |= _BIT["redundant_chip"]
    if "latent_test" in diags:
        try:
            if latent_fault_test(host):
                mask |= _BIT["latent_test"]
        except ProtocolError:
            mask |= _BIT["pec"]
    enabled = sum(_BIT[d] for d in diags)
    mask &= enabled
    detected = mask != 0
    dangerous = bool(
        inj.always_dangerous or mode.danger == "always"
        or (math.isfinite(err) and err > 1e-3 * budget.dangerous_error_mV)
    )
    return {"detected": detected, "dangerous": dangerous, "diag_mask": mask, "err_V": err,
            "magnitude": inj.magnitude, "injection": inj}


_WINDOWS: dict[tuple[Any, ...], int] = {}


def _healthy_windows(budget: BudgetConfig, design: DesignConfig, pop: ChipPopulation,
                     pack: PackConfig) -> int:
    """SPI windows of one healthy cycle (the transient-corruption target is uniform over them).

    Counted once per process on a healthy chip of the population (the cycle's structure does
    not depend on the data, so every process counts the same).
    """
    key = (tuple(design.diagnostics), budget.cth)
    n = _WINDOWS.get(key)
    if n is None:
        _a, _d, chain, _s = _chip(pop, 0, pack, pack.seed, 0, 25.0)
        link = _Link(chain)
        host = HostDriver(link.transfer, 1, raise_on_counter_mismatch=False, delay=chain.delay)
        reference_master_cycle(host, budget, key[0])
        if "latent_test" in key[0]:
            latent_fault_test(host)
        n = _WINDOWS[key] = link.count
    return n


def run_campaign_chunk(task: CampaignTask) -> dict[str, NDArray[Any]]:
    """Injections ``lo..hi-1`` of one (design, mode). Pure function of the task.

    Returns
    -------
    dict of arrays, each shape (n,)
        ``detected`` and ``dangerous`` (int8), ``diag_mask`` (int64), ``err_uV`` (int64,
        rounded; -1 = no reading), ``magnitude`` (float64).
    """
    n = task.n
    out: dict[str, NDArray[Any]] = {
        "detected": np.zeros(n, np.int8),
        "dangerous": np.zeros(n, np.int8),
        "diag_mask": np.zeros(n, np.int64),
        "err_uV": np.zeros(n, np.int64),
        "magnitude": np.zeros(n),
    }
    for j, i in enumerate(range(task.lo, task.hi)):
        r = run_injection(spec=task.spec, pack=task.pack, budget=task.budget,
                          design=task.design, mode=task.mode, seed=task.seed, index=i)
        out["detected"][j] = r["detected"]
        out["dangerous"][j] = r["dangerous"]
        out["diag_mask"][j] = r["diag_mask"]
        out["err_uV"][j] = -1 if math.isnan(r["err_V"]) else round(r["err_V"] * 1e6)
        out["magnitude"][j] = r["magnitude"]
    return out


def campaign_tasks(
    budget: BudgetConfig, designs: list[tuple[DesignConfig, ChipSpec]], pack: PackConfig,
    seed: int, chunk: int | None = None,
) -> list[CampaignTask]:
    """All chunks of all (design, mode) campaigns, ``chunk`` injections each."""
    per = chunk or budget.chunk_injections
    tasks = []
    for di, (design, spec) in enumerate(designs):
        for mi, mode in enumerate(budget.modes):
            for lo in range(0, budget.injections, per):
                tasks.append(CampaignTask(di, mi, lo, min(lo + per, budget.injections), design,
                                          mode, spec, pack, budget, seed))
    return tasks
