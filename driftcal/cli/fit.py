"""``driftcal fit``: fit coefficients mapping a reference dataset onto a changed one.

Writes the coefficient document (schema ``driftcal.coefficients/1``) to ``--out`` and prints a
one-line summary; without ``--out`` the document goes to stdout and the summary to stderr. With
``--truth`` the fit is scored (RMSE and R² over the reference's active cells for ``cell-gain``,
absolute error per plane for ``plane-shift``); the figures are printed and stored in ``metrics``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from driftcal.cli.options import non_negative_float, positive_int
from driftcal.io import load_array, load_groups, validate_pair, validate_truth

MODELS = ("cell-gain", "plane-shift")
METHODS = ("adversarial", "ratio-of-means", "quantile", "auto")
DEVICES = ("auto", "cpu", "cuda")
MIN_HITS = 50
#: Default wall-clock budget of one adversarial fit: 9 minutes, so that loading and writing stay within 10.
TIME_BUDGET_S = 540.0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``fit``."""
    parser = subparsers.add_parser(
        "fit",
        help="fit per-cell gains or per-plane shifts",
        description="Fit coefficients mapping a reference dataset onto a changed one.",
    )
    parser.add_argument("--reference", type=Path, required=True, metavar="REF.npy", help="reference data")
    parser.add_argument("--changed", type=Path, required=True, metavar="CHG.npy", help="changed data")
    parser.add_argument("--model", choices=MODELS, required=True, help="what changed between the datasets")
    parser.add_argument("--method", choices=METHODS, default="adversarial", help="default: adversarial")
    parser.add_argument(
        "--threshold", type=non_negative_float, metavar="T", help="zero-suppression threshold"
    )
    parser.add_argument("--noise", type=non_negative_float, metavar="SIGMA", help="electronic noise σ")
    parser.add_argument(
        "--pool",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pool the per-cell gains over cells of similar dose and neighbouring cells by empirical Bayes "
        "(cell-gain; default: on for adversarial and auto, off for the baselines)",
    )
    parser.add_argument(
        "--groups",
        type=Path,
        metavar="GROUPS.npy",
        help="integer label per cell (the shape of one event) of the cells that age together, e.g. the "
        "high-voltage channel; pooling leans on the cell's group instead of its square of neighbours "
        "(negative: no group)",
    )
    parser.add_argument("--truth", type=Path, metavar="TRUTH.npy", help="true coefficients, to score the fit")
    parser.add_argument("--steps", type=positive_int, metavar="K", help="optimisation steps (adversarial)")
    parser.add_argument(
        "--time-budget",
        type=non_negative_float,
        default=TIME_BUDGET_S,
        metavar="SECONDS",
        help=f"wall-clock limit of an adversarial fit (default {TIME_BUDGET_S:g}; 0: none); the refinement "
        "stops in time for its held-out checks, and an unchecked refinement is not kept",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="default: auto")
    parser.add_argument("--detector", help="detector name in the document")
    parser.add_argument("--module", help="module name in the document")
    parser.add_argument("--out", type=Path, metavar="OUT.json", help="write the document here (else stdout)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Load and validate the inputs, fit, score, write the document."""
    from driftcal.calib import fit as fitting
    from driftcal.coefficients import CoefficientDocument

    reference = load_array(args.reference, name="reference")
    changed = load_array(args.changed, name="changed")
    labels = (f"reference file '{args.reference}'", f"changed file '{args.changed}'")
    validate_pair(reference, changed, model=args.model, noise=args.noise, labels=labels)
    groups = None if args.groups is None else load_groups(args.groups, cell_shape=reference.shape[1:])
    truth = None
    if args.truth is not None:
        truth = load_array(args.truth, name="truth")
        validate_truth(
            truth, model=args.model, cell_shape=reference.shape[1:], label=f"truth file '{args.truth}'"
        )

    result = fitting.fit(
        reference,
        changed,
        model=args.model,
        method=args.method,
        threshold=args.threshold,
        noise=args.noise,
        steps=args.steps,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress and sys.stderr.isatty(),
        pool=args.pool,
        time_budget=args.time_budget or None,
        groups=groups,
    )
    coefficients = np.asarray(result.coefficients, dtype=np.float64)
    if coefficients.shape != reference.shape[1:]:
        raise RuntimeError(
            f"fit returned coefficients of shape {coefficients.shape}, expected {reference.shape[1:]}"
        )

    metrics, scored = ({}, None) if truth is None else _score(args.model, coefficients, truth, reference)
    names = {k: v for k, v in (("detector", args.detector), ("module", args.module)) if v is not None}
    doc = CoefficientDocument.from_array(
        coefficients,
        model=args.model,
        uncertainty=result.uncertainty,
        method=result.method,
        distance={"before": result.distance_before, "after": result.distance_after},
        iov={"first_event": 0, "last_event": int(changed.shape[0]) - 1},
        status="converged",
        metrics=metrics or None,
        **names,
    )

    summary = _summary(result.method, args.model, coefficients, result, time_budget=args.time_budget)
    report: TextIO = sys.stdout
    if args.out is None:
        print(doc.to_json(indent=2))
        report = sys.stderr
    else:
        args.out.write_text(doc.to_json(indent=2) + "\n")
        summary += f"; wrote {args.out}"
    print(summary, file=report)
    if scored is not None:
        print(scored, file=report)
    return 0


def _score(model: str, estimate: np.ndarray, truth: np.ndarray, reference: np.ndarray) -> tuple[dict, str]:
    """Metrics against the truth, and the line that reports them."""
    truth = truth.astype(np.float64)
    if model == "plane-shift":
        errors = np.abs(estimate - truth)
        metrics = {"max_abs_error": float(errors.max())}
        metrics.update({f"abs_error_plane_{i}": float(e) for i, e in enumerate(errors)})
        per_plane = ", ".join(f"{e:.3g}" for e in errors)
        return metrics, f"truth: abs error per plane [{per_plane}], max {errors.max():.3g}"

    from driftcal.calib.metrics import active_cells, r2, rmse

    mask = np.asarray(active_cells(reference, min_hits=MIN_HITS), dtype=bool)
    n_cells, n_all = int(mask.sum()), int(mask.size)
    where = f"over {n_cells}/{n_all} active cells of the reference (≥ {MIN_HITS} hits)"
    if n_cells == 0:
        mask, n_cells = np.ones_like(mask), n_all
        where = f"over all {n_all} cells (none has ≥ {MIN_HITS} hits in the reference)"
    values = {"rmse": float(rmse(estimate, truth, mask=mask)), "r2": float(r2(estimate, truth, mask=mask))}
    metrics = {k: v for k, v in values.items() if np.isfinite(v)}
    metrics["n_cells"] = float(n_cells)
    shown = ", ".join(f"{label} {values[k]:.4g}" for k, label in (("rmse", "RMSE"), ("r2", "R²")))
    return metrics, f"truth: {shown} {where}"


def _summary(
    method: str, model: str, coefficients: np.ndarray, result: object, *, time_budget: float | None = None
) -> str:
    before, after = getattr(result, "distance_before", None), getattr(result, "distance_after", None)
    line = (
        f"{model} ({method}): {coefficients.size} coefficients, min {coefficients.min():.4g} "
        f"mean {coefficients.mean():.4g} max {coefficients.max():.4g}"
    )
    if before is not None or after is not None:
        line += f"; distance {_fmt(before)} -> {_fmt(after)}"
    pooled = getattr(result, "pooled_cells", None)
    if pooled is not None:
        log_weight = getattr(result, "pool_log_weight", None)
        mix = "" if log_weight is None else f", log-reading fit weight {log_weight:.2f}"
        neighbours = getattr(result, "pool_neighbour_weight", None)
        mix += "" if neighbours is None else f", neighbours' weight {neighbours:.2f}"
        line += (
            f"; pooled {pooled} cells about the dose trend (empirical Bayes{mix})"
            if pooled
            else "; too few cells to pool"
        )
    steps = getattr(result, "steps", 0)
    if steps:
        line += f"; {steps} steps"
    refined = getattr(result, "refined", None)
    if refined:
        line += "; refinement kept"
    elif refined is False and getattr(result, "distance_start", None) is None:
        line += "; kept the per-cell start (no time left to check the refinement)"
    elif refined is False:
        line += "; kept the per-cell start (refinement did not lower the held-out distance)"
    if getattr(result, "time_limited", False):
        line += f"; cut short by the time budget ({time_budget:g} s)"
    return line


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
