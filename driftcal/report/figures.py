"""The figures of a paper-study result: one PNG per study, each with the adversarial method and both
baselines as mean ± std over seeds.

matplotlib (the ``report`` extra) is imported only when a figure is drawn, with the Agg backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftcal.report.load import LABELS, METHODS, ReportError, studies_in
from driftcal.report.reference import PAPER, PAPER_EPSILON

#: study → file name of its figure
FILES = {
    "esum": "fig4_esum.png",
    "tracker_noise": "fig5_tracker_noise.png",
    "rmse_vs_epoch": "fig6_rmse_vs_step.png",
    "cellwise": "fig7_cellwise.png",
    "esum_calibrated": "fig8_esum_calibrated.png",
    "epsilon_sweep": "fig9_epsilon_sweep.png",
    "threshold_sweep": "threshold_sweep.png",
}
COLORS = {"adversarial": "C0", "ratio_of_means": "C3", "w1_per_cell": "C2"}
MARKERS = {"adversarial": "o", "ratio_of_means": "s", "w1_per_cell": "^"}


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend, or a :class:`ReportError` naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError(
            "matplotlib is not installed; install driftcal[report] (pip install 'driftcal[report]')"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _nums(values: Any) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _band(
    ax: Any,
    x: list[float],
    stat: dict[str, Any],
    method: str,
    *,
    step: bool = False,
    label: str | None = None,
) -> None:
    mean, std = _nums(stat["mean"]), _nums(stat["std"])
    lo = [m - s for m, s in zip(mean, std, strict=True)]
    hi = [m + s for m, s in zip(mean, std, strict=True)]
    color = COLORS.get(method, "k")
    label = label or LABELS.get(method, method)
    if step:
        ax.stairs(mean, x, color=color, label=label, linewidth=1.4)
        ax.stairs(hi, x, baseline=lo, fill=True, color=color, alpha=0.2)
    else:
        ax.plot(x, mean, color=color, label=label, marker=MARKERS.get(method))
        ax.fill_between(x, lo, hi, color=color, alpha=0.2)


def _errorbars(ax: Any, x: list[float], stat: dict[str, Any], method: str, label: str | None = None) -> None:
    ax.errorbar(
        x,
        _nums(stat["mean"]),
        yerr=_nums(stat["std"]),
        color=COLORS[method],
        marker=MARKERS[method],
        capsize=3,
        label=label or LABELS[method],
    )


def _fmt(stat: dict[str, Any], digits: int = 3) -> str:
    return f"{stat['mean']:.{digits}g} ± {stat['std']:.1g}"


def _seeds(section: dict[str, Any]) -> str:
    seeds = section.get("settings", {}).get("seeds")
    return f"{len(seeds)} seeds" if isinstance(seeds, list) else "seeds"


def fig_esum(plt: Any, section: dict[str, Any], calibrated: bool) -> Any:
    """Figs. 4 and 8: E_sum histograms (density per bin, mean ± std over seeds)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    edges = _nums(section["edges"])
    hists = section["histograms"]
    ax.stairs(_nums(hists["undamaged"]["mean"]), edges, color="k", linewidth=2, label="undamaged (reference)")
    w1 = section["uncalibrated"]["w1"]
    ax.stairs(
        _nums(hists["damaged"]["mean"]),
        edges,
        color="0.5",
        linestyle="--",
        label=f"damaged, uncalibrated (W1 {_fmt(w1)} MeV)",
    )
    if calibrated:
        for method in METHODS:
            w1 = section["methods"][method]["w1"]
            label = f"calibrated: {LABELS[method]} (W1 {_fmt(w1)})"
            _band(ax, edges, hists[method], method, step=True, label=label)
        title = "Fig. 8: E_sum of undamaged vs calibrated events"
    else:
        title = "Fig. 4: E_sum of undamaged vs damaged events"
        text = "\n".join(
            f"{LABELS[m]}: W1 after calibration {_fmt(section['methods'][m]['w1'])} MeV" for m in METHODS
        )
        ax.text(0.97, 0.6, text, transform=ax.transAxes, ha="right", fontsize=8)
    ax.set_xlabel("E_sum (MeV visible)")
    ax.set_ylabel("fraction of events per bin")
    ax.set_title(f"{title} ({_seeds(section)})", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def fig_tracker(plt: Any, section: dict[str, Any]) -> Any:
    """Fig. 5: |Δx̂ − Δx| vs σ, with the residual estimate's statistical floor and the shift."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = _nums(section["x"]["values"])
    tracker_labels = {
        "ratio_of_means": "difference of means (the ratio-of-means analogue)",
        "w1_per_cell": "per-plane 1D-W1",
    }
    for method in METHODS:
        _errorbars(ax, x, section["methods"][method]["abs_error"], method, tracker_labels.get(method))
    floor = section["floor"]
    ax.plot(x, _nums(floor["expected_abs_error"]), "k:", label="statistical floor (residual estimate)")
    shift = section["settings"]["shift"]
    ident = section["identifiability"]
    ax.axhline(shift, color="0.4", linewidth=1, label=f"the shift Δx₂ = {shift:g}")
    ax.axhline(
        ident["threshold_abs_error"], color="0.6", linestyle="--", linewidth=1, label="10 % of the shift"
    )
    ax.axvline(ident["per_track_sigma"], color="0.6", linestyle="-.", linewidth=1, label="σ·√1.5 = Δx₂")
    for method in METHODS:
        lost = section["methods"][method].get("sigma_lost")
        if lost is not None:
            ax.axvline(lost, color=COLORS[method], linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hit noise σ")
    ax.set_ylabel("|Δx̂₂ − Δx₂|")
    n = section["settings"]["events"]
    ax.set_title(
        f"Fig. 5: tracker shift error vs hit noise ({n} + {n} tracks, {_seeds(section)})", fontsize=10
    )
    ax.legend(fontsize=7)
    return fig


def fig_rmse_curve(plt: Any, section: dict[str, Any]) -> Any:
    """Fig. 6: RMSE of the adversarial fit vs step; the baselines as constant bands."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = _nums(section["x"]["values"])
    _band(ax, x, section["methods"]["adversarial"]["curve"], "adversarial")
    for method in METHODS[1:]:
        stat = section["methods"][method]["rmse"]
        ax.axhline(stat["mean"], color=COLORS[method], label=f"{LABELS[method]} ({_fmt(stat)})")
        ax.axhspan(stat["mean"] - stat["std"], stat["mean"] + stat["std"], color=COLORS[method], alpha=0.15)
    epoch = section.get("steps_per_epoch")
    per_epoch = f", 1 epoch = {epoch:.3g} steps" if epoch else ""
    ax.set_xlabel(f"training step (θ updates, batch {section.get('batch_size', '?')}{per_epoch})")
    ax.set_ylabel("RMSE(learned A, injected A)")
    ax.set_title(f"Fig. 6: RMSE vs training step ({_seeds(section)})", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def fig_cellwise(plt: Any, section: dict[str, Any]) -> Any:
    """Fig. 7: learned vs injected gain, cell by cell, one panel per method (all seeds)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharex=True, sharey=True)
    truth = [v for seed in section["truth"] for v in _nums(seed)]
    lo, hi = (min(truth), max(truth)) if truth else (0.5, 1.0)
    for ax, method in zip(axes, METHODS, strict=True):
        entry = section["methods"][method]
        est = [v for seed in entry["estimate"] for v in _nums(seed)]
        ax.scatter(truth, est, s=3, alpha=0.3, color=COLORS[method], rasterized=True)
        ax.plot([lo, hi], [lo, hi], "k--", linewidth=1)
        ax.set_title(f"{LABELS[method]}\nRMSE {_fmt(entry['rmse'])}, R² {_fmt(entry['r2'])}", fontsize=9)
        ax.set_xlabel("injected A")
    axes[0].set_ylabel("learned A")
    fig.suptitle(f"Fig. 7: learned vs injected, {section['cells']} cells × {_seeds(section)}", fontsize=10)
    fig.tight_layout()
    return fig


def fig_sweep(plt: Any, section: dict[str, Any], *, epsilon: bool) -> Any:
    """Fig. 9 (RMSE vs ε, with the paper's points) and the threshold sweep."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = _nums(section["x"]["values"])
    for method in METHODS:
        _errorbars(ax, x, section["methods"][method]["rmse"], method)
    if epsilon:
        px, py = zip(*PAPER_EPSILON, strict=True)
        ax.plot(px, py, "k*", markersize=10, label="paper, adversarial (Geant4)")
        ratio = PAPER["ratio_of_means_rmse"]
        ax.plot([0.01], [ratio["value"]], "*", color=COLORS["ratio_of_means"], markersize=10,
                label="paper, ratio of means (Geant4)")  # fmt: skip
        ax.set_xlabel("cell-to-cell aging spread ε")
        title = "Fig. 9: RMSE vs ε"
    else:
        sigma = section["settings"].get("noise")
        ax.set_xlabel(f"zero-suppression threshold (MeV; noise σ = {sigma} MeV)")
        title = "RMSE vs the zero-suppression threshold"
    ax.set_ylabel("RMSE(learned A, injected A)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{title} ({_seeds(section)})", fontsize=10)
    ax.legend(fontsize=8)
    return fig


DRAW: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "esum": lambda plt, s: fig_esum(plt, s, calibrated=False),
    "tracker_noise": fig_tracker,
    "rmse_vs_epoch": fig_rmse_curve,
    "cellwise": fig_cellwise,
    "esum_calibrated": lambda plt, s: fig_esum(plt, s, calibrated=True),
    "epsilon_sweep": lambda plt, s: fig_sweep(plt, s, epsilon=True),
    "threshold_sweep": lambda plt, s: fig_sweep(plt, s, epsilon=False),
}


def render_figures(doc: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Draw the figure of every study in ``doc`` into ``out_dir``; returns study → PNG path."""
    plt = pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for study in studies_in(doc):
        try:
            fig = DRAW[study](plt, doc[study])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            plt.close("all")
            raise ReportError(f"study '{study}' is malformed ({type(exc).__name__}: {exc})") from None
        path = out / FILES[study]
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written[study] = path
    return written
