"""SPI transports: one small base class, backends looked up by URL scheme and imported lazily.

Shaped like python-can's ``BusABC``: a transport has :meth:`SpiTransport.transfer` (one
chip-select window), :meth:`SpiTransport.delay` (let time pass), an idempotent
:meth:`SpiTransport.shutdown` and is a context manager. Both bound methods plug straight into
:class:`bms_emu.host.HostDriver` (``HostDriver(t.transfer, n, delay=t.delay)``).

Examples
--------
>>> sorted(BACKENDS)
['tcp']
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from urllib.parse import urlsplit

__all__ = ["BACKENDS", "SpiTransport", "TransportError", "open_transport"]


class TransportError(OSError):
    """The link failed: connection lost, deadline passed, or the peer reported an error."""


class SpiTransport(ABC):
    """One SPI port to an (emulated) daisy chain."""

    _is_shutdown = False

    @abstractmethod
    def transfer(self, mosi: bytes) -> bytes:
        """One chip-select window: MISO, as long as ``mosi``."""

    @abstractmethod
    def delay(self, dt_s: float) -> None:
        """Let ``dt_s`` seconds pass with no traffic."""

    @abstractmethod
    def _shutdown(self) -> None:
        """Release resources (called once)."""

    def shutdown(self) -> None:
        """Close the transport; further calls do nothing."""
        if not self._is_shutdown:
            self._is_shutdown = True
            self._shutdown()

    def __enter__(self) -> SpiTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


#: URL scheme -> (module, class); imported only when used, so a missing optional dependency
#: disables one backend and nothing else.
BACKENDS: dict[str, tuple[str, str]] = {
    "tcp": ("hil.sil_client", "SilClient"),
}


def open_transport(url: str, **kwargs: object) -> SpiTransport:
    """Open a transport from a URL such as ``tcp://127.0.0.1:5075``.

    Raises
    ------
    ValueError
        Unknown scheme or missing host/port.
    """
    parts = urlsplit(url)
    try:
        module, cls = BACKENDS[parts.scheme]
    except KeyError:
        raise ValueError(f"unknown transport {parts.scheme!r} in {url!r}; "
                         f"known: {sorted(BACKENDS)}") from None
    if not parts.hostname or parts.port is None:
        raise ValueError(f"{url!r}: need scheme://host:port")
    factory = getattr(importlib.import_module(module), cls)
    transport: SpiTransport = factory(parts.hostname, parts.port, **kwargs)
    return transport
