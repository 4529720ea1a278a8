"""One emulated ADBMS6830-class chip: registers, commands, conversions in time, diagnostics.

The device is driven by :class:`bms_emu.device.chain.DaisyChain`, which splits each chip-select
window into per-device calls. Time only moves forward, through :meth:`Device.advance_to`;
conversions complete by time (their durations are chip-clock cycles from
:mod:`bms_emu.device.timing`), never by calls. Every behaviour the public sources do not pin down
is listed in ``docs/protocol.md`` ("Device behaviour"); the short version:

* registers keep their old contents while a conversion runs and change when results land;
  CLRCELL/CLRSPIN/CLRFC/CLRAUX and ADCV RSTF (filtered registers) write ``0x8000``; power-on,
  sleep and SRST give ``0x7FFF``;
* a conversion commanded while the reference is off waits for REFUP (4.5 ms) and then runs;
* ADCV RD=1 runs the S-ADC beside the C-ADC (one S conversion per 8 C conversions); each S
  result is compared with the average of the last 8 C results and ``|C - S| > CTH`` sets the
  channel's sticky CSxFLT bit in STATC;
* bad command PEC, unknown opcode, bad data PEC: no state change at all (a dropped write shows
  as a command counter that did not advance, which is how foxBMS detects it).

Dispatch is table driven: :data:`ACTION_HANDLERS` maps command names from
:data:`bms_emu.protocol.opcodes.COMMANDS` to handler method names; reads and writes are generic
over register groups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bms_emu.afe.iir import IIR_K_Q16, IirState, iir_filter
from bms_emu.device.analog import DeviceAnalog
from bms_emu.device.conversion_kernel import HAVE_NUMBA, iir_step
from bms_emu.device.eis_block import EIS_READ_GROUPS, EIS_WRITE_GROUPS, EisBlock
from bms_emu.device.timing import DEFAULT_TIMING, DeviceTiming
from bms_emu.protocol.opcodes import ACTION, COMMANDS, POLL, READ, WRITE, CommandSpec
from bms_emu.protocol.pec import check_data_pec, data_pec_bytes
from bms_emu.protocol.registers import (
    CELL_LSB_V,
    CELL_OFFSET_V,
    CTH_TABLE_MV,
    LAYOUTS,
    celsius_to_itmp_code,
    volts_to_code,
)

__all__ = [
    "ACTION_HANDLERS",
    "AUX_SEQUENCE",
    "CLEARED",
    "CURRENT_LSB_A",
    "CURRENT_POR",
    "IIR_PARAMETER",
    "POLL_SOURCES",
    "POR",
    "VPV_DIVIDER",
    "Device",
    "c_average_codes",
    "cs_mismatch_mask",
    "current_group_bytes",
]

#: Register value after a clear command (as raw 16-bit pattern).
CLEARED: Final = -0x8000
#: LSB of the current-channel result (extension): 1 mA (the channel's offset is tens of mA).
CURRENT_LSB_A: Final = 1e-3
#: Events closer than this run in their fixed order (C before S): the 8th C result and the S
#: result of one RD window are one instant even when float sums of their periods differ by an ulp.
_TIE_S: Final = 1e-9
#: Internal event handlers in Device._next_event's order (which wins a tie).
_EVENT_HANDLERS: Final = ("_ev_wake", "_ev_c", "_ev_s", "_ev_aux", "_ev_aux2", "_ev_dcto",
                          "_ev_eis", "_ev_sleep")
#: CUR group after power-on: the largest code (like 0x7FFF for cells), counter 0.
CURRENT_POR: Final = bytes.fromhex("ffffff7f0000")
#: Register value after power-on, sleep and SRST.
POR: Final = 0x7FFF
#: FC[2:0] -> divider of ``y += (x - y) / k``, derived from the golden filter's table
#: (:data:`bms_emu.afe.iir.IIR_K_Q16`, the same values as foxBMS ``ADI_IIR_FILTER_PARAMETER_*``;
#: 0 = filter off, the filtered registers then follow the C results).
IIR_PARAMETER: Final = (None, *(65536 // IIR_K_Q16[fc] for fc in range(1, 8)))
#: Divider assumed for the VPV / VMV aux channels (not public; see docs).
VPV_DIVIDER: Final = 25.0

#: ADAX CH[4:0] -> channels converted, in order (ADI adBms6830 library ``CH`` enum). Names:
#: "G1".."G10" GPIO, then status channels. CH = 0 converts the whole sequence.
_AUX_NAMES: Final = (
    *(f"G{n}" for n in range(1, 11)),
    "VREF2",
    "VD",
    "VA",
    "ITMP",
    "VPV",
    "VMV",
    "VRES",
    "VREF3",
)
AUX_SEQUENCE: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {0: _AUX_NAMES[:17], **{ch: (_AUX_NAMES[ch - 1],) for ch in range(1, 19)}}
)
#: ADAX2 CH[3:0] -> redundant GPIO channels converted.
_AUX2_SEQUENCE: Final = {0: tuple(range(1, 11)), **{ch: (ch,) for ch in range(1, 11)}}

#: Action command -> handler method name (the dispatch table).
ACTION_HANDLERS: Mapping[str, str] = MappingProxyType(
    {
        "ADCV": "_cmd_adcv",
        "ADSV": "_cmd_adsv",
        "ADAX": "_cmd_adax",
        "ADAX2": "_cmd_adax2",
        "CLRCELL": "_cmd_clrcell",
        "CLRAUX": "_cmd_clraux",
        "CLRFC": "_cmd_clrfc",
        "CLOVUV": "_cmd_clovuv",
        "CLRSPIN": "_cmd_clrspin",
        "MUTE": "_cmd_mute",
        "UNMUTE": "_cmd_unmute",
        "SNAP": "_cmd_snap",
        "UNSNAP": "_cmd_unsnap",
        "RSTCC": "_cmd_rstcc",
        "SRST": "_cmd_srst",
        "STCOMM": "_cmd_nop",
        "EISSTART": "_cmd_eis_start",
        "EISSTOP": "_cmd_eis_stop",
    }
)
#: Write command -> register group it writes (the CLRFLAG "group" is an action on STATC).
_WRITE_GROUPS: Final = {"WRCFGA": "CFGA", "WRCFGB": "CFGB", "WRPWMA": "PWMA",
                        "WRPWMB": "PWMB", "WRCOMM": "COMM", "CLRFLAG": "CLRFLAG",
                        **EIS_WRITE_GROUPS}  # fmt: skip
_EIS_GROUPS: Final = frozenset(EIS_WRITE_GROUPS.values())
#: Poll command -> converters it waits for.
POLL_SOURCES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "PLADC": ("C", "S"),
        "PLCADC": ("C",),
        "PLSADC": ("S",),
        "PLAUX": ("AUX",),
        "PLAUX2": ("AUX2",),
        "PLAUT": (),
    }
)

_CELL_KINDS: Final = ("CV", "AC", "SV", "FC")
_LETTERS: Final = "ABCDEF"


def _writable_mask(layout: str, exclude: tuple[str, ...] = ()) -> int:
    m = 0
    for f in LAYOUTS[layout].fields:
        if f.name not in exclude:
            m |= f.mask
    return m


_WRITE_MASK: Final = {
    "CFGA": _writable_mask("CFGA", ("MUTE_ST", "SNAP_ST")),
    "CFGB": _writable_mask("CFGB"),
    "PWMA": _writable_mask("PWMA"),
    "PWMB": _writable_mask("PWMB"),
    "COMM": _writable_mask("COMM"),
}
_CFGA = {f.name: f for f in LAYOUTS["CFGA"].fields}
_CFGB = {f.name: f for f in LAYOUTS["CFGB"].fields}
_STATC = {f.name: f.mask for f in LAYOUTS["STATC"].fields}
_CLRFLAG_MASK: Final = _writable_mask("CLRFLAG")


def _field(word: int, f: Any) -> int:
    out = 0
    shift = 0
    for lsb, w in f.segments:
        out |= ((word >> lsb) & ((1 << w) - 1)) << shift
        shift += w
    return out


def _put(word: int, f: Any, value: int) -> int:
    word &= ~f.mask
    shift = 0
    for lsb, w in f.segments:
        word |= ((value >> shift) & ((1 << w) - 1)) << lsb
        shift += w
    return word


# Power-on contents (48-bit little-endian words). GPO = 1 (pull-downs off) and PWM = 0xF (100 %)
# follow the LTC681x power-on values (assumption; see docs).
_POR_WORDS: Final = {
    "CFGA": _put(0, _CFGA["GPO"], 0x3FF),
    "CFGB": 0,
    "PWMA": _WRITE_MASK["PWMA"],
    "PWMB": _WRITE_MASK["PWMB"],
    "COMM": 0,
}


def current_group_bytes(current_A: float, conversion_count: int) -> bytes:
    """The CUR register group (extension, read by RDI): where a current result lives.

    Bytes 0-3: signed 32-bit current, LSB :data:`CURRENT_LSB_A` (saturating); bytes 4-5: the
    low 16 bits of the C conversion counter of the window it was sampled in (the cells read
    with that counter were converted synchronously).

    >>> current_group_bytes(-1.5, 7).hex()
    '24faffff0700'
    """
    code = min(max(round(current_A / CURRENT_LSB_A), -(2**31)), 2**31 - 1)  # s32, saturating
    return code.to_bytes(4, "little", signed=True) + (conversion_count & 0xFFFF).to_bytes(
        2, "little")


def c_average_codes(ring: Sequence[npt.ArrayLike]) -> npt.NDArray[np.int16]:
    """Average of the last C results, as the S result is compared with (and as AC publishes).

    ``rint(mean)``: round half to even on the exact mean (a sum of int16 codes over a power of
    two divides exactly in float64). ``rtl_models/cs_compare.sv`` does this on the running sum.

    >>> c_average_codes([[1, -1, 5], [2, -2, 5]]).tolist()  # 1.5 -> 2, -1.5 -> -2
    [2, -2, 5]
    """
    return np.rint(np.mean(np.stack(ring).astype(np.float64), axis=0)).astype(np.int16)


def cs_mismatch_mask(s_codes: npt.ArrayLike, c_avg_codes: npt.ArrayLike, cth: int) -> int:
    """Per-channel C-vs-S mismatch bits: bit ``i`` set if ``|S_i - C_avg_i| > CTH`` (codes).

    ``cth`` is the CFGA CTH[2:0] setting; its threshold is :data:`CTH_TABLE_MV` in cell
    codes (150 uV LSB). The device ORs the mask into the sticky CSxFLT bits of STATC.

    >>> cs_mismatch_mask([100, 100], [66, 65], 0)  # CTH 0 = 5.1 mV = 34 codes
    2
    """
    s = np.asarray(s_codes).astype(np.int32)
    c = np.asarray(c_avg_codes).astype(np.int32)
    bad = np.abs(s - c) > CTH_TABLE_MV[cth] * 1e-3 / CELL_LSB_V
    return int(np.dot(bad.astype(np.int64), 1 << np.arange(bad.shape[0], dtype=np.int64)))


def _codes(v_V: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    """:func:`volts_to_code` of one conversion's float64 array with in-place ufuncs instead of
    ``np.clip``'s Python wrapper (once per conversion; equal for every non-NaN input, as
    tests/device/test_device_fast_paths.py checks)."""
    c = np.rint((v_V - CELL_OFFSET_V) / CELL_LSB_V)
    np.maximum(c, -0x8000, out=c)
    np.minimum(c, 0x7FFF, out=c)
    return c.astype(np.int16)


#: Register group names of each cell result kind, in _render's order (A..F, ALL).
_GROUP_NAMES: Final = {k: tuple(k + x for x in (*_LETTERS[:6], "ALL")) for k in _CELL_KINDS}


def _render(codes: npt.NDArray[np.int16]) -> dict[str, bytes]:
    """Group bytes (A..F and ALL) for 16 cell codes."""
    b = codes.astype("<i2").tobytes()
    out = {_LETTERS[g]: b[6 * g : 6 * g + 6] for g in range(5)}
    out["F"] = b[30:32] + b"\xff\xff\xff\xff"
    out["ALL"] = b
    return out


class Device:
    """One ADBMS6830-class chip.

    Parameters
    ----------
    analog : DeviceAnalog
        The analog side (measurements, balancing, fault monitors).
    timing : DeviceTiming, optional
        Clock and durations.
    sid : int, optional
        48-bit serial ID returned by RDSID.
    rev : int, optional
        4-bit revision code in STATE.
    t0_s : float, optional
        Power-on time; the device starts awake (standby) with power-on registers.

    Attributes
    ----------
    inject : dict
        Emulator-only fault injection: ``"comp_silent"`` (True: the C-vs-S comparator never
        reports a mismatch: a latent fault of the safety mechanism), ``"comp_logic"`` (True:
        every C-vs-S comparison reports
        all channels and sets COMP).
    """

    def __init__(
        self,
        analog: DeviceAnalog,
        *,
        timing: DeviceTiming = DEFAULT_TIMING,
        sid: int = 0,
        rev: int = 0,
        t0_s: float = 0.0,
    ) -> None:
        self.analog = analog
        self.n_channels = int(analog.n_channels)
        if self.n_channels != 16:
            raise ValueError(f"the ADBMS6830 personality has 16 channels, got {self.n_channels}")
        self.timing = timing
        self.sid = int(sid) & ((1 << 48) - 1)
        self.rev = int(rev) & 0xF
        self.inject: dict[str, bool] = {"comp_logic": False, "comp_silent": False}
        self._t = float(t0_s)
        self._handlers = {name: getattr(self, meth) for name, meth in ACTION_HANDLERS.items()}
        self._balance = np.zeros(self.n_channels)
        self._tc = timing.c_conv_s
        self._ts = timing.s_conv_s
        self._ext_balance: npt.NDArray[np.float64] | None = None
        self._asleep = False
        self._wake_at = math.inf
        self._reset(self._t)

    # ------------------------------------------------------------------ state / reset
    def _reset(self, t: float) -> None:
        """Power-on / sleep / SRST: every register, job and counter to its reset value."""
        self._cc = 0
        self._words = dict(_POR_WORDS)
        self._statc = 0  # sticky STATC flag bits (CSFLT and bytes 4-5)
        self._ovuv = 0  # STATD bytes 0-3
        self._ct = 0  # conversion counter (CT:CTS as one 13-bit count)
        self._mute = False
        self._snap = False
        self._thsd = False
        por = np.full(16, POR, dtype=np.int16)
        self._live: dict[str, npt.NDArray[np.int16]] = {k: por.copy() for k in _CELL_KINDS}
        self._aux = np.full(12, POR, dtype=np.int16)  # G1..G10, VMV, VPV
        self._rax = np.full(10, POR, dtype=np.int16)
        self._stat = {k: POR for k in ("VREF2", "ITMP", "VREF3", "VD", "VA", "VRES")}
        self._groups: dict[str, bytes] = {"CUR": CURRENT_POR}
        for k in _CELL_KINDS:
            self._publish(k)
        self._publish_aux()
        self._reply_cache: dict[str, tuple[bytes, int, bytes]] = {}
        self._fc_state: IirState | None = None
        self._ring: list[npt.NDArray[np.int16]] = []
        self._block = 0
        # jobs
        self._c_on = False
        self._c_cont = False
        self._c_ow = 0
        self._c_dcp = True
        self._c_next = math.inf
        # result k of a job is due at t0 + k * period: computed from the start, never summed,
        # so the 8th C result and the S result of one window fall on the same instant
        self._c_t0, self._c_k = 0.0, 0
        self._c_left = 0
        self._c_run = 0
        self._s_on = False
        self._s_cont = False
        self._s_ow = 0
        self._s_dcp = True
        self._s_rd = False
        self._s_next = math.inf
        self._s_t0, self._s_k = 0.0, 0
        self._aux_q: list[tuple[float, str]] = []
        self._aux2_q: list[tuple[float, int]] = []
        self._ref_ready: float | None = None
        self._eis = EisBlock()  # EIS engine extension (bms_emu.device.eis_block)
        self._dcto_end = math.inf
        self._last_cmd = t
        self._reschedule()

    def _reschedule(self) -> None:
        """Recompute the time of the next internal event (fast path of :meth:`advance_to`)."""
        nxt = min(
            self._c_next,
            self._s_next,
            self._aux_q[0][0] if self._aux_q else math.inf,
            self._aux2_q[0][0] if self._aux2_q else math.inf,
            self._dcto_end,
            self._wake_at,
            self._eis.done_at,
        )
        self._next_other = nxt
        sleep_at = (
            math.inf if self._asleep_or_waking() else self._last_cmd + self.timing.sleep_timeout_s
        )
        self._next = min(nxt, sleep_at)

    def _asleep_or_waking(self) -> bool:
        return self._asleep or self._wake_at < math.inf

    # ------------------------------------------------------------------ public inspection
    @property
    def t_s(self) -> float:
        """Time the device has been advanced to."""
        return self._t

    @property
    def command_counter(self) -> int:
        """Current 6-bit command counter."""
        return self._cc

    @property
    def next_event_s(self) -> float:
        """Time of the next internal event (result, wake-up, timeout, sleep); ``inf`` if none.

        For hosts that run the device against a wall clock and must act when registers change
        (the serial bridge's shadow image).
        """
        return self._next

    @property
    def next_result_s(self) -> float:
        """Time the next conversion result lands (C, S, AUX, AUX2, EIS); ``inf`` if none runs.

        Unlike :attr:`next_event_s` it leaves out wake-up, sleep and the discharge timeout: a
        host that computes results ahead of its clock (the serial bridge) runs only these early.
        """
        return min(
            self._c_next,
            self._s_next,
            self._aux_q[0][0] if self._aux_q else math.inf,
            self._aux2_q[0][0] if self._aux2_q else math.inf,
            self._eis.done_at,
        )

    @property
    def asleep(self) -> bool:
        """True while the device sleeps or is waking up (it does not take part in windows)."""
        return self._asleep_or_waking()

    @property
    def balance_duty(self) -> npt.NDArray[np.float64]:
        """Effective discharge duty per channel as last sent to the analog side, shape (16,)."""
        return self._balance.copy()

    def register(self, group: str) -> bytes:
        """Current contents of a register group as the host would read it (no PEC)."""
        return self._read_data(group, {}, self._t)

    def codes(self, kind: str) -> npt.NDArray[np.int16]:
        """Live (un-snapped) result codes: kind "CV", "AC", "SV" or "FC", shape (16,)."""
        return self._live[kind].copy()

    def config_snapshot(self) -> tuple[Any, ...]:
        """Everything a command can change that time alone does not: for invariant tests.

        Writable registers, command counter, sticky flags, mute/snap, and the settings and
        start times of the conversion jobs (not their results, which land with time).
        """
        return (
            tuple(sorted(self._words.items())),
            self._cc,
            self._statc,
            self._mute,
            self._snap,
            self._job_key,
            self._asleep,
            self._eis.key(),
        )

    _job_key: tuple[Any, ...] = ()

    # ------------------------------------------------------------------ time
    def advance_to(self, t_s: float) -> None:
        """Run every internal event (conversion results, sleep, discharge timeout) up to t_s.

        Parameters
        ----------
        t_s : float
            New time; not earlier than :attr:`t_s`.
        """
        if t_s < self._next:
            if t_s > self._t:
                self._t = t_s
            return
        if t_s < self._t:
            raise ValueError(f"time went backwards: {t_s} < {self._t}")
        self._fast_forward(t_s)
        while True:
            te, kind = self._next_event()
            if te > t_s:
                break
            self._t = max(self._t, te)
            kind(te)
        self._t = t_s

    def _next_event(self) -> tuple[float, Any]:
        # the times first and the handler looked up for the winner only (twice per
        # conversion: eight bound methods per call were most of its cost); ties go to the
        # earlier entry of _EVENT_HANDLERS
        times = (
            self._wake_at,
            self._c_next,
            self._s_next,
            self._aux_q[0][0] if self._aux_q else math.inf,
            self._aux2_q[0][0] if self._aux2_q else math.inf,
            self._dcto_end,
            self._eis.done_at,
            math.inf
            if self._asleep_or_waking()
            else self._last_cmd + self.timing.sleep_timeout_s,
        )
        best, k = math.inf, -1
        for i, te in enumerate(times):
            if te < best - _TIE_S:
                best, k = te, i
        return best, (getattr(self, _EVENT_HANDLERS[k]) if k >= 0 else None)

    def _fast_forward(self, t: float) -> None:
        """Skip continuous conversions far behind ``t`` (only the recent ones shape the registers).

        The horizon covers the IIR memory (12 time constants) and at least 64 C conversions; the
        skipped count is a multiple of 8 so the C/S alignment and the averaging phase are kept.
        """
        if not (self._c_on and self._c_cont):
            return
        k = IIR_PARAMETER[self._cfga("FC")] or 1
        horizon = max(64, 12 * k) * self._tc
        limit = min(t, self._dcto_end, self._last_cmd + self.timing.sleep_timeout_s) - horizon
        if self._c_next >= limit:
            return
        per = self.timing.c_per_s
        n = int((limit - self._c_next) // self._tc)
        n -= n % per
        if n <= 0:
            return
        self._c_k += n
        self._c_next = self._c_t0 + self._c_k * self._tc
        self._c_run += n
        self._ct = (self._ct + n) & 0x1FFF
        if self._s_on and self._s_cont:
            self._s_k += n // per
            self._s_next = self._s_t0 + self._s_k * self._ts
        self._reschedule()

    # ------------------------------------------------------------------ events
    def _ev_wake(self, t: float) -> None:
        self._wake_at = math.inf
        self._asleep = False
        self._last_cmd = t
        self._statc |= _STATC["SLEEP"]
        self._reschedule()

    def _ev_sleep(self, t: float) -> None:
        """Watchdog timeout: registers reset; discharge continues only while DCTO runs."""
        keep = self._balance.copy() if self._dcto_end < math.inf else None
        dcto_end = self._dcto_end
        self._reset(t)
        self._asleep = True
        if keep is not None:
            self._ext_balance = keep
            self._dcto_end = dcto_end
        else:
            self._ext_balance = None
        self._reschedule()
        self._update_balance(t)

    def _ev_eis(self, t: float) -> None:
        """The EIS record ends: its results appear."""
        self._eis.complete(t)
        self._reschedule()

    def _ev_dcto(self, t: float) -> None:
        """Discharge timer expired: DCC bits cleared, discharge stops."""
        self._dcto_end = math.inf
        self._ext_balance = None
        self._words["CFGB"] = _put(self._words["CFGB"], _CFGB["DCC"], 0)
        self._reschedule()
        self._update_balance(t)

    def _ev_c(self, te: float) -> None:
        v = self.analog.measure_cells(te - self._tc, te, "C", self._c_ow)
        codes = _codes(np.asarray(v, dtype=np.float64))
        self._live["CV"] = codes
        self._publish("CV")
        self._ct = (self._ct + 1) & 0x1FFF
        # extension: the current channel converts in the same window as the cells
        i_A = self.analog.measure_current_A(te - self._tc, te)
        self._groups["CUR"] = current_group_bytes(i_A, self._ct)
        self._c_run += 1
        # Cell OV/UV against CFGB thresholds (12-bit codes = top bits of the 16-bit code).
        self._update_ovuv(codes)
        # IIR-filtered registers.
        # the bit-true golden filter; a reset (None) starts it settled at this result
        if self._fc_state is None:
            self._fc_state = IirState.from_codes(codes.astype(np.int64))
        fc = self._cfga("FC")
        if fc and HAVE_NUMBA:  # one compiled step, the same integer arithmetic
            self._live["FC"] = iir_step(codes, self._fc_state.y, IIR_K_Q16[fc])
        else:
            x = codes.astype(np.int64)[np.newaxis, :]
            self._live["FC"] = iir_filter(x, self._fc_state, fc)[0].astype(np.int16)
        self._publish("FC")
        # Averaging: the mean of each block of 8 consecutive C results of a run.
        self._ring.append(codes)
        if len(self._ring) > self.timing.c_per_s:
            del self._ring[0]
        self._block += 1
        if self._block >= self.timing.c_per_s:
            self._block = 0
            self._live["AC"] = self._ring_mean()
            self._publish("AC")
        self._c_k += 1
        self._c_next = self._c_t0 + self._c_k * self._tc
        if not self._c_cont:
            self._c_left -= 1
            if self._c_left <= 0:
                self._c_on = False
                self._c_next = math.inf
                self._jobs_changed(te)
        self._sample_monitors(te)
        self._reschedule()

    def _ring_mean(self) -> npt.NDArray[np.int16]:
        return c_average_codes(self._ring)

    def _ev_s(self, te: float) -> None:
        v = self.analog.measure_cells(te - self._ts, te, "S", self._s_ow)
        s = _codes(np.asarray(v, dtype=np.float64))
        self._live["SV"] = s
        self._publish("SV")
        per = self.timing.c_per_s
        if (
            (self._c_on or self._s_rd)
            and self._c_run >= per
            and len(self._ring) == per
            and self._s_ow == 0
            and (self._c_ow == 0)
        ):
            mask = cs_mismatch_mask(s, self._ring_mean(), self._cfga("CTH"))
            if self.inject.get("comp_silent"):
                mask = 0
            if self.inject.get("comp_logic"):
                mask = 0xFFFF
                self._statc |= _STATC["COMP"]
            self._statc |= mask << 0  # CSFLT occupies bits 0..15
        if self._s_cont:
            self._s_k += 1
            self._s_next = self._s_t0 + self._s_k * self._ts
        else:
            self._s_on = False
            self._s_rd = False
            self._s_next = math.inf
            self._jobs_changed(te)
        self._reschedule()

    def _ev_aux(self, te: float) -> None:
        _, name = self._aux_q.pop(0)
        if name.startswith("G"):
            n = int(name[1:])
            v = self.analog.measure_aux(te - self.timing.aux_channel_s, te, "aux")
            self._aux[n - 1] = int(volts_to_code(float(v[n - 1])))
        elif name != "VREF3":
            st = self.analog.measure_status(te)
            if name == "ITMP":
                self._stat["ITMP"] = int(celsius_to_itmp_code(st["itmp_C"]))
            elif name == "VPV":
                self._aux[11] = int(volts_to_code(st["vpv_V"] / VPV_DIVIDER))
            elif name == "VMV":
                self._aux[10] = int(volts_to_code(st["vmv_V"] / VPV_DIVIDER))
            else:
                key = {"VREF2": "vref2_V", "VD": "vd_V", "VA": "va_V", "VRES": "vres_V"}[name]
                self._stat[name] = int(volts_to_code(st[key]))
        self._publish_aux()
        if not self._aux_q:
            self._jobs_changed(te)
        self._reschedule()

    def _ev_aux2(self, te: float) -> None:
        _, n = self._aux2_q.pop(0)
        v = self.analog.measure_aux(te - self.timing.aux_channel_s, te, "raux")
        self._rax[n - 1] = int(volts_to_code(float(v[n - 1])))
        self._publish_aux()
        if not self._aux2_q:
            self._jobs_changed(te)
        self._reschedule()

    # ------------------------------------------------------------------ helpers
    def _cfga(self, name: str) -> int:
        return _field(self._words["CFGA"], _CFGA[name])

    def _cfgb(self, name: str) -> int:
        return _field(self._words["CFGB"], _CFGB[name])

    def _publish(self, kind: str) -> None:
        """Make live results of ``kind`` readable (unless SNAP froze the result registers)."""
        if self._snap:
            return
        # _render's bytes written straight into the groups (twice per conversion: no dict)
        b = self._live[kind].astype("<i2").tobytes()
        a, b_, c, d, e, f, all_ = _GROUP_NAMES[kind]
        g = self._groups
        g[a], g[b_], g[c], g[d], g[e] = b[0:6], b[6:12], b[12:18], b[18:24], b[24:30]
        g[f] = b[30:32] + b"\xff\xff\xff\xff"
        g[all_] = b

    def _publish_aux(self) -> None:
        a = self._aux.astype("<i2").tobytes()
        for g in range(4):
            self._groups["AUX" + _LETTERS[g]] = a[6 * g : 6 * g + 6]
        r = self._rax.astype("<i2").tobytes() + b"\xff\xff"
        for g in range(4):
            self._groups["RAX" + _LETTERS[g]] = (r + b"\xff\xff")[6 * g : 6 * g + 6]
        s = self._stat
        self._groups["STATA"] = np.array(
            [s["VREF2"], s["ITMP"], s["VREF3"]], dtype="<i2").tobytes()  # fmt: skip
        self._groups["STATB"] = np.array([s["VD"], s["VA"], s["VRES"]], dtype="<i2").tobytes()

    def _update_ovuv(self, codes: npt.NDArray[np.int16]) -> None:
        def signed12(c: int) -> int:
            return c - 0x1000 if c & 0x800 else c

        uv = signed12(self._cfgb("VUV")) * 16
        ov = signed12(self._cfgb("VOV")) * 16
        # STATD: channel i's UV flag at bit 2i, its OV flag at bit 2i+1. A loop over Python
        # ints: once per conversion on 16 codes, where five numpy calls cost more than this
        bits = 0
        for i, c in enumerate(codes.tolist()):
            if c < uv:
                bits |= 1 << (2 * i)
            if c > ov:
                bits |= 2 << (2 * i)
        self._ovuv = bits

    def _forced_flags(self) -> int:
        """STATC bits forced by the FLAG_D bits of CFGA (latent-fault tests)."""
        d = self._cfga("FLAG_D")
        m = 0
        if d & 0x03:
            m |= _STATC["OSCCHK"]
        if d & 0x04:
            m |= (_STATC["VA_OV"] | _STATC["VD_OV"]) if d & 0x08 else (
                _STATC["VA_UV"] | _STATC["VD_UV"])  # fmt: skip
        if d & 0x10:
            m |= _STATC["THSD"]
        if d & 0x20:
            m |= _STATC["CED"] | _STATC["SED"]
        if d & 0x40:
            m |= _STATC["CMED"] | _STATC["SMED"]
        if d & 0x80:
            m |= _STATC["TMODCHK"]
        return m

    def _sample_monitors(self, t: float) -> None:
        """Latch the analog fault monitors into the sticky STATC flags."""
        f = self.analog.fault_state(t)
        m = self._forced_flags()
        for key, names in (
            ("thermal_shutdown", ("THSD",)),
            ("va_ov", ("VA_OV",)),
            ("va_uv", ("VA_UV",)),
            ("vd_ov", ("VD_OV",)),
            ("vd_uv", ("VD_UV",)),
            ("osc_fault", ("OSCCHK",)),
            ("trim_ecc_corrected", ("CED", "SED")),
            ("trim_ecc_uncorrectable", ("CMED", "SMED")),
        ):
            if f.get(key):
                for n in names:
                    m |= _STATC[n]
        self._statc |= m
        thsd = bool(f.get("thermal_shutdown"))
        if thsd != self._thsd:
            self._thsd = thsd
            self._update_balance(t)

    def _oc_counter(self) -> int:
        """Oscillator check counter in STATD byte 5 (nominal 61; FLAG_D forces fast/slow)."""
        d = self._cfga("FLAG_D")
        if d & 0x01:
            return 80
        if d & 0x02:
            return 40
        return 61

    def _duty(self) -> npt.NDArray[np.float64]:
        if self._asleep or self._wake_at < math.inf:
            return self._ext_balance if self._ext_balance is not None else np.zeros(16)
        if self._mute or self._thsd:
            return np.zeros(16)
        converting_no_dcp = (self._c_on and not self._c_dcp) or (self._s_on and not self._s_dcp)
        if converting_no_dcp:
            return np.zeros(16)
        dcc = self._cfgb("DCC")
        if not dcc:
            return np.zeros(16)  # no switch on: what on * pwm gives, without building pwm
        on = ((dcc >> np.arange(16)) & 1).astype(np.float64)
        pw = self._words["PWMA"] | (self._words["PWMB"] << 48)
        pwm = np.array([(pw >> (4 * n)) & 0xF for n in range(16)], dtype=np.float64) / 15.0
        return on * pwm

    def _update_balance(self, t: float) -> None:
        duty = self._duty()
        # np.array_equal's checks and conversions cost more than the comparison of 16 values
        if duty.shape != self._balance.shape or not (duty == self._balance).all():
            self._balance = duty.copy()
            self.analog.set_balance(t, duty)

    def _jobs_changed(self, t: float) -> None:
        """A job started or stopped: reference power-down, balancing pause, job key."""
        idle = not (self._c_on or self._s_on or self._aux_q or self._aux2_q)
        if idle and not self._cfga("REFON"):
            self._ref_ready = None
        self._update_balance(t)

    def _conv_start(self, t: float) -> float:
        """Start time of a conversion commanded at ``t`` (waits for REFUP if needed)."""
        if self._ref_ready is None:
            self._ref_ready = t + self.timing.refup_s
        return max(t, self._ref_ready)

    # ------------------------------------------------------------------ window interface
    def window_start(self, t_s: float) -> bool:
        """Activity on the port at ``t_s``: True if the device takes part in this window.

        A sleeping device starts waking up (ready after t_WAKE) and ignores the window.
        """
        self.advance_to(t_s)
        if self._asleep:
            self._asleep = False
            self._wake_at = t_s + self.timing.wake_s
            self._reschedule()
            return False
        return self._wake_at == math.inf

    def _accepted(self, spec: CommandSpec, t: float) -> None:
        if spec.resets_cc:
            self._cc = 0
        elif spec.increments_cc:
            self._cc = 1 if self._cc >= 63 else self._cc + 1
        self._last_cmd = t
        self._reschedule()

    def read_reply(self, spec: CommandSpec, params: Mapping[str, int], t_s: float) -> bytes:
        """Data + PEC10 (with the command counter) for a read command, as sent on MISO."""
        group = spec.group
        assert group is not None
        data = self._groups.get(group)
        if data is None:
            data = self._read_data(group, params, t_s)
        self._last_cmd = t_s
        sleep_at = self._last_cmd + self.timing.sleep_timeout_s
        self._next = min(self._next_other, sleep_at)
        cc = self._cc
        hit = self._reply_cache.get(group)
        if hit is not None and hit[0] is data and hit[1] == cc:
            reply = hit[2]
        else:
            reply = data + data_pec_bytes(data, cc)
            self._reply_cache[group] = (data, cc, reply)
        if params and params.get("ERR"):
            reply = reply[:-1] + bytes((reply[-1] ^ 0x01,))
        return reply

    def _read_data(self, group: str, params: Mapping[str, int], t: float) -> bytes:
        data = self._groups.get(group)
        if data is not None:
            return data
        if group in EIS_READ_GROUPS:
            return self._eis.read(group, t)
        if group in ("CFGA", "CFGB", "PWMA", "PWMB", "COMM"):
            w = self._words[group]
            if group == "CFGA":
                w = _put(w, _CFGA["MUTE_ST"], int(self._mute))
                w = _put(w, _CFGA["SNAP_ST"], int(self._snap))
            return w.to_bytes(6, "little")
        if group == "STATC":
            self._sample_monitors(t)
            w = self._statc
            w = _put(w, LAYOUTS["STATC"].fields[1], self._ct >> 2)
            w = _put(w, LAYOUTS["STATC"].fields[2], self._ct & 0x3)
            return w.to_bytes(6, "little")
        if group == "STATD":
            self._sample_monitors(t)
            return (self._ovuv | (self._oc_counter() << 40)).to_bytes(6, "little")
        if group == "STATE":
            w = (self._cfga("GPO") << 32) | (self.rev << 44)
            return w.to_bytes(6, "little")
        if group == "SID":
            return self.sid.to_bytes(6, "little")
        if group == "CSALL":
            return self._groups["CVALL"] + self._groups["SVALL"]
        if group == "ACSALL":
            return self._groups["ACALL"] + self._groups["SVALL"]
        if group == "ASALL":
            g = self._groups
            aux = b"".join(g["AUX" + c] for c in "ABCD")
            rax = b"".join(g["RAX" + c] for c in "ABCD")[:20]
            stc = self._read_data("STATC", {}, t)
            ste = self._read_data("STATE", {}, t)
            status = (g["STATA"] + g["STATB"] + stc[0:2] + stc[4:6]
                      + self._read_data("STATD", {}, t) + ste[4:6])  # fmt: skip
            return aux + rax + status
        spec = COMMANDS.get("RD" + group)
        size = spec.data_len if spec is not None else 6
        return b"\xff" * size

    def write_block(self, spec: CommandSpec, block: bytes, t_s: float) -> bool:
        """Latch one device's ``data + PEC10`` block of a write; False (no change) if bad PEC."""
        if len(block) != spec.data_len + 2:
            return False
        ok, _cc = check_data_pec(block)
        if not ok:
            return False
        group = _WRITE_GROUPS.get(spec.name)
        if group is None:
            return False
        word = int.from_bytes(block[:-2], "little")
        if group in _EIS_GROUPS:
            self._eis.write(group, block[:-2])
        elif group == "CLRFLAG":
            self._statc &= ~(word & _CLRFLAG_MASK)
            self._statc |= self._forced_flags()
        else:
            old = self._words[group]
            self._words[group] = word & _WRITE_MASK[group]
            if group == "CFGA":
                self._on_cfga(old, t_s)
            elif group == "CFGB":
                self._on_cfgb(t_s)
        self._accepted(spec, t_s)
        self._update_balance(t_s)
        return True

    def _on_cfga(self, old: int, t: float) -> None:
        refon = self._cfga("REFON")
        if refon and self._ref_ready is None:
            self._ref_ready = t + self.timing.refup_s
        elif not refon and not (self._c_on or self._s_on or self._aux_q or self._aux2_q):
            self._ref_ready = None
        self._statc |= self._forced_flags()

    def _on_cfgb(self, t: float) -> None:
        dcto = self._cfgb("DCTO")
        if dcto:
            self._dcto_end = t + dcto * self.timing.dcto_unit_s[self._cfgb("DTRNG")]
        else:
            self._dcto_end = math.inf
        self._reschedule()

    def execute(self, spec: CommandSpec, params: Mapping[str, int], t_s: float) -> None:
        """Run an accepted action command (table dispatch through :data:`ACTION_HANDLERS`)."""
        handler = self._handlers.get(spec.name)
        if handler is None:
            return
        handler(params, t_s)
        self._accepted(spec, t_s)
        self._job_key = (
            self._c_on, self._c_cont, self._c_ow, self._c_dcp, self._s_on, self._s_cont,
            self._s_ow, self._s_rd, tuple(self._aux_q), tuple(self._aux2_q),
        )  # fmt: skip

    def busy(self, sources: tuple[str, ...]) -> bool:
        """Poll: True while any of the converters in ``sources`` has no result of its job yet."""
        for s in sources:
            if s == "C" and self._c_on and (not self._c_cont or self._c_run == 0):
                return True
            if s == "S" and self._s_on and not self._s_cont:
                return True
            if s == "AUX" and self._aux_q:
                return True
            if s == "AUX2" and self._aux2_q:
                return True
        return False

    # ------------------------------------------------------------------ action handlers
    def _cmd_nop(self, params: Mapping[str, int], t: float) -> None:
        return None

    def _cmd_eis_start(self, p: Mapping[str, int], t: float) -> None:
        self._eis.start(self.analog, t)
        self._reschedule()

    def _cmd_eis_stop(self, p: Mapping[str, int], t: float) -> None:
        self._eis.stop()
        self._reschedule()

    def _cmd_adcv(self, p: Mapping[str, int], t: float) -> None:
        start = self._conv_start(t)
        self._c_on = True
        self._c_cont = bool(p["CONT"])
        self._c_ow = p["OW"]
        self._c_dcp = bool(p["DCP"])
        self._c_run = 0
        self._ring = []
        self._block = 0
        self._c_left = self.timing.c_per_s if p["RD"] else 1
        self._c_t0, self._c_k = start, 1
        self._c_next = start + self._tc
        if p["RSTF"]:
            self._fc_state = None
            self._clear("FC")
        if p["RD"]:
            self._s_on = True
            self._s_cont = self._c_cont
            self._s_ow = p["OW"]
            self._s_dcp = self._c_dcp
            self._s_rd = True
            self._s_t0, self._s_k = start, 1
            self._s_next = start + self._ts
        elif self._s_rd:
            self._s_on = False
            self._s_rd = False
            self._s_next = math.inf
        self._jobs_changed(t)
        self._reschedule()

    def _cmd_adsv(self, p: Mapping[str, int], t: float) -> None:
        start = self._conv_start(t)
        self._s_on = True
        self._s_cont = bool(p["CONT"])
        self._s_ow = p["OW"]
        self._s_dcp = bool(p["DCP"])
        self._s_rd = False
        self._s_t0, self._s_k = start, 1
        self._s_next = start + self._ts
        self._jobs_changed(t)
        self._reschedule()

    def _cmd_adax(self, p: Mapping[str, int], t: float) -> None:
        start = self._conv_start(t)
        names = AUX_SEQUENCE.get(p["CH"], ())
        dt = self.timing.aux_channel_s
        self._aux_q = [(start + (i + 1) * dt, n) for i, n in enumerate(names)]
        self._jobs_changed(t)
        self._reschedule()

    def _cmd_adax2(self, p: Mapping[str, int], t: float) -> None:
        start = self._conv_start(t)
        chans = _AUX2_SEQUENCE.get(p["CH"], ())
        dt = self.timing.aux_channel_s
        self._aux2_q = [(start + (i + 1) * dt, n) for i, n in enumerate(chans)]
        self._jobs_changed(t)
        self._reschedule()

    def _clear(self, kind: str) -> None:
        self._live[kind] = np.full(16, CLEARED, dtype=np.int16)
        for letter, data in _render(self._live[kind]).items():
            self._groups[kind + letter] = data

    def _cmd_clrcell(self, p: Mapping[str, int], t: float) -> None:
        self._clear("CV")
        self._clear("AC")

    def _cmd_clrspin(self, p: Mapping[str, int], t: float) -> None:
        self._clear("SV")

    def _cmd_clrfc(self, p: Mapping[str, int], t: float) -> None:
        self._fc_state = None
        self._clear("FC")

    def _cmd_clraux(self, p: Mapping[str, int], t: float) -> None:
        self._aux[:] = CLEARED
        self._rax[:] = CLEARED
        self._publish_aux()

    def _cmd_clovuv(self, p: Mapping[str, int], t: float) -> None:
        self._ovuv = 0

    def _cmd_mute(self, p: Mapping[str, int], t: float) -> None:
        self._mute = True
        self._update_balance(t)

    def _cmd_unmute(self, p: Mapping[str, int], t: float) -> None:
        self._mute = False
        self._update_balance(t)

    def _cmd_snap(self, p: Mapping[str, int], t: float) -> None:
        self._snap = True

    def _cmd_unsnap(self, p: Mapping[str, int], t: float) -> None:
        self._snap = False
        for k in _CELL_KINDS:
            self._publish(k)

    def _cmd_rstcc(self, p: Mapping[str, int], t: float) -> None:
        return None  # the counter reset itself is the spec's resets_cc

    def _cmd_srst(self, p: Mapping[str, int], t: float) -> None:
        """Soft reset: power-on state, then SLEEP (a wake-up is needed before the next command)."""
        self._reset(t)
        self._asleep = True
        self._ext_balance = None
        self._reschedule()
        self._update_balance(t)


def _check_tables() -> None:
    for name in ACTION_HANDLERS:
        if COMMANDS[name].kind != ACTION:
            raise AssertionError(f"{name} is not an action command")
    for name in _WRITE_GROUPS:
        if COMMANDS[name].kind != WRITE:
            raise AssertionError(f"{name} is not a write command")
    for name in POLL_SOURCES:
        if COMMANDS[name].kind != POLL:
            raise AssertionError(f"{name} is not a poll command")
    assert all(COMMANDS[n].kind == READ for n in COMMANDS if n.startswith("RD"))


_check_tables()
