"""Lot -> wafer -> die populations of a chip design.

Hierarchy (per parameter ``p`` listed in the sweep's ``population.spread``, with the chip's
mean ``mu`` and sigma ``s``)::

    lot offset    L ~ N(0, f_lot s^2)           one per lot
    wafer offset  W ~ N(0, f_wafer s^2)         one per wafer
    die value     mu + L + W + N(0, (1 - f_lot - f_wafer) s^2)

so the total variance over the population stays the chip's ``s^2`` while dies of one wafer
(and wafers of one lot) are correlated: a bad lot shows up as a cluster, which is what makes
lot-to-lot consistency visible in the fallout. Parameters not listed keep pure die-level spread.

A wafer is the unit of random-number generation: wafer ``w`` of a sweep with seed ``s`` draws its
dies from ``make_population(..., seed=wafer_seed(s, w))`` and its offsets from named streams of
``RandomStreams(s)`` keyed by the lot / wafer index. Nothing depends on how wafers are grouped into
chunks or which worker runs them, so the population is the same for any chunking.
The same wafer seeds are used for every chip and strategy of a sweep (common random numbers:
strategies and designs are compared on the same draws).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bms_emu.afe.chip import ChipPopulation, ChipSpec, make_population
from bms_emu.config import HIERARCHY_PARAMETERS
from bms_emu.sim import RandomStreams

__all__ = ["Hierarchy", "wafer_population", "wafer_seed", "wafer_sizes", "wafer_spec"]


@dataclass(frozen=True)
class Hierarchy:
    """Lot/wafer geometry and variance shares.

    Attributes
    ----------
    dies_per_wafer, wafers_per_lot : int
    shares : tuple of (parameter, lot_fraction, wafer_fraction)
        Parameter names from :data:`bms_emu.config.HIERARCHY_PARAMETERS`.
    """

    dies_per_wafer: int = 1000
    wafers_per_lot: int = 25
    shares: tuple[tuple[str, float, float], ...] = ()


def wafer_sizes(n_devices: int, dies_per_wafer: int) -> list[int]:
    """Dies in each wafer: full wafers, the last one partial."""
    full, rest = divmod(n_devices, dies_per_wafer)
    return [dies_per_wafer] * full + ([rest] if rest else [])


def wafer_seed(seed: int, wafer: int) -> int:
    """Seed of wafer ``wafer``'s ``make_population`` (63-bit, from the sweep seed)."""
    state = RandomStreams(seed).seed_sequence(f"sweep.wafer.{wafer}").generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def _offsets_z(seed: int, wafer: int, hier: Hierarchy) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal lot and wafer offsets, one per hierarchy parameter (in ``shares`` order).

    Drawn per parameter name, so adding a parameter never changes another's draws.
    """
    streams = RandomStreams(seed)
    lot = wafer // hier.wafers_per_lot
    z_lot = np.array([streams.generator(f"sweep.lot.{lot}.{p}").standard_normal()
                      for p, _, _ in hier.shares])
    z_wafer = np.array([streams.generator(f"sweep.wafer.{wafer}.{p}").standard_normal()
                        for p, _, _ in hier.shares])
    return z_lot, z_wafer


def wafer_spec(spec: ChipSpec, seed: int, wafer: int, hier: Hierarchy) -> ChipSpec:
    """The chip spec the dies of one wafer are drawn from (means shifted, die sigma reduced)."""
    if not hier.shares:
        return spec
    z_lot, z_wafer = _offsets_z(seed, wafer, hier)
    sections: dict[str, object] = {}
    for (name, f_lot, f_wafer), zl, zw in zip(hier.shares, z_lot, z_wafer, strict=True):
        section, mean_f, sigma_f = HIERARCHY_PARAMETERS[name]
        sec = sections.get(section, getattr(spec, section))
        sigma = getattr(sec, sigma_f)
        mean = getattr(sec, mean_f) + sigma * (np.sqrt(f_lot) * zl + np.sqrt(f_wafer) * zw)
        die_sigma = sigma * np.sqrt(max(0.0, 1.0 - f_lot - f_wafer))
        sections[section] = replace(sec, **{mean_f: float(mean), sigma_f: float(die_sigma)})  # type: ignore[type-var]
    return replace(spec, **sections)  # type: ignore[arg-type]


def wafer_population(
    spec: ChipSpec, seed: int, wafer: int, n_dies: int, hier: Hierarchy, strategy: str
) -> ChipPopulation:
    """The trimmed dies of one wafer (same dies for every strategy: streams are by name)."""
    return make_population(
        wafer_spec(spec, seed, wafer, hier), n_dies, wafer_seed(seed, wafer), strategy
    )
