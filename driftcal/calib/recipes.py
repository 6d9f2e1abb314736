"""Default engines per model: which transform, critic and settings a fit starts from.

The defaults were chosen by measurement (``benchmarks/recovery.py``, ``docs/results.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from driftcal.calib.critics import ConvCritic, MLPCritic
from driftcal.calib.engine import AdversarialEngine, EngineConfig
from driftcal.calib.training import StopRule
from driftcal.calib.transforms import CellGain, PlaneShift, Transform


@dataclass
class Recipe:
    """Everything a fit needs besides the data."""

    critic: str = "conv"  # conv | mlp
    width: int = 16
    hidden: tuple[int, ...] = (256, 256)
    preprocess: str = "standardize"
    steps: int = 2000
    init: str = "quantile"  # quantile | ones
    holdout: float = 0.1
    sharpness: float | None = None  # in units of the noise σ (cell-gain, forward with threshold)
    # hybrid only: keep the refinement when it lowers the held-out distance by more than accept_z
    # standard errors, else return the start (None: the refinement is always kept)
    accept_z: float | None = None
    engine: EngineConfig = field(default_factory=EngineConfig)
    stop: StopRule = field(default_factory=StopRule)


def default_recipe(model: str, event_shape: Sequence[int]) -> Recipe:
    """The measured default recipe for ``model`` on events of ``event_shape``.

    Calorimeters (3-D events ``(L, H, W)``) get the conv critic: on 1,536 zero-suppressed cells an MLP
    critic kept separating the two finite samples (its training distance grew) and stalled near 0.08.
    Cell gains start from the per-cell quantile fit (the hybrid) and are refined at a small θ learning rate;
    the refinement is kept only when it lowers the held-out distance by more than two standard errors (on
    our data the start already sat at the critic's noise floor, and the refinement followed the training
    sample: −6 % to +12 % in RMSE).
    A start at 1 looked better on our dose-driven aging law, where rarely hit cells keep gains near 1, but
    it lost to both baselines when the gains did not follow the dose (docs/results.md).
    """
    if model == "plane-shift":
        return Recipe(
            critic="mlp",
            hidden=(64, 64),
            preprocess="whiten",
            steps=1500,
            init="ones",
            engine=EngineConfig(
                batch_size=1024,
                n_critic=2,
                lr_critic=1e-3,
                lr_theta=2e-4,
                lr_theta_final=2e-5,
                schedule_steps=1500,
                average_decay=0.99,
            ),
            stop=StopRule(eval_every=100, min_steps=500, patience=3, tol=2e-6),
        )
    small = len(event_shape) != 3  # calorimeters (L, H, W) get the conv critic, other shapes the MLP
    steps = 500
    return Recipe(
        critic="mlp" if small else "conv",
        width=16,
        hidden=(256, 256),
        preprocess="standardize",
        steps=steps,
        init="quantile",
        sharpness=0.5,
        accept_z=2.0,
        engine=EngineConfig(
            batch_size=512 if small else 256,
            n_critic=5 if small else 3,
            lr_critic=1e-3,
            lr_theta=1e-3 if small else 3e-4,  # small shapes: not measured on their own
            lr_theta_final=2e-5,
            schedule_steps=steps,
            average_decay=0.98,
        ),
        stop=StopRule(eval_every=100, min_steps=400, patience=3, tol=1e-4),
    )


def cold_start_recipe(model: str, event_shape: Sequence[int]) -> Recipe:
    """:func:`default_recipe`, but θ starts at 1 with a faster rate: the paper's method, and the daemon's.

    A stream has no one-shot per-cell fit to start from; the daemon's cold start and its tracking
    (``benchmarks/tracking.py``) and the paper studies (``benchmarks/paper.py``) were measured with these
    rates.
    """
    base = default_recipe(model, event_shape)
    if model == "plane-shift":
        return base
    small = len(event_shape) != 3
    return replace(
        base, init="ones", accept_z=None, engine=replace(base.engine, lr_theta=5e-3 if small else 1e-3)
    )


def make_transform(
    model: str, event_shape: Sequence[int], *, noise: float | None, threshold: float | None, recipe: Recipe
) -> Transform:
    """The transform for ``model``, readout-aware in forward mode."""
    if model == "plane-shift":
        return PlaneShift(event_shape[0])
    sharp = None
    if threshold is not None and recipe.sharpness is not None:
        sharp = recipe.sharpness * (noise if noise else max(threshold, 1e-6) / 3)
    return CellGain(event_shape, noise=noise, threshold=threshold, sharpness=sharp)


def make_critic(event_shape: Sequence[int], recipe: Recipe) -> nn.Module:
    """The critic the recipe names."""
    if recipe.critic == "conv":
        return ConvCritic(event_shape, width=recipe.width, preprocess=recipe.preprocess)
    return MLPCritic(event_shape, hidden=recipe.hidden, preprocess=recipe.preprocess)


def make_engine(
    model: str,
    event_shape: Sequence[int],
    *,
    noise: float | None = None,
    threshold: float | None = None,
    recipe: Recipe | None = None,
    seed: int = 0,
    device: str = "auto",
    bf16: bool = False,
) -> AdversarialEngine:
    """Build a seeded engine (transform + critic + optimizers) for ``model``."""
    recipe = recipe or default_recipe(model, event_shape)
    torch.manual_seed(seed)
    transform = make_transform(model, event_shape, noise=noise, threshold=threshold, recipe=recipe)
    critic = make_critic(event_shape, recipe)
    config = replace(recipe.engine, seed=seed, device=device, bf16=bf16)
    return AdversarialEngine(transform, critic, config)
