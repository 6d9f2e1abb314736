"""Running the engine to convergence: held-out monitoring, a stopping rule, a progress bar."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

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


@dataclass
class TimeBudget:
    """A wall-clock deadline for a fit, and the refinement's measured cost per step.

    ``deadline`` is a :func:`time.monotonic` time (None: no limit). :meth:`callback` stops the refinement
    when one more step plus ``reserve_steps`` steps (the distance probes that follow it, which cost about
    as much as a step each, plus copying the engine and the held-out pass) would pass the deadline;
    :meth:`allows` says whether ``steps`` more steps still fit, with ``margin`` on the measured step time
    (or on a probe's, once :meth:`note_probe` has timed one). ``cut`` records that the budget shortened
    the fit.
    """

    deadline: float | None = None
    reserve_steps: int = 0
    margin: float = 1.25
    clock: Callable[[], float] = time.monotonic
    cut: bool = False
    _steps: int = 0
    _started: float | None = field(default=None, repr=False)
    _last: float | None = field(default=None, repr=False)
    _probe_step: float | None = field(default=None, repr=False)

    @classmethod
    def of(cls, seconds: float | None) -> TimeBudget:
        """A budget of ``seconds`` from now (None: no limit)."""
        return cls() if seconds is None else cls(deadline=time.monotonic() + seconds)

    @property
    def seconds_per_step(self) -> float | None:
        """Mean wall time of the steps timed so far (None before the first; the first step after
        :meth:`start` warms up and is not timed)."""
        if not self._steps or self._started is None or self._last is None:
            return None
        return (self._last - self._started) / self._steps

    def start(self) -> None:
        """Start timing steps (call just before the first, which is left out as a warm-up)."""
        self._started, self._last, self._steps = None, None, 0

    def note_probe(self, seconds: float, steps: int) -> None:
        """Record that a distance probe of ``steps`` steps took ``seconds`` (engine copy and held-out pass
        included); later :meth:`allows` calls with ``probe=True`` use it."""
        self._probe_step = seconds / max(steps, 1)

    def allows(self, steps: int, *, probe: bool = False) -> bool:
        """Whether ``steps`` more steps (of a probe, with ``probe``) fit before the deadline (True without
        a deadline). Before any step is timed, whether the deadline is still ahead."""
        if self.deadline is None:
            return True
        per_step = self._probe_step if probe and self._probe_step is not None else self.seconds_per_step
        if per_step is None:
            return self.clock() < self.deadline
        return self.clock() + steps * per_step * self.margin <= self.deadline

    def callback(self, inner: StepCallback | None = None) -> StepCallback:
        """A step callback that stops the run at the budget, after ``inner`` (which may stop it first)."""

        def on_step(engine: AdversarialEngine, stats: dict[str, float]) -> bool:
            if self._started is None:
                self._started = self.clock()  # the first step warms up: time the ones after it
            else:
                self._steps, self._last = self._steps + 1, self.clock()
            if inner is not None and inner(engine, stats):
                return True
            if not self.allows(1 + self.reserve_steps):
                self.cut = True
                return True
            return False

        return on_step


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
