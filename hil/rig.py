"""The emulated string as the HIL rig sees it: stimuli and faults applied to a running emulator.

Faults live here, on the rig side, never inside the device model:

- analog faults (open sense wire, reference drift, C-ADC gain) set the chip's
  :class:`~bms_emu.device.chip_analog.AnalogFaults`;
- cell over/under-voltage is what a HIL cell emulator does: :class:`CellForcing` replaces one
  cell's voltage in what the pack module gives the chip (truth and sense pins alike);
- link faults (SPI bit errors, a chip that stops answering) are in :class:`FaultyLink`, a wrapper
  around the chain's ``transfer`` function.

The same :meth:`Rig.apply_fault` serves the scenario timeline and the CAN fault-injection message
(``EMU_FaultInject`` in ``configs/can/bms_emu.dbc``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from bms_emu.emulator import Emulator
from bms_emu.protocol.registers import code_to_volts
from bms_emu.sources import PackSample, VirtualPackSource

__all__ = ["FAULT_IDS", "CellForcing", "FaultyLink", "Rig"]

#: FaultId values of EMU_FaultInject (VAL_ table of bms_emu.dbc).
FAULT_IDS: dict[str, int] = {
    "open_wire": 1,
    "cell_overvoltage": 2,
    "cell_undervoltage": 3,
    "reference_drift": 4,
    "c_adc_gain": 5,
    "spi_bit_errors": 6,
    "chip_silent": 7,
}

_CMD_LEN = 4  # command frame bytes
_BLOCK = 8  # bytes per device in a data phase (6 data + 2 PEC)


class FaultyLink:
    """``transfer(mosi) -> miso`` with injectable link faults.

    Parameters
    ----------
    transfer : callable
        The healthy link (``DaisyChain.transfer``).
    seed : int
        Seeds the bit-error draws (deterministic runs).

    Attributes
    ----------
    bit_error_probability : float
        Chance per window that one random MISO bit (after the command bytes) is flipped.
    silent_from : int or None
        Device index from which on the chain is dead: those devices' reply blocks read all ones
        (an open isoSPI link past that device), so their PEC fails.
    injected_bit_errors, windows : int
    """

    def __init__(self, transfer: Callable[[bytes], bytes], seed: int = 0) -> None:
        self._transfer = transfer
        self._rng = np.random.default_rng(seed)
        self.bit_error_probability = 0.0
        self.silent_from: int | None = None
        self.injected_bit_errors = 0
        self.windows = 0

    def __call__(self, mosi: bytes) -> bytes:
        miso = bytearray(self._transfer(mosi))
        self.windows += 1
        if self.silent_from is not None and len(miso) > _CMD_LEN:
            start = _CMD_LEN + _BLOCK * self.silent_from
            miso[start:] = b"\xff" * max(0, len(miso) - start)
        if self.bit_error_probability > 0 and len(miso) > _CMD_LEN:
            if self._rng.random() < self.bit_error_probability:
                bit = int(self._rng.integers(_CMD_LEN * 8, len(miso) * 8))
                miso[bit // 8] ^= 0x80 >> (bit % 8)
                self.injected_bit_errors += 1
        return bytes(miso)


class CellForcing:
    """Force cells of one pack module to fixed voltages (a HIL cell emulator's output).

    Installs itself on the module's ``sample`` (the chip reads its pack through it); forced
    cells read ``voltage_V`` on the sense pins and as truth.
    """

    def __init__(self, module: VirtualPackSource) -> None:
        self.module = module
        self.forced_V: dict[int, float] = {}
        self._inner = module.sample
        module.sample = self._sample  # type: ignore[method-assign]

    def _sample(self, t_s: float) -> PackSample:
        # A stimulus applied at the chain's "now" (Rig._sync) may have moved the module past the
        # middle of a conversion still running; that conversion then reads the module as of
        # now (at most one conversion, a few ms, late) instead of asking it to go back in time.
        s = self._inner(max(t_s, self.module.t_s))
        if not self.forced_V:
            return s
        sense = s.sense_voltage_V.copy()
        cell = s.cell_voltage_V.copy()
        for ch, v in self.forced_V.items():
            sense[ch] = v
            cell[ch] = v
        return dataclasses.replace(s, sense_voltage_V=sense, cell_voltage_V=cell)


class Rig:
    """An :class:`~bms_emu.emulator.Emulator` with a faulty link and cell forcing.

    Parameters
    ----------
    emulator : Emulator
    seed : int
        Seeds the link's bit-error draws.
    """

    def __init__(self, emulator: Emulator, seed: int = 0) -> None:
        self.emu = emulator
        self.chain = emulator.chain
        self.link = FaultyLink(self.chain.transfer, seed=seed)
        self.forcing = [CellForcing(m) for m in emulator.modules]
        #: active faults: (kind, device, channel, pin) -> FaultId
        self.active: dict[tuple[str, int, int | None, int | None], int] = {}
        #: False when the cells are a real pack (``hil.can_source.RealPackModule``): the
        #: stimuli (current, ambient, SOC) are refused, faults and telemetry work as usual
        self.virtual = all(isinstance(m, VirtualPackSource) for m in emulator.modules)

    def _need_virtual(self, what: str) -> None:
        if not self.virtual:
            raise ValueError(f"{what} refused: the cells are a real pack (CAN input)")

    @property
    def n_devices(self) -> int:
        return self.chain.n_devices

    @property
    def t_s(self) -> float:
        return self.chain.t_s

    def _sync(self, m: VirtualPackSource) -> None:
        # the chips may already have sampled a module a little past the chain time
        m.advance_to(max(m.t_s, self.t_s))

    # -- stimuli ---------------------------------------------------------------------------

    def set_current_A(self, current_A: float) -> None:
        """String current from now on (positive discharging)."""
        self._need_virtual("pack current")
        for m in self.emu.modules:
            self._sync(m)
        self.emu.set_current_A(current_A)

    def set_ambient_C(self, temp_C: float) -> None:
        """Ambient temperature of every module and chip."""
        self._need_virtual("ambient temperature")
        for m, a in zip(self.emu.modules, self.emu.analogs, strict=True):
            self._sync(m)
            m.pack.set_ambient_temp(temp_C)
            a.temp_ambient_C = float(temp_C)

    def add_soc_pct(self, cell: int, offset_pct: float) -> None:
        """Add ``offset_pct`` percent points of SOC to string cell ``cell`` (device*16 + ch)."""
        self._need_virtual("SOC offset")
        dev, ch = divmod(cell, 16)
        m = self.emu.modules[dev]
        self._sync(m)
        state = m.pack.snapshot()
        state["soc"][ch] = np.clip(state["soc"][ch] + offset_pct / 100.0, 0.0, 1.0)
        m.pack.restore(state)

    # -- faults ----------------------------------------------------------------------------

    def apply_fault(
        self,
        kind: str,
        on: bool,
        device: int = 0,
        channel: int | None = None,
        pin: int | None = None,
        magnitude: float = 0.0,
    ) -> None:
        """Switch one fault on or off.

        ``magnitude`` per kind: forced voltage (V) for cell over/under-voltage, ppm for
        ``reference_drift`` and ``c_adc_gain``, probability for ``spi_bit_errors``.
        """
        if kind not in FAULT_IDS:
            raise ValueError(f"unknown fault {kind!r}: one of {sorted(FAULT_IDS)}")
        if not 0 <= device < self.n_devices:
            raise ValueError(f"device {device} out of range 0..{self.n_devices - 1}")
        faults = self.emu.analogs[device].faults
        if kind == "open_wire":
            assert pin is not None
            (faults.open_pins.add if on else faults.open_pins.discard)(pin)
        elif kind in ("cell_overvoltage", "cell_undervoltage"):
            assert channel is not None
            f = self.forcing[device].forced_V
            if on:
                f[channel] = float(magnitude)
            else:
                f.pop(channel, None)
        elif kind == "reference_drift":
            faults.ref_shift_ppm = float(magnitude) if on else 0.0
        elif kind == "c_adc_gain":
            assert channel is not None
            faults.c_gain_ppm[channel] = float(magnitude) if on else 0.0
        elif kind == "spi_bit_errors":
            self.link.bit_error_probability = float(magnitude) if on else 0.0
        elif kind == "chip_silent":
            self.link.silent_from = device if on else None
        key = (kind, device, channel, pin)
        if on:
            self.active[key] = FAULT_IDS[kind]
        else:
            self.active.pop(key, None)

    def clear_faults(self) -> int:
        """Switch every active fault off; returns how many were on."""
        keys = list(self.active)
        for kind, device, channel, pin in keys:
            self.apply_fault(kind, False, device, channel, pin)
        return len(keys)

    def active_fault_bits(self) -> int:
        """Bit (FaultId - 1) set per kind of fault active (EMU_Status.ActiveFaults)."""
        bits = 0
        for fid in self.active.values():
            bits |= 1 << (fid - 1)
        return bits

    # -- telemetry -------------------------------------------------------------------------

    def true_cells_V(self) -> np.ndarray:
        """Cell voltages of the pack (truth, forced cells included), shape (n_devices*16,)."""
        out = []
        for f in self.forcing:
            if self.virtual:
                v = f.module.pack.cell_voltage_V().copy()
            else:  # a real pack: what it last reported
                last = getattr(f.module, "last", None)
                v = np.full(16, np.nan) if last is None else last.cell_voltage_V.copy()
            for ch, forced in f.forced_V.items():
                v[ch] = forced
            out.append(v)
        return np.concatenate(out)

    def cell_temps_C(self) -> np.ndarray:
        """Cell temperatures, shape (n_devices*16,) (NaN: a real pack that has not reported)."""
        if self.virtual:
            return np.concatenate([m.pack.temperature_C() for m in self.emu.modules])
        lasts = [getattr(m, "last", None) for m in self.emu.modules]
        return np.concatenate(
            [np.full(16, np.nan) if s is None else s.temperature_C for s in lasts]
        )

    def current_A(self) -> float:
        """String current now (a real pack: its latest report, NaN before the first)."""
        m = self.emu.modules[0]
        if self.virtual:
            return float(m.current_at(self.t_s))
        last = getattr(m, "last", None)
        return math.nan if last is None else float(last.current_A)

    def measured_cells_V(self) -> np.ndarray:
        """The chips' latest C-ADC results from their result registers (no SPI traffic)."""
        codes = np.concatenate([d.codes("CV") for d in self.chain.devices])
        return np.asarray(code_to_volts(codes), dtype=float)
