"""Monte Carlo accuracy sweeps: lot/wafer/die populations x conditions -> TME statistics.

Pure parts: :mod:`~bms_emu.sweep.population`, :mod:`~bms_emu.sweep.kernel`,
:mod:`~bms_emu.sweep.engine`, :mod:`~bms_emu.sweep.stats`, :mod:`~bms_emu.sweep.soc`.
I/O parts: :mod:`~bms_emu.sweep.execute` (run, checkpoint, outputs),
:mod:`~bms_emu.sweep.history`. See docs/sweep.md.
"""
