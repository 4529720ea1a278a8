"""Reference host-side driver for an ADBMS6830-class daisy chain.

The driver talks through a single function ``transfer(mosi) -> miso``: one call is one
chip-select window, full duplex, ``len(miso) == len(mosi)``. It encodes commands, checks every
PEC10 and tracks the 6-bit command counter of each device the way foxBMS 2 does
(``adi_ades183x_helpers.c``): the expected counter of every device is incremented after each
command that increments it, wraps 63 -> 1, and is reset to 0 by RSTCC; a read compares the
counter each device reports with the expected one.

Device index 0 is the device nearest the host throughout (see
:mod:`bms_emu.protocol.frames`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from bms_emu.protocol import frames
from bms_emu.protocol.eis_format import (
    N_SLOTS,
    EisConfig,
    decode_results,
    decode_status,
    decode_uncertainty,
    encode_freq,
)
from bms_emu.protocol.opcodes import ACTION, COMMANDS, READ, WRITE, CommandSpec, encode_opcode
from bms_emu.protocol.registers import (
    CELL_CLEARED_CODE,
    CELL_POWER_ON_CODE,
    LAYOUTS,
    code_to_volts,
)

__all__ = [
    "CC_MAX",
    "CommandCounterError",
    "HostDriver",
    "PecError",
    "ProtocolError",
    "TransferError",
    "next_command_counter",
]

#: Largest command-counter value; the next increment gives 1.
CC_MAX = 63

_CELL_KINDS: Mapping[str, tuple[str, str]] = {
    # kind -> (group-read prefix, *ALL read)
    "C": ("RDCV", "RDCVALL"),
    "S": ("RDSV", "RDSVALL"),
    "F": ("RDFC", "RDFCALL"),
    "A": ("RDAC", "RDACALL"),
}
_GROUP_LETTERS = "ABCDEF"


class ProtocolError(Exception):
    """Base class of the errors the host driver raises for problems on the link."""


class TransferError(ProtocolError):
    """The transfer function returned a MISO buffer of the wrong length."""


class PecError(ProtocolError):
    """PEC10 mismatch in the reply of one or more devices.

    Attributes
    ----------
    device : int
        First failing device (0 = nearest the host).
    devices : tuple of int
        All failing devices.
    command : str
        The read command.
    """

    def __init__(self, command: str, devices: Sequence[int]) -> None:
        self.command = command
        self.devices = tuple(devices)
        self.device = self.devices[0]
        super().__init__(
            f"{command}: PEC10 mismatch in the reply of device(s) {list(self.devices)} "
            "(0 = nearest the host)"
        )


class CommandCounterError(ProtocolError):
    """A device reported a command counter other than the one the host expected.

    Attributes
    ----------
    device : int
        Device index (0 = nearest the host).
    expected, received : int
        Counter the host expected and the one the device sent.
    command : str
        The read command that carried the counter.
    """

    def __init__(self, command: str, device: int, expected: int, received: int) -> None:
        self.command = command
        self.device = device
        self.expected = expected
        self.received = received
        super().__init__(
            f"{command}: device {device} reports command counter {received}, expected "
            f"{expected} (a command was lost or duplicated, or the device was reset)"
        )


def next_command_counter(cc: int) -> int:
    """Counter after one more accepted command: ``cc + 1``, wrapping 63 -> 1.

    Examples
    --------
    >>> next_command_counter(0), next_command_counter(62), next_command_counter(63)
    (1, 63, 1)
    """
    return 1 if cc >= CC_MAX else cc + 1


FieldValues = Mapping[str, int]
PerDevice = FieldValues | Sequence[FieldValues]


class HostDriver:
    """Encode commands, move them through ``transfer``, check PEC and command counters.

    Parameters
    ----------
    transfer : callable
        ``transfer(mosi: bytes) -> bytes``: one chip-select window, MISO as long as MOSI.
    n_devices : int
        Devices on the daisy chain.
    raise_on_counter_mismatch : bool, optional
        If True (default) a counter mismatch raises :class:`CommandCounterError`; if False it
        only sets the sticky flag in :attr:`counter_faults`.
    delay : callable, optional
        ``delay(seconds)``: let time pass with no traffic (``time.sleep`` on hardware,
        ``DaisyChain.delay`` in process). Needed by :meth:`wait` and timed procedures.

    Attributes
    ----------
    expected_counters : list of int
        Command counter the host expects each device to report.
    counter_faults : list of bool
        Sticky per-device flag: a counter mismatch was seen since the last :meth:`rstcc`.
    """

    def __init__(
        self,
        transfer: Callable[[bytes], bytes],
        n_devices: int,
        *,
        raise_on_counter_mismatch: bool = True,
        delay: Callable[[float], None] | None = None,
    ) -> None:
        if n_devices < 1:
            raise ValueError(f"n_devices must be >= 1, got {n_devices}")
        self._transfer = transfer
        self.n_devices = n_devices
        self.raise_on_counter_mismatch = raise_on_counter_mismatch
        self._delay = delay
        self.expected_counters = [0] * n_devices
        self.counter_faults = [False] * n_devices

    # --- low level ------------------------------------------------------------------------

    def _xfer(self, mosi: bytes) -> bytes:
        miso = bytes(self._transfer(mosi))
        if len(miso) != len(mosi):
            raise TransferError(f"transfer returned {len(miso)} bytes for {len(mosi)} sent")
        return miso

    def _after_command(self, spec: CommandSpec) -> None:
        if spec.resets_cc:
            self.expected_counters = [0] * self.n_devices
        elif spec.increments_cc:
            self.expected_counters = [next_command_counter(c) for c in self.expected_counters]

    def assume_counters_reset(self) -> None:
        """Tell the driver the devices reset their counters (power-on, sleep)."""
        self.expected_counters = [0] * self.n_devices

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass without traffic, through the ``delay`` callable.

        Raises
        ------
        RuntimeError
            If the driver was built without ``delay``.
        """
        if self._delay is None:
            raise RuntimeError("HostDriver was built without a delay function; cannot wait")
        self._delay(seconds)

    def wakeup(self, t_wake_s: float | None = None) -> None:
        """Wake the chain: one window with a single ``0xFF`` dummy byte per device.

        Parameters
        ----------
        t_wake_s : float, optional
            Wait this long after each window (each device needs t_WAKE before it passes the
            wake-up on; foxBMS uses 500 us). Needs ``delay``; default: no wait.
        """
        for _ in range(self.n_devices):
            self._xfer(bytes([frames.DUMMY]))
            if t_wake_s:
                self.wait(t_wake_s)

    def command(self, name: str, **params: int) -> None:
        """Send an action command (no data phase), e.g. ``command("ADCV", CONT=1)``."""
        spec = COMMANDS[name]
        if spec.kind not in (ACTION,):
            raise ValueError(f"{name} is a {spec.kind} command; use read()/write()")
        op = encode_opcode(name, **params)
        self._xfer(frames.build_command_frame(op) + bytes([frames.DUMMY]) * spec.trailing_bytes)
        self._after_command(spec)

    def write(self, name: str, payloads: Sequence[bytes]) -> None:
        """Send a write command with ``payloads[i]`` for device ``i`` (0 = nearest)."""
        spec = COMMANDS[name]
        if spec.kind != WRITE:
            raise ValueError(f"{name} is a {spec.kind} command, not a write")
        if len(payloads) != self.n_devices:
            raise ValueError(f"{name}: need {self.n_devices} payloads, got {len(payloads)}")
        for i, p in enumerate(payloads):
            if len(p) != spec.data_len:
                raise ValueError(f"{name}: payload {i} has {len(p)} bytes, needs {spec.data_len}")
        self._xfer(frames.build_write_frame(spec.opcode, payloads))
        self._after_command(spec)

    def read(self, name: str, **params: int) -> list[bytes]:
        """Send a read command; return each device's data (0 = nearest), checked.

        Raises
        ------
        PecError
            If any reply fails its PEC10 (the counters are then not checked).
        CommandCounterError
            If a device reports an unexpected counter and ``raise_on_counter_mismatch``.
        """
        spec = COMMANDS[name]
        if spec.kind != READ:
            raise ValueError(f"{name} is a {spec.kind} command, not a read")
        op = encode_opcode(name, **params)
        miso = self._xfer(frames.build_read_frame(op, self.n_devices, spec.data_len))
        replies = frames.split_read_reply(miso, self.n_devices, spec.data_len)
        bad = [i for i, r in enumerate(replies) if not r.pec_ok]
        if bad:
            raise PecError(name, bad)
        first_error: CommandCounterError | None = None
        for i, r in enumerate(replies):
            if r.command_counter != self.expected_counters[i]:
                self.counter_faults[i] = True
                if first_error is None:
                    first_error = CommandCounterError(
                        name, i, self.expected_counters[i], r.command_counter
                    )
        if first_error is not None and self.raise_on_counter_mismatch:
            raise first_error
        self._after_command(spec)
        return [r.data for r in replies]

    # --- per-device field helpers ---------------------------------------------------------

    def _per_device(self, values: PerDevice) -> list[FieldValues]:
        if isinstance(values, Mapping):
            return [values] * self.n_devices
        seq = list(values)
        if len(seq) != self.n_devices:
            raise ValueError(f"need one field dict per device ({self.n_devices}), got {len(seq)}")
        return seq

    def _write_layout(self, command: str, layout: str, values: PerDevice) -> None:
        lay = LAYOUTS[layout]
        self.write(command, [lay.pack(v) for v in self._per_device(values)])

    def _read_layout(self, command: str, layout: str) -> list[dict[str, int]]:
        lay = LAYOUTS[layout]
        return [lay.unpack(d) for d in self.read(command)]

    # --- high level -----------------------------------------------------------------------

    def rstcc(self) -> None:
        """Reset the command counters (RSTCC) and clear the sticky counter-fault flags."""
        self.command("RSTCC")
        self.counter_faults = [False] * self.n_devices

    def write_config_a(self, values: PerDevice) -> None:
        """WRCFGA from one field dict for all devices, or one dict per device (0 = nearest)."""
        self._write_layout("WRCFGA", "CFGA", values)

    def write_config_b(self, values: PerDevice) -> None:
        """WRCFGB from one field dict for all devices, or one dict per device."""
        self._write_layout("WRCFGB", "CFGB", values)

    def read_config_a(self) -> list[dict[str, int]]:
        """RDCFGA, decoded per device."""
        return self._read_layout("RDCFGA", "CFGA")

    def read_config_b(self) -> list[dict[str, int]]:
        """RDCFGB, decoded per device."""
        return self._read_layout("RDCFGB", "CFGB")

    def start_cell_conversion(
        self,
        cont: bool = False,
        rd: bool = False,
        dcp: bool = False,
        rstf: bool = False,
        ow: int = 0,
    ) -> None:
        """ADCV with the given option bits."""
        self.command("ADCV", CONT=int(cont), RD=int(rd), DCP=int(dcp), RSTF=int(rstf), OW=ow)

    def read_cell_codes(self, kind: str = "C", use_all: bool = False) -> npt.NDArray[np.int16]:
        """Raw signed cell codes, shape ``(n_devices, 16)``.

        Parameters
        ----------
        kind : {"C", "S", "F", "A"}
            C-ADC, S-ADC, IIR-filtered or averaged results.
        use_all : bool
            Read with the single ``*ALL`` command instead of the six group reads A-F.
        """
        try:
            prefix, all_cmd = _CELL_KINDS[kind]
        except KeyError:
            raise ValueError(f"kind must be one of {sorted(_CELL_KINDS)}, got {kind!r}") from None
        if use_all:
            data = self.read(all_cmd)
            return np.stack([np.frombuffer(d, dtype="<i2") for d in data]).astype(np.int16)
        groups = [self.read(prefix + g) for g in _GROUP_LETTERS]
        # Per device: 6 groups x 3 slots = 18 codes; group F holds cell 16 in its first slot.
        rows = [
            np.frombuffer(b"".join(grp[dev] for grp in groups), dtype="<i2")[:16]
            for dev in range(self.n_devices)
        ]
        return np.stack(rows).astype(np.int16)

    def read_cells(self, kind: str = "C", use_all: bool = False) -> npt.NDArray[np.float64]:
        """Cell voltages in volts, shape ``(n_devices, 16)``.

        The cleared (0x8000) and power-on (0x7FFF) codes read as NaN; use
        :meth:`read_cell_codes` for the raw values.
        """
        codes = self.read_cell_codes(kind, use_all)
        volts = code_to_volts(codes)
        volts[(codes == CELL_CLEARED_CODE) | (codes == CELL_POWER_ON_CODE)] = np.nan
        return volts

    def read_current(self) -> list[tuple[float, int]]:
        """Current channel (bms-emu extension RDI): ``(current_A, conversion_count)`` per device.

        The count is the low 16 bits of the C conversion counter of the window the current was
        sampled in; a power-on value reads as ``(nan, 0)``.
        """
        out = []
        for data in self.read("RDI"):
            code = int.from_bytes(data[0:4], "little", signed=True)
            count = int.from_bytes(data[4:6], "little")
            out.append((math.nan if code == 2**31 - 1 else code * 1e-3, count))
        return out

    def read_status(self, groups: str = "ABCDE") -> list[dict[str, int]]:
        """Read the status groups named by letter and merge their fields per device."""
        out: list[dict[str, int]] = [{} for _ in range(self.n_devices)]
        for g in groups:
            for dev, fields in enumerate(self._read_layout(f"RDSTAT{g}", f"STAT{g}")):
                out[dev].update(fields)
        return out

    def clear_flags(self, values: PerDevice) -> None:
        """CLRFLAG: 1 in a field clears that flag (fields of the CLRFLAG layout)."""
        self._write_layout("CLRFLAG", "CLRFLAG", values)

    def read_sid(self) -> list[bytes]:
        """Serial ID of every device (6 bytes each, as read)."""
        return self.read("RDSID")

    def write_pwm(self, duty: npt.ArrayLike) -> None:
        """WRPWMA + WRPWMB from 4-bit duty codes, shape ``(n_devices, 16)`` or ``(16,)``."""
        arr = np.broadcast_to(np.asarray(duty, dtype=np.int64), (self.n_devices, 16))
        if arr.min() < 0 or arr.max() > 15:
            raise ValueError("PWM duty codes must be 0..15")
        a = [{f"PWM{n}": int(row[n - 1]) for n in range(1, 13)} for row in arr]
        b = [{f"PWM{n}": int(row[n - 1]) for n in range(13, 17)} for row in arr]
        self._write_layout("WRPWMA", "PWMA", a)
        self._write_layout("WRPWMB", "PWMB", b)

    def read_pwm(self) -> npt.NDArray[np.int64]:
        """PWM duty codes read back, shape ``(n_devices, 16)``."""
        a = self._read_layout("RDPWMA", "PWMA")
        b = self._read_layout("RDPWMB", "PWMB")
        return np.array(
            [[{**a[d], **b[d]}[f"PWM{n}"] for n in range(1, 17)] for d in range(self.n_devices)]
        )

    def mute(self) -> None:
        """MUTE: stop discharge."""
        self.command("MUTE")

    def unmute(self) -> None:
        """UNMUTE: allow discharge again."""
        self.command("UNMUTE")

    def snap(self) -> None:
        """SNAP: freeze result registers."""
        self.command("SNAP")

    def unsnap(self) -> None:
        """UNSNAP: release result registers."""
        self.command("UNSNAP")

    def soft_reset(self) -> None:
        """SRST: soft reset (counters expected back at 0)."""
        self.command("SRST")

    # --- EIS engine (bms-emu extension, 0x6C0-0x6DF; bms_emu.protocol.eis_format) -------------

    def eis_configure(
        self,
        freqs_Hz: Sequence[float],
        *,
        excitation: str = "external",
        amplitude_A: float = 1.0,
        n_periods: int = 3,
        min_integration_s: float = 60.0,
        detrend_degree: int = 2,
    ) -> None:
        """Program the same EIS settings into every device (WREISC + one WREISF per slot)."""
        if not 1 <= len(freqs_Hz) <= N_SLOTS:
            raise ValueError(f"1..{N_SLOTS} frequencies, got {len(freqs_Hz)}")
        if excitation not in ("external", "balance"):
            raise ValueError(f"excitation must be 'external' or 'balance', got {excitation!r}")
        cfg = EisConfig(
            src=int(excitation == "balance"),
            detrend=int(detrend_degree),
            nper=int(n_periods),
            tmin_s=round(min_integration_s),
            amp_mA=round(amplitude_A * 1e3),
            nf=len(freqs_Hz),
        )
        self.write("WREISC", [cfg.encode()] * self.n_devices)
        for k, f in enumerate(freqs_Hz):
            self.write("WREISF", [encode_freq(k, f)] * self.n_devices)

    def eis_start(self) -> None:
        """EISSTART: every device runs its sweep; results appear when its record completes."""
        self.command("EISSTART")

    def eis_stop(self) -> None:
        """EISSTOP: abandon running sweeps."""
        self.command("EISSTOP")

    def eis_status(self) -> list[dict[str, object]]:
        """RDEISS per device: ``state`` (idle/running/done/error), ``error``, ``n_done``,
        ``remaining_s``."""
        return [decode_status(d) for d in self.read("RDEISS")]

    def eis_read_results(
        self, n_freqs: int
    ) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.float64]]:
        """Results of the first ``n_freqs`` slots: (Z, u95), each shape (n_devices, n_freqs, 16).

        Z in Ohm (NaN where a cell has no result), u95 the 95 % uncertainty radius in Ohm.
        Per slot: WREISP (slot, half 0) + RDEISR + RDEISU, WREISP (slot, half 1) + RDEISR.
        """
        z = np.full((self.n_devices, n_freqs, 16), np.nan + 0j)
        u = np.full((self.n_devices, n_freqs, 16), np.nan)
        for k in range(n_freqs):
            for half in (0, 1):
                self.write("WREISP", [bytes((k, half, 0, 0, 0, 0))] * self.n_devices)
                for i, data in enumerate(self.read("RDEISR")):
                    z[i, k, 8 * half : 8 * half + 8] = decode_results(data)
                if half == 0:
                    for i, data in enumerate(self.read("RDEISU")):
                        u[i, k] = decode_uncertainty(data)
        return z, u
