"""bms-emu: cycle-level emulator of a battery-monitor AFE and the HIL rig around it."""

__version__ = "0.1.0"
