"""Machine facts recorded with every benchmark result (figures are only comparable per machine)."""

from __future__ import annotations

import json
import os
import platform
import sys
from typing import Any

import numpy as np


def machine_info() -> dict[str, Any]:
    """CPU model, core count, Python and numpy versions."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def emit(name: str, results: dict[str, Any]) -> None:
    """Print one benchmark's results as a JSON document on stdout."""
    json.dump({"benchmark": name, "machine": machine_info(), "results": results}, sys.stdout,
              indent=2)
    sys.stdout.write("\n")
