"""Every flip-flop bit of an RTL design, found by Verilator, not listed by hand.

``verilator --json-only`` writes the elaborated design (parameterised modules specialised,
generate blocks expanded) as a JSON tree. A flop is a variable that is the target of a
non-blocking assignment (``<=``, node ``ASSIGNDLY``) inside an ``always_ff`` block; its
bits are the variable's declared width (the whole variable, even when an assignment writes
a slice, since every bit of it is a register). Instances (``CELL``) are expanded from the top
down, so each flop gets its hierarchical name relative to the top (``g_ch[0].u_c.u_sinc3.
i1_q``), the name cocotb resolves on a ``--public-flat-rw`` build.

Only packed (vector) variables are supported; an unpacked array target is an error (the
fault injector writes whole vectors).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Flop", "flop_inventory", "inventory_from_tree"]


@dataclass(frozen=True)
class Flop:
    """One register variable: hierarchical ``path`` (relative to the top), ``width`` bits,
    and ``module`` (the original name of the module that declares it)."""

    path: str
    width: int
    module: str


def _walk(node: Any, visit: Any) -> None:
    if isinstance(node, list):
        for x in node:
            _walk(x, visit)
    elif isinstance(node, dict):
        if visit(node) is False:
            return
        for v in node.values():
            if isinstance(v, (list, dict)):
                _walk(v, visit)


def _target_var(lhs: dict[str, Any]) -> str:
    """The VAR address a non-blocking assignment writes (through selects)."""
    t = lhs.get("type")
    if t == "VARREF":
        return str(lhs["varp"])
    if t in ("SEL", "ARRAYSEL"):
        if t == "ARRAYSEL":
            raise ValueError(f"unpacked array target at {lhs.get('loc')}: not supported")
        return _target_var(lhs["fromp"][0])
    raise ValueError(f"unexpected assignment target {t} at {lhs.get('loc')}")


def inventory_from_tree(tree: dict[str, Any], top: str) -> list[Flop]:
    """Flops of ``top`` from a parsed ``--json-only`` tree (see the module docstring)."""
    widths: dict[str, int] = {}

    def dtype(n: dict[str, Any]) -> None:
        if str(n.get("type", "")).endswith("DTYPE") and "addr" in n:
            rng = n.get("range")
            if rng:
                hi, lo = (int(x) for x in rng.split(":"))
                widths[n["addr"]] = abs(hi - lo) + 1
            else:
                widths[n["addr"]] = 1

    _walk(tree, dtype)  # type table (miscsp) and module-local types
    mods = {m["addr"]: m for m in tree["modulesp"]}
    by_name = {m["name"]: m for m in tree["modulesp"]}
    if top not in by_name:
        raise ValueError(f"top module {top!r} not in the tree ({sorted(by_name)})")

    def module_info(mod: dict[str, Any]) -> tuple[list[tuple[str, str, int]],
                                                  list[tuple[str, str]]]:
        """(scoped flop vars (scope, name, width), cells (scope + name, module addr))."""
        vars_: dict[str, tuple[str, str, str]] = {}   # VAR addr -> (scope, name, dtype)
        regs: set[str] = set()
        cells: list[tuple[str, str]] = []

        def scan(stmts: list[Any], scope: str) -> None:
            for s in stmts:
                t = s.get("type")
                if t == "VAR":
                    vars_[s["addr"]] = (scope, s["name"], s["dtypep"])
                elif t == "GENBLOCK":
                    sub = f"{scope}{s['name']}." if s.get("name") else scope
                    scan(s.get("stmtsp", []) + s.get("itemsp", []), sub)
                elif t == "CELL":
                    cells.append((f"{scope}{s['name']}", s["modp"]))
                elif t == "ALWAYS" and s.get("keyword") == "always_ff":
                    def nba(n: dict[str, Any]) -> None:
                        if n.get("type") == "ASSIGNDLY":
                            regs.add(_target_var(n["lhsp"][0]))
                    _walk(s, nba)
                elif t == "BEGIN":
                    scan(s.get("stmtsp", []), scope)

        scan(mod.get("stmtsp", []), "")
        out = []
        for addr in sorted(regs, key=lambda a: (vars_[a][0], vars_[a][1])):
            scope, name, dt = vars_[addr]
            out.append((scope, name, widths[dt]))
        return out, cells

    flops: list[Flop] = []

    def expand(mod: dict[str, Any], prefix: str) -> None:
        regs, cells = module_info(mod)
        for scope, name, w in regs:
            flops.append(Flop(f"{prefix}{scope}{name}", w, mod.get("origName", mod["name"])))
        for path, addr in cells:
            expand(mods[addr], f"{prefix}{path}.")

    expand(by_name[top], "")
    return flops


def flop_inventory(sources: list[Path], top: str, parameters: dict[str, Any],
                   verilator: str = "verilator") -> list[Flop]:
    """Run ``verilator --json-only`` on ``sources`` with ``parameters``; return the flops."""
    with tempfile.TemporaryDirectory(prefix="flops_") as tmp:
        cmd = [verilator, "--json-only", "-Mdir", tmp, "--top-module", top,
               *[f"-G{k}={v}" for k, v in parameters.items()], *map(str, sources)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"verilator --json-only failed:\n{out.stdout}{out.stderr}")
        trees = list(Path(tmp).glob("*.tree.json"))
        if len(trees) != 1:
            raise RuntimeError(f"expected one .tree.json in {tmp}, got {trees}")
        tree = json.loads(trees[0].read_text())
    return inventory_from_tree(tree, top)


def bits_by(flops: list[Flop], pattern: str) -> int:
    """Total bits of the flops whose path matches ``pattern`` (regex search)."""
    rx = re.compile(pattern)
    return sum(f.width for f in flops if rx.search(f.path))
