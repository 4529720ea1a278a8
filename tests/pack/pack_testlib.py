"""Helpers for the pack tests: small configs whose every number the tests know."""

from __future__ import annotations

import copy
from typing import Any

from bms_emu.config import PackConfig

#: A plain cell: linear OCV 3.0 -> 3.4 V, no entropic term, no T/SOC scaling, no spread.
BASE: dict[str, Any] = {
    "kind": "pack",
    "name": "test",
    "chemistry": "lfp",
    "n_cells": 16,
    "seed": 3,
    "cell": {
        "capacity_Ah": 100.0,
        "initial_soc": 0.5,
        "r0_mOhm": 0.5,
        "rc_pairs": [],
        "ocv_table": {"soc": [0.0, 1.0], "value": [3.0, 3.4]},
        "entropic_mV_per_K": {"soc": [0.0, 1.0], "value": [0.0, 0.0]},
        "thermal": {"heat_capacity_J_per_K": 1000.0, "h_A_W_per_K": 1.0},
    },
}


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def make_config(**overrides: Any) -> PackConfig:
    """BASE with nested overrides, e.g. ``make_config(cell={"r0_mOhm": 1.0})``."""
    data = copy.deepcopy(BASE)
    _merge(data, overrides)
    return PackConfig.model_validate(data)
