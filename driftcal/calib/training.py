"""Running the engine to convergence: held-out monitoring, a stopping rule, a progress bar."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from driftcal.calib.engine import AdversarialEngine

#: Called after every engine step with the engine and the step's statistics; returning True stops the run.
StepCallback = Callable[[AdversarialEngine, dict[str, float]], "bool | None"]


@dataclass
class StopRule:
    """Stop when the averaged θ has settled.

    Every ``eval_every`` steps the held-out distance is recorded and the RMS change of the
    averaged θ since the previous evaluation is compared with ``tol``; after ``min_steps``,
    ``patience`` consecutive evaluations below ``tol`` stop the run.
    """

    eval_every: int = 100
    min_steps: int = 300
    patience: int = 3
    tol: float = 2e-4


def split_holdout(
    data: torch.Tensor, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (train, held-out) split along the event axis."""
    n_hold = round(data.shape[0] * fraction)
    perm = torch.randperm(data.shape[0], generator=generator)
    return data[perm[n_hold:]], data[perm[:n_hold]]


def run_engine(
    engine: AdversarialEngine,
    reference: torch.Tensor,
    changed: torch.Tensor,
    *,
    steps: int,
    holdout: tuple[torch.Tensor, torch.Tensor] | None = None,
    stop: StopRule | None = None,
    progress: bool = False,
    callback: StepCallback | None = None,
) -> list[dict[str, float]]:
    """Run up to ``steps`` engine steps; returns the evaluation history.

    Each history entry holds ``step``, the training ``distance`` of the last step, the held-out
    distance ``heldout`` (when ``holdout`` is given) and ``theta_change`` (RMS change of the
    averaged θ since the previous entry). ``callback(engine, stats)``, when given, runs after every
    step (e.g. to record the coefficients' error against a known truth); returning True stops the run.
    """
    stop = stop or StopRule()
    history: list[dict[str, float]] = []
    previous = engine.theta_avg.detach().clone()
    quiet = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="fit", unit="step", leave=False, dynamic_ncols=True)
    try:
        for i in range(1, steps + 1):
            stats = engine.step(reference, changed)
            if bar is not None:
                bar.update(1)
            if callback is not None and callback(engine, stats):
                break
            if i % stop.eval_every and i != steps:
                continue
            current = engine.theta_avg.detach()
            change = float(torch.sqrt(torch.mean((current - previous) ** 2)))
            previous = current.clone()
            entry = {"step": float(engine.steps), "distance": stats["distance"], "theta_change": change}
            if holdout is not None:
                entry["heldout"] = engine.distance(*holdout)
            history.append(entry)
            if bar is not None:
                bar.set_postfix(dist=f"{entry.get('heldout', stats['distance']):.4g}", dtheta=f"{change:.2g}")
            quiet = quiet + 1 if change < stop.tol and i >= stop.min_steps else 0
            if quiet >= stop.patience or not math.isfinite(stats["distance"]):
                break
    finally:
        if bar is not None:
            bar.close()
    return history


def probe_distance(
    engine: AdversarialEngine,
    coefficients: torch.Tensor,
    train: tuple[torch.Tensor, torch.Tensor],
    holdout: tuple[torch.Tensor, torch.Tensor],
    *,
    steps: int = 100,
) -> tuple[float, float]:
    """Held-out W1 estimate for fixed ``coefficients`` and its standard error, by a critic adapted to them.

    The engine's own critic is trained near the current θ; its value at some other θ (the identity,
    say) extrapolates. The probe copies the engine, fixes θ to ``coefficients``, trains only the
    copy's critic for ``steps`` steps on the training pools, and measures on held-out data. The
    engine itself is left untouched. The standard error is over the held-out events, for that critic.
    """
    probe = copy.deepcopy(engine)
    probe.warm_start(coefficients=coefficients)
    probe.config = replace(probe.config, lr_theta=0.0, lr_theta_final=0.0)  # θ frozen, critic trains
    for _ in range(steps):
        probe.step(*train)
    return probe.distance_and_error(*holdout)
