"""Shared fixtures. Tests that start sockets, ptys, threads or processes must clean them up."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """Fail any test that leaves a thread running (python-can's conftest does this for buses)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in leaked:
        t.join(timeout=2.0)
    leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture()
def lfp_pack_path() -> Path:
    return CONFIGS / "packs" / "lfp_16s_280Ah.yaml"


@pytest.fixture()
def nmc_pack_path() -> Path:
    return CONFIGS / "packs" / "nmc_16s_100Ah.yaml"
