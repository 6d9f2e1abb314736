"""Tracking benchmark: how the warm-started online calibrator follows aging and a sudden module drop.

    python benchmarks/tracking.py [--quick] [--seeds 3] [--out FILE.json]

A simulated calorimeter (4 × 8 × 8 cells, noise σ = 0.05 MeV, threshold 0.15 MeV, the demo's detector)
ages with the events streamed (time-dependent aging, already aged at the start), and at
``drop_at`` events a central 4 × 4 tower of every layer drops to ``drop_factor`` of its gain. The stream
goes through the daemon's own pieces, :class:`~driftcal.stream.reservoir.Window` and
:class:`~driftcal.calib.online.OnlineCalibrator`, in chunks of ``every_events`` with ``steps`` warm-started
steps per chunk, exactly as ``driftcal run`` schedules them (without Kafka, so the clock is the event count).

Measured, mean ± std over seeds:

- the RMSE to the true gains ``A(t)`` after every update, beside the two baselines fitted on the same
  window (ratio of means, per-cell 1D-W1 quantile fit);
- the lag behind the drop: events after the drop until the tower's mean coefficient has recovered
  50 % and 90 % of the drop (bounded below by the window turnover);
- the wall time to reconverge after the drop, on the same window once it holds only post-drop events:
  the calibrator as it was just before the drop, continued (warm; also with its θ learning rate
  raised again, ``rewarm``), against a fresh calibrator with the same settings (cold), each run in
  chunks of ``steps`` until its RMSE is within 10 % of the RMSE just before the drop.

The last stdout line is the whole result as one JSON document; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from driftcal import __version__
from driftcal.calib.baselines import QuantileGain, RatioOfMeans
from driftcal.calib.metrics import active_cells, mean_std, rmse
from driftcal.calib.online import OnlineCalibrator
from driftcal.calib.recipes import cold_start_recipe
from driftcal.sim.aging import ModuleDrop
from driftcal.sim.drifting import DriftingCalorimeter
from driftcal.sim.geometry import CalorimeterGeometry
from driftcal.sim.readout import Readout
from driftcal.stream.reservoir import Window

SETUP = {
    "shape": [4, 8, 8],
    "noise": 0.05,
    "threshold": 0.15,
    "rate": 5e-6,
    "start": 100_000,
    "reference": 8000,
    "window": 8000,
    "every_events": 1000,
    "steps": 30,
    "initial_steps": 400,
    "lr_theta": 5e-3,
    "tracking_lr": 1e-3,
    "critic": "mlp",
    "drop_at": 20_000,
    "drop_factor": 0.7,
    "after_drop": 20_000,
    "rewarm_steps": 150,
}
QUICK = {"reference": 4000, "window": 4000, "drop_at": 8000, "after_drop": 10_000, "initial_steps": 300}
TOWER = (slice(None), slice(2, 6), slice(2, 6))


def _calibrator(setup: dict, seed: int) -> OnlineCalibrator:
    shape = tuple(setup["shape"])
    recipe = cold_start_recipe("cell-gain", shape)
    recipe.critic = setup["critic"]
    recipe.engine.lr_theta = setup["lr_theta"]
    return OnlineCalibrator(
        "cell-gain", shape, noise=setup["noise"], threshold=setup["threshold"], device="cpu", seed=seed,
        initial_steps=setup["initial_steps"], tracking_lr=setup["tracking_lr"], recipe=recipe,
    )  # fmt: skip


def _baselines(reference: np.ndarray, window: np.ndarray, setup: dict) -> dict[str, np.ndarray]:
    ratio = RatioOfMeans().fit(reference, window)
    quantile = QuantileGain(noise=setup["noise"], threshold=setup["threshold"]).fit(reference, window)
    return {"ratio_of_means": ratio, "w1_per_cell": quantile}


def run_seed(setup: dict, seed: int) -> dict:
    layers, height, width = setup["shape"]
    start, drop_pos = setup["start"], setup["start"] + setup["drop_at"]
    sim = DriftingCalorimeter(
        CalorimeterGeometry(layers=layers, height=height, width=width, plates_per_layer=3),
        readout=Readout(noise=setup["noise"], threshold=setup["threshold"]), rate=setup["rate"], start=start,
        drops=[ModuleDrop(at_event=drop_pos, cells=TOWER, factor=setup["drop_factor"])], seed=seed,
    )  # fmt: skip
    reference = sim.reference(setup["reference"])
    mask = active_cells(reference)
    tower = np.zeros(sim.shape, bool)
    tower[TOWER] = True
    tower &= mask
    ref_t = torch.from_numpy(reference)
    window = Window(sim.shape, max_events=setup["window"])
    cal = _calibrator(setup, seed)
    floor = cal.noise_floor(ref_t, steps=100)
    window.add(sim.stream(setup["window"] // 2))
    history: list[dict] = []
    snapshot, pre_drop_rmse = None, None
    while sim.position - start < setup["drop_at"] + setup["after_drop"]:
        if snapshot is None and sim.position + setup["every_events"] >= drop_pos:  # last pre-drop state
            snapshot = copy.deepcopy(cal)  # the state a warm start would continue from
            pre_drop_rmse = history[-1]["rmse"]
        window.add(sim.stream(setup["every_events"]))
        steps = setup["initial_steps"] if not history else setup["steps"]
        result = cal.update(ref_t, window.data, steps=steps)
        coeffs, truth = cal.coefficients(), sim.truth()
        row = {
            "events": sim.position - start,
            "rmse": rmse(coeffs, truth, mask),
            "distance": result.distance,
            "seconds": result.seconds,
            "tower_coefficient": float(coeffs[tower].mean()),
            "tower_truth": float(truth[tower].mean()),
        }
        if len(history) % 4 == 0:
            for name, est in _baselines(reference, window.data.numpy(), setup).items():
                row[f"rmse_{name}"] = rmse(est, truth, mask)
        history.append(row)
        print(json.dumps(row), file=sys.stderr)
    before = next(r for r in reversed(history) if r["events"] < setup["drop_at"])["tower_coefficient"]
    lags = {}
    for frac in (0.5, 0.9):
        hit = next(
            (r for r in history if r["events"] > setup["drop_at"]
             and r["tower_coefficient"] <= before + frac * (r["tower_truth"] - before)),
            None,
        )  # fmt: skip
        lags[f"lag_events_{int(frac * 100)}"] = None if hit is None else hit["events"] - setup["drop_at"]
    # reconvergence on one post-drop window (the stream has moved a full window past the drop)
    target = 1.1 * pre_drop_rmse
    truth = sim.truth()
    args = (ref_t, window, truth, mask, target, setup)
    reconverge = {
        "target_rmse": target,
        "warm": _reconverge(copy.deepcopy(snapshot), *args, rewarm=False),
        "warm_rewarm": _reconverge(copy.deepcopy(snapshot), *args, rewarm=True),
        "cold": _reconverge(_calibrator(setup, seed + 1000), *args),
    }
    out = {"floor": floor, "pre_drop_rmse": pre_drop_rmse, "history": history, **lags}
    return {**out, "reconverge": reconverge}


def _reconverge(
    cal: OnlineCalibrator, ref_t: torch.Tensor, window: Window, truth: np.ndarray, mask: np.ndarray,
    target: float, setup: dict, *, rewarm: bool = False, cap: int = 3000,
) -> dict:  # fmt: skip
    """Run ``cal`` on the window in chunks of ``steps`` until its RMSE reaches ``target`` (or ``cap``)."""
    if rewarm:
        cal.rewarm(setup["rewarm_steps"])
    seconds, steps = 0.0, 0
    while steps < cap:
        result = cal.update(ref_t, window.data, steps=setup["steps"])
        seconds += result.seconds
        steps += result.steps
        if rmse(cal.coefficients(), truth, mask) <= target:
            return {"seconds": seconds, "steps": steps, "reached": True}
    return {"seconds": seconds, "steps": steps, "reached": False}


def _summary(runs: list[dict]) -> dict:
    out: dict = {}
    for key in ("lag_events_50", "lag_events_90", "floor", "pre_drop_rmse"):
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = mean_std(values) if values else None
    for kind in ("warm", "warm_rewarm", "cold"):
        rows = [r["reconverge"][kind] for r in runs]
        out[f"{kind}_seconds"] = mean_std([row["seconds"] for row in rows])
        out[f"{kind}_steps"] = mean_std([row["steps"] for row in rows])
        out[f"{kind}_reached"] = [row["reached"] for row in rows]
    for kind in ("warm", "warm_rewarm"):
        ratios = [r["reconverge"]["cold"]["seconds"] / r["reconverge"][kind]["seconds"] for r in runs]
        out[f"speedup_{kind}"] = mean_std(ratios)
    steady = [[h for h in r["history"] if "rmse_ratio_of_means" in h] for r in runs]
    out["final_rmse"] = {
        "adversarial": mean_std([r["history"][-1]["rmse"] for r in runs]),
        "ratio_of_means": mean_std([rows[-1]["rmse_ratio_of_means"] for rows in steady]),
        "w1_per_cell": mean_std([rows[-1]["rmse_w1_per_cell"] for rows in steady]),
    }
    out["mean_rmse_over_stream"] = {
        "adversarial": mean_std([np.mean([h["rmse"] for h in rows]) for rows in steady]),
        "ratio_of_means": mean_std([np.mean([h["rmse_ratio_of_means"] for h in rows]) for rows in steady]),
        "w1_per_cell": mean_std([np.mean([h["rmse_w1_per_cell"] for h in rows]) for rows in steady]),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smaller windows, fewer events)")
    parser.add_argument("--seeds", type=int, default=3)
    default_lr = SETUP["tracking_lr"]
    parser.add_argument("--tracking-lr", type=float, help=f"θ rate after the cold start ({default_lr})")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    setup = {**SETUP, **(QUICK if args.quick else {})}
    if args.tracking_lr:
        setup["tracking_lr"] = args.tracking_lr
    started = time.time()
    runs = [run_seed(setup, seed) for seed in range(args.seeds)]
    summary = _summary(runs)
    for key, value in summary.items():
        print(f"{key:>18}: {value}")
    result = {
        "benchmark": "tracking",
        "version": __version__,
        "setup": setup,
        "seeds": args.seeds,
        "summary": summary,
        "runs": runs,
        "seconds": time.time() - started,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 2},
    }
    text = json.dumps(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
