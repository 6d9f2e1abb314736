"""Accuracy benchmark: the adversarial fit beside the baselines, mean ± std over seeds.

    python benchmarks/recovery.py [--quick] [--seeds 3] [--settings calorimeter-zs,tracker] [--out FILE.json]
                                  [--methods ratio-of-means,quantile,quantile+pool,adversarial]

Each setting simulates reference and changed data with ``driftcal.sim`` for every seed, fits every
method with ``driftcal.calib.fit.fit`` (``quantile+pool``: the per-cell fit pooled over cells, which is
also where the adversarial fit starts; cell gains only), and scores the coefficients against the
injected truth: RMSE and R² over cells with signal (calorimeter) or the maximum absolute shift error
(tracker). The last stdout line is the whole result as one JSON document; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from driftcal import __version__
from driftcal.calib.fit import fit
from driftcal.calib.metrics import active_cells, mean_std, r2, rmse
from driftcal.sim import (
    Beam,
    CalorimeterGeometry,
    TrackerGeometry,
    UniformAging,
    make_calorimeter_dataset,
    make_tracker_dataset,
)

# 6 readout layers x 16 x 16 cells (3 Pb/scintillator plates per layer): 1,536 cells.
CALO = {"layers": 6, "height": 16, "width": 16, "plates_per_layer": 3}

SETTINGS: dict[str, dict] = {
    # noisy, zero-suppressed readout (MeV of visible energy): σ = 0.05, threshold 3σ
    "calorimeter-zs": {
        "kind": "calorimeter",
        "events": 30_000,
        "epsilon": 0.01,
        "noise": 0.05,
        "threshold": 0.15,
    },
    # the paper's setting: no noise, no threshold
    "calorimeter-paper": {
        "kind": "calorimeter",
        "events": 30_000,
        "epsilon": 0.01,
        "noise": None,
        "threshold": None,
    },
    # controls for the aging law: gains uniform in [0.6, 1], independent of the dose (cells hit rarely
    # age as much as busy ones), with the zero-suppressed and with the paper's readout
    "calorimeter-zs-uniform": {
        "kind": "calorimeter",
        "events": 30_000,
        "aging": "uniform",
        "epsilon": 0.0,
        "noise": 0.05,
        "threshold": 0.15,
    },
    "calorimeter-paper-uniform": {
        "kind": "calorimeter",
        "events": 30_000,
        "aging": "uniform",
        "epsilon": 0.0,
        "noise": None,
        "threshold": None,
    },
    # the paper's ε sweep (Fig. 9 end points): no noise, no threshold
    "calorimeter-paper-eps0": {
        "kind": "calorimeter",
        "events": 30_000,
        "epsilon": 0.0,
        "noise": None,
        "threshold": None,
    },
    "calorimeter-paper-eps5": {
        "kind": "calorimeter",
        "events": 30_000,
        "epsilon": 0.05,
        "noise": None,
        "threshold": None,
    },
    # a fixed-energy electron beam (20 GeV), uniform gains, the paper's readout: every event carries the same
    # energy, so the event sum is narrow (2.5 %) and ties the cells of an event together
    "calorimeter-paper-e20-uniform": {
        "kind": "calorimeter",
        "events": 30_000,
        "beam": {"particle": "e-", "mean_energy_gev": 20.0, "e_min_gev": 20.0, "e_max_gev": 20.0},
        "aging": "uniform",
        "epsilon": 0.0,
        "noise": None,
        "threshold": None,
    },
    # three planes, Δx2 = 0.01, σ = 1e-3
    "tracker": {"kind": "tracker", "events": 100_000, "noise": 1e-3, "z": (0.0, 0.5, 1.0)},
    # six planes, four free shifts
    "tracker-6": {"kind": "tracker", "events": 100_000, "noise": 1e-3, "z": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)},
}
# label -> (fit method, pool); "quantile+pool" is the per-cell fit pooled over cells by empirical Bayes
# (driftcal/calib/pooling.py), the adversarial fit's start; cell gains only
METHODS: dict[str, tuple[str, bool | None]] = {
    "ratio-of-means": ("ratio-of-means", False),
    "quantile": ("quantile", False),
    "quantile+pool": ("quantile", True),
    "adversarial": ("adversarial", None),
}
QUICK_EVENTS = {"calorimeter": 6_000, "tracker": 20_000}


def _dataset(setting: dict, seed: int, events: int):
    if setting["kind"] == "calorimeter":
        return make_calorimeter_dataset(
            events,
            geometry=CalorimeterGeometry(**CALO),
            beam=Beam(**setting.get("beam", {})),
            epsilon=setting["epsilon"],
            aging=UniformAging(0.6, 1.0) if setting.get("aging") == "uniform" else None,
            noise=setting["noise"] or 0.0,
            threshold=setting["threshold"],
            seed=seed,
        )
    return make_tracker_dataset(
        events, geometry=TrackerGeometry(z=setting["z"]), noise=setting["noise"], seed=seed
    )


def _score(kind: str, estimate: np.ndarray, truth: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    if kind == "calorimeter":
        mask = active_cells(reference)
        return {
            "rmse": rmse(estimate, truth, mask),
            "r2": r2(estimate, truth, mask),
            "cells": int(mask.sum()),
        }
    return {"max_abs_error": float(np.max(np.abs(estimate - truth)))}


def run_setting(
    name: str,
    setting: dict,
    seeds: list[int],
    *,
    quick: bool,
    steps: int | None,
    methods: tuple[str, ...] = tuple(METHODS),
) -> dict:
    """Fit every method on every seed of one setting; returns per-method values and summaries."""
    kind = setting["kind"]
    events = QUICK_EVENTS[kind] if quick else setting["events"]
    model = "cell-gain" if kind == "calorimeter" else "plane-shift"
    labels = [m for m in methods if kind == "calorimeter" or not METHODS[m][1]]  # no pooling of plane shifts
    per_method: dict[str, dict[str, list[float]]] = {m: {} for m in labels}
    for seed in seeds:
        data = _dataset(setting, seed, events)
        for method in labels:
            used, pool = METHODS[method]
            t0 = time.perf_counter()
            result = fit(
                data.reference,
                data.changed,
                model=model,
                method=used,
                pool=pool,
                noise=setting.get("noise") if kind == "calorimeter" else None,
                threshold=setting.get("threshold") if kind == "calorimeter" else None,
                steps=steps,
                seed=seed,
                device="auto",
            )
            scores = _score(kind, result.coefficients, data.truth, data.reference)
            scores["seconds"] = time.perf_counter() - t0
            scores["steps"] = result.steps
            if result.pooled_cells is not None:
                scores["pooled_cells"] = result.pooled_cells
            if result.pool_log_weight is not None:  # weight of the quantile fit on log readings
                scores["pool_log_weight"] = result.pool_log_weight
            if result.pool_neighbour_weight is not None:  # λ of the neighbours' mean residual
                scores["pool_neighbour_weight"] = result.pool_neighbour_weight
            if result.refined is not None:  # hybrid: 1 when the refinement was kept, 0 when the start was
                scores["refined"] = float(result.refined)
            for key, value in scores.items():
                per_method[method].setdefault(key, []).append(float(value))
            print(
                f"  {name} seed={seed} {method:15s} " + " ".join(f"{k}={v:.4g}" for k, v in scores.items()),
                file=sys.stderr,
                flush=True,
            )
    summary = {}
    for method, values in per_method.items():
        summary[method] = {"values": values}
        for key, vals in values.items():
            mean, std = mean_std(vals)
            summary[method][key] = {"mean": mean, "std": std}
    return {
        "setting": {**setting, "events": events, "geometry": CALO if kind == "calorimeter" else None},
        "model": model,
        "methods": summary,
    }


def _table(results: dict) -> str:
    lines = ["setting            method           primary metric (mean ± std)      secondary        time/fit"]
    for name, res in results.items():
        for method, summ in res["methods"].items():
            key = "rmse" if "rmse" in summ else "max_abs_error"
            main = summ[key]
            extra = f"R²={summ['r2']['mean']:.3f}" if "r2" in summ else ""
            lines.append(
                f"{name:18s} {method:16s} {key}={main['mean']:.4g} ± {main['std']:.2g}".ljust(68)
                + f"{extra:16s} {summ['seconds']['mean']:.0f}s"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small datasets (minutes, for CI-sized checks)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--settings", default="calorimeter-zs,calorimeter-paper,tracker,tracker-6")
    parser.add_argument("--steps", type=int, default=None, help="override the adversarial step budget")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"some of {','.join(METHODS)}")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    names = [s for s in args.settings.split(",") if s]
    unknown = [s for s in names if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {sorted(SETTINGS)}")
    methods = tuple(m for m in args.methods.split(",") if m)
    if not methods or any(m not in METHODS for m in methods):
        parser.error(f"--methods takes some of {','.join(METHODS)}, got {args.methods!r}")
    seeds = list(range(args.seeds))
    results = {
        name: run_setting(name, SETTINGS[name], seeds, quick=args.quick, steps=args.steps, methods=methods)
        for name in names
    }
    doc = {
        "benchmark": "recovery",
        "driftcal": __version__,
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "quick": args.quick,
        "seeds": seeds,
        "results": results,
    }
    print(_table(results), file=sys.stderr)
    text = json.dumps(doc)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
