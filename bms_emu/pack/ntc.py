"""NTC thermistor models (Beta and Steinhart-Hart) and the pull-up divider read by aux inputs.

Beta model: ``R(T) = R25 exp(B (1/T - 1/T25))``, i.e. ``1/T = 1/T25 + ln(R/R25)/B``. It is a
two-point fit: a datasheet ``B25/85`` value is exact at 25 and 85 C and drifts away outside
(for a 10 k B3435 part it reads 28.7 k at 0 C where the table says 27.28 k).

Steinhart-Hart: ``1/T = A + B ln R + C (ln R)^3``; the inverse solves the depressed cubic in
``ln R`` in closed form.

Divider: NTC from the aux input to ground, pull-up to the supply:
``V = V_supply R_ntc / (R_ntc + R_pullup)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "beta_divider_voltage_V",
    "beta_r_Ohm",
    "beta_temp_C",
    "divider_r_Ohm",
    "divider_voltage_V",
    "steinhart_hart_fit",
    "steinhart_hart_r_Ohm",
    "steinhart_hart_temp_C",
]

_ZERO_C_K = 273.15
_T25_K = 298.15


def beta_r_Ohm(temp_C: np.ndarray | float, r25_Ohm: float, beta_K: float) -> np.ndarray:
    """Beta-model resistance, shape of ``temp_C``."""
    t_K = np.asarray(temp_C, dtype=float) + _ZERO_C_K
    return r25_Ohm * np.exp(beta_K * (1.0 / t_K - 1.0 / _T25_K))


def beta_temp_C(r_Ohm: np.ndarray | float, r25_Ohm: float, beta_K: float) -> np.ndarray:
    """Inverse of :func:`beta_r_Ohm`, shape of ``r_Ohm``."""
    inv_t = 1.0 / _T25_K + np.log(np.asarray(r_Ohm, dtype=float) / r25_Ohm) / beta_K
    return 1.0 / inv_t - _ZERO_C_K


def steinhart_hart_temp_C(r_Ohm: np.ndarray | float, abc: tuple[float, float, float]) -> np.ndarray:
    """Steinhart-Hart temperature, shape of ``r_Ohm``."""
    a, b, c = abc
    ln_r = np.log(np.asarray(r_Ohm, dtype=float))
    return 1.0 / (a + b * ln_r + c * ln_r**3) - _ZERO_C_K


def steinhart_hart_r_Ohm(temp_C: np.ndarray | float, abc: tuple[float, float, float]) -> np.ndarray:
    """Inverse Steinhart-Hart: ``C y^3 + B y + (A - 1/T) = 0`` for ``y = ln R`` (Cardano).

    With B, C > 0 the cubic has one real root:
    ``y = cbrt(-q/2 + sqrt(D)) + cbrt(-q/2 - sqrt(D))``, ``p = B/C``, ``q = (A - 1/T)/C``,
    ``D = (q/2)^2 + (p/3)^3``.
    """
    a, b, c = abc
    t_K = np.asarray(temp_C, dtype=float) + _ZERO_C_K
    if c == 0.0:
        return np.exp((1.0 / t_K - a) / b)
    p = b / c
    q = (a - 1.0 / t_K) / c
    s = np.sqrt((q / 2.0) ** 2 + (p / 3.0) ** 3)
    y = np.cbrt(-q / 2.0 + s) + np.cbrt(-q / 2.0 - s)
    return np.exp(y)


def steinhart_hart_fit(
    temp_C: tuple[float, float, float], r_Ohm: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Steinhart-Hart coefficients through three (temperature, resistance) points.

    Returns
    -------
    tuple of float
        ``(A, B, C)``.
    """
    ln_r = np.log(np.asarray(r_Ohm, dtype=float))
    m = np.stack([np.ones(3), ln_r, ln_r**3], axis=1)
    inv_t = 1.0 / (np.asarray(temp_C, dtype=float) + _ZERO_C_K)
    a, b, c = np.linalg.solve(m, inv_t)
    return float(a), float(b), float(c)


def divider_voltage_V(
    r_ntc_Ohm: np.ndarray | float, pullup_Ohm: float, supply_V: float
) -> np.ndarray:
    """Divider output ``V_supply R_ntc / (R_ntc + R_pullup)``, shape of ``r_ntc_Ohm``."""
    r = np.asarray(r_ntc_Ohm, dtype=float)
    return supply_V * r / (r + pullup_Ohm)


def divider_r_Ohm(v_V: np.ndarray | float, pullup_Ohm: float, supply_V: float) -> np.ndarray:
    """Inverse of :func:`divider_voltage_V`: ``R_ntc = R_pullup V / (V_supply - V)``."""
    v = np.asarray(v_V, dtype=float)
    return pullup_Ohm * v / (supply_V - v)


@njit(cache=True)
def _beta_exponent(temp_K: np.ndarray, cells: np.ndarray, beta_K: float, out: np.ndarray) -> None:
    for j in range(cells.size):
        t_C = temp_K[cells[j]] - _ZERO_C_K
        out[j] = beta_K * (1.0 / (t_C + _ZERO_C_K) - 1.0 / _T25_K)


@njit(cache=True)
def _beta_divider(e: np.ndarray, r25_Ohm: float, pullup_Ohm: float, supply_V: float) -> None:
    for j in range(e.size):
        r = r25_Ohm * e[j]
        e[j] = supply_V * r / (r + pullup_Ohm)


def beta_divider_voltage_V(
    temp_K: np.ndarray, cells: np.ndarray, r25_Ohm: float, beta_K: float, pullup_Ohm: float,
    supply_V: float,
) -> np.ndarray:
    """``divider_voltage_V(beta_r_Ohm(temp_K[cells] - 273.15, ...), ...)``, shape (n_sensors,).

    The same operations in the same order, compiled around numpy's exp (a compiled exp may
    differ from numpy's in the last bit): 3 calls instead of ~12 numpy calls on 8 values, once
    per conversion per device. ``tests/pack/test_ntc.py`` compares the two bit for bit.
    """
    x = np.empty(cells.size)
    _beta_exponent(temp_K, cells, beta_K, x)
    e = np.exp(x)
    _beta_divider(e, r25_Ohm, pullup_Ohm, supply_V)
    return e
