"""Stimulus, golden expectations and the cocotb driver of ``rtl_models/afe_datapath.sv``.

Shared by the datapath bench (``test_afe_datapath.py``) and the fault-injection campaign
(``fault_campaign.py``), so both run the same workload and the campaign's fault-free run is
checked against the same golden model.

Workload (one run), in clocks:

1. reset (2), trim load through the write port (10 code words), one ``start`` clock;
2. ``n_s_windows`` S periods of modulator bits on every channel and both paths at once (one
   bit per clock, C and S aligned: R_S = N_AVG R_C), then 4 flush clocks;
3. the C result registers are read after every C period, the S result registers after every S
   period, the sticky flags at the end.

Golden model (all from bms_emu): bits from :func:`bms_emu.afe.deltasigma.modulate`;
:class:`~bms_emu.afe.sinc3.Sinc3Decimator`, ``raw_code_from_sinc3``, ``trim.correct_code``,
``cell_code_from_raw`` per path with the codes of :func:`~bms_emu.afe.trim.read_trim_image` on
each half of the image; C-vs-S with ``c_average_codes`` / ``cs_mismatch_mask`` on every S
result with at least ``S_SETTLE`` S results before it; ECC flags from
:func:`bms_emu.afe.ecc.decode`.

Small R (R_C = 16, R_S = 128 in the benches) keeps runs short: a C result then has a coarse
resolution (one sinc3 step is 29 cell codes) but the arithmetic is the chip's, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bms_emu.afe import ecc
from bms_emu.afe.adc_params import (
    V_REF_NOM_V,
    cell_code_from_raw,
    modulator_input_V,
    raw_code_from_sinc3,
)
from bms_emu.afe.deltasigma import ModulatorState, modulate
from bms_emu.afe.sinc3 import Sinc3Decimator
from bms_emu.afe.trim import (
    IMAGE_WORDS,
    TrimCodes,
    TrimScheme,
    correct_code,
    pack_trim_image,
    read_trim_image,
)
from bms_emu.device.device import c_average_codes, cs_mismatch_mask

N_AVG = 8                  # C results per S result (cs_compare N_AVG; R_S = N_AVG R_C)
S_SETTLE = 2               # sinc3 outputs 0 and 1 after a start are partial (afe_datapath)
CODE_BITS = 16
SIGMA_NOISE_V = 100e-6     # assumption: input-referred thermal noise per modulator sample;
#                            it dithers the loop (a noiseless MOD2 idle-tones on DC)
RESET_CLOCKS = 2
FLUSH_CLOCKS = 6           # the last result is read 3 clocks after its last bit, the
#                            flags of its compare 4 clocks after


@dataclass(frozen=True)
class Stimulus:
    """One workload: the trim image, the modulator bits and the configuration.

    Attributes
    ----------
    r_c : C decimation ratio (R_S = N_AVG r_c).
    image : (2 * IMAGE_WORDS,) uint32 code words as stored (words 0-4 C path, 5-9 S path).
    die_temp : die-temperature code (s16, 2^-4 C).
    cth : CFGA CTH setting 0..7.
    c_bits, s_bits : (n_bits, n_ch) int8 0/1 modulator bits of the C and S paths.
    """

    r_c: int
    image: NDArray[np.uint32]
    die_temp: int
    cth: int
    c_bits: NDArray[np.int8]
    s_bits: NDArray[np.int8]

    @property
    def n_ch(self) -> int:
        return int(self.c_bits.shape[1])

    @property
    def n_bits(self) -> int:
        return int(self.c_bits.shape[0])

    @property
    def r_s(self) -> int:
        return self.r_c * N_AVG

    @property
    def n_clocks(self) -> int:
        """Clocks of one run (reset, load, start, bits, flush)."""
        return RESET_CLOCKS + self.image.size + 1 + self.n_bits + FLUSH_CLOCKS


@dataclass
class Trace:
    """What a run shows at the outputs (the fault-free run's is the campaign's reference).

    ``c`` / ``s``: one tuple of per-channel codes per C / S period; flags at the end.
    """

    c: list[tuple[int, ...]] = field(default_factory=list)
    s: list[tuple[int, ...]] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    stopped_at: int | None = None      # clock of an early stop (a flag fired), else None


def trim_image(c_codes: TrimCodes, s_codes: TrimCodes, flips: tuple[tuple[int, int], ...] = ()
               ) -> NDArray[np.uint32]:
    """(10,) image of one device as ``chip_analog`` stores it, with ``(word, bit)`` flips."""
    valid = np.array([True])
    image = np.concatenate([pack_trim_image(c, TrimScheme.TWO_TEMP, valid)[0]
                            for c in (c_codes, s_codes)]).astype(np.uint32)
    for word, bit in flips:
        image[word] ^= np.uint32(1 << bit)
    return image


def make_stimulus(*, r_c: int, v_cell_V: NDArray[np.float64], s_delta_V: NDArray[np.float64],
                  c_codes: TrimCodes, s_codes: TrimCodes, die_temp: int, cth: int,
                  n_s_windows: int, seed: int, flips: tuple[tuple[int, int], ...] = (),
                  c_delta_V: NDArray[np.float64] | None = None) -> Stimulus:
    """DC cell voltages ``(n_ch,)`` on both paths: the C path sees ``v_cell + c_delta`` (an
    analog C-path error; default none), the S path ``v_cell + s_delta``."""
    n_bits = n_s_windows * r_c * N_AVG
    rng = np.random.default_rng(seed)
    bits = []
    c_v = v_cell_V if c_delta_V is None else v_cell_V + c_delta_V
    for v in (c_v, v_cell_V + s_delta_V):
        mod = ModulatorState.new(v.size, rng)
        b = modulate(np.broadcast_to(modulator_input_V(v), (n_bits, v.size)), V_REF_NOM_V,
                     mod, sigma_noise_V=SIGMA_NOISE_V)
        bits.append((b > 0).astype(np.int8))
    return Stimulus(r_c, trim_image(c_codes, s_codes, flips), die_temp, cth, bits[0], bits[1])


def _path_codes(bits01: NDArray[np.int8], R: int, codes: TrimCodes, die_temp: int
                ) -> NDArray[np.int64]:
    d = Sinc3Decimator(R, bits01.shape[1]).process(2 * bits01.astype(np.int64) - 1)
    raw = raw_code_from_sinc3(d, R)
    corr = correct_code(raw, codes.gain[0], codes.tempco[0], codes.offset[0], die_temp,
                        codes.board[0])
    return cell_code_from_raw(corr)


def expected(stim: Stimulus) -> Trace:
    """The golden model's trace of a fault-free run of ``stim``."""
    half = IMAGE_WORDS
    c_tc, _, _, _ = read_trim_image(stim.image[None, :half])
    s_tc, _, _, _ = read_trim_image(stim.image[None, half:])
    c = _path_codes(stim.c_bits, stim.r_c, c_tc, stim.die_temp)
    s = _path_codes(stim.s_bits, stim.r_s, s_tc, stim.die_temp)
    csflt = 0
    for k in range(S_SETTLE, s.shape[0]):
        ring = list(c[N_AVG * k: N_AVG * (k + 1)])   # C outputs 8k..8k+7 end with S output k
        csflt |= cs_mismatch_mask(s[k], c_average_codes(ring), stim.cth)
    _, status, _ = ecc.decode(stim.image)
    flags = {"csflt": csflt,
             "ecc_corr_flt": int(np.any(status == ecc.EccStatus.CORRECTED)),
             "ecc_unc_flt": int(np.any(status == ecc.EccStatus.UNCORRECTABLE)),
             "dup_flt": 0, "par_flt": 0}
    return Trace([tuple(map(int, r)) for r in c], [tuple(map(int, r)) for r in s], flags)


def _pack(bits: NDArray[np.int8]) -> list[int]:
    """(n_bits, n_ch) 0/1 -> one integer per clock (channel i at bit i)."""
    w = 1 << np.arange(bits.shape[1], dtype=np.int64)
    return (bits.astype(np.int64) @ w).tolist()


def _u(value: Any) -> int:
    """A handle's value as an unsigned int (a 1-bit port gives a Logic, wider a LogicArray)."""
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


def _unpack(word: int, n_ch: int) -> tuple[int, ...]:
    out = []
    for i in range(n_ch):
        v = (word >> (i * CODE_BITS)) & 0xFFFF
        out.append(v - 0x10000 if v & 0x8000 else v)
    return tuple(out)


FLAG_PORTS = ("csflt", "ecc_corr_flt", "ecc_unc_flt", "dup_flt", "par_flt")

async def run(dut: Any, stim: Stimulus, period_ns: int = 10) -> Trace:
    """Drive one workload run on ``dut`` (clock already running) clock by clock; return its
    trace. Outputs are read a quarter period after each rising edge, when every register
    shows its new value (whatever the clock implementation's callback order)."""
    from cocotb.triggers import RisingEdge, Timer

    edge = RisingEdge(dut.clk)
    quarter = Timer(period_ns * 1000 // 4, unit="ps")

    async def tick(sample: Callable[[], None] | None = None) -> None:
        await edge
        await quarter
        if sample is not None:
            sample()

    dut.c_bit_valid.value = 0
    dut.s_bit_valid.value = 0
    dut.c_bits.value = 0
    dut.s_bits.value = 0
    dut.trim_wr_en.value = 0
    dut.start.value = 0
    dut.clr.value = 0
    dut.cth.value = stim.cth
    dut.die_temp.value = stim.die_temp & 0xFFFF
    dut.rst_n.value = 0
    await _reset_and_load_trim(dut, stim, tick)
    dut.start.value = 1
    await tick()
    dut.start.value = 0
    cw = _pack(stim.c_bits)
    sw = _pack(stim.s_bits)
    n, r_c, r_s, n_ch = stim.n_bits, stim.r_c, stim.r_s, stim.n_ch
    tr = Trace()
    m = 0

    def sample() -> None:
        last = m - 2  # the registers hold the result of the period ending with bit m - 2
        if 0 <= last < n and (last + 1) % r_c == 0:
            tr.c.append(_unpack(_u(dut.c_codes.value), n_ch))
            if (last + 1) % r_s == 0:
                tr.s.append(_unpack(_u(dut.s_codes.value), n_ch))

    dut.c_bit_valid.value = 1
    dut.s_bit_valid.value = 1
    for m in range(n + FLUSH_CLOCKS):
        if m < n:
            dut.c_bits.value = cw[m]
            dut.s_bits.value = sw[m]
        elif m == n:
            dut.c_bit_valid.value = 0
            dut.s_bit_valid.value = 0
        await tick(sample)
    tr.flags = {p: _u(getattr(dut, p).value) for p in FLAG_PORTS}
    return tr


def pattern(bits: NDArray[np.int8]) -> int:
    """(n_bits, n_ch) 0/1 -> the player's pattern word (bit m of channel i at m n_ch + i)."""
    flat = bits.astype(np.uint8).ravel()  # row-major: m * n_ch + i
    return int.from_bytes(np.packbits(flat, bitorder="little").tobytes(), "little")


async def _reset_and_load_trim(dut: Any, stim: Stimulus, tick: Callable[[], Any]) -> None:
    """Hold reset for RESET_CLOCKS (``rst_n`` already low), then write the trim image."""
    for _ in range(RESET_CLOCKS):
        await tick()
    dut.rst_n.value = 1
    dut.trim_wr_en.value = 1
    for addr, word in enumerate(stim.image.tolist()):
        dut.trim_wr_addr.value = addr
        dut.trim_wr_data.value = int(word)
        await tick()
    dut.trim_wr_en.value = 0


async def run_played(dut: Any, stim: Stimulus, upset: Callable[[], None] | None = None,
                     upset_clock: int | None = None, stop_on_flag: bool = False,
                     period_ns: int = 10) -> Trace:
    """The same workload as :func:`run` on ``tests/rtl/hdl/afe_datapath_player.sv``: the
    harness plays the bits (``pat_c``/``pat_s`` must hold ``pattern(stim.*_bits)``), and the
    testbench wakes only to read each result, apply ``upset`` after clock ``upset_clock`` (same
    clock numbering as :func:`run`) and read the flags, a quarter period after an edge, when
    every register shows its new value.
    """
    from cocotb.triggers import RisingEdge, Timer
    from cocotb.utils import get_sim_time

    edge = RisingEdge(dut.clk)
    q_ps = period_ns * 1000 // 4
    for p in ("trim_wr_en", "start", "play", "clr"):
        getattr(dut, p).value = 0
    dut.cth.value = stim.cth
    dut.die_temp.value = stim.die_temp & 0xFFFF
    dut.rst_n.value = 0
    k = 0

    async def tick() -> None:
        nonlocal k
        await edge
        if upset is not None and upset_clock == k:
            await Timer(q_ps, unit="ps")
            upset()
        k += 1

    await _reset_and_load_trim(dut, stim, tick)
    dut.start.value = 1
    dut.play.value = 1
    await tick()
    dut.start.value = 0
    dut.play.value = 0
    t_start_ps = get_sim_time("ps") - (q_ps if upset_clock == k - 1 else 0)
    n, r_c, r_s, n_ch = stim.n_bits, stim.r_c, stim.r_s, stim.n_ch
    # events by the index m of the edge after start (edge m samples bit m): results of the
    # period ending with bit b are in the registers after edge b + 2
    events: list[tuple[int, int]] = [((j + 1) * r_c - 1 + 2, 0) for j in range(n // r_c)]
    if upset is not None and upset_clock is not None and upset_clock >= k:
        events.append((upset_clock - k, 1))
    last = n + FLUSH_CLOCKS - 2
    events.append((last, 2))
    tr = Trace()
    period_ps = period_ns * 1000
    for m, what in sorted(events):
        wait = t_start_ps + (m + 1) * period_ps + q_ps - get_sim_time("ps")
        if wait > 0:
            await Timer(wait, unit="ps")
        if what == 1:
            upset()
        elif what == 0:
            tr.c.append(_unpack(_u(dut.c_codes.value), n_ch))
            if (m - 1) % r_s == 0:
                tr.s.append(_unpack(_u(dut.s_codes.value), n_ch))
            if stop_on_flag and _u(dut.any_flag.value):
                tr.stopped_at = m
                break
        else:
            break
    tr.flags = {p: _u(getattr(dut, p).value) for p in FLAG_PORTS}
    # back to a clock edge so the next run starts in step
    await edge
    return tr
