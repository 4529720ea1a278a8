"""The emulated ADBMS6830-class device: chip state machine, daisy chain, analog interface."""

from bms_emu.device.analog import DeviceAnalog, IdealAnalog
from bms_emu.device.chain import DaisyChain
from bms_emu.device.device import Device
from bms_emu.device.timing import DEFAULT_TIMING, DeviceTiming

__all__ = ["DEFAULT_TIMING", "DaisyChain", "Device", "DeviceAnalog", "DeviceTiming", "IdealAnalog"]
