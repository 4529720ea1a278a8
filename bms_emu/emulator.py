"""Assemble the emulator: a daisy chain of chips, each in front of a pack module.

A string of ``n_devices`` x 16 cells is modelled as ``n_devices`` pack modules in series (each a
:class:`~bms_emu.pack.VirtualPack` with its own spread seed), all carrying the same string
current; each module is measured by one chip drawn from the chip design's population.
"""

from __future__ import annotations

from dataclasses import dataclass

from bms_emu.afe.chip import ChipPopulation, ChipSpec, make_population
from bms_emu.config import PackConfig
from bms_emu.device import DaisyChain, Device
from bms_emu.device.chip_analog import ChipAnalog
from bms_emu.profile import CurrentProfile
from bms_emu.sources import VirtualPackSource

__all__ = ["Emulator", "build_emulator"]


@dataclass
class Emulator:
    """The parts of one emulated string, nearest device first."""

    chain: DaisyChain
    analogs: list[ChipAnalog]
    modules: list[VirtualPackSource]
    population: ChipPopulation

    def set_current_A(self, current_A: float) -> None:
        """Hold the string current at ``current_A`` from the modules' present time on."""
        for m in self.modules:
            m.set_current_A(current_A)


def build_emulator(
    chip: ChipSpec,
    pack: PackConfig,
    n_devices: int = 1,
    *,
    seed: int = 0,
    strategy: str | None = None,
    profile: CurrentProfile | None = None,
    lifetime_h: float | None = None,
    temp_ambient_C: float = 25.0,
    max_step_s: float = 1.0,
) -> Emulator:
    """Build a chain of ``n_devices`` chips in front of ``n_devices`` pack modules.

    Parameters
    ----------
    chip : ChipSpec
        Chip design; ``n_devices`` chips are drawn from it (population seed ``seed``) and
        trimmed with ``strategy`` (default: the design's own).
    pack : PackConfig
        Module design; module ``k`` uses spread seed ``pack.seed + k``.
    profile : CurrentProfile, optional
        String current (default 0 A).
    lifetime_h : float, optional
        Chip age at t = 0 (default: just after the board trim).
    """
    if pack.n_cells != chip.n_channels:
        raise ValueError(f"pack modules have {pack.n_cells} cells, chips {chip.n_channels}")
    population = make_population(chip, n_devices, seed, strategy)
    modules = [
        VirtualPackSource.from_config(pack, profile, seed=pack.seed + k) for k in range(n_devices)
    ]
    for m in modules:
        m.max_step_s = max_step_s
    analogs = [
        ChipAnalog(
            population,
            k,
            modules[k],
            seed=seed,
            lifetime_h=lifetime_h,
            temp_ambient_C=temp_ambient_C,
        )
        for k in range(n_devices)
    ]
    devices = [Device(a, sid=0x4000 + k) for k, a in enumerate(analogs)]
    return Emulator(DaisyChain(devices), analogs, modules, population)
