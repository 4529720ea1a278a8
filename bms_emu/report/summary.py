"""``summary.json`` serialisation: canonical, so equal summaries are equal bytes."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["render_summary"]


def render_summary(summary: dict[str, Any]) -> str:
    """Canonical JSON text (sorted keys, 1-space indent, repr floats, no NaN, trailing newline)."""
    return json.dumps(summary, sort_keys=True, indent=1, allow_nan=False) + "\n"
