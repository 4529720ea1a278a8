"""SPI co-simulation of ``rtl_models/afe_spi_core.sv`` against the Python device model.

The frames come from ``bms_emu.host.HostDriver`` (and, for malformed input, from
``bms_emu.protocol.frames`` / ``pec`` by hand). A recorder is the driver's ``transfer`` and
``delay``: each frame goes to a one-device ``bms_emu.device.DaisyChain`` first, and the recorder
keeps the frame, the model's MISO and the model's state after it. The cocotb side then replays
every frame bit by bit into the RTL SPI target (mode 3, SCK = clk / 8) and requires every MISO
byte to equal the model's, the command counter and the configuration outputs to equal the
model's after every window, and one ``adcv_start`` / ``adsv_start`` strobe with the model's
option bits for every ADCV / ADSV the model accepted (none otherwise).

Result registers: the RTL has no ADC here. After every window or wait in which the model's
conversions produced results, the bench plays the datapath: it loads the model's C, averaged and
S codes and the newly set CSxFLT bits through the result-load port, and pulses ``c_load`` once
per C conversion the model counted (its conversion counter, read from the CUR group's count
field). So result bytes are comparable byte for byte, while the read path, the bank layout,
group F's padding, the PEC10 with counter, CT:CTS placement, the OV/UV comparison against
VUV/VOV, sticky flags, CLRFLAG masks and FLAG_D forcing are the RTL's own. ``c_busy`` /
``s_busy`` for polls are the model's busy state at the start of the window.

Sequences: a directed one (wake, configuration writes and reads, ADCV with S-ADC and every
result group, continuous C + S with C-vs-S flags, ADSV, status, CLRFLAG, clears, SNAP/UNSNAP,
mute, RSTCC, counter wrap past 63, bad PEC15 on an action / write / read, bad PEC10, unknown
opcodes, multi-block and partial-block writes, a host counter in write data, long and short
read windows, RDSTATC with ERR, polls while busy, OV/UV thresholds exactly on cell codes, an
aborted window the model never sees); analog monitor flags that go away after latching, and a
comparator fault; seeded fuzz frames (random data phases and single-bit errors); a seeded
random sequence of valid commands.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from bms_emu.device import DaisyChain, Device, IdealAnalog
from bms_emu.host import HostDriver
from bms_emu.protocol.frames import build_command_frame, build_read_frame, build_write_frame
from bms_emu.protocol.opcodes import COMMANDS, decode_opcode, encode_opcode
from bms_emu.protocol.pec import append_data_pec, check_pec15
from bms_emu.protocol.registers import LAYOUTS

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import ReadOnly, RisingEdge, Timer
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None

CLK_NS = 10
SID = 0x1234_5678_9ABC  # RDSID value, given to the RTL as a parameter and to the model
REV = 0x5
CONV_WAIT_S = 15e-3  # REFUP 4.5 ms + 8 C / 1 S conversion 8 ms (docs/protocol.md timing)
POLLS = ("PLADC", "PLCADC", "PLSADC")
RESULT_READS = [p + g for p in ("RDCV", "RDSV", "RDAC") for g in (*"ABCDEF", "ALL")]


#: Cells 1 and 2 sit still on codes that are multiples of 16, so CFGB thresholds can be put
#: exactly on them (the OV/UV comparisons are strict); 12-bit threshold codes for them.
EDGE_CODES = (-1600, 4800)
EDGE_THRESHOLDS = tuple(c // 16 for c in EDGE_CODES)


def _cells_V(t_s: float) -> np.ndarray:
    """16 cell voltages 0.95..4.05 V (codes of both signs), moving 7 Hz: results differ."""
    k = np.arange(16)
    v = 1.0 + 0.2 * k + 0.05 * np.sin(2 * np.pi * 7.0 * t_s + k)
    v[:2] = 1.5 + np.array(EDGE_CODES) * 150e-6  # registers.code_to_volts
    return v


class SwitchedAnalog(IdealAnalog):
    """IdealAnalog whose forced monitor faults go away at ``off_s`` (the flags stay sticky)."""

    off_s = math.inf

    def fault_state(self, t_s: float) -> dict[str, bool]:
        return super().fault_state(t_s) if t_s < self.off_s else {}


_COMP_MASK = next(f.mask for f in LAYOUTS["STATC"].fields if f.name == "COMP")


def _make_device(faults: dict[str, bool] | None = None) -> Device:
    gain_s = np.zeros(16)
    gain_s[[2, 9]] = 0.02  # S - C ~ 20-60 mV: flagged for some CTH settings
    gain_s[12] = 0.05  # ~190 mV: always flagged
    analog = SwitchedAnalog(_cells_V, gain_error_S=gain_s, faults=faults)
    return Device(analog, sid=SID, rev=REV)


#: Analog monitor -> STATC flags it raises (the device's documented mapping, docs/protocol.md
#: "Diagnostics and flags"); the datapath drives them on mon_flags (STATC bit 32 + k).
MONITOR_FLAGS = {"thermal_shutdown": ("THSD",), "va_ov": ("VA_OV",), "va_uv": ("VA_UV",),
                 "vd_ov": ("VD_OV",), "vd_uv": ("VD_UV",), "osc_fault": ("OSCCHK",),
                 "trim_ecc_corrected": ("CED", "SED"),
                 "trim_ecc_uncorrectable": ("CMED", "SMED")}  # fmt: skip


def mon_flags_word(faults: dict[str, bool]) -> int:
    """``mon_flags`` for the RTL: STATC bits of the active monitors, shifted down by 32."""
    fields = {f.name: f.mask for f in LAYOUTS["STATC"].fields}
    word = 0
    for key, names in MONITOR_FLAGS.items():
        if faults.get(key):
            for n in names:
                word |= fields[n] >> 32
    return word


@dataclass(frozen=True)
class State:
    """The model's state the RTL is compared with / loaded from after a step."""

    ct: int  # C conversions since power-on (13-bit CT:CTS)
    cv: tuple[int, ...]
    sv: tuple[int, ...]
    ac: tuple[int, ...]
    csflt: int
    comp: int  # STATC COMP (comparator fault, sticky, not clearable)
    cc: int
    cfga: int
    cfgb: int


@dataclass(frozen=True)
class Step:
    """One window (``mosi`` not None) or wait, with the model's view of it."""

    mosi: bytes | None
    miso: bytes | None
    state: State
    busy: tuple[int, int] = (0, 0)  # C / S busy at the window's start
    mon: int = 0  # mon_flags during the step (monitor faults at the window's start)
    abort_bits: int = 0  # > 0: the RTL window ends this many bits into one more byte


class Recorder:
    """``transfer`` / ``delay`` for :class:`HostDriver`: runs the model, records the steps."""

    def __init__(self, faults: dict[str, bool] | None = None) -> None:
        self.faults = dict(faults or {})
        self.dev = _make_device(self.faults)
        self.chain = DaisyChain([self.dev])
        self.steps: list[Step] = []
        self.initial = self.state()

    def state(self) -> State:
        d = self.dev
        # CUR bytes 4-5 carry the C conversion counter of the latest result (a read without
        # side effects; 13 bits fit); config_snapshot()[2] is the sticky STATC word.
        ct = int.from_bytes(d.register("CUR")[4:6], "little")
        statc = d.config_snapshot()[2]
        return State(
            ct=ct,
            cv=tuple(int(c) for c in d.codes("CV")),
            sv=tuple(int(c) for c in d.codes("SV")),
            ac=tuple(int(c) for c in d.codes("AC")),
            csflt=statc & 0xFFFF,
            comp=int(bool(statc & _COMP_MASK)),
            cc=d.command_counter,
            cfga=int.from_bytes(d.register("CFGA"), "little"),
            cfgb=int.from_bytes(d.register("CFGB"), "little"),
        )

    def transfer(self, mosi: bytes) -> bytes:
        # The RTL gets results between windows only: a host that waits out an internal event
        # due inside this window (continuous conversions) keeps both sides comparable.
        t = self.chain.t_s
        due = self.dev.next_event_s
        if t <= due < t + self.chain.window_duration_s(len(mosi)):
            self.delay(due - t + 1e-6)
        busy = (int(self.dev.busy(("C",))), int(self.dev.busy(("S",))))
        mon = self.mon()
        miso = self.chain.transfer(mosi)
        self.steps.append(Step(bytes(mosi), miso, self.state(), busy, mon))
        return miso

    def delay(self, dt_s: float) -> None:
        """Wait; one step per internal event on the way, so every C result the RTL gets is
        loaded with the monitors as they were when the model converted it."""
        end = self.chain.t_s + dt_s
        while (due := self.dev.next_event_s) <= end:
            mon = mon_flags_word(self.dev.analog.fault_state(due))
            self.chain.advance_to(due)
            self.steps.append(Step(None, None, self.state(), mon=mon))
        self.chain.advance_to(end)
        self.steps.append(Step(None, None, self.state(), mon=self.mon()))

    def aborted(self, mosi: bytes, bits: int) -> None:
        """A window the RTL sees cut ``bits`` into an extra byte; the model sees nothing."""
        self.steps.append(Step(bytes(mosi), b"\xff" * len(mosi), self.state(), mon=self.mon(),
                               abort_bits=bits))

    def mon(self) -> int:
        """mon_flags now: what the datapath would drive from the analog monitors."""
        return mon_flags_word(self.dev.analog.fault_state(self.chain.t_s))


def _expected_strobe(mosi: bytes) -> list[tuple[int, ...]]:
    """The conversion strobe the RTL must give for a window: the model's accepted ADCV/ADSV."""
    if len(mosi) < 4 or not check_pec15(mosi[:4]):
        return []
    dec = decode_opcode((mosi[0] << 8) | mosi[1])
    if dec is None or dec[0].name not in ("ADCV", "ADSV"):
        return []
    spec, p = dec
    is_adcv = spec.name == "ADCV"
    return [(int(is_adcv), p.get("RD", 0), p["CONT"], p["DCP"], p.get("RSTF", 0), p["OW"])]


def _expected_clear(mosi: bytes, counter_moved: bool) -> list[int]:
    """clrflag_data the RTL must pulse: a CLRFLAG the model applied (its counter moved) clears
    with the data of the window's last block."""
    if not counter_moved or len(mosi) < 12 or not check_pec15(mosi[:4]):
        return []
    if (mosi[0] << 8) | mosi[1] != COMMANDS["CLRFLAG"].opcode:
        return []
    return [int.from_bytes(mosi[-8:-2], "little")]


def _pack(codes: tuple[int, ...]) -> int:
    word = 0
    for i, c in enumerate(codes):
        word |= (c & 0xFFFF) << (16 * i)
    return word


# ---- sequences (plain Python: they run the model and record) ---------------------------


def _drv(rec: Recorder) -> HostDriver:
    return HostDriver(rec.transfer, 1, delay=rec.delay, raise_on_counter_mismatch=False)


def _resync(drv: HostDriver, rec: Recorder) -> None:
    """After hand-made frames: the driver expects what the model reports."""
    drv.expected_counters = [rec.dev.command_counter]


def _read_everything(drv: HostDriver, groups: bool = True) -> None:
    """Every result (group reads A-F if ``groups``, and the ALL reads), status, config."""
    for kind in ("C", "S", "A"):
        if groups:
            drv.read_cell_codes(kind)
        drv.read_cell_codes(kind, use_all=True)
    drv.read_status("CDE")
    drv.read_config_a()
    drv.read_config_b()


def directed(rec: Recorder) -> None:
    drv = _drv(rec)
    drv.wakeup()
    drv.read_sid()
    _read_everything(drv)  # power-on values
    drv.write_config_a({"CTH": 4, "REFON": 1, "GPO": 0x155, "FC": 3, "OWA": 5, "SOAKON": 1,
                        "COMM_BK": 1, "MUTE_ST": 1, "SNAP_ST": 1})  # fmt: skip (status bits: RO)
    drv.write_config_b({"VUV": 0x2BC, "VOV": 0x3E8, "DCTO": 5, "DCC": 0x8001})
    drv.read_config_a()
    drv.read_config_b()
    drv.start_cell_conversion(rd=True, dcp=True, ow=0)
    poll = {n: build_command_frame(encode_opcode(n)) + b"\xff" * 6 for n in POLLS}
    for name in POLLS:  # C and S busy: 0x00 bytes
        rec.transfer(poll[name])
    drv.start_cell_conversion()
    rec.transfer(poll["PLSADC"])  # ADCV RD=0 stopped the S job: 0xFF
    rec.transfer(poll["PLCADC"])
    drv.wait(CONV_WAIT_S)
    for name in POLLS:  # idle: 0xFF
        rec.transfer(poll[name])
    drv.start_cell_conversion(rd=True, dcp=True, ow=0)
    drv.wait(CONV_WAIT_S)
    _read_everything(drv)
    drv.command("ADSV", DCP=1, OW=2)
    drv.wait(CONV_WAIT_S)
    drv.read_cell_codes("S")
    # continuous C + S: C-vs-S compares set CSxFLT (channels 2, 9, 12 have S gain errors)
    drv.start_cell_conversion(rd=True, cont=True)
    drv.wait(CONV_WAIT_S)
    _read_everything(drv, groups=False)
    drv.clear_flags({"CSFLT": 0x0204, "THSD": 1})
    drv.read_status("C")
    drv.wait(CONV_WAIT_S)
    drv.read_status("C")
    drv.clear_flags({"CSFLT": 0xFFFF})
    drv.read_status("C")
    drv.start_cell_conversion()  # a single shot ends the continuous job
    drv.wait(CONV_WAIT_S)
    _read_everything(drv)
    # FLAG_D forcing: flags set on WRCFGA, survive a CLRFLAG while forced, stay after release
    drv.write_config_a({"FLAG_D": 0xFD, "CTH": 1})
    drv.read_status("CD")
    drv.clear_flags({"OSCCHK": 1, "THSD": 1, "SED": 1, "VA_OV": 1, "VDE": 1})
    drv.read_status("C")
    drv.write_config_a({"FLAG_D": 0x06})
    drv.read_status("CD")
    drv.clear_flags(dict.fromkeys(("SMED", "SED", "CMED", "CED", "VD_UV", "VD_OV", "VA_UV",
                                   "VA_OV", "OSCCHK", "TMODCHK", "THSD"), 1))  # fmt: skip
    drv.read_status("C")
    rec.transfer(build_command_frame(encode_opcode("RDSTATC", ERR=1)) + b"\xff" * 8)
    drv.command("CLRCELL")
    drv.command("CLRSPIN")
    drv.command("CLOVUV")
    _read_everything(drv, groups=False)
    # SNAP: reads frozen while results land; a second SNAP keeps the freeze; clears show
    drv.snap()
    drv.read_config_a()
    drv.start_cell_conversion(rd=True)
    drv.wait(CONV_WAIT_S)
    _read_everything(drv, groups=False)
    drv.snap()
    drv.command("CLRSPIN")
    drv.read_cell_codes("S", use_all=True)
    drv.read_cell_codes("C", use_all=True)
    drv.unsnap()
    _read_everything(drv, groups=False)
    drv.mute()
    drv.read_config_a()
    drv.unmute()
    drv.read_config_a()
    drv.rstcc()
    drv.read_config_a()
    for k in range(70):  # the counter wraps 63 -> 1
        (drv.mute if k % 2 else drv.unmute)()
        if k in (61, 62, 63, 64, 69):
            drv.read_config_a()
    # bad PEC15: action, write, read are ignored
    bad = bytearray(build_command_frame(encode_opcode("ADCV", RD=1)))
    bad[3] ^= 0x01
    rec.transfer(bytes(bad))
    bad = bytearray(build_write_frame(COMMANDS["WRCFGB"].opcode, [bytes(range(6))]))
    bad[2] ^= 0x80
    rec.transfer(bytes(bad))
    bad = bytearray(build_read_frame(COMMANDS["RDCFGA"].opcode, 1))
    bad[3] ^= 0x02
    rec.transfer(bytes(bad))
    # bad PEC10: the write is dropped, the counter does not advance
    bad = bytearray(build_write_frame(COMMANDS["WRCFGB"].opcode, [bytes(range(1, 7))]))
    bad[6] ^= 0x10
    rec.transfer(bytes(bad))
    # unknown opcodes (0x7FF; CMD0 with bits 7..3 set; SNAP is outside the RTL subset)
    rec.transfer(build_command_frame(0x7FF) + b"\xff" * 8)
    rec.transfer(bytes((0x80, 0x02)) + build_command_frame(0x002)[2:] + b"\xff" * 8)
    # write data framing: two blocks (the last one is applied), one and a half blocks, no data
    wr = COMMANDS["WRCFGB"].opcode
    two = build_write_frame(wr, [bytes.fromhex("112233445566"), bytes.fromhex("a1b2c3d4e5f6")])
    rec.transfer(two)
    rec.transfer(build_write_frame(wr, [bytes(6)]) + bytes(4))
    rec.transfer(build_command_frame(wr))
    # host sends a non-zero counter in the PEC bytes (PEC10 over data and those bits)
    data = bytes.fromhex("0f1e2d3c4b5a")
    rec.transfer(build_command_frame(wr) + append_data_pec(data, 37))
    _resync(drv, rec)
    drv.read_config_b()
    # read windows longer and shorter than the reply
    rec.transfer(build_read_frame(COMMANDS["RDCFGB"].opcode, 1) + b"\xff" * 5)
    rec.transfer(build_read_frame(COMMANDS["RDCVALL"].opcode, 1, 32)[:20])
    rec.transfer(b"\xff")
    # aborted write: CSB rises 3 bits into one more byte: nothing applied (model not told)
    rec.aborted(build_write_frame(wr, [bytes(6)]), 3)
    rec.aborted(build_write_frame(wr, [bytes(6)])[:9], 5)
    drv.read_config_b()
    # thresholds exactly on cells 1 (UV) and 2 (OV): not flagged; one step inside: flagged
    uv, ov = EDGE_THRESHOLDS
    for d_uv, d_ov in ((0, 0), (1, -1), (-1, 1)):
        drv.write_config_b({"VUV": (uv + d_uv) & 0xFFF, "VOV": (ov + d_ov) & 0xFFF})
        drv.start_cell_conversion()
        drv.wait(CONV_WAIT_S)
        drv.read_status("D")
    drv.read_cell_codes("C")


def monitors(rec: Recorder) -> None:
    """Monitor flags: latched by STATC/STATD reads and C results, sticky after the monitors
    clear, cleared by CLRFLAG."""
    drv = _drv(rec)
    drv.wakeup()
    analog = rec.dev.analog
    assert isinstance(analog, SwitchedAnalog)
    flags = dict.fromkeys(("THSD", "VA_UV", "CED", "SED", "VD_OV"), 1)
    for group in ("C", "D"):  # latched by this read, then the monitors go away
        drv.read_status(group)
        analog.off_s = rec.chain.t_s + 1e-3
        drv.wait(2e-3)
        drv.read_status("C")
        drv.clear_flags(flags)
        drv.read_status("C")
        analog.off_s = math.inf
    drv.start_cell_conversion()  # latched by the C result
    analog.off_s = rec.chain.t_s + CONV_WAIT_S
    drv.wait(CONV_WAIT_S + 1e-3)
    drv.read_status("DC")
    drv.write_config_a({"FLAG_D": 0x0C})
    drv.clear_flags(flags)
    drv.read_status("C")
    # comparator fault (the model's inject["comp_logic"]): COMP survives CLRFLAG
    rec.dev.inject["comp_logic"] = True
    drv.start_cell_conversion(rd=True, cont=True)
    drv.wait(2 * CONV_WAIT_S)  # the first S result has fewer than 8 C results before it
    drv.read_status("C")
    drv.clear_flags({f.name: f.max for f in LAYOUTS["CLRFLAG"].fields})
    drv.read_status("C")
    rec.dev.inject["comp_logic"] = False
    drv.start_cell_conversion()
    drv.wait(CONV_WAIT_S)
    drv.read_status("C")


def random_sequence(rec: Recorder, seed: int, n_ops: int) -> None:
    """Seeded random valid commands of the RTL subset (conversions: ADCV, then a wait)."""
    rng = random.Random(seed)
    drv = _drv(rec)
    drv.wakeup()

    def rand_fields(layout: str, skip: tuple[str, ...] = ()) -> dict[str, int]:
        return {f.name: rng.randint(f.min, f.max) for f in LAYOUTS[layout].fields
                if f.name not in skip and rng.random() < 0.6}  # fmt: skip

    ops: list[Callable[[], object]] = [
        lambda: drv.write_config_a(rand_fields("CFGA")),
        lambda: drv.write_config_b(rand_fields("CFGB")),
        drv.read_config_a,
        drv.read_config_b,
        lambda: (drv.start_cell_conversion(rd=rng.random() < 0.5, dcp=rng.random() < 0.5,
                                           cont=rng.random() < 0.3,
                                           rstf=rng.random() < 0.5, ow=rng.randrange(4)),
                 drv.wait(CONV_WAIT_S)),
        lambda: (drv.command("ADSV", DCP=rng.randrange(2), OW=rng.randrange(4)),
                 drv.wait(CONV_WAIT_S)),
        lambda: drv.read(rng.choice(RESULT_READS)),
        lambda: drv.read_status(rng.choice("CDE")),
        lambda: drv.clear_flags(rand_fields("CLRFLAG")),
        lambda: drv.command(rng.choice(["CLRCELL", "CLRSPIN", "CLOVUV", "MUTE", "UNMUTE", "SNAP",
                                        "UNSNAP"])),
        drv.rstcc,
        drv.read_sid,
    ]
    for _ in range(n_ops):
        rng.choice(ops)()


def fuzz_frames(rec: Recorder, seed: int, n_windows: int) -> None:
    """Frames of subset commands with random parameters, data phases of random length (whole
    and partial blocks, good and bad PEC10, random counter bits) and random single-bit errors
    (a flipped bit always breaks a PEC, so no out-of-subset command can appear)."""
    rng = random.Random(seed)
    names = [n for n in (*RESULT_READS, "RDCFGA", "RDCFGB", "RDSTATC", "RDSTATD", "RDSTATE",
                         "RDSID", "WRCFGA", "WRCFGB", "CLRFLAG", "ADCV", "ADSV", "CLRCELL",
                         "CLRSPIN", "CLOVUV", "MUTE", "UNMUTE", "SNAP", "UNSNAP", "RSTCC",
                         *POLLS)]  # fmt: skip
    for _ in range(n_windows):
        spec = COMMANDS[rng.choice(names)]
        params = {p.name: rng.randrange(1 << p.width) for p in spec.params
                  if p.name != "CONT"}  # fmt: skip  (single shots: results land in waits)
        frame = bytearray(build_command_frame(encode_opcode(spec.name, **params)))
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):  # data blocks (any command)
            blk = append_data_pec(rng.randbytes(6), rng.choice((0, 0, rng.randrange(64))))
            frame += blk
        frame += rng.randbytes(rng.choice((0, 0, 0, 1, 5, 7)))  # a partial block / dummies
        if rng.random() < 0.25:
            i = rng.randrange(len(frame))
            frame[i] ^= 1 << rng.randrange(8)
        rec.transfer(bytes(frame))
        if spec.name in ("ADCV", "ADSV"):
            rec.delay(CONV_WAIT_S)


# ---- the cocotb side --------------------------------------------------------------------


class Strobes:
    """Collects (is_adcv, rd, cont, dcp, rstf, ow) for every conversion-start strobe and the
    data of every ``clrflag`` pulse."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.seen: list[tuple[int, ...]] = []
        self.clears: list[int] = []

    async def watch_clrflag(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clrflag)
            await ReadOnly()
            self.clears.append(int(d.clrflag_data.value))

    async def watch(self, sig, is_adcv: int) -> None:
        d = self.dut
        while True:
            await RisingEdge(sig)
            await ReadOnly()
            self.seen.append((is_adcv, int(d.conv_rd.value), int(d.conv_cont.value),
                              int(d.conv_dcp.value), int(d.conv_rstf.value),
                              int(d.conv_ow.value)))  # fmt: skip


async def _pulse(dut, strobe: str, **values: int) -> None:
    for name, v in values.items():
        getattr(dut, name).value = v
    getattr(dut, strobe).value = 1
    await Timer(CLK_NS, unit="ns")
    getattr(dut, strobe).value = 0


async def _load(dut, prev: State, new: State) -> None:
    """Play the datapath: results the model produced between ``prev`` and ``new``."""
    for _ in range((new.ct - prev.ct) % (1 << 13)):
        await _pulse(dut, "c_load", c_codes=_pack(new.cv))
    if new.ac != prev.ac:
        await _pulse(dut, "ac_load", ac_codes=_pack(new.ac))
    set_bits = new.csflt & ~prev.csflt
    new_comp = new.comp & ~prev.comp
    if new.sv != prev.sv or set_bits or new_comp:
        await _pulse(dut, "s_load", s_codes=_pack(new.sv), csflt_set=set_bits, comp_set=new_comp)


async def replay(dut, rec: Recorder) -> int:
    """Drive every recorded step into the RTL and compare; returns the number of windows."""
    from rtl_bench import reset
    from spi_host import SpiHost, start_gpi_clock

    for name in ("c_busy", "s_busy", "c_load", "c_codes", "ac_load", "ac_codes", "s_load",
                 "s_codes", "csflt_set", "comp_set", "mon_flags"):  # fmt: skip
        getattr(dut, name).value = 0
    host = SpiHost(dut, CLK_NS, 4)
    dut.csb.value = dut.sck.value = dut.mosi.value = 1
    start_gpi_clock(dut, CLK_NS)
    await reset(dut)
    await host.align()
    strobes = Strobes(dut)
    cocotb.start_soon(strobes.watch(dut.adcv_start, 1))
    cocotb.start_soon(strobes.watch(dut.adsv_start, 0))
    cocotb.start_soon(strobes.watch_clrflag())
    prev = rec.initial
    n = 0
    for k, st in enumerate(rec.steps):
        dut.mon_flags.value = st.mon
        if st.mosi is not None:
            n += 1
            dut.c_busy.value, dut.s_busy.value = st.busy
            strobes.seen.clear()
            strobes.clears.clear()
            miso = await host.transfer(st.mosi, extra_bits=st.abort_bits)
            where = f"step {k}: MOSI {st.mosi.hex()}"
            assert miso == st.miso, f"{where}: RTL MISO {miso.hex()}, model {st.miso.hex()}"
            want = _expected_strobe(st.mosi)
            assert strobes.seen == want, f"{where}: strobes {strobes.seen}, model {want}"
            want_clr = _expected_clear(st.mosi, st.state.cc != prev.cc)
            assert strobes.clears == want_clr, f"{where}: clrflag {strobes.clears}, {want_clr}"
            assert int(dut.cc.value) == st.state.cc, f"{where}: counter {int(dut.cc.value)}"
            assert int(dut.cfga.value) == st.state.cfga, f"{where}: CFGA differs"
            assert int(dut.cfgb.value) == st.state.cfgb, f"{where}: CFGB differs"
        await _load(dut, prev, st.state)
        assert int(dut.csflt.value) == st.state.csflt, f"step {k}: CSxFLT differs"
        prev = st.state
    return n


if cocotb is not None:

    @cocotb.test()
    async def directed_cosim(dut):
        """Directed sequence: every command of the subset, malformed input, counter wrap."""
        rec = Recorder()
        directed(rec)
        n = await replay(dut, rec)
        assert n > 150 and rec.dev.command_counter > 0

    @cocotb.test()
    async def monitor_flags_cosim(dut):
        """Analog monitors on: flags latched by C results and STATC/STATD reads, CLRFLAG."""
        rec = Recorder({"thermal_shutdown": True, "va_uv": True, "trim_ecc_corrected": True})
        monitors(rec)
        await replay(dut, rec)

    @cocotb.test()
    async def fuzz_cosim(dut):
        """Seeded frames with random data phases and single-bit errors."""
        rec = Recorder()
        fuzz_frames(rec, seed=0xF022, n_windows=100)
        await replay(dut, rec)

    @cocotb.test()
    async def random_cosim(dut):
        """Seeded random sequence of valid commands."""
        rec = Recorder()
        random_sequence(rec, seed=0x6830, n_ops=150)
        await replay(dut, rec)


def test_afe_spi_core_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/afe_spi_core.sv (with its submodules) and run the co-simulation."""
    from rtl_bench import RTL_DIR, run_bench

    sources = [RTL_DIR / f"{m}.sv" for m in
               ("pec15", "pec10", "cmd_table", "spi_target", "cmd_decoder", "afe_regfile",
                "afe_spi_core")]  # fmt: skip
    # -O1: the wide read muxes are evaluated every clk edge; optimised C++ halves the run time
    # of this long co-simulation for a few seconds more build (the last -O wins)
    run_bench(request, block="afe_spi_core", test_module="test_afe_spi_core",
              sources=sources, parameters={"SID": f"48'h{SID:012X}", "REV": f"4'h{REV:X}"},
              verilator_args=["-CFLAGS", "-O1"])
