"""Timing of the emulated ADBMS6830-class chip, in chip-clock cycles.

All durations the device model uses are integer cycle counts of a nominal chip clock
(:attr:`DeviceTiming.f_clk_Hz`); a device whose oscillator runs fast or slow is modelled by a
different ``f_clk_Hz``. The figures and where they come from (see ``docs/protocol.md``,
"Device behaviour"):

=====================  ==========  ==============================================================
quantity               cycles      source / reasoning
=====================  ==========  ==============================================================
C-ADC conversion       1 000       REFERENCE.md 2.1 (1 ms, unverified); cross-checked: a first-order
                                   IIR ``y += (x - y) / k`` at 1 kHz has its -3 dB corner at
                                   115/46/21/10/5.1/1.25/0.62 Hz for k = 2/4/8/16/32/128/256, the
                                   published FC table (110/45/21/10/5/1.25/0.625 Hz).
S-ADC conversion       8 000       REFERENCE.md 2.1 (8 ms), foxBMS
                                   ``ADI_REDUNDANT_ADC_MEASUREMENT_TIME_ms = 8``.
AUX channel            1 000       REFERENCE.md 2.1 (1 ms per channel, assumed per channel); the
                                   full ADAX sequence (17 channels) then takes 17 ms, just under
                                   foxBMS' 10 ms + 8 ms wait for a full ADAX cycle.
REFUP                  4 500       foxBMS ``ADI_TREFUP_ms`` comment "max 4.5 ms".
wake-up (t_WAKE)       500         foxBMS ``ADI_T_WAKE_us = 500`` (max).
sleep timeout          2 000 000   LTC681x-class watchdog (1.8..2.2 s); assumed 2.0 s.
=====================  ==========  ==============================================================

The nominal clock is 1 MHz so one cycle is 1 us; the real oscillator frequency is not public.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_TIMING", "DeviceTiming"]


@dataclass(frozen=True)
class DeviceTiming:
    """Chip clock and durations (in cycles) of the emulated device.

    Attributes
    ----------
    f_clk_Hz : float
        Chip clock. 1 MHz nominal (an assumption: only the durations matter).
    c_conv_cycles : int
        One C-ADC conversion of all 16 channels.
    s_conv_cycles : int
        One S-ADC (redundant) conversion of all 16 channels.
    aux_channel_cycles : int
        One AUX / AUX2 channel.
    refup_cycles : int
        Reference power-up (REFUP state) before a conversion can start.
    wake_cycles : int
        Sleep -> standby after the first activity on the port (t_WAKE).
    sleep_timeout_cycles : int or None
        Watchdog: the device goes to sleep this long after the last valid command (None: never).
    dcto_unit_s : tuple of float
        Discharge-timeout step for DTRNG = 0 and DTRNG = 1 (assumed 1 min and 16 min).
    """

    f_clk_Hz: float = 1.0e6
    c_conv_cycles: int = 1_000
    s_conv_cycles: int = 8_000
    aux_channel_cycles: int = 1_000
    refup_cycles: int = 4_500
    wake_cycles: int = 500
    sleep_timeout_cycles: int | None = 2_000_000
    dcto_unit_s: tuple[float, float] = (60.0, 960.0)

    def __post_init__(self) -> None:
        if not self.f_clk_Hz > 0:
            raise ValueError(f"f_clk_Hz must be > 0, got {self.f_clk_Hz}")
        for name in ("c_conv_cycles", "s_conv_cycles", "aux_channel_cycles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.s_conv_cycles % self.c_conv_cycles:
            raise ValueError("s_conv_cycles must be a whole number of C conversions")

    def seconds(self, cycles: int) -> float:
        """Duration of ``cycles`` chip-clock cycles in seconds."""
        return cycles / self.f_clk_Hz

    @property
    def c_conv_s(self) -> float:
        """C-ADC conversion time (s)."""
        return self.c_conv_cycles / self.f_clk_Hz

    @property
    def s_conv_s(self) -> float:
        """S-ADC conversion time (s)."""
        return self.s_conv_cycles / self.f_clk_Hz

    @property
    def aux_channel_s(self) -> float:
        """One AUX channel (s)."""
        return self.aux_channel_cycles / self.f_clk_Hz

    @property
    def refup_s(self) -> float:
        """Reference power-up time (s)."""
        return self.refup_cycles / self.f_clk_Hz

    @property
    def wake_s(self) -> float:
        """Wake-up time from sleep (s)."""
        return self.wake_cycles / self.f_clk_Hz

    @property
    def sleep_timeout_s(self) -> float:
        """Watchdog sleep timeout (s); ``inf`` if disabled."""
        if self.sleep_timeout_cycles is None:
            return float("inf")
        return self.sleep_timeout_cycles / self.f_clk_Hz

    @property
    def c_per_s(self) -> int:
        """C conversions per S conversion (8)."""
        return self.s_conv_cycles // self.c_conv_cycles


#: Nominal timing.
DEFAULT_TIMING = DeviceTiming()
