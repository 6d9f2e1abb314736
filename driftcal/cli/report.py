"""``driftcal report``: figures and a Markdown summary from a ``benchmarks/paper.py`` result.

Needs matplotlib (``pip install 'driftcal[report]'``); without it the command exits 2 with one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``report``."""
    parser = subparsers.add_parser(
        "report",
        help="render the paper-study figures and summary table",
        description="Render the PNG figures and a Markdown summary table of a benchmarks/paper.py result.",
    )
    parser.add_argument(
        "--from", dest="source", type=Path, required=True, metavar="RESULT.json", help="the result document"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the figures")
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the document and matplotlib first, then write the figures and ``summary.md``."""
    from driftcal.report import load_result, render_report
    from driftcal.report.figures import pyplot

    doc = load_result(args.source)
    pyplot()  # a missing extra is reported before anything is written
    for path in render_report(doc, args.out):
        print(path)
    return 0
