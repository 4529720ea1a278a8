"""A daisy chain of emulated devices behind one SPI port: ``transfer(mosi) -> miso``.

One :meth:`DaisyChain.transfer` call is one chip-select window, full duplex, MISO as long as
MOSI. Chain order is the one :mod:`bms_emu.protocol.frames` documents (device 0 nearest the
host): on a write the first data block shifted in ends in the farthest device; on a read the
nearest device answers first.

Time: the chain owns a clock (:attr:`DaisyChain.t_s`). :meth:`advance_to` moves it; every
transfer starts at the current time (or at ``t_s`` if given, not earlier) and lasts
``len(mosi) * 8 / f_spi_Hz`` (2 MHz default, the ADBMS6830 isoSPI/SPI rate in REFERENCE.md).
Within a window the command takes effect at the end of its 4 command bytes (reads latch their
data then; actions start then); write data is latched at the end of the window (CS rising).

Physical model of a window (see ``docs/protocol.md``, "Device behaviour"):

* activity reaches device ``i`` only if devices ``0..i-1`` are awake; a sleeping device that it
  reaches starts waking up (t_WAKE) and takes no part, and nothing passes beyond it;
* a write: each device holds the last ``data_len + 2`` bytes that reached it: device ``i`` the
  block ``i`` places from the end. The data phase must be a whole number of blocks (a
  partially clocked block is discarded by every device), and each device checks its block's
  PEC10 on its own;
* MISO is ``0xFF`` wherever no device drives it (command phase, devices asleep, bytes past the
  last device, polls with all converters idle); polls read ``0x00`` while a converter is busy.
"""

from __future__ import annotations

from collections.abc import Sequence

from bms_emu.device.device import POLL_SOURCES, Device
from bms_emu.protocol.opcodes import ACTION, POLL, READ, WRITE, CommandSpec, decode_opcode
from bms_emu.protocol.pec import pec15

__all__ = ["DEFAULT_F_SPI_HZ", "DaisyChain"]

#: Default SPI / isoSPI bit rate (REFERENCE.md 2.1: 2 Mbps).
DEFAULT_F_SPI_HZ = 2.0e6
_CMD_LEN = 4


class DaisyChain:
    """Devices on one chip select, device 0 nearest the host.

    Parameters
    ----------
    devices : sequence of Device
        At least one.
    f_spi_Hz : float, optional
        Bit rate used for the duration of a window.
    t0_s : float, optional
        Initial clock.
    """

    def __init__(
        self, devices: Sequence[Device], *, f_spi_Hz: float = DEFAULT_F_SPI_HZ, t0_s: float = 0.0
    ) -> None:
        if not devices:
            raise ValueError("a daisy chain needs at least one device")
        if not f_spi_Hz > 0:
            raise ValueError(f"f_spi_Hz must be > 0, got {f_spi_Hz}")
        self.devices = list(devices)
        self.f_spi_Hz = float(f_spi_Hz)
        self._byte_s = 8.0 / self.f_spi_Hz
        self._t = float(t0_s)
        # Valid command frames (4 bytes) -> decoded command; only good-PEC frames are cached.
        self._cmd_cache: dict[bytes, tuple[CommandSpec, dict[str, int]]] = {}
        for d in self.devices:
            d.advance_to(self._t)

    @property
    def n_devices(self) -> int:
        """Devices in the chain."""
        return len(self.devices)

    @property
    def t_s(self) -> float:
        """Current chain time (s)."""
        return self._t

    def advance_to(self, t_s: float) -> None:
        """Move the clock to ``t_s`` (not backwards); conversions complete on the way."""
        if t_s < self._t:
            raise ValueError(f"time went backwards: {t_s} < {self._t}")
        for d in self.devices:
            d.advance_to(t_s)
        self._t = t_s

    def delay(self, dt_s: float) -> None:
        """Let ``dt_s`` seconds pass with no traffic (a host's wait)."""
        if dt_s < 0:
            raise ValueError(f"delay must be >= 0, got {dt_s}")
        self.advance_to(self._t + dt_s)

    def window_duration_s(self, n_bytes: int) -> float:
        """Duration of a window of ``n_bytes`` bytes."""
        return n_bytes * self._byte_s

    def _decode(self, cmd: bytes) -> tuple[CommandSpec, dict[str, int]] | None:
        hit = self._cmd_cache.get(cmd)
        if hit is not None:
            return hit
        if pec15(cmd[:2]) != (cmd[2] << 8 | cmd[3]):
            return None
        dec = decode_opcode((cmd[0] << 8) | cmd[1])
        if dec is None:
            return None
        self._cmd_cache[cmd] = dec
        return dec

    def transfer(self, mosi: bytes, t_s: float | None = None) -> bytes:
        """One chip-select window: shift ``mosi`` out, return what came back on MISO.

        Parameters
        ----------
        mosi : bytes
            Everything the host clocks out in the window (any bytes; never raises on content).
        t_s : float, optional
            Window start; default the current chain time. Must not be earlier than it.

        Returns
        -------
        bytes
            MISO, ``len(mosi)`` bytes.
        """
        mosi = bytes(mosi)
        n = len(mosi)
        start = self._t if t_s is None else float(t_s)
        if start < self._t:
            raise ValueError(f"time went backwards: {start} < {self._t}")
        t_end = start + n * self._byte_s
        miso = bytearray(b"\xff" * n)
        devices = self.devices
        reach = 0
        if n:
            for d in devices:
                if not d.window_start(start):
                    break
                reach += 1
        dec = self._decode(mosi[:_CMD_LEN]) if (reach and n >= _CMD_LEN) else None
        if dec is not None:
            spec, params = dec
            t_cmd = start + _CMD_LEN * self._byte_s
            for d in devices:
                d.advance_to(t_cmd)
            kind = spec.kind
            if kind == READ:
                step = spec.data_len + 2
                for i in range(reach):
                    pos = _CMD_LEN + i * step
                    if pos >= n:
                        break
                    block = devices[i].read_reply(spec, params, t_cmd)
                    miso[pos : pos + step] = block[: n - pos]
            elif kind == ACTION:
                for i in range(reach):
                    devices[i].execute(spec, params, t_cmd)
            elif kind == WRITE:
                for d in devices:
                    d.advance_to(t_end)
                data = mosi[_CMD_LEN:]
                step = spec.data_len + 2
                if data and len(data) % step == 0:
                    nblk = len(data) // step
                    for i in range(min(reach, nblk)):
                        end = len(data) - i * step
                        devices[i].write_block(spec, data[end - step : end], t_end)
            elif kind == POLL:
                sources = POLL_SOURCES.get(spec.name, ())
                for j in range(_CMD_LEN, n):
                    tb = start + (j + 1) * self._byte_s
                    for d in devices:
                        d.advance_to(tb)
                    if any(devices[i].busy(sources) for i in range(reach)):
                        miso[j] = 0x00
        for d in devices:
            d.advance_to(t_end)
        self._t = t_end
        return bytes(miso)
