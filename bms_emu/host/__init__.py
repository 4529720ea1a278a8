"""Reference host-side codec: a driver that speaks the ADBMS6830 protocol through ``transfer``."""

from bms_emu.host.diagnostics import open_wire_check
from bms_emu.host.driver import (
    CommandCounterError,
    HostDriver,
    PecError,
    ProtocolError,
    TransferError,
)

__all__ = [
    "CommandCounterError",
    "HostDriver",
    "PecError",
    "ProtocolError",
    "TransferError",
    "open_wire_check",
]
