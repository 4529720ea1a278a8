"""HIL rig around the emulator: transports (TCP, serial bridge, CAN) and scenarios.

Everything that touches sockets, serial ports, CAN buses or the wall clock lives here; ``bms_emu``
never imports ``hil``.
"""
