"""Sweep outputs: ``summary.json`` text, the self-contained ``report.html`` and ``junit.xml``."""

from bms_emu.report.html import render_html
from bms_emu.report.junit import render_junit
from bms_emu.report.summary import render_summary

__all__ = ["render_html", "render_junit", "render_summary"]
