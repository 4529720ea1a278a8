"""EIS engine extension (opcodes 0x6C0-0x6DF): register groups and fixed-point formats.

Both sides use these codecs: the device (:mod:`bms_emu.device.eis_block`) and the host driver
(:class:`bms_emu.host.driver.HostDriver` EIS methods). The command table rows are in
:mod:`bms_emu.protocol.opcodes`; docs/protocol.md "Extensions" describes the same layout.

Groups (little-endian, per device)
----------------------------------
* ``EISC`` (6 bytes, WREISC/RDEISC): byte 0 bit 0 ``SRC`` (0 external current, 1 balancing
  switch), bits 1-3 ``DETREND`` (drift polynomial degree, 0 = plain DFT); byte 1 ``NPER``
  (minimum integration periods, 1-255; 0 reads as 3); byte 2 ``TMIN`` (integration floor, s);
  bytes 3-4 ``AMP`` (external amplitude, uint16, 1 mA LSB); byte 5 ``NF`` (frequency slots
  used, 1-16).
* ``EISF`` (6 bytes, WREISF/RDEISF): byte 0 slot (0-15); bytes 1-4 frequency, uint32, 1 uHz
  LSB (0.01 Hz = 10000); byte 5 reserved 0. A write sets that slot (slots >= 16 are ignored); a
  read returns the slot selected by ``EISP``.
* ``EISP`` (6 bytes, WREISP): byte 0 frequency slot, byte 1 cell half (0: cells 0-7, 1: 8-15)
  for ``RDEISR``/``RDEISU``/``RDEISF``.
* ``EISS`` (6 bytes, RDEISS): byte 0 state (0 idle, 1 running, 2 done, 3 error); byte 1 error
  (0 none, 1 bad settings, 2 no EIS-capable analog front end); bytes 2-3 frequencies with
  results; bytes 4-5 remaining emulated time, uint16, 1 s LSB (saturating).
* ``EISR`` (64 bytes, RDEISR): for the ``EISP`` slot and half, 8 cells x (Re Z, Im Z), each
  int32, LSB 1 nOhm (+-2.1 Ohm range; :data:`Z_LSB_OHM`); ``0x80000000`` = no result.
* ``EISU`` (32 bytes, RDEISU): for the ``EISP`` slot, 16 cells x u95 (radius of the 95 %
  uncertainty circle), uint16, LSB 0.1 uOhm (:data:`U_LSB_OHM`, up to 6.55 mOhm);
  ``0xFFFF`` = no result or out of range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "EIS_STATES",
    "F_LSB_HZ",
    "NO_RESULT",
    "N_SLOTS",
    "U_LSB_OHM",
    "Z_LSB_OHM",
    "EisConfig",
    "decode_results",
    "decode_status",
    "decode_uncertainty",
    "encode_freq",
    "encode_results",
    "encode_uncertainty",
]

#: Z component LSB (Ohm): 1 nOhm in a signed 32-bit word.
Z_LSB_OHM = 1e-9
#: u95 LSB (Ohm): 0.1 uOhm in an unsigned 16-bit word.
U_LSB_OHM = 1e-7
#: Frequency LSB (Hz): 1 uHz in an unsigned 32-bit word.
F_LSB_HZ = 1e-6
#: Marker of a missing Z component.
NO_RESULT = -(2**31)
#: Frequency slots.
N_SLOTS = 16
#: State codes of the EISS group.
EIS_STATES = {0: "idle", 1: "running", 2: "done", 3: "error"}


@dataclass(frozen=True)
class EisConfig:
    """Decoded ``EISC`` group.

    >>> c = EisConfig(src=1, detrend=2, nper=3, tmin_s=60, amp_mA=1000, nf=7)
    >>> EisConfig.decode(c.encode()) == c
    True
    >>> c.encode().hex()
    '05033ce80307'
    """

    src: int = 0
    detrend: int = 2
    nper: int = 3
    tmin_s: int = 60
    amp_mA: int = 1000
    nf: int = 0

    def encode(self) -> bytes:
        b0 = (self.src & 1) | ((self.detrend & 7) << 1)
        return bytes((b0, self.nper & 0xFF, self.tmin_s & 0xFF)) + (
            (self.amp_mA & 0xFFFF).to_bytes(2, "little") + bytes((self.nf & 0xFF,))
        )

    @classmethod
    def decode(cls, data: bytes) -> EisConfig:
        return cls(
            src=data[0] & 1,
            detrend=(data[0] >> 1) & 7,
            nper=data[1],
            tmin_s=data[2],
            amp_mA=int.from_bytes(data[3:5], "little"),
            nf=data[5],
        )


def encode_freq(slot: int, f_Hz: float) -> bytes:
    """``EISF`` payload for ``slot``.

    >>> encode_freq(0, 0.01).hex()
    '001027000000'
    """
    code = round(f_Hz / F_LSB_HZ)
    if not 0 <= code < 2**32:
        raise ValueError(f"frequency {f_Hz} Hz out of range")
    return bytes((slot & 0xFF,)) + code.to_bytes(4, "little") + b"\x00"


def encode_results(z_Ohm: npt.ArrayLike) -> bytes:
    """8 complex impedances (NaN = none) -> the 64-byte ``EISR`` group.

    >>> z = np.array([3.1e-4 - 8.6e-5j] + [np.nan] * 7)
    >>> complex(decode_results(encode_results(z))[0])
    (0.00031-8.6e-05j)
    """
    z = np.asarray(z_Ohm, dtype=complex).reshape(8)
    words = np.empty(16, dtype=np.int64)
    for k, part in enumerate((z.real, z.imag)):
        code = np.where(
            np.isfinite(part),
            np.clip(np.round(np.nan_to_num(part) / Z_LSB_OHM), -(2**31) + 1, 2**31 - 1),
            NO_RESULT,
        )
        words[k::2] = code
    return words.astype("<i4").tobytes()


def decode_results(data: bytes) -> npt.NDArray[np.complex128]:
    """64-byte ``EISR`` group -> 8 complex impedances (Ohm; NaN where no result)."""
    w = np.frombuffer(data, dtype="<i4").astype(float)
    re, im = w[0::2], w[1::2]
    out = (re + 1j * im) * Z_LSB_OHM
    out[(w[0::2] == NO_RESULT) | (w[1::2] == NO_RESULT)] = np.nan
    return out


def encode_uncertainty(u95_Ohm: npt.ArrayLike) -> bytes:
    """16 u95 values (NaN = none) -> the 32-byte ``EISU`` group (saturating at 0xFFFE)."""
    u = np.asarray(u95_Ohm, dtype=float).reshape(16)
    code = np.where(
        np.isfinite(u), np.clip(np.round(np.nan_to_num(u) / U_LSB_OHM), 0, 0xFFFE), 0xFFFF
    )
    return code.astype("<u2").tobytes()


def decode_uncertainty(data: bytes) -> npt.NDArray[np.float64]:
    """32-byte ``EISU`` group -> 16 u95 values (Ohm; NaN = none; 6.5534 mOhm = saturated).

    >>> decode_uncertainty(encode_uncertainty([1.23e-5] + [np.nan] * 15))[:2]
    array([1.23e-05,      nan])
    """
    c = np.frombuffer(data, dtype="<u2").astype(float)
    return np.where(c == 0xFFFF, np.nan, c * U_LSB_OHM)


def decode_status(data: bytes) -> dict[str, object]:
    """``EISS`` group -> dict (state name, error, frequencies done, remaining seconds).

    >>> decode_status(bytes((1, 0, 2, 0, 100, 0)))["state"]
    'running'
    """
    return {
        "state": EIS_STATES.get(data[0], f"unknown({data[0]})"),
        "error": data[1],
        "n_done": int.from_bytes(data[2:4], "little"),
        "remaining_s": int.from_bytes(data[4:6], "little"),
    }
