"""Cycle mode: second-order 1-bit delta-sigma modulator with input-referred thermal noise.

Loop (Boser-Wooley, REFERENCE.md 4), per channel and modulator clock ``n``::

    u[n]  = (v_in[n] + e_th[n]) * (1 / v_ref[n])    # normalised input, full scale |u| = 1
    x2   += (x1 - v) / 2                             # both integrators use last cycle's values
    x1   += (u[n] - v) / 2
    v     = +1 if x2 >= 0 else -1                    # 1-bit quantiser, the output bit

The second integrator is updated with the *previous* ``x1`` (both integrators delaying), which
gives the textbook MOD2 transfer functions ``NTF = (1 - z**-1)**2`` and ``STF = z**-1``: the
bit at clock ``n`` depends on the input up to clock ``n - 1`` (a one-sample delay, unity gain).
Full scale: ``u = +-1`` (``v_in_V = +-v_ref_V``) is the bitstream's all-ones / all-zeros limit;
the loop is stable for ``|u|`` up to about 0.8, and the cell code range needs ``|u| <= 0.55``
(see :mod:`bms_emu.afe.adc_params`).

Modulator clock: ``f_mod_Hz`` defaults to ``F_MOD_HZ = 1.024 MHz`` (R = 1024 -> 1 ms).

Thermal noise ``e_th``: white, zero mean, standard deviation ``sigma_noise_V`` per modulator
sample, input-referred (added before the division by the reference, so it does not scale with
``v_ref``). It also dithers the loop, which otherwise idle-tones on DC inputs.
Generation (cheap and exactly reproducible in numpy and in the compiled kernel):

* each channel owns an xorshift64* generator (Vigna 2016: shifts 12, 25, 27; multiplier
  0x2545F4914F6CDD1D) seeded once from the numpy ``Generator`` given to
  :meth:`ModulatorState.new`; the state travels with the modulator, so any chunking of a run
  gives byte-identical bits;
* each 64-bit output is split into four 16-bit uniforms whose sum (Irwin-Hall, n = 4) is an
  approximately Gaussian integer ``S``: mean ``4 * 65535/2``, variance ``(2**32 - 1)/3``.
  ``e_th = (S - 131070) * sigma_noise_V / sqrt((2**32 - 1)/3)`` matches the Gaussian's mean and
  variance exactly; its tails stop at +-3.46 sigma and its excess kurtosis is -0.3. After the
  sinc3 (3R - 2 >= 3070 taps) the output noise is Gaussian by the central limit theorem.

Arrays: state vectors ``(n_ch,)``; inputs ``(n_samples, n_ch)`` or anything broadcastable to
it; bitstreams ``(n_samples, n_ch)`` int8 +-1.

Backends: ``"numpy"`` loops over samples in Python with numpy over channels (the reference;
about 0.15x real time for 32 channels); ``"numba"`` compiles the same arithmetic (the
operations and their order are identical, so the bits are identical); ``"auto"`` picks numba
when it is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bms_emu.afe.adc_params import F_MOD_HZ
from bms_emu.afe.sinc3 import Sinc3State, _sinc3_numpy, sinc3_width_bits

try:  # optional accelerator; the numpy path is the reference
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False

__all__ = [
    "HAVE_NUMBA",
    "IH_OFFSET",
    "IH_SIGMA",
    "ModulatorState",
    "modulate",
    "modulate_decimate",
    "noise_integers",
]

#: Mean of the Irwin-Hall sum of four 16-bit uniforms.
IH_OFFSET = 2 * 0xFFFF
#: Standard deviation of that sum: sqrt((2**32 - 1) / 3).
IH_SIGMA = float(np.sqrt((2.0**32 - 1.0) / 3.0))

_XS_MUL = np.uint64(0x2545F4914F6CDD1D)
_M16 = np.uint64(0xFFFF)
_S12 = np.uint64(12)
_S25 = np.uint64(25)
_S27 = np.uint64(27)
_S16 = np.uint64(16)
_S32 = np.uint64(32)
_S48 = np.uint64(48)

InputSpec = ArrayLike | Callable[[NDArray[np.float64]], ArrayLike]


@dataclass
class ModulatorState:
    """State of a bank of modulators.

    Attributes
    ----------
    x1, x2 : ndarray, shape (n_ch,), float64
        Integrator states (normalised to the reference).
    v : ndarray, shape (n_ch,), float64
        Last output bit as +-1.0.
    prng : ndarray, shape (n_ch,), uint64
        xorshift64* state of each channel's noise generator (never 0).
    """

    x1: NDArray[np.float64]
    x2: NDArray[np.float64]
    v: NDArray[np.float64]
    prng: NDArray[np.uint64]

    @classmethod
    def new(cls, n_ch: int, rng: np.random.Generator) -> ModulatorState:
        """Reset integrators, output +1, and noise generators seeded from ``rng``."""
        seeds = rng.integers(1, np.iinfo(np.uint64).max, size=n_ch, dtype=np.uint64,
                             endpoint=True)
        return cls(np.zeros(n_ch), np.zeros(n_ch), np.ones(n_ch), seeds)

    @property
    def n_ch(self) -> int:
        """Number of channels."""
        return int(self.x1.shape[0])

    def copy(self) -> ModulatorState:
        """Independent copy."""
        return ModulatorState(self.x1.copy(), self.x2.copy(), self.v.copy(), self.prng.copy())


def _xs_step_numpy(x: NDArray[np.uint64]) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """Advance xorshift64* states (n_ch,), return new states and centred Irwin-Hall integers."""
    x = x ^ (x >> _S12)
    x = x ^ (x << _S25)
    x = x ^ (x >> _S27)
    z = x * _XS_MUL  # uint64 array multiply wraps modulo 2**64 (intended)
    s = (z & _M16) + ((z >> _S16) & _M16) + ((z >> _S32) & _M16) + (z >> _S48)
    return x, s.astype(np.int64) - IH_OFFSET


def noise_integers(state: ModulatorState, n_samples: int) -> NDArray[np.int64]:
    """The centred Irwin-Hall integers the modulator would draw next (state not advanced).

    Returns
    -------
    ndarray, shape (n_samples, n_ch), int64
        ``S - IH_OFFSET``; multiply by ``sigma_noise_V / IH_SIGMA`` for volts.
    """
    x = state.prng.copy()
    out = np.empty((n_samples, state.n_ch), np.int64)
    for i in range(n_samples):
        x, out[i] = _xs_step_numpy(x)
    return out


def _rows(arr: ArrayLike, n_samples: int, n_ch: int) -> NDArray[np.float64]:
    """Broadcastable input -> C-contiguous ``(1, n_ch)`` if constant in time, else
    ``(n_samples, n_ch)``: unit stride over channels lets the compiled loop vectorise."""
    a = np.asarray(arr, dtype=np.float64)
    rows = 1 if a.ndim < 2 or a.shape[0] == 1 else n_samples
    # writeable C arrays only, so the compiled kernels see a single array type (one compile)
    return np.require(np.broadcast_to(a, (rows, n_ch)), requirements=["C", "W"])


def _resolve_input(v_in_V: InputSpec, n_samples: int | None, n_ch: int, f_mod_Hz: float,
                   n0: int) -> tuple[NDArray[np.float64], int]:
    """Input spec -> (compact rows, see :func:`_rows`; number of samples)."""
    if callable(v_in_V):
        if n_samples is None:
            raise ValueError("n_samples is required when v_in_V is a callable")
        t_s = (n0 + np.arange(n_samples, dtype=np.float64)) / f_mod_Hz
        arr = np.asarray(v_in_V(t_s), dtype=np.float64)
    else:
        arr = np.asarray(v_in_V, dtype=np.float64)
        if n_samples is None:
            if arr.ndim != 2:
                raise ValueError("n_samples is required unless v_in_V is (n_samples, n_ch)")
            n_samples = arr.shape[0]
    np.broadcast_shapes(arr.shape, (n_samples, n_ch))  # raises on a shape mismatch
    return _rows(arr, n_samples, n_ch), n_samples


def _modulate_numpy(vin: NDArray[np.float64], inv_ref: NDArray[np.float64], sig: float,
                    st: ModulatorState, out: NDArray[np.int8]) -> None:
    """Reference loop: Python over samples, numpy over channels. Updates ``st`` in place."""
    x1, x2, v, x = st.x1.copy(), st.x2.copy(), st.v.copy(), st.prng.copy()
    for i in range(vin.shape[0]):
        x, s = _xs_step_numpy(x)
        u = (vin[i] + s * sig) * inv_ref[i]
        x2 = x2 + (x1 - v) * 0.5
        x1 = x1 + (u - v) * 0.5
        v = np.where(x2 >= 0.0, 1.0, -1.0)
        out[i] = v
    st.x1[:], st.x2[:], st.v[:], st.prng[:] = x1, x2, v, x


def _modulate_kernel(vin: Any, inv_ref: Any, sig: float, x1_io: Any, x2_io: Any, v_io: Any,
                     prng_io: Any, out: Any) -> None:  # pragma: no cover - compiled by numba
    """Compiled twin of :func:`_modulate_numpy` (same operations in the same order)."""
    n, n_ch = out.shape
    n_vin = vin.shape[0]
    n_vref = inv_ref.shape[0]
    # local copies let LLVM vectorise across channels (no aliasing with the outputs)
    x1 = x1_io.copy()
    x2 = x2_io.copy()
    v = v_io.copy()
    xs = prng_io.copy()
    u = np.empty(n_ch)
    for i in range(n):
        iv = i if n_vin > 1 else 0
        ir = i if n_vref > 1 else 0
        for c in range(n_ch):
            x = xs[c]
            x ^= x >> _S12
            x ^= x << _S25
            x ^= x >> _S27
            xs[c] = x
            z = x * _XS_MUL
            s = np.int64((z & _M16) + ((z >> _S16) & _M16) + ((z >> _S32) & _M16)
                         + (z >> _S48)) - IH_OFFSET
            u[c] = (vin[iv, c] + s * sig) * inv_ref[ir, c]
        for c in range(n_ch):
            x2[c] = x2[c] + (x1[c] - v[c]) * 0.5
            x1[c] = x1[c] + (u[c] - v[c]) * 0.5
            b = np.int64(x2[c] >= 0.0)  # branch-free: the bits are random, a branch mispredicts
            v[c] = 2.0 * b - 1.0
            out[i, c] = np.int8(2 * b - 1)
    x1_io[:] = x1
    x2_io[:] = x2
    v_io[:] = v
    prng_io[:] = xs


def _modulate_decimate_kernel(vin: Any, inv_ref: Any, sig: float, x1_io: Any, x2_io: Any,
                              v_io: Any, prng_io: Any, integ_io: Any, comb_io: Any,
                              phase: int, R: int, mask: int, n_samples: int,
                              out: Any) -> int:  # pragma: no cover - compiled by numba
    """Modulator fused with the sinc3 integrators and combs; returns the new phase."""
    n = n_samples
    n_ch = x1_io.shape[0]
    n_vin = vin.shape[0]
    n_vref = inv_ref.shape[0]
    x1 = x1_io.copy()
    x2 = x2_io.copy()
    v = v_io.copy()
    xs = prng_io.copy()
    i1 = integ_io[0].copy()
    i2 = integ_io[1].copy()
    i3 = integ_io[2].copy()
    z1 = comb_io[0].copy()
    z2 = comb_io[1].copy()
    z3 = comb_io[2].copy()
    u = np.empty(n_ch)
    m = 0
    for i in range(n):
        iv = i if n_vin > 1 else 0
        ir = i if n_vref > 1 else 0
        for c in range(n_ch):
            x = xs[c]
            x ^= x >> _S12
            x ^= x << _S25
            x ^= x >> _S27
            xs[c] = x
            z = x * _XS_MUL
            s = np.int64((z & _M16) + ((z >> _S16) & _M16) + ((z >> _S32) & _M16)
                         + (z >> _S48)) - IH_OFFSET
            u[c] = (vin[iv, c] + s * sig) * inv_ref[ir, c]
        for c in range(n_ch):
            x2[c] = x2[c] + (x1[c] - v[c]) * 0.5
            x1[c] = x1[c] + (u[c] - v[c]) * 0.5
            b = np.int64(x2[c] >= 0.0)  # branch-free: the bits are random, a branch mispredicts
            v[c] = 2.0 * b - 1.0
            i1[c] = (i1[c] + b) & mask
            i2[c] = (i2[c] + i1[c]) & mask
            i3[c] = (i3[c] + i2[c]) & mask
        phase += 1
        if phase == R:
            phase = 0
            for c in range(n_ch):
                c0 = i3[c]
                c1 = (c0 - z1[c]) & mask
                c2 = (c1 - z2[c]) & mask
                out[m, c] = (c2 - z3[c]) & mask
                z1[c] = c0
                z2[c] = c1
                z3[c] = c2
            m += 1
    x1_io[:] = x1
    x2_io[:] = x2
    v_io[:] = v
    prng_io[:] = xs
    integ_io[0] = i1
    integ_io[1] = i2
    integ_io[2] = i3
    comb_io[0] = z1
    comb_io[1] = z2
    comb_io[2] = z3
    return phase


if HAVE_NUMBA:
    _modulate_nb = numba.njit(cache=True, error_model="numpy")(_modulate_kernel)
    _modulate_decimate_nb = numba.njit(cache=True, error_model="numpy")(_modulate_decimate_kernel)


def _pick_backend(backend: str) -> str:
    if backend == "auto":
        return "numba" if HAVE_NUMBA else "numpy"
    if backend not in ("numpy", "numba"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'numba', got {backend!r}")
    if backend == "numba" and not HAVE_NUMBA:
        raise RuntimeError("backend 'numba' requested but numba is not installed")
    return backend


def modulate(v_in_V: InputSpec, v_ref_V: ArrayLike, state: ModulatorState,
             sigma_noise_V: float = 0.0, *, n_samples: int | None = None,
             f_mod_Hz: float = F_MOD_HZ, n0: int = 0,
             backend: str = "auto") -> NDArray[np.int8]:
    """Run the modulators for ``n_samples`` clocks; ``state`` is updated in place.

    Parameters
    ----------
    v_in_V : array_like or callable
        Modulator input (V): shape ``(n_samples, n_ch)`` or broadcastable (e.g. ``(n_ch,)`` for
        DC, then ``n_samples`` is required), or ``f(t_s) -> (n_samples, n_ch)`` evaluated at
        ``t_s = (n0 + arange(n_samples)) / f_mod_Hz``.
    v_ref_V : float or array_like
        Reference voltage (V), scalar or broadcastable to ``(n_samples, n_ch)``, so a reference
        model may modulate it sample by sample.
    state : ModulatorState
        Carried between calls (continuous operation).
    sigma_noise_V : float
        Input-referred thermal noise per modulator sample (V rms).
    n_samples : int, optional
        Needed when ``v_in_V`` is a callable or not 2-D.
    f_mod_Hz : float
        Modulator clock (Hz); used only to build ``t_s`` for a callable input.
    n0 : int
        Modulator-clock index of the first sample, for a callable input. An integer (not a
        time in seconds) so that a run split into chunks sees exactly the same ``t_s``.
    backend : {"auto", "numpy", "numba"}

    Returns
    -------
    ndarray, shape (n_samples, n_ch), int8
        Output bits as +-1.
    """
    vin, n = _resolve_input(v_in_V, n_samples, state.n_ch, f_mod_Hz, n0)
    np.broadcast_shapes(np.shape(v_ref_V), (n, state.n_ch))
    inv_ref = 1.0 / _rows(v_ref_V, n, state.n_ch)  # the divide once per row, not per sample
    out = np.empty((n, state.n_ch), np.int8)
    sig = float(sigma_noise_V) / IH_SIGMA
    if _pick_backend(backend) == "numba":
        _modulate_nb(vin, inv_ref, sig, state.x1, state.x2, state.v, state.prng, out)
    else:
        _modulate_numpy(np.broadcast_to(vin, out.shape), np.broadcast_to(inv_ref, out.shape),
                        sig, state, out)
    return out


def modulate_decimate(v_in_V: InputSpec, v_ref_V: ArrayLike, state: ModulatorState,
                      sinc: Sinc3State, R: int, sigma_noise_V: float = 0.0, *,
                      n_samples: int | None = None, f_mod_Hz: float = F_MOD_HZ,
                      n0: int = 0, backend: str = "auto") -> NDArray[np.int64]:
    """Modulators followed by sinc3 decimators, without materialising the bitstream.

    Bit-identical to ``Sinc3Decimator.process(modulate(...))`` with the same states. Parameters
    as :func:`modulate`, plus ``sinc`` (:class:`~bms_emu.afe.sinc3.Sinc3State`, updated in
    place) and the decimation ratio ``R``.

    Returns
    -------
    ndarray, shape (n_out, n_ch), int64
        sinc3 codes ``D``, ``n_out = (sinc.phase + n_samples) // R``.
    """
    if _pick_backend(backend) == "numpy":
        bits = modulate(v_in_V, v_ref_V, state, sigma_noise_V, n_samples=n_samples,
                        f_mod_Hz=f_mod_Hz, n0=n0, backend="numpy")
        return _sinc3_numpy((bits.astype(np.int64) + 1) >> 1, R, sinc)
    vin, n = _resolve_input(v_in_V, n_samples, state.n_ch, f_mod_Hz, n0)
    np.broadcast_shapes(np.shape(v_ref_V), (n, state.n_ch))
    inv_ref = 1.0 / _rows(v_ref_V, n, state.n_ch)
    mask = (1 << sinc3_width_bits(R)) - 1
    out = np.empty(((sinc.phase + n) // R, state.n_ch), np.int64)
    sig = float(sigma_noise_V) / IH_SIGMA
    sinc.phase = int(_modulate_decimate_nb(vin, inv_ref, sig, state.x1, state.x2, state.v,
                                           state.prng, sinc.integ, sinc.comb, sinc.phase,
                                           R, mask, n, out))
    return out
