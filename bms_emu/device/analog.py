"""The device's view of its analog side, and an ideal implementation for tests.

:class:`DeviceAnalog` is the interface the chip state machine (:mod:`bms_emu.device.device`)
calls; the real analog model (reference, ADC, trim, front end over a virtual pack) implements
it elsewhere. Everything is pure: time is an argument, and calls come with non-decreasing
times.

Open-wire test currents (``ow``), the ADBMS6830 meaning adopted here (ADI adBms6830 library enum
``OW_C_S``: ``OW_OFF_ALL_CH = 0, OW_ON_EVEN_CH = 1, OW_ON_ODD_CH = 2, OW_ON_ALL_CH = 3``):

* 0: no test current;
* 1: test currents on the even channels (2, 4, ..., 16; 1-based);
* 2: test currents on the odd channels (1, 3, ..., 15);
* 3: on all channels.

:class:`IdealAnalog`'s open-wire model (documented, deliberately simple): the test current of
channel ``n`` acts on the channel's top pin ``Cn``; if that sense wire is open the floating pin
is pulled to the pin below during the conversion, so channel ``n`` reads ~0 V and channel
``n + 1`` reads ``v[n] + v[n+1]``. Channel 1's current also pulls an open ``C0`` up to ``C1``
(channel 1 reads ~0 V, channel 2 unaffected). Without test currents a floating pin holds its
voltage on its filter capacitor, so an open wire does not show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from bms_emu.protocol.registers import CELL_LSB_V, CELL_OFFSET_V

__all__ = [
    "FAULT_KEYS",
    "STATUS_KEYS",
    "DeviceAnalog",
    "IdealAnalog",
    "ow_channel_mask",
    "quantise_V",
]

#: Keys of :meth:`DeviceAnalog.measure_status`.
STATUS_KEYS = ("vref2_V", "itmp_C", "va_V", "vd_V", "sc_V", "vres_V", "vmv_V", "vpv_V")
#: Keys of :meth:`DeviceAnalog.fault_state`.
FAULT_KEYS = (
    "thermal_shutdown",
    "va_ov",
    "va_uv",
    "vd_ov",
    "vd_uv",
    "osc_fault",
    "trim_ecc_corrected",
    "trim_ecc_uncorrectable",
)

_CODE_MIN = -0x8000
_CODE_MAX = 0x7FFF


@runtime_checkable
class DeviceAnalog(Protocol):
    """What the chip state machine needs from the analog side of one device.

    Attributes
    ----------
    n_channels : int
        Cell channels (16).
    """

    n_channels: int

    def measure_cells(
        self, t0_s: float, t1_s: float, path: str, ow: int = 0
    ) -> npt.NDArray[np.float64]:
        """Measured differential voltages of one conversion, shape ``(n_channels,)`` (V).

        Parameters
        ----------
        t0_s, t1_s : float
            Conversion window.
        path : {"C", "S"}
            C-ADC or S-ADC (redundant) path.
        ow : int
            Open-wire test currents active during the window: 0 none, 1 even channels,
            2 odd channels, 3 all (ADBMS6830 ``OW[1:0]``, see the module docstring).

        Returns
        -------
        ndarray
            Every analog error and the ADC quantisation included.
        """
        ...

    def measure_aux(self, t0_s: float, t1_s: float, path: str = "aux") -> npt.NDArray[np.float64]:
        """GPIO1..GPIO10 voltages, shape ``(10,)`` (V); ``path`` "aux" or "raux" (redundant)."""
        ...

    def measure_current_A(self, t0_s: float, t1_s: float) -> float:
        """Current channel (bms-emu extension): pack current over the window, measured (A)."""
        ...

    def measure_status(self, t_s: float) -> dict[str, float]:
        """Internal voltages and die temperature at ``t_s``; keys :data:`STATUS_KEYS`."""
        ...

    def set_balance(self, t_s: float, on: npt.NDArray[Any]) -> None:
        """Discharge switches from ``t_s`` on, shape ``(n_channels,)``.

        ``on`` is bool, or float duty fractions in [0, 1] (PWM): nonzero means on.
        """
        ...

    def fault_state(self, t_s: float) -> dict[str, bool]:
        """Analog faults the chip's own monitors see at ``t_s``; keys :data:`FAULT_KEYS`."""
        ...


def quantise_V(v_V: npt.ArrayLike, lsb_V: float = CELL_LSB_V) -> npt.NDArray[np.float64]:
    """Round to the ADC grid ``1.5 V + k * lsb`` and saturate at the signed 16-bit code range.

    Examples
    --------
    >>> float(quantise_V(3.30007))
    3.3
    """
    k = np.rint((np.asarray(v_V, dtype=np.float64) - CELL_OFFSET_V) / lsb_V)
    return CELL_OFFSET_V + np.clip(k, _CODE_MIN, _CODE_MAX) * lsb_V


def ow_channel_mask(ow: int, n_channels: int = 16) -> npt.NDArray[np.bool_]:
    """Channels (0-based index) whose open-wire test current is on for ``OW[1:0] = ow``.

    Examples
    --------
    >>> np.flatnonzero(ow_channel_mask(1, 6)).tolist()  # even channels 2, 4, 6 (1-based)
    [1, 3, 5]
    >>> np.flatnonzero(ow_channel_mask(2, 6)).tolist()
    [0, 2, 4]
    """
    n1 = np.arange(1, n_channels + 1)
    if ow == 0:
        return np.zeros(n_channels, dtype=bool)
    if ow == 1:
        return n1 % 2 == 0
    if ow == 2:
        return n1 % 2 == 1
    if ow == 3:
        return np.ones(n_channels, dtype=bool)
    raise ValueError(f"ow must be 0..3, got {ow}")


class IdealAnalog:
    """An ideal analog side: exact voltages, 150 uV quantisation, optional injected faults.

    Parameters
    ----------
    source : callable or PackSource
        ``source(t_s) -> (n_channels,)`` cell voltages (V), or an object with
        ``sample(t_s)`` returning something with ``sense_voltage_V``
        (:class:`bms_emu.sources.PackSource`).
    n_channels : int, optional
        16.
    gain_error_C, gain_error_S : array_like, optional
        Per-channel fractional gain error of the C / S path (0.01 = +1 %), shape
        ``(n_channels,)`` or scalar.
    offset_C_V : array_like, optional
        Per-channel offset of the C path (V).
    open_pins : iterable of int, optional
        Open sense wires by pin number ``C0 .. C16`` (see the module docstring).
    gpio_V : array_like or callable, optional
        GPIO1..10 voltages, shape ``(10,)``, or ``gpio_V(t_s)``. Default 1.5 V each.
    status : mapping, optional
        Fixed values for :meth:`measure_status` keys (others: vref2 3.0 V, itmp 25 C, va 5.0 V,
        vd 3.3 V, vres 1.5 V, vmv 0 V, sc = vpv = sum of cells).
    faults : mapping, optional
        Forced :meth:`fault_state` values (others False).
    r_balance_Ohm : float, optional
        Bleed resistor per channel, passed to a pack source as ``r / duty``.
    """

    def __init__(
        self,
        source: Callable[[float], npt.ArrayLike] | Any,
        n_channels: int = 16,
        *,
        gain_error_C: npt.ArrayLike = 0.0,
        gain_error_S: npt.ArrayLike = 0.0,
        offset_C_V: npt.ArrayLike = 0.0,
        open_pins: Iterable[int] = (),
        gpio_V: npt.ArrayLike | Callable[[float], npt.ArrayLike] = 1.5,
        status: Mapping[str, float] | None = None,
        faults: Mapping[str, bool] | None = None,
        r_balance_Ohm: float = 100.0,
    ) -> None:
        self.n_channels = int(n_channels)
        self._source = source
        self._sample: Callable[[float], npt.NDArray[np.float64]]
        if hasattr(source, "sample"):
            self._sample = lambda t: np.asarray(source.sample(t).sense_voltage_V, dtype=float)
        elif callable(source):
            self._sample = lambda t: np.asarray(source(t), dtype=float)
        else:
            raise TypeError("source must be a callable v_cells(t_s) or a PackSource")
        shape = (self.n_channels,)
        self.gain_error_C = np.broadcast_to(np.asarray(gain_error_C, float), shape).copy()
        self.gain_error_S = np.broadcast_to(np.asarray(gain_error_S, float), shape).copy()
        self.offset_C_V = np.broadcast_to(np.asarray(offset_C_V, float), shape).copy()
        self.open_pins = frozenset(int(p) for p in open_pins)
        bad = [p for p in self.open_pins if not 0 <= p <= self.n_channels]
        if bad:
            raise ValueError(f"open pins must be 0..{self.n_channels}, got {sorted(bad)}")
        self._gpio = gpio_V
        unknown = set(status or {}) - set(STATUS_KEYS)
        if unknown:
            raise KeyError(f"unknown status keys {sorted(unknown)}; allowed {STATUS_KEYS}")
        self.status = dict(status or {})
        unknown = set(faults or {}) - set(FAULT_KEYS)
        if unknown:
            raise KeyError(f"unknown fault keys {sorted(unknown)}; allowed {FAULT_KEYS}")
        self.faults = {k: False for k in FAULT_KEYS}
        self.faults.update({k: bool(v) for k, v in (faults or {}).items()})
        self.r_balance_Ohm = float(r_balance_Ohm)
        self.balance = np.zeros(shape)
        #: ``(t_s, duty)`` for every :meth:`set_balance` call (for tests and traces).
        self.balance_log: list[tuple[float, npt.NDArray[np.float64]]] = []

    def cells_V(self, t_s: float) -> npt.NDArray[np.float64]:
        """True cell voltages at ``t_s``, shape ``(n_channels,)``."""
        v = self._sample(t_s)
        if v.shape != (self.n_channels,):
            raise ValueError(f"source gave shape {v.shape}, expected ({self.n_channels},)")
        return v

    def _open_wire(self, v: npt.NDArray[np.float64], ow: int) -> npt.NDArray[np.float64]:
        if not self.open_pins or ow == 0:
            return v
        on = ow_channel_mask(ow, self.n_channels)
        out = v.copy()
        for pin in sorted(self.open_pins):
            if pin == 0:
                if on[0]:
                    out[0] = 0.0
                continue
            ch = pin - 1  # channel whose top pin this is (0-based)
            if on[ch]:
                out[ch] = 0.0
                if ch + 1 < self.n_channels:
                    out[ch + 1] = v[ch] + v[ch + 1]
        return out

    def measure_cells(
        self, t0_s: float, t1_s: float, path: str, ow: int = 0
    ) -> npt.NDArray[np.float64]:
        """See :meth:`DeviceAnalog.measure_cells`; the window is sampled at its midpoint."""
        v = self.cells_V(0.5 * (t0_s + t1_s))
        if path == "C":
            v = v * (1.0 + self.gain_error_C) + self.offset_C_V
        elif path == "S":
            v = v * (1.0 + self.gain_error_S)
        else:
            raise ValueError(f"path must be 'C' or 'S', got {path!r}")
        return quantise_V(self._open_wire(v, ow))

    def measure_current_A(self, t0_s: float, t1_s: float) -> float:
        """Exact pack current at the window midpoint (0 A for a plain callable source)."""
        if hasattr(self._source, "sample"):
            return float(self._source.sample(0.5 * (t0_s + t1_s)).current_A)
        return 0.0

    def measure_aux(self, t0_s: float, t1_s: float, path: str = "aux") -> npt.NDArray[np.float64]:
        """See :meth:`DeviceAnalog.measure_aux`."""
        if path not in ("aux", "raux"):
            raise ValueError(f"path must be 'aux' or 'raux', got {path!r}")
        g = self._gpio(0.5 * (t0_s + t1_s)) if callable(self._gpio) else self._gpio
        return quantise_V(np.broadcast_to(np.asarray(g, dtype=float), (10,)))

    def measure_status(self, t_s: float) -> dict[str, float]:
        """See :meth:`DeviceAnalog.measure_status`."""
        total = float(np.sum(self.cells_V(t_s)))
        out = {
            "vref2_V": 3.0,
            "itmp_C": 25.0,
            "va_V": 5.0,
            "vd_V": 3.3,
            "sc_V": total,
            "vres_V": 1.5,
            "vmv_V": 0.0,
            "vpv_V": total,
        }
        out.update(self.status)
        return out

    def set_balance(self, t_s: float, on: npt.NDArray[Any]) -> None:
        """See :meth:`DeviceAnalog.set_balance`; forwards ``r / duty`` to a pack source."""
        duty = np.clip(np.asarray(on, dtype=float), 0.0, 1.0)
        self.balance = duty
        self.balance_log.append((t_s, duty.copy()))
        setter = getattr(self._source, "set_balance_resistance", None)
        if setter is not None:
            with np.errstate(divide="ignore"):
                setter(np.where(duty > 0, self.r_balance_Ohm / np.maximum(duty, 1e-12), np.inf))

    def fault_state(self, t_s: float) -> dict[str, bool]:
        """See :meth:`DeviceAnalog.fault_state`."""
        return dict(self.faults)
