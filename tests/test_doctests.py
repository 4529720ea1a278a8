"""Every doctest example in the package runs as part of the normal test run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bms_emu

MODULES = sorted(m.name for m in pkgutil.walk_packages(bms_emu.__path__, prefix="bms_emu."))
#: Modules whose public encode/decode functions must carry examples (STYLE.md 12).
MUST_HAVE_EXAMPLES = {
    "bms_emu.protocol.pec",
    "bms_emu.protocol.opcodes",
    "bms_emu.protocol.registers",
    "bms_emu.protocol.frames",
    "bms_emu.host.driver",
    "bms_emu.afe.adc_params",
    "bms_emu.afe.iir",
    "bms_emu.device.analog",
    "bms_emu.profile",
    "bms_emu.sim",
    "bms_emu.trace",
}


def test_walk_found_the_package():
    assert set(MUST_HAVE_EXAMPLES) <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if name in MUST_HAVE_EXAMPLES:
        assert result.attempted > 0, f"{name} has no doctest examples"
