"""cocotb bench of ``rtl_models/spi_target.sv``: bit-level SPI mode 3 in an oversampled clk domain.

Truth is the SPI definition itself (mode 3: sample MOSI on SCK rising, MISO changes after SCK
falling, MSB first; the LTC6802-1 / ADBMS6830 convention cited in the RTL header): the host
(``spi_host.SpiHost``) shifts random bytes and must read back the bytes the bench's stand-in
core presented on ``tx_byte`` at each ``tx_load``; the target must hand over exactly the bytes
sent, one ``rx_valid`` each, with ``start`` / ``stop`` / ``partial`` per window. Cases:

* random windows of 1..12 bytes at the slowest allowed oversampling (SCK half period = 4 clk);
* MOSI garbage while SCK is high (a target sampling on the wrong edge reads it);
* MISO changes only while SCK is low (the host's sampling edge never sees a transition);
* CSB rising after 1..7 bits of a byte: ``partial``, no byte for them, next window clean;
* SCK/MOSI toggling with CSB high: ignored, MISO stays 1;
* SCK edges not aligned to clk, random half periods 41..90 ns (clk 10 ns).
"""

from __future__ import annotations

import random

import pytest

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import FallingEdge, Timer
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None

CLK_NS = 10
HALF = 4  # SCK half period in clk cycles: the minimum the target supports (clk >= 8x SCK)


class CoreStub:
    """Stands in for the protocol core: records the byte interface, serves random replies.

    Watches every falling clk edge (between the target's register updates). ``sent`` holds the
    ``tx_byte`` value each ``tx_load`` took; a new random reply is presented right after.
    """

    def __init__(self, dut, rng: random.Random) -> None:
        self.dut = dut
        self.rng = rng
        self.rx: list[int] = []
        self.sent: list[int] = []
        self.starts = self.stops = self.partials = 0
        self.miso_changes_sck_high = 0
        dut.tx_byte.value = rng.randrange(256)

    async def run(self) -> None:
        dut = self.dut
        last_miso = 1
        while True:
            await FallingEdge(dut.clk)
            if int(dut.rx_valid.value):
                self.rx.append(int(dut.rx_byte.value))
            if int(dut.tx_load.value):
                self.sent.append(int(dut.tx_byte.value))
                dut.tx_byte.value = self.rng.randrange(256)
            self.starts += int(dut.start.value)
            self.stops += int(dut.stop.value)
            self.partials += int(dut.partial.value)
            miso = int(dut.miso.value)
            if miso != last_miso and int(dut.sck.value) and not int(dut.csb.value):
                self.miso_changes_sck_high += 1
            last_miso = miso

    def take(self) -> tuple[list[int], list[int]]:
        """Bytes received and replies sent since the last call."""
        rx, sent = self.rx, self.sent
        self.rx, self.sent = [], []
        return rx, sent


async def _setup(dut, seed: int):
    from rtl_bench import reset
    from spi_host import SpiHost, start_gpi_clock

    dut.csb.value = 1
    dut.sck.value = 1
    dut.mosi.value = 1
    start_gpi_clock(dut, CLK_NS)
    await reset(dut)
    host = SpiHost(dut, CLK_NS, HALF)
    await host.align()
    core = CoreStub(dut, random.Random(seed))
    cocotb.start_soon(core.run())
    return host, core


def _check_window(core: CoreStub, mosi: bytes, miso: bytes) -> None:
    rx, sent = core.take()
    assert bytes(rx) == mosi, f"target received {bytes(rx).hex()}, host sent {mosi.hex()}"
    assert miso == bytes(sent[: len(mosi)]), f"MISO {miso.hex()}, core gave {bytes(sent).hex()}"


if cocotb is not None:

    @cocotb.test()
    async def random_windows(dut):
        """Random windows of 1..12 bytes at SCK = clk / 8: bytes both ways, one start/stop each."""
        host, core = await _setup(dut, 1)
        rng = random.Random(0x5C)
        n = 60
        for _ in range(n):
            mosi = rng.randbytes(rng.randint(1, 12))
            _check_window(core, mosi, await host.transfer(mosi))
        assert (core.starts, core.stops, core.partials) == (n, n, 0)
        assert core.miso_changes_sck_high == 0, "MISO changed while SCK was high"

    @cocotb.test()
    async def mosi_garbage_while_sck_high(dut):
        """MOSI flips 2 clk after SCK rose and flips back before SCK falls: ignored (mode 3)."""
        host, core = await _setup(dut, 2)
        rng = random.Random(0x6A)
        for _ in range(10):
            mosi = rng.randbytes(rng.randint(1, 6))
            dut.csb.value = 0
            await Timer(HALF * CLK_NS, unit="ns")
            for byte in mosi:
                for i in range(8):
                    bit = (byte >> (7 - i)) & 1
                    dut.sck.value = 0
                    dut.mosi.value = bit
                    await Timer(HALF * CLK_NS, unit="ns")
                    dut.sck.value = 1
                    await Timer(2 * CLK_NS, unit="ns")
                    dut.mosi.value = 1 - bit
                    await Timer((HALF - 2) * CLK_NS, unit="ns")
            dut.csb.value = 1
            await Timer(8 * CLK_NS, unit="ns")
            rx, _ = core.take()
            assert bytes(rx) == mosi, f"received {bytes(rx).hex()}, sent {mosi.hex()}"
        del host

    @cocotb.test()
    async def csb_aborts_mid_byte(dut):
        """CSB rises after 1..7 bits: partial flagged, the bits dropped, the next window clean."""
        host, core = await _setup(dut, 3)
        rng = random.Random(0xAB)
        for extra in range(1, 8):
            mosi = rng.randbytes(rng.randint(0, 3))
            miso = await host.transfer(mosi, extra_bits=extra)
            _check_window(core, mosi, miso)
            assert core.partials == extra, f"partial not flagged after {extra} bits"
            clean = rng.randbytes(3)
            _check_window(core, clean, await host.transfer(clean))
        assert core.stops == core.starts == 14

    @cocotb.test()
    async def sck_while_deselected(dut):
        """SCK and MOSI toggling with CSB high: no bytes, no loads, MISO idle; then a clean one."""
        host, core = await _setup(dut, 4)
        rng = random.Random(0xDE)
        for _ in range(200):
            dut.sck.value = rng.randrange(2)
            dut.mosi.value = rng.randrange(2)
            await Timer(rng.randint(1, 3) * CLK_NS, unit="ns")
            assert int(dut.miso.value) == 1
        dut.sck.value = 1
        await Timer(4 * CLK_NS, unit="ns")
        assert core.take() == ([], []) and core.starts == 0
        mosi = bytes.fromhex("00013d6e")
        _check_window(core, mosi, await host.transfer(mosi))

    @cocotb.test()
    async def unaligned_jittered_sck(dut):
        """SCK edges at random times (half periods 41..90 ns, clk 10 ns): still bit exact."""
        host, core = await _setup(dut, 5)
        rng = random.Random(0x71)
        await Timer(3, unit="ns")  # leave the clk grid
        for _ in range(25):
            mosi = rng.randbytes(rng.randint(1, 8))
            halves_ns = [rng.randint(41, 90) for _ in range(16 * len(mosi))]
            dut.csb.value = 0
            await Timer(47, unit="ns")
            miso_bits = []
            for k, bit in enumerate((b >> (7 - i)) & 1 for b in mosi for i in range(8)):
                dut.sck.value = 0
                dut.mosi.value = bit
                await Timer(halves_ns[2 * k], unit="ns")
                miso_bits.append(int(dut.miso.value))
                dut.sck.value = 1
                await Timer(halves_ns[2 * k + 1], unit="ns")
            dut.csb.value = 1
            await Timer(rng.randint(43, 97), unit="ns")
            miso = bytes(
                int("".join(map(str, miso_bits[8 * i : 8 * i + 8])), 2) for i in range(len(mosi))
            )
            _check_window(core, mosi, miso)
        del host


def test_spi_target_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/spi_target.sv and run the cocotb tests above."""
    from rtl_bench import run_bench

    run_bench(request, block="spi_target", test_module="test_spi_target")
