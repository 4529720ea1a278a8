"""Virtual battery pack: the truth the emulated monitor chip measures."""

from bms_emu.pack.virtual_pack import VirtualPack

__all__ = ["VirtualPack"]
