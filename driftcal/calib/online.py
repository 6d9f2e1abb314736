"""The engine in streaming use: warm-started updates that track drifting coefficients.

:class:`OnlineCalibrator` owns one :class:`~driftcal.calib.engine.AdversarialEngine` for the whole life
of a daemon. Every :meth:`~OnlineCalibrator.update` continues from the same θ, the same critic and the
same optimizer state (a warm start); only the data moves: the reference reservoir and the window of
recent events. The θ learning rate decays over the first (cold-start) update and then stays at a tracking
rate, so the coefficients can follow aging.

:meth:`~OnlineCalibrator.noise_floor` measures what the critic reports when there is nothing to find: the
distance between two disjoint halves of the reference, with a fresh critic of the same recipe and the
transform held at identity. The daemon alarms when its distance exceeds ``k`` times that floor.

>>> import numpy as np, torch
>>> rng = np.random.default_rng(0)
>>> ref = torch.tensor(rng.gamma(2.0, 1.0, (4000, 4)), dtype=torch.float32)
>>> cur = ref[torch.randperm(4000)] * torch.tensor([1.0, 0.8, 1.0, 1.0])
>>> cal = OnlineCalibrator("cell-gain", (4,), device="cpu", initial_steps=300, seed=0)
>>> info = cal.update(ref, cur, steps=300)
>>> round(float(cal.coefficients()[1]), 1)
0.8
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from driftcal.calib.engine import AdversarialEngine
from driftcal.calib.recipes import Recipe, cold_start_recipe, make_engine


@dataclass
class UpdateResult:
    """What one update did."""

    steps: int
    distance: float  # mean critic gap over the update's steps
    distance_start: float  # mean critic gap over the first tenth of the steps
    seconds: float
    max_change: float  # largest |Δ coefficient| over the update


class OnlineCalibrator:
    """Warm-started adversarial updates for one detector module.

    Parameters
    ----------
    model : ``cell-gain`` or ``plane-shift``.
    event_shape : cells ``(L, H, W)`` or ``(P,)``.
    noise, threshold : the readout (see :func:`~driftcal.calib.recipes.make_transform`).
    device, bf16, seed : engine placement and randomness.
    initial_steps : length of the cold-start learning-rate schedule (the first update).
    tracking_lr : θ learning rate after the cold start (default 1e-3, at most the initial rate): fast
        enough to follow a 30 % module drop within about a window of events, slow enough for a steady
        RMSE (``benchmarks/tracking.py``; 2e-4 lagged far behind the drop).
    recipe : override of :func:`~driftcal.calib.recipes.cold_start_recipe`.
    """

    def __init__(
        self,
        model: str,
        event_shape: Sequence[int],
        *,
        noise: float | None = None,
        threshold: float | None = None,
        device: str = "auto",
        bf16: bool = False,
        seed: int = 0,
        initial_steps: int = 300,
        tracking_lr: float | None = None,
        recipe: Recipe | None = None,
    ) -> None:
        self.model = model
        self.event_shape = tuple(int(d) for d in event_shape)
        base = recipe or cold_start_recipe(model, self.event_shape)
        final = min(tracking_lr if tracking_lr is not None else 1e-3, base.engine.lr_theta)
        self.recipe = replace(
            base, engine=replace(base.engine, schedule_steps=max(1, initial_steps), lr_theta_final=final)
        )
        self._build = dict(noise=noise, threshold=threshold, seed=seed, device=device, bf16=bf16)
        self.engine: AdversarialEngine = make_engine(
            model, self.event_shape, recipe=self.recipe, **self._build
        )
        self.prepared = False

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def steps(self) -> int:
        return self.engine.steps

    def coefficients(self) -> np.ndarray:
        """Current (iterate-averaged) physical coefficients, float64 on the host."""
        return self.engine.coefficients().double().numpy()

    def update(
        self,
        reference: torch.Tensor,
        current: torch.Tensor,
        *,
        steps: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> UpdateResult:
        """Run ``steps`` warm-started engine steps on the reference and the current window.

        ``should_stop`` is checked between steps (e.g. a shutdown deadline); the update then ends early.
        """
        start = time.perf_counter()
        if not self.prepared:
            self.engine.prepare(reference, current)
            self.prepared = True
        before = self.coefficients()
        gaps: list[float] = []
        for _ in range(int(steps)):
            if should_stop is not None and should_stop():
                break
            gaps.append(self.engine.step(reference, current)["distance"])
        change = float(np.max(np.abs(self.coefficients() - before))) if gaps else 0.0
        head = gaps[: max(1, len(gaps) // 10)]
        return UpdateResult(
            steps=len(gaps),
            distance=float(np.mean(gaps)) if gaps else float("nan"),
            distance_start=float(np.mean(head)) if gaps else float("nan"),
            seconds=time.perf_counter() - start,
            max_change=change,
        )

    def rewarm(self, steps: int | None = None) -> None:
        """Raise θ's learning rate back to its initial value and decay it again over ``steps``.

        For a sudden change (a module drop): the tracking rate follows slow aging but would take
        thousands of steps to follow a jump.
        """
        if steps is not None:
            self.engine.config.schedule_steps = max(1, int(steps))
        self.engine.restart_schedule()

    def noise_floor(
        self,
        reference: torch.Tensor,
        *,
        steps: int = 200,
        seed: int = 1,
        should_stop: Callable[[], bool] | None = None,
    ) -> float:
        """Mean critic gap between two disjoint halves of ``reference`` over the last half of ``steps``.

        The transform is held at identity (θ's learning rate is 0), so the critic can only separate the
        two finite samples: the distance the daemon reports when nothing has changed.
        """
        n = reference.shape[0]
        if n < 4:
            raise ValueError("the reference needs at least 4 events to measure a noise floor")
        gen = torch.Generator(device="cpu").manual_seed(seed)
        perm = torch.randperm(n, generator=gen).to(reference.device)
        half_a, half_b = reference[perm[: n // 2]], reference[perm[n // 2 :]]
        frozen = replace(self.recipe, engine=replace(self.recipe.engine, lr_theta=0.0, lr_theta_final=0.0))
        build = {**self._build, "seed": int(self._build["seed"]) + seed}
        engine = make_engine(self.model, self.event_shape, recipe=frozen, **build)
        engine.prepare(half_a, half_b)
        gaps: list[float] = []
        for _ in range(int(steps)):
            if should_stop is not None and should_stop() and gaps:
                break
            gaps.append(engine.step(half_a, half_b)["distance"])
        return float(np.mean(gaps[len(gaps) // 2 :]))

    def state_dict(self) -> dict:
        """The engine's state (θ, critic, optimizers, averaged θ, RNG) plus the preprocessing flag."""
        return {"engine": self.engine.state_dict(), "prepared": self.prepared}

    def load_state_dict(self, state: dict) -> None:
        self.engine.load_state_dict(state["engine"])
        self.prepared = bool(state["prepared"])
