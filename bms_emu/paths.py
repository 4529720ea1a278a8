"""Where the shipped configs live, so ``bms-emu run`` works with no arguments from any folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["DEFAULT_CHIP", "DEFAULT_PACK", "DEFAULT_PROFILE", "configs_dir", "shipped_config"]

DEFAULT_PACK = "packs/lfp_16s_280Ah.yaml"
DEFAULT_CHIP = "chips/bmic_target_1mV.yaml"
DEFAULT_PROFILE = "profiles/storage_cycle.yaml"


def configs_dir() -> Path:
    """The ``configs/`` folder: ``$BMS_EMU_CONFIGS``, else the source checkout, else the install.

    A source or editable install finds ``configs/`` next to the package; a wheel install finds
    the copy installed under ``<prefix>/share/bms-emu/configs``.
    """
    env = os.environ.get("BMS_EMU_CONFIGS")
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parent.parent / "configs",
        Path(sys.prefix) / "share" / "bms-emu" / "configs",
    ]
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(
        "cannot find the bms-emu configs folder; set BMS_EMU_CONFIGS to its path "
        f"(looked in {', '.join(str(c) for c in candidates)})"
    )


def shipped_config(relative: str) -> Path:
    """Path of a config shipped with bms-emu, e.g. ``shipped_config(DEFAULT_PACK)``."""
    return configs_dir() / relative
