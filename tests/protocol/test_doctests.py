"""Run the doctest examples of the protocol and host modules as part of the normal test run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "bms_emu.protocol.pec",
    "bms_emu.protocol.opcodes",
    "bms_emu.protocol.registers",
    "bms_emu.protocol.frames",
    "bms_emu.host.driver",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0
