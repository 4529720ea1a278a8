"""``junit.xml``: one testcase per sweep requirement (and one for the history check)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

__all__ = ["render_junit"]


def render_junit(summary: dict[str, Any], regressions: list[dict[str, Any]] | None) -> str:
    """JUnit XML text.

    A requirement's testcase fails when its verdict differs from its expectation (a requirement
    with ``expect: fail`` checks that a chip does *not* meet a limit). ``regressions`` None means
    no history was given (no history testcase).
    """
    suite = ET.Element("testsuite", name=f"bms-emu sweep {summary['sweep']}")
    failures = 0
    cases = 0
    budget_reqs = (summary.get("budget") or {}).get("requirements", [])
    for req in [*summary["requirements"], *budget_reqs]:
        cases += 1
        tc = ET.SubElement(suite, "testcase", classname=f"sweep.{summary['sweep']}",
                           name=f"{req['name']} [expect {req['expect']}]")
        ET.SubElement(tc, "system-out").text = req.get("message", "")
        if not req["ok"]:
            failures += 1
            ET.SubElement(tc, "failure", message=f"verdict {req['verdict']}, expected "
                          f"{req['expect']}").text = req.get("message", "")
    if regressions is not None:
        cases += 1
        tc = ET.SubElement(suite, "testcase", classname=f"sweep.{summary['sweep']}",
                           name="no metric worse than the recent history")
        if regressions:
            failures += 1
            lines = [f"{r['metric']}: {r['value']:.6g} vs baseline {r['baseline']:.6g} "
                     f"(margin {r['margin']:.3g})" for r in regressions]
            ET.SubElement(tc, "failure", message=f"{len(regressions)} regressions").text = (
                "\n".join(lines))
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
