"""One-shot fits: the function behind ``driftcal fit`` (engine or baseline, chosen by name)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch

from driftcal.calib.baselines import MeanShift, QuantileGain, QuantileShift, RatioOfMeans
from driftcal.calib.metrics import active_cells
from driftcal.calib.pooling import PooledGains, Pooling, pooled_fit
from driftcal.calib.recipes import Recipe, default_recipe, make_engine
from driftcal.calib.suppressed import fill_if_suppressed
from driftcal.calib.training import StepCallback, TimeBudget, probe_distance, run_engine, split_holdout
from driftcal.errors import InputError
from driftcal.io import validate_groups

Method = Literal["adversarial", "ratio-of-means", "quantile", "auto"]
ModelName = Literal["cell-gain", "plane-shift"]
METHODS = ("adversarial", "ratio-of-means", "quantile", "auto")
MODELS = ("cell-gain", "plane-shift")


@dataclass
class FitResult:
    """What a fit returns: physical coefficients and how they were obtained."""

    model: ModelName
    method: str
    coefficients: np.ndarray
    uncertainty: np.ndarray | None = None
    distance_before: float | None = None
    distance_after: float | None = None
    steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    start: str | None = None  # adversarial: where θ started ("quantile": the per-cell fit, "ones")
    refined: bool | None = None  # hybrid: False when the held-out distance kept the start (Recipe.accept_z)
    distance_start: float | None = None  # hybrid: held-out distance at the start, beside distance_after
    pooled_cells: int | None = None  # cell gains pooled over cells (calib/pooling.py); None: not pooled
    pool_log_weight: float | None = None  # pooled quantile fit: mean weight of its fit on log readings
    pool_neighbour_weight: float | None = None  # pooled: λ of the neighbours' mean residual (None: no plane)
    time_limited: bool = False  # adversarial: the time budget cut the refinement or its distance probes short


def _baseline(model: str, method: str, *, noise: float | None, threshold: float | None, seed: int):  # noqa: ANN202
    if model == "cell-gain":
        if method == "ratio-of-means":
            return RatioOfMeans()
        return QuantileGain(noise=noise, threshold=threshold, seed=seed)
    return MeanShift() if method == "ratio-of-means" else QuantileShift()


def _pool_estimators(
    baseline: Any, method: str, *, noise: float | None, threshold: float | None, seed: int
) -> list[Any]:
    """The per-cell estimators that pooling combines: the baseline, and for the quantile fit the same fit
    on log readings too (the better one on heavy-tailed spectra; see :mod:`driftcal.calib.pooling`)."""
    if method != "quantile":
        return [baseline]
    return [baseline, QuantileGain(noise=noise, threshold=threshold, seed=seed, compare="log")]


def resolve_method(model: str, method: str) -> str:
    """``auto`` → the method that measured best for the model (docs/results.md).

    Cell gains: the per-cell quantile fit, which :func:`fit` pools over cells by default. Always kept, the
    adversarial refinement of it changed its RMSE by −6 % to +12 % across aging laws and readouts; kept only
    when the held-out distance confirms it, it returned the quantile fit on every benchmark seed, at 30–100×
    the time. Starting at 1 it won only where the aging law kept rarely hit cells near 1. Plane shifts: the
    frame-corrected difference of means, which for straight tracks is the residual estimator at the
    statistical floor; the adversarial fit came within 1–3x of it.
    """
    if method != "auto":
        return method
    return "quantile" if model == "cell-gain" else "ratio-of-means"


@dataclass
class _Pool:
    """What pooling needs from the raw reference: each cell's dose and the cells to pool."""

    dose: np.ndarray
    usable: np.ndarray
    settings: Pooling
    groups: np.ndarray | None = None

    @classmethod
    def of(cls, reference: np.ndarray, seed: int, groups: np.ndarray | None = None) -> _Pool:
        ref = np.asarray(reference)
        dose = ref.reshape(len(ref), -1).mean(0, dtype=np.float64).reshape(ref.shape[1:])
        return cls(dose=dose, usable=active_cells(ref), settings=Pooling(seed=seed), groups=groups)

    def apply(self, estimators: list[Any], reference: Any, changed: Any, estimate: np.ndarray) -> PooledGains:
        """Pool ``estimate`` (the first estimator's gains on all events) with the others' gains."""
        estimates = [estimate] + [np.asarray(e.fit(reference, changed), np.float64) for e in estimators[1:]]
        return pooled_fit(
            [e.fit for e in estimators],
            reference,
            changed,
            estimates,
            dose=self.dose,
            usable=self.usable,
            pooling=self.settings,
            groups=self.groups,
        )


def _pool_fields(pooled: PooledGains | None) -> dict[str, Any]:
    """The FitResult fields that describe pooling (all None when nothing was pooled)."""
    if pooled is None:
        return {"pooled_cells": None, "pool_log_weight": None, "pool_neighbour_weight": None}
    return {
        "pooled_cells": int(pooled.pooled.sum()),
        "pool_log_weight": pooled.weights[1] if len(pooled.weights) == 2 else None,
        "pool_neighbour_weight": pooled.neighbour_weight,
    }


def _groups(groups: np.ndarray | None, reference: np.ndarray) -> np.ndarray | None:
    """``groups`` as int64 labels, checked against the cells' shape."""
    if groups is None:
        return None
    return validate_groups(np.asarray(groups), cell_shape=tuple(np.shape(reference)[1:]), label="--groups")


def _pool_default(model: str, method: str, pool: bool | None) -> bool:
    if pool is None:  # on where the fit is meant to be the best one: the hybrid, and auto
        return model == "cell-gain" and method in ("adversarial", "auto")
    if pool and model != "cell-gain":
        raise InputError("pooling over cells is for cell gains (--model cell-gain); drop --pool")
    return pool


def fit(
    reference: np.ndarray,
    changed: np.ndarray,
    *,
    model: ModelName,
    method: Method = "adversarial",
    threshold: float | None = None,
    noise: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    recipe: Recipe | None = None,
    callback: StepCallback | None = None,
    bf16: bool = False,
    probe_steps: int = 100,
    pool: bool | None = None,
    time_budget: float | None = None,
    groups: np.ndarray | None = None,
) -> FitResult:
    """Fit the physical coefficients that map ``reference`` onto ``changed``.

    ``model`` is ``cell-gain`` (events ``(N, *cells)``, gains with ``changed ≈ A · reference``) or
    ``plane-shift`` (hits ``(N, P)``, shifts with ``changed ≈ reference + Δx``, first and last plane
    fixed). ``method`` is the adversarial engine or one of the baselines. For cell-gain the
    adversarial fit starts from the per-cell quantile fit (the hybrid) unless the recipe says
    otherwise, and keeps its refinement only when that lowers the held-out distance by more than
    ``recipe.accept_z`` standard errors (``FitResult.refined``; otherwise the start is returned).
    ``threshold`` and ``noise`` describe the readout; with both, the quantile and adversarial fits
    first fill the suppressed reference entries just below the threshold
    (:func:`~driftcal.calib.suppressed.fill_suppressed`), which removes most of the forward model's bias.

    ``pool`` (cell-gain only; default on for ``adversarial`` and ``auto``, off for the baselines) pools
    the per-cell estimates over cells of similar dose by empirical Bayes (:mod:`driftcal.calib.pooling`):
    the per-cell fit runs again on two halves of the events, the quantile fit is combined with the same
    fit on log readings (``pool_log_weight``), cells whose neighbours in the same layer aged alike also
    lean on them (``pool_neighbour_weight``), and the result carries the posterior standard deviation in
    ``uncertainty``. For the hybrid the pooled per-cell fit is the start. A recipe that starts at 1 has no
    per-cell start, and then nothing is pooled. ``groups`` (integer labels of the cells' shape, negative:
    no group) tells pooling which cells age together, e.g. by high-voltage channel; the neighbours' term
    then uses the cell's group instead of the square about it.

    Adversarial only: ``callback(engine, stats)`` runs after every step and stops the run by
    returning True (see :func:`~driftcal.calib.training.run_engine`); ``bf16`` trains the critic under
    bf16 autocast on CUDA; ``probe_steps`` critic-only steps measure the held-out distance before and
    after (0 skips the probes and leaves ``distance_before``/``distance_after`` None; the hybrid's
    acceptance check still probes the start and the refinement, with 100 steps each).

    ``time_budget`` (seconds; None: no limit; the baselines ignore it) bounds an adversarial fit, the
    per-cell start and its pooling included. The refinement stops early enough that its distance probes
    still fit, timed by its own steps; probes that no longer fit are skipped, and then the start is
    returned, since an unconfirmed refinement is not kept. ``FitResult.time_limited`` says whether the
    budget cut anything short.
    """
    budget = TimeBudget.of(time_budget)
    if model not in MODELS:
        raise InputError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if steps is not None and steps < 0:
        raise InputError(f"--steps must be ≥ 0, got {steps}")
    if time_budget is not None and not time_budget > 0:
        raise InputError(f"--time-budget must be > 0 seconds, got {time_budget}")
    used = resolve_method(model, method)
    pooling = (
        _Pool.of(reference, seed, _groups(groups, reference)) if _pool_default(model, method, pool) else None
    )
    if groups is not None and pooling is None:
        raise InputError("--groups is used by pooling; pool the fit (cell-gain, --pool or --method auto)")
    if model == "cell-gain" and used != "ratio-of-means":
        reference = fill_if_suppressed(reference, noise=noise, threshold=threshold, seed=seed)
    if used != "adversarial":
        estimator = _baseline(model, used, noise=noise, threshold=threshold, seed=seed)
        coefficients = np.asarray(estimator.fit(reference, changed), dtype=np.float64)
        if pooling is None:
            return FitResult(model=model, method=used, coefficients=coefficients)
        estimators = _pool_estimators(estimator, used, noise=noise, threshold=threshold, seed=seed)
        pooled = pooling.apply(estimators, reference, changed, coefficients)
        return FitResult(
            model=model,
            method=used,
            coefficients=pooled.coefficients,
            uncertainty=pooled.uncertainty,
            **_pool_fields(pooled),
        )
    return _fit_adversarial(
        reference,
        changed,
        model=model,
        threshold=threshold,
        noise=noise,
        steps=steps,
        seed=seed,
        device=device,
        progress=progress,
        recipe=recipe,
        callback=callback,
        bf16=bf16,
        probe_steps=probe_steps,
        pooling=pooling,
        budget=budget,
    )


def _fit_adversarial(
    reference: np.ndarray,
    changed: np.ndarray,
    *,
    model: str,
    threshold: float | None,
    noise: float | None,
    steps: int | None,
    seed: int,
    device: str,
    progress: bool,
    recipe: Recipe | None,
    callback: StepCallback | None = None,
    bf16: bool = False,
    probe_steps: int = 100,
    pooling: _Pool | None = None,
    budget: TimeBudget | None = None,
) -> FitResult:
    budget = budget or TimeBudget()
    event_shape = tuple(reference.shape[1:])
    recipe = recipe or default_recipe(model, event_shape)
    if steps is not None:  # the θ schedule spans the whole budget
        recipe = replace(recipe, steps=steps, engine=replace(recipe.engine, schedule_steps=steps))
    engine = make_engine(
        model,
        event_shape,
        noise=noise,
        threshold=threshold,
        recipe=recipe,
        seed=seed,
        device=device,
        bf16=bf16,
    )
    gen = torch.Generator().manual_seed(seed)
    ref = torch.as_tensor(np.asarray(reference, dtype=np.float32))
    chg = torch.as_tensor(np.asarray(changed, dtype=np.float32))
    ref_train, ref_hold = split_holdout(ref, recipe.holdout, gen)
    chg_train, chg_hold = split_holdout(chg, recipe.holdout, gen)
    start, fitted, pooled = None, None, None
    if recipe.init == "quantile":  # on all events: leaving out the held-out 10 % cost the start ~5 %
        per_cell = _baseline(model, "quantile", noise=noise, threshold=threshold, seed=seed)
        fitted = np.asarray(per_cell.fit(ref, chg), dtype=np.float64)
        if pooling is not None:
            estimators = _pool_estimators(per_cell, "quantile", noise=noise, threshold=threshold, seed=seed)
            pooled = pooling.apply(estimators, ref, chg, fitted)
            fitted = pooled.coefficients
        start = torch.as_tensor(np.asarray(fitted), dtype=torch.float32)
        engine.warm_start(coefficients=start)
    to_dev = engine.device
    ref_train, chg_train = ref_train.to(to_dev), chg_train.to(to_dev)
    holdout = (ref_hold.to(to_dev), chg_hold.to(to_dev))
    train = (ref_train, chg_train)
    engine.prepare(ref_train, chg_train)
    accept = start is not None and recipe.accept_z is not None
    probe = probe_steps if probe_steps > 0 else 100  # the acceptance check always probes
    budget.reserve_steps = (2 * probe if accept else 0) + max(probe_steps, 0)
    history: list[dict[str, float]] = []
    if budget.allows(1):
        budget.start()
        history = run_engine(
            engine,
            ref_train,
            chg_train,
            steps=recipe.steps,
            holdout=holdout,
            stop=recipe.stop,
            progress=progress,
            callback=budget.callback(callback),
        )
    else:
        budget.cut = True
    final = engine.coefficients().to(to_dev)
    after, refined, at_start = None, None, None
    if accept and not budget.allows(2 * probe):
        budget.cut, refined, final = True, False, start.to(to_dev)  # unconfirmed: keep the start
    elif accept:
        # both probes start from the trained critic, so that they compare like with like
        began = budget.clock()
        at_start = probe_distance(engine, start.to(to_dev), train, holdout, steps=probe)
        after = probe_distance(engine, final, train, holdout, steps=probe)
        budget.note_probe(budget.clock() - began, 2 * probe)
        refined = at_start[0] - after[0] > recipe.accept_z * math.hypot(at_start[1], after[1])
        if not refined:
            final, after = start.to(to_dev), at_start
    identity = torch.ones_like(final) if model == "cell-gain" else torch.zeros_like(final)
    before = None
    more = 1 if after else 2  # the distance at the identity, and at the result unless probed already
    if probe_steps > 0 and budget.allows(more * probe_steps, probe=True):
        before = probe_distance(engine, identity, train, holdout, steps=probe_steps)[0]
        after = after or probe_distance(engine, final, train, holdout, steps=probe_steps)
    elif probe_steps > 0:
        budget.cut = True
    return FitResult(
        model=model,  # type: ignore[arg-type]
        method="adversarial",
        coefficients=np.asarray(fitted if refined is False else final.cpu().numpy(), dtype=np.float64),
        distance_before=before,
        distance_after=None if after is None or probe_steps == 0 else after[0],
        steps=engine.steps,
        history=history,
        start=recipe.init,
        refined=refined,
        distance_start=None if at_start is None else at_start[0],
        time_limited=budget.cut,
        # the posterior sd describes the pooled start, so only when the start is what is returned
        uncertainty=pooled.uncertainty if pooled is not None and refined is False else None,
        **_pool_fields(pooled),
    )
