"""End-to-end co-simulation of ``rtl_models/afe_digital_top.sv`` (issue 7 items 1 and 6).

The Python :class:`bms_emu.host.HostDriver` talks to the RTL top over its SPI pins (mode 3,
SCK = clk / 8, ``spi_host.SpiHost``): it runs in a cocotb ``bridge`` thread, its ``transfer``
and ``delay`` are ``resume``-d coroutines, so its own PEC10 and command-counter checks run on
the RTL's replies. Every frame also goes to a one-device ``DaisyChain`` (the Python device
model, ideal analog): replies without conversion data (configuration, SID, STATE, writes,
actions) must equal the model's byte for byte; STATC's counter CT:CTS and flag bytes and the
command counter of every reply must equal the model's too.

The analog side is cycle mode: ``datapath_workload.make_stimulus`` (``bms_emu.afe.deltasigma
.modulate``, DC cell voltages, C and S bits from one modulator clock) drives ``c_bits`` /
``s_bits`` while the host waits for a conversion; the trim image goes in through the top's
trim-memory port. Every cell code read over SPI (C, S and AC, group reads A-F and the ALL
reads) must equal the golden chain on the same bits (``datapath_workload.expected``: sinc3 ->
raw -> trim -> code, ``c_average_codes``, ``cs_mismatch_mask``), cells N_CH+1..16 the pad code
0x8000; CSxFLT read over SPI must equal the golden mask.

Scenarios: single-shot ADCV RD=0 and RD=1 (clean: no CSxFLT), an S-bitstream offset on one
channel (exactly that CSxFLT bit), CLRFLAG clearing it; a C gain trim word changed on the C
path only (every channel flagged); a single-bit trim flip (results still exact, CED and SED
set as the model's trim_ecc_corrected monitor, not cleared while the error is in the memory,
cleared after the word is rewritten); a double flip in the C gain word (CMED, SMED; the C path
untrimmed, as the golden image decode says); an upset in channel 1's shadow C path (COMP set
and kept through CLRFLAG, results exact); AC sums exactly half-way with even and odd quotients
(the half-to-even rounding). Last, the SPI-core co-simulation's directed sequence
(``test_afe_spi_core.directed``: every command of the subset, malformed frames, counter wrap,
SNAP, FLAG_D forcing, aborted windows) replayed through the top, modulator bits played while
the host waits: every reply without conversion data equals the model's byte for byte; data
replies keep the model's command counter, STATC flag bytes and a valid PEC10 (a corrupted one
for RDSTATC ERR=1); the same for its seeded random command sequence.

Small sizes keep the run short: N_CH = 4 (cells 5..16 padded; ``BMS_EMU_TOP_N_CH=16`` runs the
chip's 16), R_C = 16, R_S = 128 (a C result has a coarse resolution then, but the arithmetic
is the chip's bit for bit).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from datapath_workload import N_AVG, Stimulus, TrimCodes, expected, make_stimulus
from test_afe_spi_core import REV, SID, Recorder, directed, random_sequence

from bms_emu.device import DaisyChain, Device, IdealAnalog
from bms_emu.device.device import c_average_codes, cs_mismatch_mask
from bms_emu.host import HostDriver
from bms_emu.protocol.frames import CMD_LEN, split_read_reply
from bms_emu.protocol.opcodes import COMMANDS, READ, decode_opcode
from bms_emu.protocol.pec import check_pec15
from bms_emu.protocol.registers import LAYOUTS

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.task import bridge, resume
    from cocotb.triggers import Timer
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None

#: 4 channels in CI; BMS_EMU_TOP_N_CH=16 runs the chip's size (measured here: Verilator build
#: ~75 s + simulation ~41 s, ~130 s in all: too long for CI)
N_CH = int(os.environ.get("BMS_EMU_TOP_N_CH", "4"))
R_C = 16
CLK_NS = 10
PAD = -32768  # 0x8000, the code of cells N_CH+1..16 (afe_digital_top PAD_CODE)
CONV_WAIT_S = 15e-3  # model: REFUP 4.5 ms + 8 C / 1 S conversion 8 ms (docs/protocol.md)
C_SETTLE, S_SETTLE = 2, 2  # afe_digital_top: partial sinc3 outputs after a start
MAX_TAIL_CLKS = 16  # deadline: clocks after the stimulus' last bit for the last result
PARAMS = {"N_CH": N_CH, "R_C": R_C, "SID": f"48'h{SID:012X}", "REV": f"4'h{REV:X}"}
#: one C++ file (the wheel's PCH build bug on split models, rtl_models/README.md); -O1: the
#: SPI windows run ~10^5 clocks, optimised C++ pays back its build time
BUILD_ARGS = ["--output-split", "0", "-CFLAGS", "-O1"]

DIE_TEMP = 560  # die-temperature code (2^-4 C: 35 C)
#: LFP range; more than 4 channels repeat the 4 voltages 10 mV higher per repeat
V_CELL_V = np.resize([3.3, 2.9, 3.65, 2.5], N_CH) + 0.01 * (np.arange(N_CH) // 4)
#: gain, tempco, offset, board; C offset 31 with seed 4 gives AC sums exactly between two codes
#: (sum % 8 == 4) with an even and an odd quotient: the half-to-even rounding is exercised
C_TRIM = TrimCodes(*(np.array([x]) for x in (310, -40, 31, -25)))
S_TRIM = TrimCodes(*(np.array([x]) for x in (290, -35, -8, 20)))
GAIN_WORD_C = 1  # trim image word of the C gain code (bms_emu.afe.trim.pack_trim_image)
RESULT_READS = {p + g for p in ("RDCV", "RDSV", "RDAC") for g in (*"ABCDEF", "ALL")}
DATA_READS = RESULT_READS | {"RDSTATC", "RDSTATD"}  # replies carrying conversion data
_STATC = {f.name: f for f in LAYOUTS["STATC"].fields}


def _cmd_name(mosi: bytes) -> str | None:
    dec = decode_opcode((mosi[0] << 8) | mosi[1]) if len(mosi) >= 4 else None
    return None if dec is None else dec[0].name


@dataclass
class Golden:
    """What the golden chain says the registers hold after the last conversion."""

    cv: list[int] = field(default_factory=lambda: [0x7FFF] * 16)
    sv: list[int] = field(default_factory=lambda: [0x7FFF] * 16)
    ac: list[int] = field(default_factory=lambda: [0x7FFF] * 16)
    csflt: int = 0


def _pad(codes) -> list[int]:
    return [int(c) for c in codes] + [PAD] * (16 - N_CH)


class Rig:
    """The RTL top behind a HostDriver, the Python device model beside it.

    Runs in a cocotb bridge thread: ``transfer`` / ``delay`` block on resumed coroutines.
    """

    def __init__(self, dut, host) -> None:
        self.dut, self.host = dut, host
        self.analog = IdealAnalog(lambda t: np.full(16, 3.3))
        self.dev = Device(self.analog, sid=SID, rev=REV)
        self.chain = DaisyChain([self.dev])
        self.drv = HostDriver(self.transfer, 1, delay=self.delay)
        self.stim: Stimulus | None = None
        self.upset: tuple[int, Callable[[], None]] | None = None  # (bit index, action)
        self.extra_flags = 0  # STATC byte 4-5 bits the RTL sets beyond the model's
        self.gold = Golden()
        self.ties: set[int] = set()  # parities of AC sums exactly half-way (sum % 8 == 4)
        self.same_bytes = 0  # windows compared byte for byte with the model
        self.results_read = 0

    # -- transport ---------------------------------------------------------------------
    def transfer(self, mosi: bytes) -> bytes:
        model = self.chain.transfer(mosi)
        rtl = resume(self.host.transfer)(mosi)
        name = _cmd_name(mosi)
        where = f"{name} {mosi.hex()}: RTL {rtl.hex()}, model {model.hex()}"
        spec = COMMANDS.get(name) if name else None
        if spec is not None and spec.kind == READ and (name in RESULT_READS
                                                         or name == "RDSTATC"):
            r, m = (split_read_reply(x, 1, spec.data_len)[0] for x in (rtl, model))
            assert r.command_counter == m.command_counter, where
            if name == "RDSTATC":  # CT:CTS and the flags as the model; CSxFLT: golden
                assert r.data[2:4] == m.data[2:4], where
                flags = int.from_bytes(m.data[4:6], "little") | self.extra_flags
                assert int.from_bytes(r.data[4:6], "little") == flags, where
            self.results_read += 1
        else:
            assert rtl == model, where
            self.same_bytes += 1
        assert int(self.dut.cc.value) == self.dev.command_counter, where
        return rtl

    def delay(self, dt_s: float) -> None:
        self.chain.delay(dt_s)
        resume(self._feed)()

    async def _feed(self) -> None:
        """Play the pending stimulus until the conversion job is done (deadline: its bits
        plus MAX_TAIL_CLKS)."""
        d = self.dut
        stim, self.stim = self.stim, None
        upset, self.upset = self.upset, None
        if stim is None:
            await Timer(8 * CLK_NS, unit="ns")
            return
        cw = _words(stim.c_bits)
        sw = _words(stim.s_bits)
        d.mod_valid.value = 1
        for m in range(stim.n_bits + MAX_TAIL_CLKS):
            if not (int(d.c_busy.value) or int(d.s_busy.value)):
                break
            if m == stim.n_bits:
                d.mod_valid.value = 0
            elif m < stim.n_bits:
                d.c_bits.value = cw[m]
                d.s_bits.value = sw[m]
            if upset is not None and upset[0] == m:
                upset[1]()
            await Timer(CLK_NS, unit="ns")
        else:
            raise AssertionError(f"conversion not done {MAX_TAIL_CLKS} clocks after the bits")
        d.mod_valid.value = 0

    async def _write_trim(self, image: np.ndarray, words: range | list[int]) -> None:
        d = self.dut
        d.trim_wr_en.value = 1
        for w in words:
            d.trim_wr_addr.value = w
            d.trim_wr_data.value = int(image[w])
            await Timer(CLK_NS, unit="ns")
        d.trim_wr_en.value = 0

    def write_trim(self, image: np.ndarray, words: range | list[int] | None = None) -> None:
        resume(self._write_trim)(image, range(image.size) if words is None else words)

    # -- host procedures -----------------------------------------------------------------
    def convert(self, stim: Stimulus, rd: bool, cont: bool = False) -> None:
        """ADCV with ``stim`` as the analog input; wait; the golden registers after it."""
        self.stim = stim
        self.drv.start_cell_conversion(rd=rd, cont=cont)
        self.drv.wait(CONV_WAIT_S)
        tr = expected(stim)
        if not rd:
            self.gold.cv = _pad(tr.c[C_SETTLE])
            return
        first = N_AVG * S_SETTLE  # the 8 C results compared with S result S_SETTLE
        ring = [np.array(r) for r in tr.c[first:first + N_AVG]]
        self.gold.cv = _pad(tr.c[first + N_AVG - 1])
        self.gold.sv = _pad(tr.s[S_SETTLE])
        avg = c_average_codes(ring)
        sums = np.sum(ring, axis=0)
        self.ties |= {int(x >> 3) & 1 for x in sums if x % N_AVG == N_AVG // 2}
        self.gold.ac = _pad(avg)
        mask = cs_mismatch_mask(np.array(tr.s[S_SETTLE]), avg, stim.cth)
        assert mask == tr.flags["csflt"]  # the two golden views agree
        self.gold.csflt |= mask

    def check_results(self, kinds: str = "CSA") -> None:
        """Every result group (A-F and ALL) of ``kinds`` equals the golden registers."""
        for kind, want in (("C", self.gold.cv), ("S", self.gold.sv), ("A", self.gold.ac)):
            if kind not in kinds:
                continue
            for use_all in (False, True):
                got = self.drv.read_cell_codes(kind, use_all=use_all)[0].tolist()
                assert got == want, f"{kind} (ALL {use_all}): RTL {got}, golden {want}"

    def statc(self) -> dict[str, int]:
        st = self.drv.read_status("C")[0]
        assert st["CSFLT"] == self.gold.csflt, f"CSxFLT {st['CSFLT']:#x}, {self.gold.csflt:#x}"
        return st

    def clear_csflt(self, mask: int) -> None:
        self.drv.clear_flags({"CSFLT": mask})
        self.gold.csflt &= ~mask


def _words(bits: np.ndarray) -> list[int]:
    """(n_bits, n_ch) 0/1 -> one integer per clock, channel i at bit i."""
    return (bits.astype(np.int64) @ (1 << np.arange(bits.shape[1], dtype=np.int64))).tolist()


def _stim(seed: int, cth: int, s_delta_V=None, c_trim=C_TRIM, flips=()) -> Stimulus:
    return make_stimulus(r_c=R_C, v_cell_V=V_CELL_V,
                         s_delta_V=np.zeros(N_CH) if s_delta_V is None else s_delta_V,
                         c_codes=c_trim, s_codes=S_TRIM, die_temp=DIE_TEMP, cth=cth,
                         n_s_windows=S_SETTLE + 1, seed=seed, flips=flips)


# ---- scenarios (blocking: run in the bridge thread) ---------------------------------------


def results_and_csflt(rig: Rig) -> None:
    """Config, single shots RD=0 / RD=1, an S offset on one channel, CLRFLAG."""
    drv, cth = rig.drv, 1
    clean = _stim(1, cth)
    rig.write_trim(clean.image)
    drv.wakeup()
    drv.read_sid()
    drv.read_config_a()
    drv.read_config_b()
    drv.read_status("CE")
    drv.write_config_a({"CTH": cth, "REFON": 1, "GPO": 0x2A5})
    drv.write_config_b({"DCC": 0x0005, "DCTO": 3})
    drv.read_config_a()
    drv.read_config_b()
    drv.read_status("E")
    rig.convert(clean, rd=False)
    rig.check_results("C")
    st = rig.statc()
    assert (st["CT"] << 2 | st["CTS"]) == 1, st  # one C result
    rig.convert(_stim(4, cth), rd=True)
    assert rig.ties == {0, 1}, f"AC ties seen: {rig.ties} (the stimulus no longer has both)"
    assert rig.gold.csflt == 0, "the clean stimulus must not flag (else the test proves less)"
    rig.check_results()
    rig.statc()
    s_delta = np.zeros(N_CH)
    s_delta[2] = 0.012  # 80 codes: above CTH 1 (54 codes), only channel 2
    rig.convert(_stim(3, cth, s_delta_V=s_delta), rd=True)
    assert rig.gold.csflt == 1 << 2, f"golden mask {rig.gold.csflt:#x}"
    rig.check_results()
    rig.statc()
    rig.clear_csflt(1 << 2)
    rig.statc()
    st = rig.statc()
    assert (st["CT"] << 2 | st["CTS"]) == 17  # 1 + 8 + 8 C results published


def trim_faults(rig: Rig) -> None:
    """C-only gain trim change; ECC single flip (corrected, flagged); double flip."""
    drv, cth = rig.drv, 1  # CTH 1: the clean C and S trims stay below it (CTH 0 does not)
    clean = _stim(11, cth)
    rig.write_trim(clean.image)
    drv.wakeup()
    drv.write_config_a({"CTH": cth, "REFON": 1})
    # the C path's gain trim word changed (a C-only fault): every channel mismatches S
    c_bad = TrimCodes(*(np.array([x]) for x in (310 + 4000, -40, 31, -25)))
    bad = _stim(12, cth, c_trim=c_bad)
    rig.write_trim(bad.image, [GAIN_WORD_C])
    rig.convert(bad, rd=True)
    assert rig.gold.csflt == (1 << N_CH) - 1, f"golden mask {rig.gold.csflt:#x}"
    rig.check_results()
    rig.statc()
    rig.clear_csflt(0xFFFF)
    # a single-bit flip in the S tempco word: corrected, flagged (CED, SED), results exact
    flip = (7, 13)
    one = _stim(13, cth, flips=(flip,))
    rig.write_trim(one.image, [flip[0]])
    rig.write_trim(clean.image, [GAIN_WORD_C])
    rig.analog.faults["trim_ecc_corrected"] = True  # the model's monitor for the same fault
    rig.convert(one, rd=True)
    assert rig.gold.csflt == 0
    rig.check_results()
    st = rig.statc()
    assert st["CED"] == st["SED"] == 1 and st["CMED"] == st["SMED"] == 0, st
    drv.clear_flags({"CED": 1, "SED": 1})  # still in the memory: flagged again
    st = rig.statc()
    assert st["CED"] == st["SED"] == 1, st
    rig.write_trim(clean.image, [flip[0]])
    rig.analog.faults["trim_ecc_corrected"] = False
    drv.clear_flags({"CED": 1, "SED": 1})
    st = rig.statc()
    assert st["CED"] == st["SED"] == 0, st
    # a double flip in the C gain word: uncorrectable (CMED, SMED); C path untrimmed
    dbl = _stim(14, 7, flips=((GAIN_WORD_C, 3), (GAIN_WORD_C, 17)))
    drv.write_config_a({"CTH": 7, "REFON": 1})
    rig.write_trim(dbl.image, [GAIN_WORD_C])
    rig.analog.faults["trim_ecc_uncorrectable"] = True
    rig.convert(dbl, rd=False)
    rig.check_results("C")
    st = rig.statc()
    assert st["CMED"] == st["SMED"] == 1, st


def lockstep(rig: Rig) -> None:
    """An upset in the shadow C path of channel 1 (one integrator bit, mid-conversion): the
    published results stay exact, COMP is set (not in the model: it has no lockstep) and
    survives CLRFLAG."""
    drv, cth = rig.drv, 1
    stim = _stim(31, cth)
    rig.write_trim(stim.image)
    drv.wakeup()
    drv.write_config_a({"CTH": cth, "REFON": 1})
    reg = rig.dut.u_dp.g_ch[1].g_dup.u_c_dup.u_sinc3.i3_q

    def flip() -> None:
        reg.value = reg.value.to_unsigned() ^ (1 << 9)

    rig.upset = (5 * R_C + 3, flip)  # inside C period 5: its result differs from the main
    rig.convert(stim, rd=True)
    rig.extra_flags = _STATC["COMP"].mask >> 32
    rig.check_results()
    assert rig.statc()["COMP"] == 1
    drv.clear_flags({f.name: f.max for f in LAYOUTS["CLRFLAG"].fields})
    rig.gold.csflt = 0
    assert rig.statc()["COMP"] == 1


# ---- the SPI-core co-simulation's directed sequence, replayed through the top --------------


def compare_window(mosi: bytes, rtl: bytes, model: bytes) -> bool:
    """RTL vs model MISO of one recorded window; True if compared byte for byte.

    Replies with conversion data (results, STATC, STATD) carry the RTL's own codes (the model's
    analog is ideal): there the command bytes, the command counter, STATC's flag bytes and
    whatever follows the reply must equal the model's, and a whole reply must pass PEC10.
    """
    ok = len(mosi) >= CMD_LEN and check_pec15(mosi[:CMD_LEN])
    name = _cmd_name(mosi) if ok else None
    where = f"{name} {mosi.hex()}: RTL {rtl.hex()}, model {model.hex()}"
    if name not in DATA_READS:
        assert rtl == model, where
        return True
    n = COMMANDS[name].data_len
    hi = CMD_LEN + n
    for i, (a, b) in enumerate(zip(rtl, model, strict=True)):
        if CMD_LEN <= i < hi and not (name == "RDSTATC" and i >= CMD_LEN + 4):
            continue  # conversion data (STATC bytes 4-5: flags, compared)
        if i == hi + 1:
            continue  # PEC10 low byte: covers the data
        if i == hi:
            a, b = a >> 2, b >> 2  # the command counter (top 6 bits)
        assert a == b, f"byte {i}: {where}"
    if len(mosi) >= hi + 2:  # RDSTATC ERR=1 asks for a corrupted PEC10 (host self-test)
        dec = decode_opcode((mosi[0] << 8) | mosi[1])
        want_ok = dec is not None and not dec[1].get("ERR", 0)
        assert split_read_reply(rtl[: hi + 2], 1, n)[0].pec_ok == want_ok, where
    return False


async def _feed_until_idle(dut, words: tuple[list[int], list[int]], n_bits: int) -> None:
    """Play modulator bits (from the start of ``words``) while a conversion job is busy;
    deadline: ``n_bits`` + MAX_TAIL_CLKS clocks."""
    cw, sw = words
    for m in range(n_bits + MAX_TAIL_CLKS):
        if not (int(dut.c_busy.value) or int(dut.s_busy.value)):
            break
        dut.mod_valid.value = int(m < n_bits)
        if m < n_bits:
            dut.c_bits.value, dut.s_bits.value = cw[m], sw[m]
        await Timer(CLK_NS, unit="ns")
    else:
        raise AssertionError(f"conversion not done {MAX_TAIL_CLKS} clocks after the bits")
    dut.mod_valid.value = 0


async def replay(dut, sequence: Callable[[Recorder], None]) -> tuple[int, int]:
    """Replay a ``test_afe_spi_core`` sequence (recorded on its device model) into the top;
    returns (windows compared byte for byte, data-read windows)."""
    rec = Recorder()
    sequence(rec)
    rig = await _rig(dut)
    stim = _stim(41, 0)
    await rig._write_trim(stim.image, range(stim.image.size))
    words = (_words(stim.c_bits), _words(stim.s_bits))
    same = data = 0
    for k, st in enumerate(rec.steps):
        if st.mosi is None:  # the host waits: the analog side converts
            await _feed_until_idle(dut, words, stim.n_bits)
            continue
        assert st.miso is not None
        miso = await rig.host.transfer(st.mosi, extra_bits=st.abort_bits)
        if compare_window(st.mosi, miso, st.miso):
            same += 1
        else:
            data += 1
        assert int(dut.cc.value) == st.state.cc, f"step {k}: counter {int(dut.cc.value)}"
    return same, data


# ---- the cocotb side ----------------------------------------------------------------------


async def _rig(dut) -> Rig:
    from rtl_bench import reset
    from spi_host import SpiHost, start_gpi_clock

    for name in ("mod_valid", "c_bits", "s_bits", "trim_wr_en", "trim_wr_addr",
                 "trim_wr_data", "ana_flags"):  # fmt: skip
        getattr(dut, name).value = 0
    dut.die_temp.value = DIE_TEMP
    host = SpiHost(dut, CLK_NS, 4)
    dut.csb.value = dut.sck.value = dut.mosi.value = 1
    start_gpi_clock(dut, CLK_NS)
    await reset(dut)
    await host.align()
    return Rig(dut, host)


if cocotb is not None:

    @cocotb.test()
    async def results_cosim(dut):
        """Single shots, golden codes over SPI, CSxFLT from an S offset, CLRFLAG."""
        rig = await _rig(dut)
        await bridge(results_and_csflt)(rig)
        assert rig.same_bytes > 10 and rig.results_read > 40
        dut._log.info("%d windows equal to the model byte for byte, %d result/STATC reads",
                      rig.same_bytes, rig.results_read)

    @cocotb.test()
    async def trim_faults_cosim(dut):
        """C-only trim change, ECC single and double flips, as flags read over SPI."""
        rig = await _rig(dut)
        await bridge(trim_faults)(rig)

    @cocotb.test()
    async def lockstep_cosim(dut):
        """A shadow-path upset: COMP over SPI, results unaffected."""
        rig = await _rig(dut)
        await bridge(lockstep)(rig)


    @cocotb.test()
    async def spi_sequence_cosim(dut):
        """The SPI-core co-simulation's directed sequence through the whole top."""
        same, data = await replay(dut, directed)
        assert same > 100 and data > 40, (same, data)
        dut._log.info("directed sequence: %d windows equal to the model byte for byte, %d "
                      "data reads (counter, flags, PEC checked)", same, data)

    @cocotb.test()
    async def random_sequence_cosim(dut):
        """The SPI-core co-simulation's seeded random command sequence through the top
        (conversions with random RD/CONT/OW, ADSV, CLRFLAG, SNAP, RSTCC ...)."""
        same, data = await replay(dut, lambda rec: random_sequence(rec, seed=0x70B, n_ops=120))
        assert same > 80 and data > 10, (same, data)  # 104 and 17 with this seed
        dut._log.info("random sequence: %d windows byte for byte, %d data reads", same, data)


def _sources() -> list:
    from rtl_bench import RTL_DIR

    blocks = ("pec15", "pec10", "cmd_table", "spi_target", "cmd_decoder", "afe_regfile",
              "afe_spi_core", "secded22_decode", "trim_store", "sinc3_decimator",
              "raw_code_map", "trim_correct", "cell_code_map", "cell_adc_path", "cs_compare",
              "afe_datapath", "afe_digital_top")
    return [RTL_DIR / f"{b}.sv" for b in blocks]


def test_afe_digital_top_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/afe_digital_top.sv (+ submodules) and run the co-simulation."""
    from rtl_bench import run_bench

    run_bench(request, block="afe_digital_top", test_module="test_afe_digital_top",
              parameters=PARAMS, sources=_sources(), verilator_args=BUILD_ARGS)
