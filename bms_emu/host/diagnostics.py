"""Host-side diagnostic procedures built on :class:`bms_emu.host.driver.HostDriver`.

Open-wire check (the procedure of the public drivers: ADI adBms6830 library examples and
foxBMS run S-ADC conversions with the even and the odd open-wire test currents on and compare
each channel's result with the one taken without the currents):

1. ADSV single shot, no test current -> baseline ``b``;
2. ADSV with ``OW = 1`` (even channels' currents) -> ``e``;
3. ADSV with ``OW = 2`` (odd channels' currents) -> ``o``.

Channel ``n`` (1-based) is suspect when the result taken with its own current on dropped by more
than ``threshold_V`` below the baseline. A suspect channel ``n >= 2`` means pin ``Cn`` is open.
Channel 1 is ambiguous between ``C0`` and ``C1``: ``C1`` when channel 2 rose by more than the
threshold in the same (odd) conversion (the charge of the open pin went to the channel above),
``C0`` otherwise.
"""

from __future__ import annotations

import numpy as np

from bms_emu.host.driver import HostDriver

__all__ = ["S_CONVERSION_WAIT_S", "open_wire_check"]

#: Wait after an ADSV single shot before reading (8 ms conversion + margin, as the ADI
#: examples' 10 ms ``OW_CONV_WAIT_MS``) plus REFUP headroom.
S_CONVERSION_WAIT_S = 0.015


def open_wire_check(
    driver: HostDriver, threshold_V: float = 0.4, wait_s: float = S_CONVERSION_WAIT_S
) -> list[list[int]]:
    """Run the open-wire procedure on every device; return the open pins per device.

    Parameters
    ----------
    driver : HostDriver
        Driver with a ``delay`` function.
    threshold_V : float, optional
        Drop (V) that marks a channel as suspect (LTC681x uses 400 mV).
    wait_s : float, optional
        Wait after each ADSV.

    Returns
    -------
    list of list of int
        ``[device][k]``: open pin numbers (0..16) found on each device (0 = nearest).
    """
    results = []
    for ow in (0, 1, 2):
        driver.command("ADSV", OW=ow)
        driver.wait(wait_s)
        results.append(driver.read_cells("S"))
    base, even, odd = results
    n1 = np.arange(1, base.shape[1] + 1)
    with_current = np.where(n1 % 2 == 0, even, odd)
    drop = base - with_current
    suspect = np.nan_to_num(drop, nan=np.inf) > threshold_V
    out: list[list[int]] = []
    for dev in range(base.shape[0]):
        pins: list[int] = []
        for ch in np.flatnonzero(suspect[dev]) + 1:
            if ch == 1:
                rise = odd[dev, 1] - base[dev, 1]
                pins.append(1 if rise > threshold_V else 0)
            else:
                pins.append(int(ch))
        out.append(sorted(pins))
    return out
