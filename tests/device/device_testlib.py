"""Shared builders for device tests (imported as a plain module, like pack_testlib)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bms_emu.device import DaisyChain, Device, IdealAnalog
from bms_emu.host import HostDriver


def cells_for(dev: int) -> np.ndarray:
    """Distinct, exactly representable cell voltages for device ``dev`` (V)."""
    return 3.0 + 150e-6 * np.rint((0.01 * np.arange(16) + 0.003 * dev) / 150e-6)


def make_chain(
    n: int = 4, source: Callable[[int], object] | None = None, **analog_kw: object
) -> tuple[DaisyChain, list[IdealAnalog], HostDriver]:
    analogs = [
        IdealAnalog(source(k) if source else (lambda t, k=k: cells_for(k)), **analog_kw)
        for k in range(n)
    ]
    chain = DaisyChain([Device(a, sid=0x100 + k) for k, a in enumerate(analogs)])
    host = HostDriver(chain.transfer, n, delay=chain.delay)
    return chain, analogs, host
