"""Reading and checking a result document of ``benchmarks/paper.py`` (schema ``driftcal.paper/1``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from driftcal.errors import DriftcalError

#: The schema tag of a result document.
SCHEMA = "driftcal.paper/1"
#: The study sections of a result document, in the order of the paper's figures.
STUDIES = (
    "esum",
    "tracker_noise",
    "rmse_vs_epoch",
    "cellwise",
    "esum_calibrated",
    "epsilon_sweep",
    "threshold_sweep",
)
METHODS = ("adversarial", "ratio_of_means", "w1_per_cell")
LABELS = {
    "adversarial": "adversarial (driftcal)",
    "ratio_of_means": "ratio of means",
    "w1_per_cell": "per-cell 1D-W1",
}


class ReportError(DriftcalError):
    """The result document cannot be reported (unreadable, not a result, a malformed section)."""


def check_result(doc: Any, source: str = "result") -> dict[str, Any]:
    """Check that ``doc`` is a paper result with at least one study, each holding the three methods.

    >>> check_result({"schema": "driftcal.paper/1", "esum": {"methods": {m: {} for m in METHODS}}})["schema"]
    'driftcal.paper/1'
    >>> check_result([])
    Traceback (most recent call last):
    ...
    driftcal.report.load.ReportError: result is not a JSON object (got list)
    """
    if not isinstance(doc, dict):
        raise ReportError(f"{source} is not a JSON object (got {type(doc).__name__})")
    schema = doc.get("schema")
    if not isinstance(schema, str) or not schema.startswith("driftcal.paper/"):
        raise ReportError(f"{source} is not a benchmarks/paper.py result (schema {schema!r})")
    present = [s for s in STUDIES if s in doc]
    if not present:
        raise ReportError(f"{source} holds none of the studies {', '.join(STUDIES)}")
    for study in present:
        section = doc[study]
        methods = section.get("methods") if isinstance(section, dict) else None
        if not isinstance(methods, dict):
            raise ReportError(f"{source}: study '{study}' has no 'methods' object")
        missing = [m for m in METHODS if m not in methods]
        if missing:
            raise ReportError(f"{source}: study '{study}' lacks the method(s) {', '.join(missing)}")
    return doc


def load_result(path: str | Path) -> dict[str, Any]:
    """Read and check a result document; errors are :class:`ReportError` with one readable line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"no such file '{path}'") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read '{path}': {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"'{path}' is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return check_result(doc, f"'{path}'")


def studies_in(doc: dict[str, Any]) -> list[str]:
    """The studies the document holds, in the paper's order."""
    return [s for s in STUDIES if s in doc]
