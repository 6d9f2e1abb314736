"""The studies of ``benchmarks/paper.py``: every method fitted on the same data, scored against the truth.

Three methods, named as in the result document:

- ``adversarial``: :func:`driftcal.calib.fit.fit` with the cold-start recipe, θ from 1 as in the paper (or the
  scale's overrides);
- ``ratio_of_means``: the paper's baseline (:class:`~driftcal.calib.baselines.RatioOfMeans`); for the
  tracker its analogue, the frame-corrected difference of per-plane means (``MeanShift``);
- ``w1_per_cell``: the per-cell 1-D W1 fit, threshold-aware (:class:`~driftcal.calib.baselines.QuantileGain`,
  ``--method quantile`` in ``driftcal fit``); for the tracker the per-plane 1-D W1 fit of the marginals
  (:class:`~driftcal.calib.baselines.QuantileShift`).

The calorimeter studies run seed by seed: one seed's showers are simulated once and realized for the main
setting (the paper's: ε = 0.01, no noise, no threshold), every ε and every threshold, then dropped.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from driftcal.calib.baselines import QuantileGain, RatioOfMeans
from driftcal.calib.fit import fit
from driftcal.calib.metrics import active_cells, mean_std, r2, rmse
from driftcal.calib.recipes import Recipe, cold_start_recipe, make_engine
from driftcal.calib.suppressed import fill_if_suppressed
from driftcal.sim import CalorimeterGeometry

METHODS = ("adversarial", "ratio_of_means", "w1_per_cell")
#: result-document name → ``driftcal fit --method`` name
FIT_METHOD = {"adversarial": "adversarial", "ratio_of_means": "ratio-of-means", "w1_per_cell": "quantile"}
MAIN_EPSILON = 0.01  # the paper's default


@dataclass(frozen=True)
class Scale:
    """Sizes and settings of one run (``--quick``, the default, ``--scale paper``)."""

    name: str
    geometry: tuple[int, int, int, int]  # layers, height, width, plates per layer
    events: int  # reference events (= changed events) per seed
    seeds: int
    steps: int | None  # adversarial steps (None: the recipe's default)
    epsilons: tuple[float, ...]
    n_sigmas: tuple[float, ...]  # threshold sweep, in units of the noise σ
    noise: float  # readout noise σ (MeV) of the threshold sweep
    tracker_events: int
    sigmas: tuple[float, ...]
    tracker_steps: int | None
    record_every: int = 10
    batch_size: int | None = None  # recipe overrides (None: the default recipe's)
    width: int | None = None
    fit_seconds: float | None = None  # adversarial budget per fit: steps from a measured throughput
    device: str = "auto"
    bf16: bool = False
    sim_workers: int = 1

    def calorimeter(self) -> CalorimeterGeometry:
        layers, height, width, plates = self.geometry
        return CalorimeterGeometry(layers=layers, height=height, width=width, plates_per_layer=plates)


def stat(values: list[float]) -> dict[str, Any]:
    """Mean ± std over seeds with the per-seed values."""
    clean = [float(v) for v in values]
    mean, std = mean_std(clean) if clean else (float("nan"), float("nan"))
    return {"mean": mean, "std": std, "values": clean}


def stat_rows(rows: list[list[float]]) -> dict[str, Any]:
    """Mean ± std per x (rows: one list of per-seed values per x point)."""
    stats = [stat(r) for r in rows]
    return {"mean": [s["mean"] for s in stats], "std": [s["std"] for s in stats], "values": rows}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: θ must be able to travel about 0.3 (the strongest aging) within the budget; with Adam a step moves θ by
#: about the learning rate, and the cosine schedule averages half of it, so short budgets keep
#: ``lr_theta × steps ≥ THETA_TRAVEL`` (the cold-start recipe has 1e-3 × 500 = 0.5). Measured on 4 × 8 × 8
#: cells, 4k events, 100 steps: lr 1e-3 → RMSE 0.144 (θ still travelling), 4e-3 → 0.083, 8e-3 → 0.109 (noisy).
THETA_TRAVEL = 0.4


def calorimeter_recipe(scale: Scale, shape: tuple[int, ...], steps: int | None = None) -> Recipe:
    """The cold-start cell-gain recipe with the scale's batch size and critic width; for a step budget below
    the default, the θ learning rate is raised so that ``lr_theta × steps = THETA_TRAVEL``."""
    recipe = cold_start_recipe("cell-gain", shape)
    engine = recipe.engine
    if scale.batch_size is not None:
        engine = replace(engine, batch_size=scale.batch_size)
    if steps is not None and steps > 0:
        engine = replace(engine, lr_theta=max(engine.lr_theta, THETA_TRAVEL / steps))
    recipe = replace(recipe, engine=engine)
    if scale.width is not None:
        recipe = replace(recipe, width=scale.width)
    return recipe


def measure_throughput(
    reference: np.ndarray, recipe: Recipe, *, device: str, bf16: bool, warmup: int = 3, steps: int = 10
) -> float:
    """Adversarial steps per second of ``recipe`` on this machine (a short run on a subsample)."""
    shape = tuple(reference.shape[1:])
    engine = make_engine("cell-gain", shape, recipe=recipe, device=device, bf16=bf16)
    sample = torch.as_tensor(np.asarray(reference[: 4 * recipe.engine.batch_size]), dtype=torch.float32)
    sample = sample.to(engine.device)
    engine.prepare(sample, sample)
    for _ in range(warmup):
        engine.step(sample, sample)
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        engine.step(sample, sample)
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def baseline_gains(method: str, reference: np.ndarray, changed: np.ndarray, **readout: Any) -> np.ndarray:
    """A baseline's gains; the quantile fit runs on the GPU when there is one (same estimator).

    With a noise and a threshold the quantile fit sees the reference with its suppressed entries filled, as
    in :func:`driftcal.calib.fit.fit`, so that it and the adversarial fit share one readout model.
    """
    if method == "ratio_of_means":
        return RatioOfMeans().fit(reference, changed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    seed = readout.pop("seed", 0)
    reference = fill_if_suppressed(
        reference, noise=readout.get("noise"), threshold=readout.get("threshold"), seed=seed
    )
    return QuantileGain(seed=seed, device=device, **readout).fit(reference, changed)


def fit_cells(
    reference: np.ndarray,
    changed: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray,
    scale: Scale,
    recipe: Recipe,
    *,
    steps: int | None,
    noise: float | None,
    threshold: float | None,
    seed: int,
    curve: bool = False,
) -> dict[str, dict[str, Any]]:
    """Fit the three methods; each gets ``gains``, ``rmse``, ``r2``, ``seconds`` (and ``curve``)."""
    out: dict[str, dict[str, Any]] = {}
    every = max(1, scale.record_every)
    for method in METHODS:
        t0 = time.perf_counter()
        entry: dict[str, Any] = {}
        if method == "adversarial":
            points: list[tuple[int, float]] = []

            def record(engine: Any, _stats: dict[str, float], points: list = points) -> None:
                if curve and (engine.steps % every == 0 or engine.steps == 1):
                    points.append((engine.steps, rmse(engine.coefficients(), truth, mask)))

            result = fit(
                reference,
                changed,
                model="cell-gain",
                method="adversarial",
                noise=noise,
                threshold=threshold,
                steps=steps,
                seed=seed,
                device=scale.device,
                recipe=recipe,
                callback=record if curve else None,
                bf16=scale.bf16,
                probe_steps=0,
            )
            gains = result.coefficients
            entry["steps"] = result.steps
            if curve:
                entry["curve"] = points
        else:
            gains = baseline_gains(method, reference, changed, noise=noise, threshold=threshold, seed=seed)
        entry.update(
            gains=np.asarray(gains, dtype=np.float64),
            rmse=rmse(gains, truth, mask),
            r2=r2(gains, truth, mask),
            seconds=time.perf_counter() - t0,
        )
        out[method] = entry
        log(
            f"    seed={seed} {method:15s} rmse={entry['rmse']:.4f} r2={entry['r2']:.3f} "
            f"{entry['seconds']:.1f}s"
        )
    return out


def signal_mask(deposits: np.ndarray) -> np.ndarray:
    """Cells with signal: at least 50 events with a true deposit (the same cells at every setting)."""
    return active_cells(deposits, min_hits=50, zero_suppressed=True)
