"""Real-pack input: cell voltages, temperatures and current from CAN frames.

:class:`CanPackSource` implements :class:`bms_emu.sources.PackSource`, so a chip of the emulator
can measure a real pack whose BMS (or a logger) broadcasts its data on CAN. The frames are
described by the user's DBC; a ``can_mapping`` config (see
:class:`bms_emu.scenario_config.CanMappingConfig` and ``configs/can/example_pack_mapping.yaml``)
says which signal is which cell, sensor or the current, and how to scale it.

Time base: each value is stamped with the time its frame arrived, on the ``clock()`` base
(default: seconds of ``time.monotonic()`` since the source was made), or with the ``t_s`` given
to :meth:`feed`; ``sample(t_s)`` must use the same base (an emulator paced to the wall clock from
the source's start does). The arrival time is the frame's receive timestamp (python-can's
virtual, udp_multicast and socketcan buses stamp ``time.time()`` on receipt) when that is a
plausible age (0 to :data:`MAX_RX_AGE_S`), else the moment it is taken in: frames that waited in
the socket buffer while the emulator was busy must not look fresh.

Staleness: a value whose last update is older than its timeout at ``sample(t_s)`` (or that never
arrived) is stale. ``on_stale: error`` -> ``sample`` raises :class:`~bms_emu.sources.SourceError`
naming the stale quantities (first five) with their signal and age; ``on_stale: hold`` -> the last
value is used (NaN if none yet) and :attr:`CanPackSource.stale_signals` lists them.

Robustness: frames with IDs the DBC does not know are ignored and counted
(``stats.unknown_id``), frames that do not decode are counted (``stats.malformed``), a mapped
message whose multiplexer selects no mapped slot is just skipped; nothing on the bus raises.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import can
import numpy as np

from bms_emu.config import ConfigError, load_config
from bms_emu.emulator import Emulator
from bms_emu.scenario_config import CanBusConfig, CanMappingConfig, CanSignalMap
from bms_emu.sources import PackSample, SourceError
from hil.can_bus import CanPort, CanStats, load_dbc, open_bus

__all__ = [
    "CanPackSource",
    "RealPackModule",
    "build_real_pack_emulator",
    "load_can_mapping",
    "open_real_pack",
    "real_pack_modules",
]

#: Most frames taken from the bus in one :meth:`CanPackSource.sample` (bounds the time spent on
#: a flooded bus: 4000 frames = 0.5 s of a saturated 500 kbit/s bus at ~8000 frames/s).
MAX_FRAMES_PER_SAMPLE = 4000

#: Oldest receive timestamp believed (s): older or future stamps come from a bus with another
#: time base (some vendor drivers count from their own start), so the take-in time is used.
MAX_RX_AGE_S = 60.0


def load_can_mapping(path: str | Path) -> tuple[CanMappingConfig, Path]:
    """Load a ``can_mapping`` config and resolve its DBC (relative to the config file)."""
    p = Path(path)
    cfg = load_config(p, "can_mapping")
    assert isinstance(cfg, CanMappingConfig)
    dbc = (p.parent / cfg.dbc).resolve()
    if not dbc.is_file():
        raise ConfigError(str(p), [f"dbc: got {cfg.dbc!r}: no such file (relative to the mapping)"])
    return cfg, dbc


@dataclass
class _Slot:
    what: str  # "cells" / "temperatures" / "current"
    key: int  # position in the mapping's list
    m: CanSignalMap
    timeout_s: float


class CanPackSource:
    """A :class:`~bms_emu.sources.PackSource` fed by CAN frames.

    Parameters
    ----------
    mapping : CanMappingConfig
    dbc : path
        The user's DBC.
    bus : can.BusABC, optional
        Frames are taken from it (non-blocking) at every :meth:`sample`; the source owns it.
        Without a bus, give frames with :meth:`feed`.
    clock : callable, optional
        ``clock() -> t_s`` stamping frames taken from the bus.
    default_temp_C : float
        Cell temperature when no temperature is mapped at all.
    """

    def __init__(
        self,
        mapping: CanMappingConfig,
        dbc: str | Path,
        bus: can.BusABC | None = None,
        *,
        clock: Callable[[], float] | None = None,
        default_temp_C: float = 25.0,
    ) -> None:
        self.cfg = mapping
        self.port = CanPort(bus, load_dbc(dbc))
        t0 = time.monotonic()
        self.clock = clock or (lambda: time.monotonic() - t0)
        self.default_temp_C = float(default_temp_C)
        # (message name, mux) -> slots; mux None = any frame of that message
        self._slots: dict[tuple[str, int | None], list[_Slot]] = {}
        problems = []
        groups: list[tuple[str, tuple[CanSignalMap, ...]]] = [
            ("cells", mapping.cells),
            ("temperatures", mapping.temperatures),
            ("current", (mapping.current,) if mapping.current else ()),
        ]
        for what, entries in groups:
            for k, m in enumerate(entries):
                where = f"{what}[{k}]" if what != "current" else what
                try:
                    msg = self.port.db.get_message_by_name(m.message)
                except KeyError:
                    problems.append(f"{where}.message: got {m.message!r}: not in the DBC")
                    continue
                if m.signal not in [s.name for s in msg.signals]:
                    problems.append(f"{where}.signal: got {m.signal!r}: not in {m.message}")
                    continue
                slot = _Slot(what, k, m, m.timeout_s or mapping.timeout_s)
                self._slots.setdefault((m.message, m.mux), []).append(slot)
        if problems:
            raise ConfigError(f"can_mapping (dbc {dbc})", problems)
        self._muxer = {
            m.name: next((s.name for s in m.signals if s.is_multiplexer), None)
            for m in self.port.db.messages
        }
        n = mapping.n_cells
        self._v = np.full(n, np.nan)
        self._t_v = np.full(n, -np.inf)
        nt = len(mapping.temperatures)
        self._temp = np.full(nt, np.nan)
        self._t_temp = np.full(nt, -np.inf)
        self._current = math.nan
        self._t_current = -math.inf
        self._sensor_cells = np.array([t.index for t in mapping.temperatures], dtype=int)
        self._last_t = -math.inf
        self.stale_signals: list[str] = []

    # -- PackSource --------------------------------------------------------------------------

    @property
    def n_cells(self) -> int:
        return self.cfg.n_cells

    @property
    def stats(self) -> CanStats:
        """Frames received, decoded, unknown, malformed (see :class:`hil.can_bus.CanStats`)."""
        return self.port.stats

    def set_balance_resistance(self, r_Ohm: np.ndarray) -> None:
        """A real pack does not respond to the emulator's balancing: refused if any is on."""
        if np.any(np.isfinite(np.asarray(r_Ohm, dtype=float))):
            raise SourceError("CAN pack source: a real pack cannot respond to emulated balancing")

    def feed(self, msg: can.Message, t_s: float | None = None) -> bool:
        """Take one frame in (stamped ``t_s`` or ``clock()``); False if it was not used."""
        frame = self.port.decode(msg)
        if frame is None:
            return False
        t = self._arrival_s(msg) if t_s is None else float(t_s)
        used = False
        keys: list[tuple[str, int | None]] = [(frame.name, None)]
        muxer = self._muxer.get(frame.name)
        if muxer is not None:
            keys.append((frame.name, int(frame.signals[muxer])))
        for key in keys:
            for slot in self._slots.get(key, ()):
                raw = frame.signals.get(slot.m.signal)
                if raw is None:
                    continue
                value = float(raw) * slot.m.scale + slot.m.offset
                if slot.what == "cells":
                    self._v[slot.m.index] = value
                    self._t_v[slot.m.index] = t
                elif slot.what == "temperatures":
                    self._temp[slot.key] = value
                    self._t_temp[slot.key] = t
                else:
                    self._current = value * self.cfg.current_sign
                    self._t_current = t
                used = True
        return used

    def _arrival_s(self, msg: can.Message) -> float:
        """When ``msg`` arrived, on the ``clock()`` base (see the time base above)."""
        now = self.clock()
        age_s = time.time() - float(msg.timestamp or 0.0)
        return now - age_s if 0.0 <= age_s <= MAX_RX_AGE_S else now

    def pump(self) -> int:
        """Take in the frames waiting on the bus (bounded); returns how many were read."""
        if self.port.bus is None:
            return 0
        n = 0
        while n < MAX_FRAMES_PER_SAMPLE:
            msg = self.port.recv_raw(0.0)
            if msg is None:
                break
            self.feed(msg)
            n += 1
        return n

    def _stale(self, t_s: float) -> list[str]:
        out = []
        groups: list[tuple[str, np.ndarray, tuple[CanSignalMap, ...]]] = [
            ("cells", self._t_v, self.cfg.cells),
            ("temperatures", self._t_temp, self.cfg.temperatures),
        ]
        for what, stamps, entries in groups:
            for k, m in enumerate(entries):
                t_rx = stamps[m.index] if what == "cells" else stamps[k]
                timeout = m.timeout_s or self.cfg.timeout_s
                if t_s - t_rx > timeout:
                    out.append(_describe(f"{what}[{m.index if what == 'cells' else k}]", m,
                                         t_s, t_rx, timeout))  # fmt: skip
        c = self.cfg.current
        if c is not None:
            timeout = c.timeout_s or self.cfg.timeout_s
            if t_s - self._t_current > timeout:
                out.append(_describe("current", c, t_s, self._t_current, timeout))
        return out

    def sample(self, t_s: float) -> PackSample:
        """The latest values at ``t_s`` (after taking in waiting frames); see staleness above."""
        if t_s < self._last_t:
            raise SourceError(
                f"CAN pack source: cannot go back in time: t_s={t_s:g} after {self._last_t:g}"
            )
        self._last_t = t_s
        self.pump()
        self.stale_signals = self._stale(t_s)
        if self.stale_signals and self.cfg.on_stale == "error":
            more = len(self.stale_signals) - 5
            raise SourceError(
                "CAN pack source: stale data: " + "; ".join(self.stale_signals[:5])
                + (f"; and {more} more" if more > 0 else "")
            )  # fmt: skip
        if self._sensor_cells.size:
            # each cell takes the nearest mapped sensor (shape (n_cells,))
            nearest = np.abs(np.arange(self.n_cells)[:, None] - self._sensor_cells[None, :])
            temps = self._temp[np.argmin(nearest, axis=1)]
        else:
            temps = np.full(self.n_cells, self.default_temp_C)
        current = 0.0 if self.cfg.current is None else self._current
        return PackSample(
            t_s=t_s,
            current_A=current,
            sense_voltage_V=self._v.copy(),
            cell_voltage_V=self._v.copy(),
            temperature_C=temps,
        )

    def shutdown(self) -> None:
        """Shut the bus down (idempotent)."""
        self.port.shutdown()

    def __enter__(self) -> CanPackSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _describe(what: str, m: CanSignalMap, t_s: float, t_rx: float, timeout: float) -> str:
    sig = f"{m.message}.{m.signal}" + (f"[{m.mux}]" if m.mux is not None else "")
    if not math.isfinite(t_rx):
        return f"{what} ({sig}): never received"
    return f"{what} ({sig}): last update {t_s - t_rx:.3f} s ago > timeout {timeout:g} s"


# ------------------------------------------------------------------------------------------
# a real pack in front of the emulated chips: one CAN source, one 16-cell view per chip
# ------------------------------------------------------------------------------------------


class _SharedSampler:
    """One source sampled by several chips: each asks for its own times, not in order across
    chips, while the source only goes forward; a request older than the latest sample gets
    the latest (the chips' own histories interpolate inside their windows)."""

    def __init__(self, source: CanPackSource) -> None:
        self.source = source
        self.last: PackSample | None = None

    def sample(self, t_s: float) -> PackSample:
        if self.last is not None and t_s <= self.last.t_s:
            return self.last
        self.last = self.source.sample(t_s)
        return self.last


class RealPackModule:
    """Cells ``[16 k, 16 k + 16)`` of a CAN-fed pack: the :class:`PackSource` of chip ``k``.

    Has no ``advance_to``/``pack``/``current_at``: the chip model then treats it as a source
    it can only sample (no integration of a pack model), and the rig refuses stimuli on it.
    """

    def __init__(self, shared: _SharedSampler, index: int, n_channels: int = 16) -> None:
        self._shared = shared
        self._cells = slice(index * n_channels, (index + 1) * n_channels)
        self._n = n_channels
        self.last: PackSample | None = None

    @property
    def n_cells(self) -> int:
        return self._n

    @property
    def t_s(self) -> float:
        """Time of the latest sample of the shared source (-inf before the first)."""
        last = self._shared.last
        return -math.inf if last is None else last.t_s

    def sample(self, t_s: float) -> PackSample:
        s = self._shared.sample(t_s)
        c = self._cells
        self.last = PackSample(
            t_s=s.t_s,
            current_A=s.current_A,
            sense_voltage_V=s.sense_voltage_V[c].copy(),
            cell_voltage_V=s.cell_voltage_V[c].copy(),
            temperature_C=s.temperature_C[c].copy(),
        )
        return self.last

    def set_balance_resistance(self, r_Ohm: np.ndarray) -> None:
        self._shared.source.set_balance_resistance(r_Ohm)


def real_pack_modules(source: CanPackSource, n_devices: int) -> list[RealPackModule]:
    """One 16-cell :class:`RealPackModule` per chip over ``source`` (``n_cells`` = 16 x chips).

    Raises
    ------
    ValueError
        The mapping's ``n_cells`` is not 16 per device.
    """
    if source.n_cells != 16 * n_devices:
        raise ValueError(f"can_mapping n_cells is {source.n_cells}, the chain of {n_devices} "
                         f"device(s) measures {16 * n_devices} (16 per device)")  # fmt: skip
    shared = _SharedSampler(source)
    return [RealPackModule(shared, k) for k in range(n_devices)]


def build_real_pack_emulator(
    chip: Any, source: CanPackSource, n_devices: int, *, seed: int = 0
) -> Emulator:
    """A chain of ``n_devices`` chips (population seed ``seed``) measuring a CAN-fed pack.

    Same assembly as :func:`bms_emu.emulator.build_emulator`, with the modules replaced by
    :class:`RealPackModule` views.
    """
    from bms_emu.afe.chip import make_population
    from bms_emu.device import DaisyChain, Device
    from bms_emu.device.chip_analog import ChipAnalog

    modules = real_pack_modules(source, n_devices)
    population = make_population(chip, n_devices, seed, None)
    analogs = [ChipAnalog(population, k, modules[k], seed=seed) for k in range(n_devices)]
    devices = [Device(a, sid=0x4000 + k) for k, a in enumerate(analogs)]
    return Emulator(DaisyChain(devices), analogs, modules, population)  # type: ignore[arg-type]


def open_real_pack(
    mapping_path: str | Path,
    default_bus: CanBusConfig | None,
    chip: Any,
    n_devices: int,
    *,
    seed: int = 0,
) -> tuple[Emulator, CanPackSource, CanBusConfig]:
    """Load a ``can_mapping``, open its bus (its ``can:`` section, else ``default_bus``) and
    build the chain over it. The caller owns the source (``shutdown()`` closes the bus).

    Raises
    ------
    ConfigError
        The mapping is invalid or names signals its DBC lacks.
    ValueError
        No bus given, or ``n_cells`` is not 16 per device.
    hil.can_bus.CanBackendError
        The bus cannot be opened.
    """
    cfg, dbc = load_can_mapping(mapping_path)
    bus = cfg.can or default_bus
    if bus is None:
        raise ValueError(f"{mapping_path}: no CAN bus for the pack: give the mapping a 'can:' "
                         "section or serve --can INTERFACE:CHANNEL")  # fmt: skip
    real_pack_modules(CanPackSource(cfg, dbc), n_devices)  # check the size before opening a bus
    source = CanPackSource(cfg, dbc, open_bus(bus))
    try:
        emulator = build_real_pack_emulator(chip, source, n_devices, seed=seed)
    except BaseException:
        source.shutdown()
        raise
    return emulator, source, bus
