"""Benchmark: in-process ``DaisyChain.transfer()`` of RDCVA on a 4-device chain (target <= 50 us).

Run: ``python -m benchmarks.bench_device``. Prints JSON (see ``benchmarks/machine.py``).
Two cases: an idle chain (pure protocol path) and a chain running continuous conversions,
where every read also advances 4 devices by 144 us of chain time (a C result every 1 ms).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from benchmarks.machine import emit
from bms_emu.device import DaisyChain, Device, IdealAnalog
from bms_emu.host import HostDriver
from bms_emu.protocol.frames import build_read_frame
from bms_emu.protocol.opcodes import encode_opcode


def _chain() -> DaisyChain:
    devices = [
        Device(IdealAnalog(lambda t, k=k: np.full(16, 3.3 + 0.01 * k))) for k in range(4)
    ]
    return DaisyChain(devices)


def _median_us(fn: Callable[[], object], n: int) -> tuple[float, float]:
    samples = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples[i] = time.perf_counter_ns() - t0
    return float(np.median(samples)) / 1e3, float(np.percentile(samples, 90)) / 1e3


def main() -> None:
    mosi = build_read_frame(encode_opcode("RDCVA"), 4)
    results: dict[str, float] = {}
    chain = _chain()
    for _ in range(1000):
        chain.transfer(mosi)
    med, p90 = _median_us(lambda: chain.transfer(mosi), 20_000)
    results["rdcva_4dev_idle_median_us"] = med
    results["rdcva_4dev_idle_p90_us"] = p90
    chain = _chain()
    host = HostDriver(chain.transfer, 4, delay=chain.delay)
    host.write_config_a({"REFON": 1})
    host.start_cell_conversion(cont=True)
    chain.delay(0.01)
    med, p90 = _median_us(lambda: chain.transfer(mosi), 20_000)
    results["rdcva_4dev_converting_median_us"] = med
    results["rdcva_4dev_converting_p90_us"] = p90
    results["target_median_us"] = 50.0
    emit("device_transfer_rdcva", results)


if __name__ == "__main__":
    main()
