"""The real analog side of one emulated chip: a device of a chip population over a pack source.

Implements :class:`~bms_emu.device.analog.DeviceAnalog` with the golden models:

* pack sense voltages from a :class:`~bms_emu.sources.PackSource` (sampled at each conversion
  window's midpoint: the sinc3 weighting is symmetric, so for inputs that are linear over the
  window the weighted mean is the midpoint value; a short history lets overlapping C and S
  windows ask for slightly earlier times than the source has reached);
* the front end (:mod:`bms_emu.afe.frontend`) with open-sense-wire physics during open-wire
  test currents;
* the reference (:mod:`bms_emu.afe.reference`) at the die temperature, with lifetime, reflow,
  hysteresis and white + 1/f noise sampled at the C-ADC rate;
* die self-heating from quiescent power and the balancing switches' on-resistance losses
  (:mod:`bms_emu.afe.die_thermal`);
* the conversion-mode ADC (:mod:`bms_emu.afe.conversion`) and the bit-true digital path:
  sinc3 code -> raw code -> trim correction with the die-temperature code -> 16-bit cell code
  (:mod:`bms_emu.afe.adc_params`, :func:`bms_emu.afe.trim.correct_code`);
* the trim memory image read through its ECC, so injected bit flips raise the chip's ECC flags
  and an uncorrectable image makes the chip fall back to untrimmed codes.

Faults are injected through :attr:`ChipAnalog.faults` (:class:`AnalogFaults`); they model what
the diagnostic mechanisms must catch: path gain/offset faults, reference shifts (a shared
reference moves C and S together: common cause), open sense wires, a stuck mux, trim-memory
bit flips, supply and oscillator faults, die heating.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bms_emu.afe.adc_params import (
    CODE_MAX,
    CODE_MIN,
    F_MOD_HZ,
    G_IN,
    RAW_CODE_ZERO,
    RAW_PER_U,
    cell_code_from_raw,
    cell_volts_from_code,
    raw_code_from_sinc3,
)
from bms_emu.afe.chip import ChipPopulation
from bms_emu.afe.conversion import convert_dc, noise_figures
from bms_emu.afe.current_channel import measure_current_A
from bms_emu.afe.die_thermal import _KELVIN, die_temp_code
from bms_emu.afe.ecc import EccStatus
from bms_emu.afe.fixed_point import signed_range
from bms_emu.afe.frontend import adc_input_V, open_wire_pin_V
from bms_emu.afe.reference import (
    T0_C,
    ReferenceNoise,
    ReferenceScalars,
    hysteresis_update_scalar,
    reference_error_ppm,
    v_ref_scalar_V,
    v_ref_V,
)
from bms_emu.afe.trim import (
    TrimCodes,
    correct_code,
    correct_code_float,
    pack_trim_image,
    read_trim_image,
)
from bms_emu.device.analog import FAULT_KEYS, ow_channel_mask
from bms_emu.device.conversion_kernel import HAVE_NUMBA, convert_cells, fe_terms
from bms_emu.sim import RandomStreams
from bms_emu.sources import PackSample, PackSource

__all__ = ["AnalogFaults", "ChipAnalog"]

#: Thermal shutdown threshold of the die (ADBMS6830 class: ~150 C; assumption).
THERMAL_SHUTDOWN_C = 150.0
#: Nominal supplies and their OV/UV windows (assumptions, datasheet class).
VA_NOM_V, VA_WINDOW_V = 5.0, (4.5, 5.5)
VD_NOM_V, VD_WINDOW_V = 3.3, (2.7, 3.6)
#: Second reference nominal (REFERENCE.md 2.1: VREF2 valid window 2.988-3.012 V).
VREF2_NOM_V = 3.0
#: Floating (open) sense pin relaxes back to its node through the board's filter network and
#: pin leakage when no test current flows (assumption: 0.1 s).
OPEN_PIN_TAU_S = 0.1
#: History kept for windows that start before the source's latest sample (S windows are 8 ms).
HISTORY_S = 0.05


@dataclass
class AnalogFaults:
    """Faults injected into one chip's analog side (all off by default).

    Attributes
    ----------
    c_gain_ppm, s_gain_ppm : array, shape (n_channels,)
        Extra gain error of the C / S path per channel.
    c_offset_uV, s_offset_uV : array, shape (n_channels,)
        Extra offset per channel.
    ref_shift_ppm : float
        Shift of the C reference (moves the S path too when the reference is shared).
    s_ref_shift_ppm : float
        Shift of a separate S reference.
    open_pins : set of int
        Open sense wires, pins 0..n_channels.
    mux_stuck_channel : int or None
        The C-path mux always selects this channel (every C result reads it).
    trim_bit_flips : list of (word, bit)
        Bits flipped in the trim memory image (words 0-4 C path, 5-9 S path; 22-bit words).
    va_V, vd_V : float or None
        Forced supply voltages.
    osc_fault : bool
    die_heat_W : float
        Extra power dissipated on the die (a hot spot or a shorted switch).
    """

    n_channels: int = 16
    c_gain_ppm: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    s_gain_ppm: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    c_offset_uV: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    s_offset_uV: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    ref_shift_ppm: float = 0.0
    s_ref_shift_ppm: float = 0.0
    open_pins: set[int] = field(default_factory=set)
    mux_stuck_channel: int | None = None
    trim_bit_flips: list[tuple[int, int]] = field(default_factory=list)
    va_V: float | None = None
    vd_V: float | None = None
    osc_fault: bool = False
    die_heat_W: float = 0.0

    def __post_init__(self) -> None:
        for name in ("c_gain_ppm", "s_gain_ppm", "c_offset_uV", "s_offset_uV"):
            a = np.asarray(getattr(self, name), dtype=float)
            setattr(
                self,
                name,
                np.zeros(self.n_channels)
                if a.size == 0
                else np.broadcast_to(a, (self.n_channels,)).copy(),
            )


def noise_sd_u(sigma_noise_V: float, v_ref_V: float, r: int) -> float:
    """``sqrt(th + q)`` of :func:`~bms_emu.afe.conversion._noise_var_u` for one reference, on
    Python floats: the (1,) array form squares as ``x * x`` and sqrt is correctly rounded, so
    the result is the same to the bit (test_chip_analog_fast_paths.py checks) at a fifth of
    the cost, once per conversion."""
    fig = noise_figures(r)
    x = sigma_noise_V / v_ref_V
    return math.sqrt(fig.g_thermal / r * (x * x) + fig.q_var_R5 / float(r) ** 5)


class _SenseHistory:
    """Forward-only pack source plus a short history for windows that look back a little."""

    def __init__(self, source: PackSource) -> None:
        self.source = source
        self._samples: deque[PackSample] = deque()

    def at(self, t_s: float) -> PackSample:
        last = self._samples[-1] if self._samples else None
        if last is None or t_s > last.t_s:
            s = self.source.sample(t_s)
            self._samples.append(s)
            while self._samples and self._samples[0].t_s < t_s - HISTORY_S:
                self._samples.popleft()
            return s
        if t_s == last.t_s:
            return last
        # interpolate inside the history (older than the history: the oldest sample)
        older = [s for s in self._samples if s.t_s <= t_s]
        if not older:
            return self._samples[0]
        a = older[-1]
        b = next(s for s in self._samples if s.t_s >= t_s)
        if b.t_s == a.t_s:
            return a
        w = (t_s - a.t_s) / (b.t_s - a.t_s)
        return PackSample(
            t_s,
            a.current_A * (1 - w) + b.current_A * w,
            a.sense_voltage_V * (1 - w) + b.sense_voltage_V * w,
            a.cell_voltage_V * (1 - w) + b.cell_voltage_V * w,
            a.temperature_C * (1 - w) + b.temperature_C * w,
            a.ntc_voltage_V * (1 - w) + b.ntc_voltage_V * w,
        )


class ChipAnalog:
    """Device ``index`` of ``population`` measuring ``source``: a :class:`DeviceAnalog`.

    Parameters
    ----------
    population : ChipPopulation
        Trimmed population (see :func:`bms_emu.afe.chip.make_population`).
    index : int
        Which device of it this chip is.
    source : PackSource
        The cells this chip measures (``n_channels`` cells).
    seed : int
        Seeds this chip's noise streams (named, so adding streams changes nothing else).
    lifetime_h : float
        Age at emulated time 0, hours since factory trim (default: just after the board trim).
    temp_ambient_C : float
        Ambient temperature around the chip.
    """

    def __init__(
        self,
        population: ChipPopulation,
        index: int,
        source: PackSource,
        *,
        seed: int = 0,
        lifetime_h: float | None = None,
        temp_ambient_C: float = 25.0,
    ) -> None:
        spec = population.spec
        if source.n_cells != spec.n_channels:
            raise ValueError(f"source has {source.n_cells} cells, chip has {spec.n_channels}")
        self.n_channels = spec.n_channels
        self.spec = spec
        self.pop = population
        self.index = i = int(index)
        self._sel = [i]
        self._hist = _SenseHistory(source)
        self.source = source
        self.lifetime_h0 = (
            population.lifetime_h("after_reflow") if lifetime_h is None else float(lifetime_h)
        )
        self.temp_ambient_C = float(temp_ambient_C)
        self.faults = AnalogFaults(n_channels=self.n_channels)
        streams = RandomStreams(seed)
        self._rng_c = streams.generator(f"analog.{i}.adc_c")
        self._rng_s = streams.generator(f"analog.{i}.adc_s")
        self._rng_misc = streams.generator(f"analog.{i}.misc")
        # per-device parameters (length-1 populations keep the vectorised models unchanged)
        self._ref = population.devices.reference.take(self._sel)
        self._s_ref = population.s_devices.reference.take(self._sel)
        self._sensor = population.devices.sensor.take(self._sel)
        self._fe_c = population.frontend.take(self._sel)
        self._fe_s = population.s_frontend.take(self._sel)
        self._die = population.die.take(self._sel)
        self._current = population.current.take(self._sel)
        self._path_c = (
            population.devices.path.gain_error_ppm[i],
            population.devices.path.offset_uV[i],
        )
        self._path_s = (
            population.s_devices.path.gain_error_ppm[i],
            population.s_devices.path.offset_uV[i],
        )
        self._state = population.state.take(self._sel)
        # the per-conversion path evaluates one device with floats (same operations as the
        # array models, bit-identical: tests/afe/test_reference.py, test_chip_analog.py)
        self._ref1 = ReferenceScalars.of(self._ref)
        self._s_ref1 = ReferenceScalars.of(self._s_ref)
        die = self._die
        self._die1 = (float(die.r_th_C_per_W[0]), float(die.p_quiescent_W[0]),
                      float(die.tau_s[0]))
        c = self._current
        self._current1 = (
            float(c.shunt_uOhm_nominal) * 1e-6, float(c.shunt_err_ppm[0]),
            float(c.shunt_tempco_ppm_per_C), float(c.gain_err_ppm[0]),
            float(c.gain_tempco_ppm_per_C[0]), float(c.offset_uV[0]),
            float(c.offset_tempco_uV_per_C[0]), float(c.full_scale_A),
        )
        sensor = self._sensor
        self._sensor1 = (1 + 1e-6 * float(sensor.gain_error_ppm[0]), float(sensor.offset_C[0]),
                         float(sensor.noise_C_rms[0]))
        self._s_state = self._state if spec.shares_reference else population.s_state.take(self._sel)
        # trim memory: the C path's words 0..4 then the S path's words 5..9, each SECDED-coded
        board_valid = np.array([np.isfinite(population.t_board_h)])
        self._image = np.concatenate(
            [
                pack_trim_image(
                    c.take(self._sel), _scheme(population), board_valid, fmt=spec.trim_format
                )
                for c in (population.codes, population.s_codes)
            ],
            axis=1,
        )
        self._noise_c = ReferenceNoise(
            self._ref, 1000.0, streams.generator(f"analog.{i}.ref_noise")
        )
        self._noise_s = (
            self._noise_c
            if spec.shares_reference
            else ReferenceNoise(self._s_ref, 1000.0, streams.generator(f"analog.{i}.s_ref_noise"))
        )
        self._corr_consts: dict[tuple[str, tuple[tuple[int, int], ...]], tuple[int, ...]] = {}
        self._fe_terms: dict[str, npt.NDArray[np.float64]] = {}
        self._trim_cache: (
            tuple[tuple[tuple[int, int], ...], tuple[TrimCodes, TrimCodes, int]] | None
        ) = None
        self._streams = streams
        self._rec_noise: dict[tuple[str, float], tuple[ReferenceNoise, float]] = {}
        self._noise_buf: dict[str, npt.NDArray[np.float64]] = {}
        self._noise_t0: dict[str, int] = {}
        # dynamic state
        self._t_s = 0.0
        self._temp_die_C = float(
            self.temp_ambient_C + self._die.r_th_C_per_W[0] * self._die.p_quiescent_W[0]
        )
        self._duty = np.zeros(self.n_channels)
        self._pin_V: npt.NDArray[np.float64] | None = None  # held voltages of floating pins
        self._pin_t_s = 0.0

    # -- time, temperature, reference ---------------------------------------------------------

    def _balance_power_W(self, v_cells: npt.NDArray[np.float64]) -> float:
        """On-die loss of the discharge switches: I^2 R_on per active channel, duty-weighted."""
        fe = self._fe_c
        i_A = v_cells / (fe.bleed_resistance_Ohm + fe.switch_on_resistance_Ohm)
        return float(np.sum(self._duty * i_A**2 * fe.switch_on_resistance_Ohm))

    def _advance(self, t_s: float, v_cells: npt.NDArray[np.float64]) -> None:
        """Move the die temperature to ``t_s`` (power held since the last call)."""
        dt = t_s - self._t_s
        if dt <= 0:
            return
        # no switch on: the sum of zero losses is exactly 0.0
        p_sw = self._balance_power_W(v_cells) if self._duty.any() else 0.0
        p_bal = p_sw + self.faults.die_heat_W
        # step_die_temp_C and observe_temperature for one device, same operations as the
        # array models (test_chip_analog.py compares them)
        r_th, p_q, tau = self._die1
        t_ss = self.temp_ambient_C + r_th * (p_q + p_bal)
        decay = float(np.exp(-dt / tau))
        temp = self._temp_die_C = t_ss + (self._temp_die_C - t_ss) * decay
        st = self._state
        st.hyst_m = np.array([hysteresis_update_scalar(self._ref1, float(st.hyst_m[0]), temp)])
        if self._s_state is not st:
            ss = self._s_state
            ss.hyst_m = np.array(
                [hysteresis_update_scalar(self._s_ref1, float(ss.hyst_m[0]), temp)])
        self._t_s = t_s

    @property
    def temp_die_C(self) -> float:
        """Die temperature at the last call."""
        return self._temp_die_C

    def _lifetime_h(self, t_s: float) -> float:
        return self.lifetime_h0 + t_s / 3600.0

    def _noise_V(self, which: str, t_s: float) -> float:
        """Reference noise at ``t_s`` from a 1 kHz series made in blocks.

        Requests a little in the past (overlapping S windows) read the current block; gaps jump
        the noise processes exactly (:meth:`ReferenceNoise.skip`) instead of generating them.
        Blocks are short after a gap (sparse single conversions use one sample of each) and
        long when conversions run back to back.
        """
        gen = self._noise_c if which == "C" else self._noise_s
        k = int(t_s * 1000.0)
        buf, k0 = self._noise_buf.get(which), self._noise_t0.get(which, 0)
        if buf is None or k >= k0 + buf.size:
            start = k if buf is None else k0 + buf.size
            block = 256
            if k > start:
                gen.skip(k - start)
                start, block = k, 16
            buf = gen.generate(block)[0]
            self._noise_buf[which], self._noise_t0[which] = buf, start
            k0 = start
        return float(buf[min(max(k - k0, 0), buf.size - 1)])

    def _v_ref(self, path: str, t_s: float) -> float:
        shared = self.spec.shares_reference
        use_s = path == "S" and not shared
        params, state = (self._s_ref1, self._s_state) if use_s else (self._ref1, self._state)
        v = v_ref_scalar_V(params, self._temp_die_C, self._lifetime_h(t_s),
                           float(state.hyst_m[0]), float(state.t_assembly_h[0]))
        shift = self.faults.s_ref_shift_ppm if use_s else self.faults.ref_shift_ppm
        return v * (1 + 1e-6 * shift) + self._noise_V("S" if use_s else "C", t_s)

    # -- trim image --------------------------------------------------------------------------

    def _trim(self, path: str) -> tuple[TrimCodes, int]:
        """Trim codes of ``path`` as the chip reads them (through ECC), and the worst ECC status
        of the whole trim memory (the flags do not say which path).

        The decode is cached for the present set of injected bit flips (the image only changes
        through them).
        """
        key = tuple(self.faults.trim_bit_flips)
        if self._trim_cache is None or self._trim_cache[0] != key:
            self._trim_cache = (key, self._read_trim())
        c_codes, s_codes, worst = self._trim_cache[1]
        return (c_codes if path == "C" else s_codes), worst

    def _read_trim(self) -> tuple[TrimCodes, TrimCodes, int]:
        image = self._image.copy()
        for word, bit in self.faults.trim_bit_flips:
            image[0, word] ^= np.uint32(1 << bit)
        half = image.shape[1] // 2
        fmt = self.spec.trim_format
        c_codes, _, _, c_status = read_trim_image(image[:, :half], fmt=fmt)
        s_codes, _, _, s_status = read_trim_image(image[:, half:], fmt=fmt)
        return c_codes, s_codes, max(int(c_status[0]), int(s_status[0]))

    # -- the conversion chain -----------------------------------------------------------------

    def _convert(
        self, v_adc_V: npt.NDArray[np.float64], path: str, t_mid_s: float, decimation: int
    ) -> npt.NDArray[np.float64]:
        """ADC input (cell-referred, V) -> measured volts through the bit-true digital path."""
        g_ppm, o_uV = self._path_c if path == "C" else self._path_s
        v = v_adc_V * (1 + 1e-6 * g_ppm) + 1e-6 * o_uV
        # one reference value for every channel, broadcast as a (1,) array: the same element
        # arithmetic as an (n_channels,) array (a 0-d one would square with pow, not x * x)
        v_ref = np.array([self._v_ref(path, t_mid_s)])
        rng = self._rng_c if path == "C" else self._rng_s
        d = convert_dc(G_IN * v, v_ref, rng, self.spec.adc.thermal_noise_V, R=decimation)
        raw = raw_code_from_sinc3(d, decimation)
        return cell_volts_from_code(cell_code_from_raw(self._correct(raw, path)))

    def _correct(self, raw: npt.NDArray[np.int64], path: str) -> npt.NDArray[np.int64]:
        """:func:`~bms_emu.afe.trim.correct_code` of one conversion at the present die
        temperature (noisy sensor reading, one draw), with the trim constants of ``path`` as
        Python ints: the same integer arithmetic (test_chip_analog.py compares them)."""
        f, m0, tc, off, half, lo, hi = self._trim_consts(path)
        m = m0 + tc * (self._die_code1() - self.spec.trim_format.t_ref_code)
        acc = raw * np.int64(m) + np.int64(off)
        return np.minimum(np.maximum((acc + np.int64(half)) >> np.int64(f), lo), hi)

    def _trim_consts(self, path: str) -> tuple[int, ...]:
        """(shift f, multiplier without the tempco term, tempco code, offset term, rounding
        constant, saturation limits) of :func:`~bms_emu.afe.trim.correct_code` for ``path``'s
        trim codes as the chip reads them now (cached per set of injected bit flips, like
        the decode itself)."""
        key = (path, tuple(self.faults.trim_bit_flips))
        k = self._corr_consts.get(key)
        if k is None:
            codes, _ = self._trim(path)
            fmt = self.spec.trim_format
            f = fmt.acc_frac_bits
            gb = (int(codes.gain[0]) + int(codes.board[0])) << (f - fmt.gain_frac_bits)
            k = (f, (1 << f) + gb, int(codes.tempco[0]),
                 int(codes.offset[0]) << (f - fmt.offset_frac_bits), 1 << (f - 1),
                 *signed_range(fmt.raw_bits))
            if len(self._corr_consts) > 8:
                self._corr_consts.clear()
            self._corr_consts[key] = k
        return k

    def _die_code1(self) -> int:
        """:meth:`_die_code` of the present die temperature (noisy): one float path."""
        fmt = self.spec.trim_format
        gain, offset, noise = self._sensor1
        meas = (self._temp_die_C + _KELVIN) * gain - _KELVIN
        meas = meas + offset
        meas = meas + noise * float(self._rng_misc.standard_normal())
        lo, hi = signed_range(fmt.die_temp_bits)
        return int(min(max(math.floor(meas / fmt.die_temp_lsb_C + 0.5), lo), hi))

    def _die_code(self, temp_C: npt.NDArray[np.float64], noisy: bool = True
                  ) -> npt.NDArray[np.int64]:
        """The die-temperature sensor's codes for temperatures ``temp_C`` (n,) of this chip,
        with its reading noise unless ``noisy`` is False (the trim correction's input)."""
        fmt = self.spec.trim_format
        return die_temp_code(temp_C[None, :], self._sensor, lsb_C=fmt.die_temp_lsb_C,
                             bits=fmt.die_temp_bits, rng=self._rng_misc if noisy else None)[0]

    def _pins_V(
        self, sample: PackSample, t_s: float, ow: int, dt_window_s: float
    ) -> npt.NDArray[np.float64]:
        """Pin voltages C0..Cn with open wires: floating pins hold, relax, or slew under the
        open-wire test currents of ``OW[1:0] = ow``."""
        node = np.empty(self.n_channels + 1)
        node[0] = 0.0
        np.cumsum(sample.sense_voltage_V, out=node[1:])
        if not self.faults.open_pins:
            self._pin_V = None
            return node
        ow_mask = ow_channel_mask(ow, self.n_channels)
        open_ = np.zeros(self.n_channels + 1, dtype=bool)
        for p in self.faults.open_pins:
            open_[p] = True
        if self._pin_V is None:
            self._pin_V = node.copy()
            self._pin_t_s = t_s
        # without a test current a floating pin relaxes towards its node (filter network)
        a = np.exp(-max(t_s - self._pin_t_s, 0.0) / OPEN_PIN_TAU_S)
        held = np.where(open_, node + (self._pin_V - node) * a, node)
        # the test current of channel n acts on its top pin C_n, pulling it down; channel 1's
        # current also pulls C0 up (the ADBMS6830 OW scheme as documented in device.analog)
        pull = np.zeros(self.n_channels + 1)
        pull[1:][ow_mask] = -1.0
        if ow_mask[0]:
            pull[0] = +1.0
        pins = held.copy()
        for direction in (-1, +1):
            sel = open_ & (pull == direction)
            if sel.any():
                moved = open_wire_pin_V(node, sel, held, self._fe_c, direction, dt_window_s)
                pins[sel] = moved[sel]
        self._pin_V, self._pin_t_s = pins, t_s
        return pins

    def measure_cells(
        self, t0_s: float, t1_s: float, path: str, ow: int = 0
    ) -> npt.NDArray[np.float64]:
        """See :meth:`~bms_emu.device.analog.DeviceAnalog.measure_cells`."""
        if path not in ("C", "S"):
            raise ValueError(f"path must be 'C' or 'S', got {path!r}")
        t_mid = 0.5 * (t0_s + t1_s)
        sample = self._hist.at(t_mid)
        self._advance(max(t_mid, self._t_s), sample.sense_voltage_V)
        pins = self._pins_V(sample, t_mid, ow, t1_s - t0_s)
        v_diff = pins[1:] - pins[:-1]  # np.diff
        if path == "C" and self.faults.mux_stuck_channel is not None:
            v_diff = np.full(self.n_channels, v_diff[self.faults.mux_stuck_channel])
        gain = self.faults.c_gain_ppm if path == "C" else self.faults.s_gain_ppm
        off = self.faults.c_offset_uV if path == "C" else self.faults.s_offset_uV
        r = self.spec.adc.c_decimation if path == "C" else self.spec.adc.s_decimation
        if HAVE_NUMBA:
            return self._convert_cells_compiled(v_diff, path, t_mid, r, gain, off)
        fe = self._fe_c if path == "C" else self._fe_s
        v_adc = adc_input_V(fe, v_diff[np.newaxis, :])[0]
        v_adc = v_adc * (1 + 1e-6 * gain) + 1e-6 * off
        return self._convert(v_adc, path, t_mid, r)

    def _convert_cells_compiled(
        self,
        v_diff: npt.NDArray[np.float64],
        path: str,
        t_mid_s: float,
        r: int,
        gain_ppm: npt.NDArray[np.float64],
        off_uV: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Front end + :meth:`_convert` in one compiled call (:mod:`.conversion_kernel`):
        the same random draws from the same generators and the same arithmetic."""
        fe = self._fe_terms.get(path)
        if fe is None:
            fe = self._fe_terms[path] = fe_terms(self._fe_c if path == "C" else self._fe_s)
        g_ppm, o_uV = self._path_c if path == "C" else self._path_s
        v_ref = self._v_ref(path, t_mid_s)
        # convert_dc's noise sigma (see _convert), its normals
        sd = noise_sd_u(self.spec.adc.thermal_noise_V, v_ref, r)
        z = (self._rng_c if path == "C" else self._rng_s).standard_normal(v_diff.shape)
        f, m0, tc, off_t, half, lo, hi = self._trim_consts(path)
        m = m0 + tc * (self._die_code1() - self.spec.trim_format.t_ref_code)
        return convert_cells(
            np.ascontiguousarray(v_diff, dtype=np.float64), fe,
            np.ascontiguousarray(gain_ppm, dtype=np.float64),
            np.ascontiguousarray(off_uV, dtype=np.float64),
            float(1 + 1e-6 * g_ppm), float(1e-6 * o_uV), v_ref, sd, z, r**3, m, off_t, half, f,
            lo, hi,
        )

    def measure_record(
        self,
        t_s: npt.ArrayLike,
        path: str = "C",
        *,
        n_avg: int = 1,
        t_conv_s: float | None = None,
        window_s: float | None = None,
        with_current: bool = False,
        duty: npt.ArrayLike | None = None,
        pack_current_A: npt.ArrayLike | None = None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        """A record of conversions at many times in one call (the EIS engine's sample path).

        ``t_s`` are the times the pack is sampled at: the centre of each conversion window
        (``n_avg = 1``) or of each block of averaged conversions.

        **Exact path** (``n_avg = 1``): bit-for-bit what ``measure_cells(t - W/2, t + W/2,
        path)`` returns called for each ``t`` of ``t_s`` in turn (``W = window_s``; exact
        whenever the window's midpoint rounds to ``t``, e.g. dyadic times and windows), and the
        chip's state (random streams included) ends up the same. The time-sequential parts
        (pack source, die temperature, reference hysteresis and noise) run per sample exactly
        as there; the conversion
        arithmetic (front end, sinc3 quantisation, trim correction, code format) runs once on
        the whole ``(n, n_channels)`` block, and the trim image is decoded once. Open sense
        wires fall back to :meth:`measure_cells` per sample.

        **Averaged fast path** (``n_avg = K > 1``, statistically equivalent): each sample is
        the mean of the 16-bit codes of ``K`` consecutive continuous conversions ``t_conv_s``
        apart, centred on ``t``. Per block the pack is sampled once, at ``t`` (the boxcar's
        magnitude, ``1 - (pi f K t_conv)^2/6``, is not simulated: 0.6 % at 1 Hz for K = 62 at
        1 ms; it is common to the voltage and current samples of a block, so it cancels in an
        impedance); the die temperature follows the exact first-order response to the
        per-block balancing power (one filter pass), the hysteresis play operator runs as a
        running max/min, the reference (static part) is evaluated for all blocks at once, and
        the reference noise (white + 1/f) comes from a generator at the block rate on its own
        named stream (``analog.<i>.ref_noise_record...``; block means of the 1 kHz noise have
        the block-rate white level; the 1/f part is continuous across consecutive records).
        The mean code is drawn from its distribution instead of K codes: ADC thermal noise of
        K continuous conversions (variance ``g_thermal/R (sigma/v_ref)^2 (1 + 2 rho1 + 2 rho2)
        / K``, the measured MA(2) figures of :mod:`bms_emu.afe.conversion`: consecutive sinc3
        windows overlap), modulator quantisation noise ``/K``, the trim correction in its real
        form (:func:`bms_emu.afe.trim.correct_code_float`) and the 16-bit rounding as
        ``LSB^2/12/K`` (the ~1 LSB thermal noise dithers it: its bias is < 1e-6 LSB).

        Parameters
        ----------
        t_s : array_like, shape (n,)
            Sample (window or block centre) times, increasing.
        path : {"C", "S"}
        n_avg : int
        t_conv_s : float, optional
            Spacing of averaged conversions (default: the path's decimation period).
        window_s : float, optional
            Conversion window, only used by the open-wire fallback (default ``(3R - 2)/f_mod``).
        with_current : bool
            Also sample the current channel at each sample time. The true current is the one
            the pack model held over its last step (its zero-order-hold current: what flowed in
            the emulated cells just before ``t``, consistent with the cell voltages), or the
            source's instantaneous current for other sources; the channel's shunt and
            amplifier errors at the die temperature are applied as in
            :meth:`measure_current_A`.
        duty : array_like, shape (n, n_channels), optional
            Balancing duty held over ``(t_s[k-1], t_s[k]]`` (the first from the chip's present
            time), applied as :meth:`set_balance` at ``t_s[k-1]`` where it changes. Default:
            leave the switches as they are.
        pack_current_A : array_like, shape (n, n_sub), optional
            Drive the pack directly (an excitation source the chip commands): over
            ``(t_s[k-1], t_s[k]]`` the pack takes ``n_sub`` equal steps at these mean currents
            (the first interval starts at the pack's present time). Needs a virtual pack
            source; its profile is bypassed (call its ``set_current_A`` afterwards).

        Returns
        -------
        v_V : ndarray, shape (n, n_channels)
            Measured cell voltages (volts of the (mean) 16-bit code).
        current_A : ndarray, shape (n,), or None
        """
        if path not in ("C", "S"):
            raise ValueError(f"path must be 'C' or 'S', got {path!r}")
        t_mid = np.atleast_1d(np.asarray(t_s, dtype=float))
        if t_mid.ndim != 1:
            raise ValueError("t_s must be a 1-D array")
        n, nch = t_mid.size, self.n_channels
        k_avg = int(n_avg)
        if k_avg < 1:
            raise ValueError(f"n_avg must be >= 1, got {n_avg}")
        duty_a = None if duty is None else np.broadcast_to(np.asarray(duty, float), (n, nch))
        r = self.spec.adc.c_decimation if path == "C" else self.spec.adc.s_decimation
        if t_conv_s is None:
            t_conv_s = r / F_MOD_HZ
        half_w = 0.5 * ((3 * r - 2) / F_MOD_HZ if window_s is None else float(window_s))
        exact = k_avg == 1
        if self.faults.open_pins:
            if not exact:
                raise ValueError("open-wire faults need n_avg = 1 (per-sample pin physics)")
            v_rows, c_rows = [], []
            for k in range(n):
                tk = float(t_mid[k])
                if duty_a is not None and (k == 0 or np.any(duty_a[k] != duty_a[k - 1])):
                    self.set_balance(self._t_s if k == 0 else float(t_mid[k - 1]), duty_a[k])
                v_rows.append(self.measure_cells(tk - half_w, tk + half_w, path))
                if with_current:
                    c_rows.append(self.measure_current_A(tk - half_w, tk + half_w))
            return np.array(v_rows).reshape(n, nch), (np.array(c_rows) if with_current else None)
        sense = np.empty((n, nch))
        i_true = np.empty(n)
        temp = np.empty(n)
        vref = np.empty(n)
        duty_rec = np.empty((n, nch))
        src: Any = self.source
        fast = hasattr(src, "advance_to") and hasattr(src, "pack") and hasattr(src, "current_at")
        drive = None
        if pack_current_A is not None:
            if not fast:
                raise ValueError("pack_current_A needs a virtual pack source")
            drive = np.asarray(pack_current_A, dtype=float)
            if drive.ndim == 1:
                drive = drive[:, None]
            if drive.shape[0] != n:
                raise ValueError(f"pack_current_A must have {n} rows, got {drive.shape[0]}")
        t_die0, t_s0 = self._temp_die_C, self._t_s
        for k in range(n):  # time-sequential state: pack (and, exact path: die, reference)
            tm = float(t_mid[k])
            if duty_a is not None and (k == 0 or np.any(duty_a[k] != duty_a[k - 1])):
                # duty[k] holds over (t[k-1], t[k]]: switch at the previous sample time
                if exact:
                    self.set_balance(self._t_s if k == 0 else float(t_mid[k - 1]), duty_a[k])
                else:
                    self._set_switches(duty_a[k])
            last = self._hist._samples[-1] if self._hist._samples else None
            if drive is not None:
                t_from = src.pack.t_s
                if tm > t_from:
                    src.pack.run((tm - t_from) / drive.shape[1], drive[k])
                    src.pack.t_s = tm
                sv = src.pack.sense_voltage_V()
                held = getattr(src.pack, "_current_A", None)
                i_true[k] = float(drive[k, -1]) if held is None else held
            elif fast and (last is None or tm > last.t_s):
                src.advance_to(tm)
                sv = src.pack.sense_voltage_V()
                # the pack's held (ZOH) current of its last step; no public getter yet
                held = getattr(src.pack, "_current_A", None)
                i_true[k] = src.current_at(src.pack.t_s) if held is None else held
            else:
                smp = self._hist.at(tm)
                sv = smp.sense_voltage_V
                i_true[k] = smp.current_A
            sense[k] = sv
            duty_rec[k] = self._duty
            if exact:
                self._advance(max(tm, self._t_s), sv)
                self._pin_V = None
                temp[k] = self._temp_die_C
                vref[k] = self._v_ref(path, tm)
        if fast and n:
            self._hist._samples.append(src.sample(float(src.pack.t_s)))
        if not exact and n:
            temp, vref = self._record_die_and_reference(path, t_mid, sense, duty_rec, t_die0, t_s0)
        # vectorised conversion chain, same element-wise arithmetic as measure_cells/_convert
        node = np.concatenate([np.zeros((n, 1)), np.cumsum(sense, axis=1)], axis=1)
        v_diff = np.diff(node, axis=1)
        if path == "C" and self.faults.mux_stuck_channel is not None:
            v_diff = np.repeat(v_diff[:, self.faults.mux_stuck_channel][:, None], nch, axis=1)
        fe = self._fe_c if path == "C" else self._fe_s
        v_adc = adc_input_V(fe, v_diff)
        gain = self.faults.c_gain_ppm if path == "C" else self.faults.s_gain_ppm
        off = self.faults.c_offset_uV if path == "C" else self.faults.s_offset_uV
        v_adc = v_adc * (1 + 1e-6 * gain) + 1e-6 * off
        g_ppm, o_uV = self._path_c if path == "C" else self._path_s
        v = v_adc * (1 + 1e-6 * g_ppm) + 1e-6 * o_uV
        v_ref = vref[:, None] * np.ones_like(v)
        rng = self._rng_c if path == "C" else self._rng_s
        codes, _ = self._trim(path)
        if not exact:
            v_mean = self._mean_code_volts(path, v, v_ref, temp, rng, r, k_avg, codes)
            return v_mean, self._record_current(with_current, i_true, temp)
        d = convert_dc(G_IN * v, v_ref, rng, self.spec.adc.thermal_noise_V, R=r)
        raw = raw_code_from_sinc3(d, r)
        fmt = self.spec.trim_format
        die_code = self._die_code(temp)
        die_full = np.broadcast_to(die_code.reshape((n,) + (1,) * (raw.ndim - 1)), raw.shape)
        corr = correct_code(
            raw,
            codes.gain[0],
            codes.tempco[0],
            codes.offset[0],
            die_full,
            codes.board[0],
            fmt=fmt,
        )
        v_out = cell_volts_from_code(cell_code_from_raw(corr))
        return v_out, self._record_current(with_current, i_true, temp)

    def _record_current(
        self, with_current: bool, i_true: npt.NDArray[np.float64], temp: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64] | None:
        if not with_current:
            return None
        return np.asarray(
            measure_current_A(self._current_params(), i_true[None, :], temp[None, :])[0]
        )

    def _mean_code_volts(
        self,
        path: str,
        v: npt.NDArray[np.float64],
        v_ref: npt.NDArray[np.float64],
        temp: npt.NDArray[np.float64],
        rng: np.random.Generator,
        r: int,
        k_avg: int,
        codes: TrimCodes,
    ) -> npt.NDArray[np.float64]:
        """Mean of ``k_avg`` continuous 16-bit codes per sample, drawn from its distribution.

        ``v``, ``v_ref``: (n, n_channels) ADC input (cell-referred, after path errors) and
        reference. Returns volts, shape (n, n_channels).
        """
        fig = noise_figures(r)
        u = G_IN * v / v_ref
        th = fig.g_thermal / r * (self.spec.adc.thermal_noise_V / v_ref) ** 2
        th_mean = th * (1.0 + 2.0 * fig.rho1 * (k_avg - 1) / k_avg
                        + 2.0 * fig.rho2 * max(k_avg - 2, 0) / k_avg) / k_avg  # fmt: skip
        q_mean = fig.q_var_R5 / float(r) ** 5 / k_avg
        z = rng.standard_normal((2, *u.shape))
        raw = (u + np.sqrt(th_mean + q_mean) * z[0]) * RAW_PER_U
        fmt = self.spec.trim_format
        die_code = self._die_code(temp)
        corr = correct_code_float(
            raw,
            codes.gain[0],
            codes.tempco[0],
            codes.offset[0],
            np.broadcast_to(die_code[:, None], raw.shape),
            codes.board[0],
            fmt=fmt,
        )
        code = (corr - RAW_CODE_ZERO) / 16.0 + z[1] * math.sqrt(1.0 / 12.0 / k_avg)
        return cell_volts_from_code(np.clip(code, CODE_MIN, CODE_MAX))

    def _set_switches(self, duty: npt.ArrayLike) -> None:
        """Balancing switches without advancing the die (the record's fast path does that)."""
        d = np.clip(np.asarray(duty, dtype=float), 0.0, 1.0)
        self._duty = d
        r = self._fe_c.bleed_resistance_Ohm + self._fe_c.switch_on_resistance_Ohm
        with np.errstate(divide="ignore"):
            self.source.set_balance_resistance(np.where(d > 0, r / np.maximum(d, 1e-12), np.inf))

    def _record_die_and_reference(
        self,
        path: str,
        t_mid: npt.NDArray[np.float64],
        sense: npt.NDArray[np.float64],
        duty: npt.NDArray[np.float64],
        t_die0: float,
        t_s0: float,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Die temperature and reference (with noise) at each block centre, all at once.

        The die follows ``T_k = T_ss,k + (T_{k-1} - T_ss,k) exp(-dt_k / tau)`` with the
        balancing power of block k held since the previous block (as :meth:`_advance` does);
        the recursion is one linear filter pass. Returns (temp_C, v_ref_V), each shape (n,).
        """
        from scipy.signal import lfilter

        fe = self._fe_c
        i_A = sense / (fe.bleed_resistance_Ohm + fe.switch_on_resistance_Ohm)
        # power held over the interval before sample k is the one at the previous call
        p = np.sum(duty * i_A**2 * fe.switch_on_resistance_Ohm, axis=1) + self.faults.die_heat_W
        t_prev = np.concatenate([[t_s0], t_mid[:-1]])
        dt = np.maximum(t_mid - t_prev, 0.0)
        tau = float(self._die.tau_s[0])
        a = np.exp(-dt / tau)
        t_ss = self.temp_ambient_C + float(self._die.r_th_C_per_W[0]) * (
            float(self._die.p_quiescent_W[0]) + p
        )
        if np.allclose(a[1:], a[1] if a.size > 1 else 0.0, rtol=0, atol=1e-12):
            # T_k = a_k T_{k-1} + (1 - a_k) T_ss,k, constant a after the first sample
            first = t_ss[0] + (t_die0 - t_ss[0]) * a[0]
            if a.size > 1:
                ac = float(a[1])
                rest, _ = lfilter([1.0 - ac], [1.0, -ac], t_ss[1:], zi=np.array([ac * first]))
                temp = np.concatenate([[first], rest])
            else:
                temp = np.array([first])
        else:
            temp = np.empty_like(t_ss)
            x = t_die0
            for k in range(t_ss.size):  # irregular spacing: plain recursion
                x = t_ss[k] + (x - t_ss[k]) * a[k]
                temp[k] = x
        # hysteresis play operator over the record: running max / min per side of T0
        use_s = path == "S" and not self.spec.shares_reference
        params, state = (self._s_ref, self._s_state) if use_s else (self._ref, self._state)
        hyst = np.empty_like(temp)
        m = float(state.hyst_m[0])
        d = temp - T0_C
        span = float(params.hyst_full_C[0] - params.hyst_threshold_C[0])
        f = np.clip((np.abs(d) - float(params.hyst_threshold_C[0])) / span, 0.0, 1.0)
        if np.all(d > 0):
            hyst[:] = np.maximum.accumulate(np.maximum(2.0 * f - 1.0, m))
        elif np.all(d < 0):
            hyst[:] = np.minimum.accumulate(np.minimum(1.0 - 2.0 * f, m))
        else:
            for k in range(temp.size):
                m = max(m, 2 * f[k] - 1) if d[k] > 0 else (min(m, 1 - 2 * f[k]) if d[k] < 0 else m)
                hyst[k] = m
        for st, pr in ((self._state, self._ref), (self._s_state, self._s_ref)):
            st.hyst_m = np.array([hyst[-1]]) if st is state else st.hyst_m
            if st is not state:
                for x in temp:  # the other reference's memory follows the same path
                    st.observe_temperature(pr, np.array([x]))
        err = reference_error_ppm(
            params,
            temp[None, :],
            (self.lifetime_h0 + t_mid / 3600.0)[None, :],
            hyst_m=hyst[None, :],
            t_assembly_h=state.t_assembly_h,
        )[0]
        shift = self.faults.s_ref_shift_ppm if use_s else self.faults.ref_shift_ppm
        v_ref = float(params.v_nom_V[0]) * (1.0 + 1e-6 * err) * (1 + 1e-6 * shift)
        v_ref = v_ref + self._record_noise_V("S" if use_s else "C", t_mid)
        self._temp_die_C = float(temp[-1])
        self._t_s = max(float(t_mid[-1]), t_s0)
        return temp, v_ref

    def _record_noise_V(
        self, which: str, t_mid: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Reference noise at the block rate of a uniformly spaced record (own named stream)."""
        if t_mid.size < 2:
            return np.zeros(t_mid.size)
        dt = float(np.median(np.diff(t_mid)))
        fs = 1.0 / dt
        key = (which, round(fs, 9))
        gen_t = self._rec_noise.get(key)
        if gen_t is None:
            params = self._ref if which == "C" else self._s_ref
            gen = ReferenceNoise(
                params,
                fs,
                self._streams.generator(f"analog.{self.index}.ref_noise_record.{which}.{fs:g}"),
                f_min_Hz=min(1e-4, fs / 40.0),
            )
            gen_t = (gen, float(t_mid[0]))
        gen, t_next = gen_t
        gap = round((float(t_mid[0]) - t_next) * fs)
        if gap > 0:
            gen.skip(gap)
        out = gen.generate(t_mid.size)[0]
        self._rec_noise[key] = (gen, float(t_mid[-1]) + dt)
        return out

    def _current_params(self) -> Any:
        c = self.pop.current
        return type(c)(
            c.shunt_uOhm_nominal,
            c.gain_nominal,
            c.shunt_err_ppm[self._sel],
            c.shunt_tempco_ppm_per_C,
            c.gain_err_ppm[self._sel],
            c.gain_tempco_ppm_per_C[self._sel],
            c.offset_uV[self._sel],
            c.offset_tempco_uV_per_C[self._sel],
            c.full_scale_A,
        )

    def measure_aux(self, t0_s: float, t1_s: float, path: str = "aux") -> npt.NDArray[np.float64]:
        """GPIO1..10: the pack's NTC dividers on the first GPIOs, the rest at 0 V.

        Converted through the C reference and trim (the aux ADC shares them: assumption).
        """
        if path not in ("aux", "raux"):
            raise ValueError(f"path must be 'aux' or 'raux', got {path!r}")
        t_mid = 0.5 * (t0_s + t1_s)
        sample = self._hist.at(t_mid)
        gpio = np.zeros(10)
        n = min(10, sample.ntc_voltage_V.size)
        gpio[:n] = sample.ntc_voltage_V[:n]
        return self._convert(gpio, "C", t_mid, self.spec.adc.c_decimation)

    def measure_current_A(self, t0_s: float, t1_s: float) -> float:
        """Current channel (extension): shunt + amplifier errors at the die temperature."""
        t_mid = 0.5 * (t0_s + t1_s)
        sample = self._hist.at(t_mid)
        # bms_emu.afe.current_channel.measure_current_A for this device on floats, same
        # operations (tests/device/test_conversion_identity.py compares them)
        (r25, shunt_err, shunt_tc, gain_err, gain_tc, off_uV, off_tc, fs) = self._current1
        dt = self._temp_die_C - 25.0
        r_rel = (1.0 + shunt_err * 1e-6) * (1.0 + shunt_tc * 1e-6 * dt)
        g_rel = 1.0 + (gain_err + gain_tc * dt) * 1e-6
        v_off_V = (off_uV + off_tc * dt) * 1e-6
        i_meas = (float(sample.current_A) * r25 * r_rel + v_off_V) * g_rel / r25
        return min(max(i_meas, -fs), fs)

    def measure_status(self, t_s: float) -> dict[str, float]:
        """VREF2 through the C path, die temperature from the sensor, supplies, sum of cells."""
        sample = self._hist.at(t_s)
        self._advance(max(t_s, self._t_s), sample.sense_voltage_V)
        vref2_true = VREF2_NOM_V
        if not self.spec.shares_reference:
            # VREF2 is the separate second reference when the design has one, trimmed at the
            # factory to its nominal value at 25 C (so its initial error e0 is gone; its tempco,
            # hysteresis, reflow and drift since then remain)
            def s_ref(state: Any, temp_C: float, t_h: float) -> float:
                return float(v_ref_V(self._s_ref, state, np.array([temp_C]), t_h)[0])

            trimmed = s_ref(self._s_state, self._temp_die_C, self._lifetime_h(t_s)) / s_ref(
                None, 25.0, 0.0)
            vref2_true = trimmed * (1 + 1e-6 * self.faults.s_ref_shift_ppm) * VREF2_NOM_V
        vref2 = float(
            self._convert(np.array([vref2_true]), "C", t_s, self.spec.adc.c_decimation)[0]
        )
        fmt = self.spec.trim_format
        itmp = (
            float(
                self._die_code(np.array([self._temp_die_C]), noisy=False)[0]
            )
            * fmt.die_temp_lsb_C
        )
        sc = float(np.sum(sample.sense_voltage_V))
        return {
            "vref2_V": vref2,
            "itmp_C": itmp,
            "va_V": VA_NOM_V if self.faults.va_V is None else self.faults.va_V,
            "vd_V": VD_NOM_V if self.faults.vd_V is None else self.faults.vd_V,
            "sc_V": sc,
            "vres_V": 1.5,
            "vmv_V": 0.0,
            "vpv_V": sc,
        }

    def set_balance(self, t_s: float, on: npt.NDArray[Any]) -> None:
        """Discharge switches: the pack sees R_bleed / duty per cell; the die heats by I^2 R_on."""
        sample = self._hist.at(max(t_s, self._t_s))
        self._advance(max(t_s, self._t_s), sample.sense_voltage_V)
        duty = np.clip(np.asarray(on, dtype=float), 0.0, 1.0)
        self._duty = duty
        r = self._fe_c.bleed_resistance_Ohm + self._fe_c.switch_on_resistance_Ohm
        with np.errstate(divide="ignore"):
            self.source.set_balance_resistance(
                np.where(duty > 0, r / np.maximum(duty, 1e-12), np.inf)
            )

    def fault_state(self, t_s: float) -> dict[str, bool]:
        """What the chip's own monitors see: thermal, supplies, oscillator, trim ECC."""
        _, worst = self._trim("C")
        va = VA_NOM_V if self.faults.va_V is None else self.faults.va_V
        vd = VD_NOM_V if self.faults.vd_V is None else self.faults.vd_V
        out = {
            "thermal_shutdown": self._temp_die_C > THERMAL_SHUTDOWN_C,
            "va_ov": va > VA_WINDOW_V[1],
            "va_uv": va < VA_WINDOW_V[0],
            "vd_ov": vd > VD_WINDOW_V[1],
            "vd_uv": vd < VD_WINDOW_V[0],
            "osc_fault": self.faults.osc_fault,
            "trim_ecc_corrected": worst == EccStatus.CORRECTED,
            "trim_ecc_uncorrectable": worst == EccStatus.UNCORRECTABLE,
        }
        assert set(out) == set(FAULT_KEYS)
        return out


def _scheme(pop: ChipPopulation) -> Any:
    return pop.spec.trim.scheme_for(pop.strategy)[0]
