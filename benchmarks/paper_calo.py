"""Calorimeter studies of ``benchmarks/paper.py``: Figs. 4, 6, 7, 8, 9 and the threshold sweep.

Seed by seed: simulate the showers once (:mod:`paper_data`), then

- main setting (the paper's: ε = 0.01, no noise, no threshold): fit the three methods, recording the
  adversarial RMSE every ``record_every`` steps → ``esum`` (Fig. 4), ``rmse_vs_epoch`` (Fig. 6),
  ``cellwise`` (Fig. 7), ``esum_calibrated`` (Fig. 8);
- ``epsilon_sweep`` (Fig. 9): every ε of the scale (ε = 0.01 reuses the main fits);
- ``threshold_sweep``: ε = 0.01, readout noise σ, zero-suppression threshold k·σ for every k of the scale.

RMSE and R² are over the cells with signal (≥ 50 events with a true deposit), the same cells everywhere.
E_sum of a changed event "calibrated" by a method is the sum of its cells divided by that method's gains.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from paper_data import esum, realize, simulate_pair, w1_1d
from paper_studies import (
    MAIN_EPSILON,
    METHODS,
    Scale,
    calorimeter_recipe,
    fit_cells,
    log,
    measure_throughput,
    signal_mask,
    stat,
    stat_rows,
)

CALO_STUDIES = ("esum", "rmse_vs_epoch", "cellwise", "esum_calibrated", "epsilon_sweep", "threshold_sweep")
MAIN_STUDIES = ("esum", "rmse_vs_epoch", "cellwise", "esum_calibrated")
BINS = 40


def _density(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return counts / max(1, values.shape[0])


def _hist(rows: list[np.ndarray]) -> dict[str, list[float]]:
    stack = np.stack(rows)
    std = stack.std(0, ddof=1) if len(rows) > 1 else np.zeros(stack.shape[1])
    return {"mean": stack.mean(0).tolist(), "std": std.tolist()}


def _round(values: np.ndarray, digits: int = 5) -> list[float]:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


class _Main:
    """Accumulates the main-setting results over seeds."""

    def __init__(self) -> None:
        self.edges: np.ndarray | None = None
        self.hists: dict[str, list[np.ndarray]] = {}
        self.w1: dict[str, list[float]] = {k: [] for k in ("damaged", "truth", *METHODS)}
        self.ratio: dict[str, list[float]] = {k: [] for k in ("damaged", "truth", *METHODS)}
        self.fits: list[dict[str, dict[str, Any]]] = []
        self.truth: list[list[float]] = []

    def add(self, data: Any, mask: np.ndarray, fits: dict[str, dict[str, Any]]) -> None:
        ref = esum(data.reference)
        sums = {"damaged": esum(data.changed), "truth": esum(data.changed, data.truth)}
        sums.update({m: esum(data.changed, fits[m]["gains"]) for m in METHODS})
        if self.edges is None:  # common binning, from the first seed's undamaged sample
            self.edges = np.linspace(0.0, float(np.quantile(ref, 0.995)) * 1.05, BINS + 1)
        self.hists.setdefault("undamaged", []).append(_density(ref, self.edges))
        for key, values in sums.items():
            self.hists.setdefault(key, []).append(_density(values, self.edges))
            self.w1[key].append(w1_1d(values, ref))
            self.ratio[key].append(float(values.mean() / ref.mean()))
        self.fits.append(fits)
        self.truth.append(_round(data.truth[mask]))

    def sections(self, settings: dict[str, Any], seconds: float, batch: int, epoch: float) -> dict[str, Any]:
        edges = _round(self.edges, 4)
        distance = {
            "uncalibrated": {"w1": stat(self.w1["damaged"]), "mean_ratio": stat(self.ratio["damaged"])},
            "true_gains": {"w1": stat(self.w1["truth"]), "mean_ratio": stat(self.ratio["truth"])},
        }
        per_method = {m: {"w1": stat(self.w1[m]), "mean_ratio": stat(self.ratio[m])} for m in METHODS}
        w1_note = "1-D W1 (MeV) between E_sum of the calibrated changed events and E_sum of the reference"
        esum_section = {
            "figure": "Fig. 4",
            "title": "E_sum of undamaged vs damaged events",
            "settings": settings,
            "edges": edges,
            "histograms": {k: _hist(self.hists[k]) for k in ("undamaged", "damaged")},
            **distance,
            "metric": "w1",
            "metric_note": w1_note,
            "methods": per_method,
            "seconds": seconds,
        }
        calibrated = {
            "figure": "Fig. 8",
            "title": "E_sum of undamaged vs calibrated events",
            "settings": settings,
            "edges": edges,
            "histograms": {k: _hist(self.hists[k]) for k in ("undamaged", "damaged", "truth", *METHODS)},
            **distance,
            "metric": "w1",
            "metric_note": w1_note,
            "methods": per_method,
            "seconds": seconds,
        }
        curves = [f["adversarial"]["curve"] for f in self.fits]
        n = min(len(c) for c in curves)
        steps = [int(s) for s, _ in curves[0][:n]]
        rows = [[c[i][1] for c in curves] for i in range(n)]
        rmse_curve = {
            "figure": "Fig. 6",
            "title": "RMSE vs training step",
            "settings": settings,
            "x": {"name": "step", "values": steps},
            "batch_size": batch,
            "steps_per_epoch": epoch,
            "metric": "rmse",
            "metric_note": "RMSE of the averaged θ to the injected gains; baselines are constant lines",
            "methods": {
                "adversarial": {
                    "curve": stat_rows(rows),
                    "rmse": stat([f["adversarial"]["rmse"] for f in self.fits]),
                    "steps": stat([f["adversarial"]["steps"] for f in self.fits]),
                },
                **{m: {"rmse": stat([f[m]["rmse"] for f in self.fits])} for m in METHODS[1:]},
            },
            "seconds": seconds,
        }
        cellwise = {
            "figure": "Fig. 7",
            "title": "Learned vs injected coefficients, cell by cell",
            "settings": settings,
            "cells": len(self.truth[0]),
            "truth": self.truth,
            "metric": "rmse",
            "methods": {
                m: {
                    "rmse": stat([f[m]["rmse"] for f in self.fits]),
                    "r2": stat([f[m]["r2"] for f in self.fits]),
                    "seconds": stat([f[m]["seconds"] for f in self.fits]),
                    "estimate": [_round(f[m]["gains"][f[m]["mask"]]) for f in self.fits],
                }
                for m in METHODS
            },
            "seconds": seconds,
        }
        return {
            "esum": esum_section,
            "rmse_vs_epoch": rmse_curve,
            "cellwise": cellwise,
            "esum_calibrated": calibrated,
        }


def _sweep_section(
    figure: str, title: str, x_name: str, xs: list[float], scores: dict, settings: dict, seconds: float
) -> dict[str, Any]:
    return {
        "figure": figure,
        "title": title,
        "settings": settings,
        "x": {"name": x_name, "values": xs},
        "metric": "rmse",
        "methods": {
            m: {k: stat_rows([scores[m][k][i] for i in range(len(xs))]) for k in ("rmse", "r2", "seconds")}
            for m in METHODS
        },
        "seconds": seconds,
    }


def _fits(
    run: dict[str, Any], eps: float, noise: float | None, threshold: float | None, curve: bool = False
) -> dict[str, Any]:
    """Realize one setting from the seed's showers and fit the three methods on it."""
    data = realize(run["pair"], epsilon=eps, noise=noise or 0.0, threshold=threshold)
    result = fit_cells(
        data.reference, data.changed, data.truth, run["mask"], run["scale"], run["recipe"],
        steps=run["steps"], noise=noise, threshold=threshold, seed=run["pair"].seed, curve=curve,
    )  # fmt: skip
    for entry in result.values():
        entry["mask"] = run["mask"]
    return {"data": data, "fits": result}


def run_calorimeter(scale: Scale, studies: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the requested calorimeter studies; returns (sections, run information)."""
    geometry = scale.calorimeter()
    shape = geometry.shape
    recipe = calorimeter_recipe(scale, shape)
    want_main = bool(studies & set(MAIN_STUDIES))
    epsilons = list(scale.epsilons) if "epsilon_sweep" in studies else []
    thresholds = [k * scale.noise for k in scale.n_sigmas] if "threshold_sweep" in studies else []
    main = _Main()
    eps_scores = {m: {k: [[] for _ in epsilons] for k in ("rmse", "r2", "seconds")} for m in METHODS}
    thr_scores = {m: {k: [[] for _ in thresholds] for k in ("rmse", "r2", "seconds")} for m in METHODS}
    timing = {"simulate": 0.0, "main": 0.0, "epsilon_sweep": 0.0, "threshold_sweep": 0.0}
    steps = scale.steps
    info: dict[str, Any] = {"recipe_steps_default": recipe.steps}
    for seed in range(scale.seeds):
        t0 = time.perf_counter()
        pair = simulate_pair(scale.events, geometry, seed=seed, workers=scale.sim_workers)
        mask = signal_mask(pair.reference)
        timing["simulate"] += time.perf_counter() - t0
        log(f"  calorimeter seed={seed}: 2 x {scale.events} events in {time.perf_counter() - t0:.0f}s")
        if seed == 0:  # throughput of the bare engine step (for the budget and the performance section)
            rate = measure_throughput(pair.reference, recipe, device=scale.device, bf16=scale.bf16)
            info["measured_steps_per_s"] = rate
            log(f"  {rate:.2f} adversarial steps/s")
            if scale.fit_seconds is not None and steps is None:
                steps = max(20, int(scale.fit_seconds * rate))
                info["steps_from_budget"] = steps
                log(f"  {steps} adversarial steps fit in {scale.fit_seconds:.0f}s")
            recipe = calorimeter_recipe(scale, shape, steps)
        run = {"pair": pair, "mask": mask, "scale": scale, "recipe": recipe, "steps": steps}
        main_fits = None
        if want_main or MAIN_EPSILON in epsilons:
            t0 = time.perf_counter()
            log(f"  main setting ε={MAIN_EPSILON}")
            out = _fits(run, MAIN_EPSILON, None, None, curve=want_main)
            main_fits = out["fits"]
            if want_main:
                main.add(out["data"], mask, main_fits)
            del out
            timing["main"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for i, eps in enumerate(epsilons):
            log(f"  ε sweep ε={eps}")
            fits = (
                main_fits
                if eps == MAIN_EPSILON and main_fits is not None
                else _fits(run, eps, None, None)["fits"]
            )
            for m in METHODS:
                for k in ("rmse", "r2", "seconds"):
                    eps_scores[m][k][i].append(float(fits[m][k]))
        timing["epsilon_sweep"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for i, thr in enumerate(thresholds):
            log(f"  threshold sweep noise={scale.noise} threshold={thr:.4g}")
            fits = _fits(run, MAIN_EPSILON, scale.noise, thr)["fits"]
            for m in METHODS:
                for k in ("rmse", "r2", "seconds"):
                    thr_scores[m][k][i].append(float(fits[m][k]))
        timing["threshold_sweep"] += time.perf_counter() - t0
        del pair, run
    settings = {
        "shape": list(shape),
        "plates_per_layer": geometry.plates_per_layer,
        "cells": int(np.prod(shape)),
        "events": scale.events,
        "seeds": list(range(scale.seeds)),
        "epsilon": MAIN_EPSILON,
        "noise": None,
        "threshold": None,
        "adversarial_steps": steps if steps is not None else recipe.steps,
        "recipe": {
            "critic": recipe.critic,
            "width": recipe.width,
            "batch_size": recipe.engine.batch_size,
            "n_critic": recipe.engine.n_critic,
            "lipschitz": recipe.engine.lipschitz,
            "lr_theta": recipe.engine.lr_theta,
            "lr_theta_rule": "max(1e-3, 0.4 / steps): θ can travel the 0.3 of the strongest aging",
            "lr_critic": recipe.engine.lr_critic,
        },
        "aging": "A = clip(1 - 0.3 (n/n_max)^0.5 + N(0, ε²), 0.5, 1), n = hit count of the reference cell",
        "simulator": "driftcal.sim: GFlash EM / Bock hadronic spots, π⁻ exponential spectrum (mean 10 GeV)",
    }
    sections: dict[str, Any] = {}
    if want_main:
        batch = recipe.engine.batch_size
        epoch = scale.events * (1.0 - recipe.holdout) / batch  # one pass over the training changed events
        main_sections = main.sections(settings, timing["simulate"] + timing["main"], batch, epoch)
        sections.update({k: v for k, v in main_sections.items() if k in studies})
    if epsilons:
        sections["epsilon_sweep"] = _sweep_section(
            "Fig. 9", "RMSE vs ε", "epsilon", epsilons, eps_scores,
            {**settings, "epsilon": epsilons}, timing["epsilon_sweep"],
        )  # fmt: skip
    if thresholds:
        sections["threshold_sweep"] = _sweep_section(
            "new", "RMSE vs the zero-suppression threshold", "threshold", thresholds, thr_scores,
            {**settings, "noise": scale.noise, "threshold": thresholds,
             "threshold_sigma": list(scale.n_sigmas)},
            timing["threshold_sweep"],
        )  # fmt: skip
    info["seconds"] = timing
    return sections, info
