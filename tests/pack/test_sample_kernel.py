"""The compiled no-bleed sample (``step_kernel.terminal_and_sense_no_balancing``) against the
numpy expressions it replaces, bit for bit, on random states and tables."""

from __future__ import annotations

import numpy as np

from bms_emu.pack.step_kernel import _np_interp, terminal_and_sense_no_balancing
from bms_emu.pack.thevenin import T_REF_K


def _table(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.unique(np.concatenate(([0.0, 1.0], rng.uniform(0.0, 1.0, n - 2))))
    y = rng.uniform(2.5, 3.7, x.size)
    if y.size > 2:
        y[1] = y[2]  # a flat segment
    return x, y


def _socs(rng: np.random.Generator, xp: np.ndarray, n: int) -> np.ndarray:
    s = rng.uniform(-0.1, 1.1, n)
    k = rng.integers(0, xp.size, n // 4)
    s[: n // 4] = xp[k]  # on the breakpoints
    s[n // 4 : n // 2] = np.nextafter(xp[k], rng.choice([-np.inf, np.inf], n // 4))
    return s


def test_np_interp_equals_numpy() -> None:
    rng = np.random.default_rng(21)
    for _ in range(200):
        xp, fp = _table(rng, int(rng.integers(2, 40)))
        x = _socs(rng, xp, 64)
        ref = np.interp(x, xp, fp)
        got = np.array([_np_interp(float(v), xp, fp) for v in x])
        assert np.array_equal(got, ref)
    assert np.isnan(_np_interp(float("nan"), xp, fp))


def test_sample_kernel_equals_numpy_path() -> None:
    rng = np.random.default_rng(22)
    empty = np.zeros(0)
    for trial in range(300):
        n, m = 16, int(rng.integers(0, 8))
        ocv, dudt = _table(rng, int(rng.integers(2, 30))), _table(rng, int(rng.integers(2, 12)))
        dudt = (dudt[0], dudt[1] * 1e-4)
        sf = _table(rng, 6) if trial % 2 else None
        soc = _socs(rng, ocv[0], n)
        temp_K = rng.uniform(250.0, 330.0, n)
        v_el = rng.normal(0.0, 0.02, (m, n))
        r0_nom = rng.uniform(1e-4, 1e-3, n)
        r_bb = np.full(n, rng.uniform(0.0, 1e-3))
        r_bb[0] = 0.0
        current = float(rng.uniform(-300.0, 300.0))
        ea, ea_ref = 3000.0, 3000.0 / T_REF_K
        f = np.exp(ea / temp_K - ea_ref)
        # the numpy path: VirtualPack._r_factor, ocv_V, _emf_V and the no-bleed terms
        f_ref = f.copy()
        if sf is not None:
            f_ref *= np.interp(soc, sf[0], sf[1])
        r0 = r0_nom * f_ref
        ocv_V = np.interp(soc, *ocv) + (temp_K - T_REF_K) * np.interp(soc, *dudt)
        v_term_ref = (ocv_V - v_el.sum(axis=0)) - current * r0
        v_sense_ref = v_term_ref - current * r_bb
        v_term, v_sense = np.empty(n), np.empty(n)
        terminal_and_sense_no_balancing(
            f, soc, temp_K, v_el, r0_nom, r_bb, current, T_REF_K, *ocv, *dudt,
            *(sf if sf is not None else (empty, empty)), v_term, v_sense,
        )  # fmt: skip
        assert np.array_equal(v_term, v_term_ref)
        assert np.array_equal(v_sense, v_sense_ref)
