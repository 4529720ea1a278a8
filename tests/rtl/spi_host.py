"""Bit-level SPI host for the RTL benches: mode 3 (CPOL = 1, CPHA = 1), MSB first, CSB low.

The host changes MOSI with SCK falling and samples MISO just before SCK rises, as an
ADBMS6830-class controller does (``rtl_models/spi_target.sv`` header). Pin changes happen on
falling edges of ``clk`` (call :meth:`SpiHost.align` once), so they never race the target's
synchronisers; SCK half periods are whole ``clk`` periods. Imports cocotb lazily.
"""

from __future__ import annotations

from typing import Any


class SpiHost:
    """Drive ``csb``, ``sck``, ``mosi`` and read ``miso`` of ``dut``.

    Parameters
    ----------
    dut : cocotb handle
        Has ``csb``, ``sck``, ``mosi`` inputs and a ``miso`` output.
    clk_period_ns : int
        Period of ``dut.clk``.
    half_clks : int
        SCK half period in ``clk`` cycles (>= 4: the target needs clk >= 8x SCK).
    """

    def __init__(self, dut: Any, clk_period_ns: int = 10, half_clks: int = 4) -> None:
        if half_clks < 1:
            raise ValueError(f"half_clks must be >= 1, got {half_clks}")
        self.dut = dut
        self.clk_period_ns = clk_period_ns
        self.half_clks = half_clks

    async def _wait(self, n_clks: int) -> None:
        from cocotb.triggers import Timer

        await Timer(n_clks * self.clk_period_ns, unit="ns")

    async def align(self) -> None:
        """Idle the pins (CSB high, SCK high) and move to a falling edge of ``clk``."""
        from cocotb.triggers import FallingEdge

        self.dut.csb.value = 1
        self.dut.sck.value = 1
        self.dut.mosi.value = 1
        await FallingEdge(self.dut.clk)

    async def transfer(
        self,
        mosi: bytes,
        *,
        extra_bits: int = 0,
        half_clks: list[int] | None = None,
        idle_clks: int = 8,
    ) -> bytes:
        """One chip-select window: shift ``mosi`` out, return the MISO bytes.

        Parameters
        ----------
        mosi : bytes
            Whole bytes to send.
        extra_bits : int
            Bits (0..7) of one more byte 0xA5 clocked before CSB rises: an aborted byte.
        half_clks : list of int, optional
            SCK half periods per bit-half (cycled); default the constant ``half_clks``.
        idle_clks : int
            CSB-high time after the window.
        """
        if not 0 <= extra_bits <= 7:
            raise ValueError(f"extra_bits must be 0..7, got {extra_bits}")
        dut = self.dut
        halves = half_clks or [self.half_clks]
        k = 0

        def nxt() -> int:
            nonlocal k
            h = halves[k % len(halves)]
            k += 1
            return h

        bits = [(b >> (7 - i)) & 1 for b in mosi for i in range(8)]
        bits += [(0xA5 >> (7 - i)) & 1 for i in range(extra_bits)]
        dut.csb.value = 0
        await self._wait(self.half_clks)  # CSB setup before the first SCK edge
        miso_bits = []
        for bit in bits:
            dut.sck.value = 0
            dut.mosi.value = bit
            await self._wait(nxt())
            miso_bits.append(int(dut.miso.value))
            dut.sck.value = 1
            await self._wait(nxt())
        dut.csb.value = 1
        dut.mosi.value = 1
        await self._wait(idle_clks)
        out = bytearray()
        for i in range(len(mosi)):
            v = 0
            for b in miso_bits[8 * i : 8 * i + 8]:
                v = (v << 1) | b
            out.append(v)
        return bytes(out)


def start_gpi_clock(dut: Any, period_ns: int = 10) -> Any:
    """Start ``dut.clk`` with cocotb's C-level (GPI) clock driver; returns the clock.

    The SPI benches run thousands of clk cycles per window while Python only touches the pins
    per SCK edge; the default Python clock coroutine would cost two Python wake-ups per cycle.
    Rising edges as with ``rtl_bench.start_clock`` (low first half period).
    """
    from cocotb.clock import Clock

    clock = Clock(dut.clk, period_ns, unit="ns", impl="gpi")
    clock.start(start_high=False)
    return clock
