"""Python client of the SIL TCP protocol (``docs/sil-protocol.md``).

Examples
--------
Drive a served chain with the reference host driver::

    with SilClient("127.0.0.1", port) as spi:
        host = HostDriver(spi.transfer, spi.info().n_devices, delay=spi.delay)
        host.write_config_a({"REFON": 1})
"""

from __future__ import annotations

import socket
import struct
import time

from hil import sil_protocol as sp
from hil.transport import SpiTransport, TransportError

__all__ = ["SilClient", "SilError"]


class SilError(TransportError):
    """The server answered with an ERROR frame.

    Attributes
    ----------
    code : int
        SIL error code (``hil.sil_protocol.E_*``).
    """

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(f"SIL server error {sp.ERROR_NAMES.get(code, code)}: {message}")


class SilClient(SpiTransport):
    """One TCP connection to ``bms-emu serve``.

    Parameters
    ----------
    host, port : str, int
        Server address.
    timeout_s : float
        Deadline for connecting and for every reply.
    """

    def __init__(self, host: str, port: int, *, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self._seq = 0
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            raise TransportError(f"cannot connect to {host}:{port}: {exc}") from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._info: sp.Info | None = None

    def _shutdown(self) -> None:
        self._sock.close()

    def _recv_exact(self, n: int, deadline_s: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline_s - time.monotonic()
            if left <= 0:
                raise TransportError(f"no complete reply within {self.timeout_s} s")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(n - len(buf))
            except TimeoutError as exc:
                raise TransportError(f"no complete reply within {self.timeout_s} s") from exc
            except OSError as exc:
                raise TransportError(f"connection lost: {exc}") from exc
            if not chunk:
                raise TransportError("server closed the connection")
            buf += chunk
        return bytes(buf)

    def request(self, ftype: int, payload: bytes = b"") -> bytes:
        """Send one request, return the payload of its reply.

        Raises
        ------
        SilError
            The server answered with an ERROR frame.
        TransportError
            Connection lost, deadline passed, or a reply that does not match the request.
        """
        if self._is_shutdown:
            raise TransportError("client is closed")
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        deadline = time.monotonic() + self.timeout_s
        try:
            self._sock.settimeout(self.timeout_s)
            self._sock.sendall(sp.encode_frame(ftype, seq, payload))
        except OSError as exc:
            raise TransportError(f"send failed: {exc}") from exc
        try:
            rtype, rseq, length = sp.parse_header(self._recv_exact(sp.HEADER_LEN, deadline))
        except sp.FrameError as exc:
            raise TransportError(f"bad reply header: {exc}") from exc
        body = self._recv_exact(length, deadline) if length else b""
        if rtype == sp.ERROR:
            raise SilError(*sp.decode_error(body))
        if rtype != ftype | sp.REPLY or rseq != seq:
            raise TransportError(f"reply type 0x{rtype:02x} seq {rseq} does not answer "
                                 f"type 0x{ftype:02x} seq {seq}")
        return body

    def transfer(self, mosi: bytes) -> bytes:
        """One chip-select window (usable as ``HostDriver``'s ``transfer``)."""
        miso = self.request(sp.TRANSFER, bytes(mosi))
        if len(miso) != len(mosi):
            raise TransportError(f"TRANSFER reply has {len(miso)} bytes for {len(mosi)} sent")
        return miso

    def advance_us(self, us: int) -> float:
        """Lock-step: let ``us`` microseconds pass; returns the emulated time (s)."""
        body = self.request(sp.ADVANCE_TIME, struct.pack(">Q", int(us)))
        return struct.unpack(">Q", body)[0] * 1e-9

    def delay(self, dt_s: float) -> None:
        """Let ``dt_s`` pass: ADVANCE_TIME in lock-step, a real sleep in wall pace."""
        if self.info().lockstep:
            self.advance_us(round(dt_s * 1e6))
        else:
            time.sleep(dt_s)

    def wakeup(self) -> None:
        """Wake the chain (one dummy byte per device, t_WAKE apart, done by the server)."""
        self.request(sp.WAKEUP)

    def info(self, refresh: bool = False) -> sp.Info:
        """Server INFO (cached; ``refresh`` asks again, e.g. for the emulated time)."""
        if self._info is None or refresh:
            self._info = sp.Info.decode(self.request(sp.INFO))
        return self._info
