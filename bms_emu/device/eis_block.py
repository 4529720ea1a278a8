"""The device's EIS engine block: registers, start/stop, results in emulated time.

The register layout and fixed-point formats are in :mod:`bms_emu.protocol.eis_format`. On
``EISSTART`` at time ``t`` the block checks its settings and, behind a real analog side
(:class:`~bms_emu.device.chip_analog.ChipAnalog` over a virtual pack), runs the whole record
with :func:`bms_emu.device.eis_engine.run_eis` starting at ``t``; the results are held back and
published by the device's event at the record's end (``done_at``), so the host sees ``running``
with the remaining emulated time until then and ``done`` plus the results after. The engine
owns the pack's excitation during the record: C/S conversions the host starts meanwhile see the
pack as the engine left it at the record's end (documented limitation of the eager record).
``EISSTOP`` abandons a running record (its results are dropped; the pack has already run).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bms_emu.protocol.eis_format import (
    F_LSB_HZ,
    N_SLOTS,
    EisConfig,
    encode_results,
    encode_uncertainty,
)

__all__ = ["EIS_READ_GROUPS", "EIS_WRITE_GROUPS", "EisBlock"]

#: Write command -> group, read groups served by the block.
EIS_WRITE_GROUPS = {"WREISC": "EISC", "WREISF": "EISF", "WREISP": "EISP"}
EIS_READ_GROUPS = frozenset({"EISC", "EISF", "EISS", "EISR", "EISU"})

IDLE, RUNNING, DONE, ERROR = 0, 1, 2, 3
#: Longest sweep the block accepts (emulated s): longer settings are a settings error.
MAX_RECORD_S = 86400.0
ERR_NONE, ERR_SETTINGS, ERR_ANALOG = 0, 1, 2


class EisBlock:
    """EIS registers and the pending record of one device (reset by power-on/sleep/SRST)."""

    def __init__(self) -> None:
        self.cfg = EisConfig()
        self.freq_uHz = [0] * N_SLOTS
        self.ptr_slot = 0
        self.ptr_half = 0
        self.state = IDLE
        self.error = ERR_NONE
        self.done_at = math.inf
        self._pending: Any = None
        self._result: Any = None
        # encoded EISR/EISU by (group, result, slot, half): hosts that mirror every register
        # (the serial bridge) read them after each window, and encoding costs ~0.1 ms
        self._encoded: dict[tuple[str, int, int], tuple[Any, bytes]] = {}

    # -- registers ----------------------------------------------------------------------------
    def key(self) -> tuple[Any, ...]:
        """Everything a write can change (for the device's invariant snapshot)."""
        return (self.cfg, tuple(self.freq_uHz), self.ptr_slot, self.ptr_half)

    def write(self, group: str, data: bytes) -> None:
        """Latch a written group (any content is accepted; invalid settings fail at start)."""
        if group == "EISC":
            self.cfg = EisConfig.decode(data)
        elif group == "EISF":
            if data[0] < N_SLOTS:
                self.freq_uHz[data[0]] = int.from_bytes(data[1:5], "little")
        elif group == "EISP":
            self.ptr_slot = data[0] % N_SLOTS
            self.ptr_half = data[1] & 1

    def read(self, group: str, t_s: float) -> bytes:
        """Contents of a readable group at ``t_s``."""
        if group == "EISC":
            return self.cfg.encode()
        if group == "EISF":
            code = self.freq_uHz[self.ptr_slot]
            return bytes((self.ptr_slot,)) + code.to_bytes(4, "little") + b"\x00"
        if group == "EISS":
            n_done = 0 if self._result is None else int(self._result.f_Hz.size)
            rem = 0 if self.state != RUNNING else max(0, math.ceil(self.done_at - t_s))
            return (
                bytes((self.state, self.error))
                + n_done.to_bytes(2, "little")
                + min(rem, 0xFFFF).to_bytes(2, "little")
            )
        key = (group, self.ptr_slot, self.ptr_half)
        hit = self._encoded.get(key)
        if hit is not None and hit[0] is self._result:
            return hit[1]
        data = self._encode(group)
        self._encoded[key] = (self._result, data)
        return data

    def _encode(self, group: str) -> bytes:
        z = np.full(16, np.nan + 0j)
        u = np.full(16, np.nan)
        r = self._result
        if r is not None and self.ptr_slot < r.f_Hz.size:
            z[r.cells] = r.z_Ohm[self.ptr_slot]
            u[r.cells] = r.u95_Ohm[self.ptr_slot]
        if group == "EISR":
            h = self.ptr_half
            return encode_results(z[8 * h : 8 * h + 8])
        return encode_uncertainty(u)  # EISU

    # -- control ------------------------------------------------------------------------------
    def settings(self) -> Any:
        """EisSettings from the registers (raises ValueError if they are not runnable)."""
        from bms_emu.device.eis_engine import EisSettings, sweep_duration_s

        c = self.cfg
        nf = c.nf
        if not 1 <= nf <= N_SLOTS:
            raise ValueError(f"NF = {nf}: must be 1..{N_SLOTS}")
        freqs = tuple(self.freq_uHz[k] * F_LSB_HZ for k in range(nf))
        settings = EisSettings(
            freqs_Hz=freqs,
            excitation="balance" if c.src else "external",
            amplitude_A=c.amp_mA * 1e-3,
            n_periods=c.nper or 3,
            min_integration_s=float(c.tmin_s),
            detrend_degree=c.detrend,
        )
        if sweep_duration_s(settings) > MAX_RECORD_S:
            raise ValueError(f"the sweep would take longer than {MAX_RECORD_S} s")
        return settings

    def start(self, analog: Any, t_s: float) -> None:
        """EISSTART at ``t_s``: run the record now, publish at its end."""
        from bms_emu.device.chip_analog import ChipAnalog
        from bms_emu.device.eis_engine import run_eis

        self._result = None
        self._pending = None
        self.done_at = math.inf
        try:
            s = self.settings()
        except ValueError:
            self.state, self.error = ERROR, ERR_SETTINGS
            return
        if not isinstance(analog, ChipAnalog) or not hasattr(analog.source, "pack"):
            self.state, self.error = ERROR, ERR_ANALOG
            return
        self._pending = run_eis(analog, s, t_start_s=t_s)
        self.state, self.error = RUNNING, ERR_NONE
        self.done_at = float(self._pending.t_end_s)

    def stop(self) -> None:
        """EISSTOP: abandon a running record."""
        if self.state == RUNNING:
            self._pending = None
            self.done_at = math.inf
            self.state = IDLE

    def complete(self, t_s: float) -> None:
        """The device's event at ``done_at``: the results appear."""
        self._result, self._pending = self._pending, None
        self.done_at = math.inf
        self.state = DONE
