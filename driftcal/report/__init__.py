"""Figures and a Markdown summary from a ``benchmarks/paper.py`` result (``driftcal report``).

Modules: :mod:`~driftcal.report.load` (reading and checking the document), :mod:`~driftcal.report.figures`
(one PNG per study, matplotlib from the ``report`` extra, imported lazily), :mod:`~driftcal.report.table`
(the Markdown summary), :mod:`~driftcal.report.reference` (the paper's published numbers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driftcal.report.load import ReportError, check_result, load_result

SUMMARY = "summary.md"


def render_report(doc: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write every study's figure and ``summary.md`` into ``out_dir``; returns the paths written."""
    from driftcal.report.figures import render_figures
    from driftcal.report.table import summary_markdown

    check_result(doc)
    out = Path(out_dir)
    figures = render_figures(doc, out)
    summary = out / SUMMARY
    summary.write_text(summary_markdown(doc, {s: p.name for s, p in figures.items()}), encoding="utf-8")
    return [*figures.values(), summary]


__all__ = ["SUMMARY", "ReportError", "check_result", "load_result", "render_report"]
