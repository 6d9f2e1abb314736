"""Empirical-Bayes pooling of per-cell gain estimates over cells of similar dose.

A per-cell fit uses only the cell's own readings, and for rarely hit cells those readings say little: on
our simulated calorimeters most of the per-cell fit's RMSE sits in the rarest quarter of the cells, where it
is at the one-cell information bound (``docs/results.md``). The other cells still say something about a
cell: they show which gains occur, and cells that took a similar dose tend to have aged alike. Pooling uses
that, in the standard way of empirical Bayes (Robbins 1956; the nonparametric maximum-likelihood prior of
Kiefer & Wolfowitz 1956, fitted by EM as in Jiang & Zhang 2009):

1. **Noise of each estimate.** Every per-cell estimator is run again on two disjoint halves of the events.
   For a cell, ``(log ĝ_A − log ĝ_B)² / 4`` estimates the variance of the full-sample ``log ĝ`` (each half
   has twice its variance), and the products of two estimators' differences their covariance. One cell's
   value is a single draw, so both are averaged over bins of cells with similar dose (``variance_bins``
   bins of equal count).
2. **Combining estimators.** With several estimators of the same gains (driftcal passes the quantile fit
   on the readings and on their logarithm), each dose bin takes the combination of their ``log ĝ`` with the
   least variance (weights ``Σ⁻¹1 / 1ᵀΣ⁻¹1``, negative weights dropped). Which one wins depends on the
   shape of the cells' spectra: on our simulator the readings, on heavy-tailed spectra their logarithm.
3. **Dose trend and prior.** Cells that took a similar dose share a trend: the precision-weighted running
   mean of ``log ĝ`` over ``trend_cells`` cells in order of dose (here: the mean reference reading, which for
   a calorimeter cell is proportional to the deposited energy). The distribution of the true log gains about
   that trend is estimated over all cells as a discrete distribution on a grid, by maximum likelihood under
   ``log ĝ ~ N(log g, v)``; no shape is assumed, so a few dead cells or two populations of cells keep their
   own mass. Where the gains do not follow the dose, the trend is flat and only that distribution is shared.
   **Neighbours.** Cells that share a high-voltage group, a readout board or a cooling zone age alike
   whatever their dose. When the cells have a plane (the last two axes of their shape; the leading axes
   are layers), the trend also takes ``λ`` times the precision-weighted mean of the residuals about the
   dose trend over the cells within ``neighbours`` steps in the same layer, the cell itself left out.
   ``λ`` is the coefficient of the best linear predictor of a cell's true residual from that mean,
   ``Cov(r, m) / Var(m)``: the covariance comes from one half's residual against the other half's
   neighbour mean, in which the noise of the two halves does not enter; the variance from the
   all-events mean; ``λ`` is clipped to [0, 1]. Gains without a pattern across the plane give ``λ ≈ 0``.
   **Groups.** Where the operator knows which cells age together (``groups``: one integer label per
   cell, e.g. the high-voltage channel or readout board), the same term uses the other usable cells of
   the cell's group instead of the square; cells with a negative label have no group and get no term.
4. **Posterior.** Each cell gets the posterior mean of its gain, and the posterior standard deviation as its
   uncertainty. A cell whose own estimate is precise keeps it; a rarely hit cell moves towards the gains of
   cells like it.

This lowers the RMSE over cells, not the error of every cell: a rarely hit cell that aged unlike its dose
neighbours is pulled towards them. ``fit(..., pool=False)`` (``driftcal fit --no-pool``) returns the
per-cell estimates. Measured gains and losses are in ``docs/results.md`` ("Pooling over cells").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftcal.errors import InputError

Estimator = Callable[[Any, Any], np.ndarray]  # (reference, changed) -> per-cell gains
SplitFit = tuple[np.ndarray, np.ndarray, np.ndarray]  # one estimator's gains: all events, half A, half B


@dataclass(frozen=True)
class Pooling:
    """Settings of :func:`pool_gains`.

    variance_bins : dose bins over which the split-half (co)variances are averaged (each ≥ ``cells_per_bin``).
    trend_cells : cells in the running mean that gives the dose trend.
    neighbours : half-width of the square of cells, in the same layer, whose mean residual enters the trend
        (0: none). Measured on ten settings (docs/results.md): 3 helped where neighbouring cells share
        their aging and cost at most 1 % elsewhere; 2 cost up to 5 % on the paper's readout.
    grid_points : support points of the prior, spread over the range of the residuals about the trend.
    iterations : EM iterations for the prior weights.
    min_cells : below this many usable cells nothing is pooled (with 32 cells, pooling lowered the RMSE on
        two of three simulated seeds and raised it on the third: 0.0335 → 0.0422).
    seed : seed of the split of the events into halves.
    """

    variance_bins: int = 20
    cells_per_bin: int = 50
    trend_cells: int = 101
    neighbours: int = 3
    grid_points: int = 300
    iterations: int = 300
    min_cells: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.variance_bins, self.cells_per_bin, self.trend_cells) < 1 or self.neighbours < 0:
            raise InputError("pooling needs variance_bins, cells_per_bin, trend_cells ≥ 1 and neighbours ≥ 0")
        if self.grid_points < 2 or self.iterations < 1 or self.min_cells < 2:
            raise InputError("pooling needs grid_points ≥ 2, iterations ≥ 1 and min_cells ≥ 2")


@dataclass
class PooledGains:
    """Pooled gains (float64, the cells' shape), their posterior standard deviation (NaN where a cell was
    not pooled), which cells were pooled, each estimator's mean weight over the pooled cells (empty:
    nothing pooled), and ``λ`` of the neighbours' term (None: no plane and no groups, or nothing pooled)."""

    coefficients: np.ndarray
    uncertainty: np.ndarray
    pooled: np.ndarray
    weights: tuple[float, ...]
    neighbour_weight: float | None = None


def _ranks(key: np.ndarray) -> np.ndarray:
    """Rank 0..n-1 of each entry in the order of ``key``; ``rank * k // n`` labels k equal-count groups."""
    rank = np.empty(len(key), dtype=np.int64)
    rank[np.argsort(key, kind="stable")] = np.arange(len(key))
    return rank


def _combine(logs: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-variance combination in each bin of ``logs`` (K estimators, [all events, half A, half B], n
    cells) of log gains: ([all events, half A, half B] combined log gains, variance, weights)."""
    k = len(logs)
    diff = (logs[:, 1] - logs[:, 2]).T  # (n, K)
    count = np.bincount(bins)
    cov = np.zeros((len(count), k, k))
    for i in range(k):
        for j in range(i, k):
            cov[:, i, j] = cov[:, j, i] = np.bincount(bins, diff[:, i] * diff[:, j] / 4.0) / count
    scale = np.maximum(np.trace(cov, axis1=1, axis2=2) / k, 1e-300)
    ridge = 1e-9 * scale[:, None, None] * np.eye(k)
    w = np.maximum(np.linalg.solve(cov + ridge, np.ones((len(count), k, 1)))[..., 0], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        w /= w.sum(1, keepdims=True)
    w[~np.isfinite(w).all(1)] = 1.0 / k  # a bin without any spread: equal weights
    v = np.einsum("bi,bij,bj->b", w, cov, w)
    return np.einsum("ksn,nk->sn", logs, w[bins]), v[bins], w[bins]


def _trend(y: np.ndarray, v: np.ndarray, rank: np.ndarray, cells: int) -> np.ndarray:
    """Running mean of ``y`` weighted by ``1/v`` over ``cells`` neighbours in ``rank`` order."""
    order = np.argsort(rank)
    weight = 1.0 / v[order]
    sum_wy = np.concatenate([[0.0], np.cumsum(weight * y[order])])
    sum_w = np.concatenate([[0.0], np.cumsum(weight)])
    at = np.arange(len(y))
    lo, hi = np.maximum(at - cells // 2, 0), np.minimum(at + cells // 2 + 1, len(y))
    out = np.empty(len(y))
    out[order] = (sum_wy[hi] - sum_wy[lo]) / (sum_w[hi] - sum_w[lo])
    return out


def _plane_sum(x: np.ndarray, radius: int) -> np.ndarray:
    """Sum of ``x`` (layers, H, W) over the ``(2·radius + 1)²`` square about each cell (zero outside)."""
    k = 2 * radius + 1
    c = np.pad(x, ((0, 0), (radius + 1, radius), (radius + 1, radius))).cumsum(1).cumsum(2)
    h, w = x.shape[1:]
    return c[:, k : k + h, k : k + w] - c[:, :h, k : k + w] - c[:, k : k + h, :w] + c[:, :h, :w]


def _neighbour_sum(x: np.ndarray, ok: np.ndarray, plane: tuple[int, ...], radius: int) -> np.ndarray:
    """Sum of ``x`` (one value per usable cell) over each usable cell's neighbours, itself left out."""
    full = np.zeros(ok.size)
    full[ok] = x
    return (_plane_sum(full.reshape(plane), radius).reshape(-1) - full)[ok]


def _group_sum(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sum of ``x`` (one value per usable cell) over the other cells with the same label (0 for a negative
    label: no group)."""
    grouped = labels >= 0
    ids = np.where(grouped, labels, 0)
    totals = np.bincount(ids[grouped], weights=x[grouped], minlength=int(ids.max()) + 1)
    return np.where(grouped, totals[ids] - x, 0.0)


def _neighbours_of(
    ok: np.ndarray, shape: tuple[int, ...], radius: int, groups: np.ndarray | None
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The function that sums a value over each usable cell's neighbours, itself left out: the other cells
    of its group when ``groups`` is given, else the square about it in its layer (None: no neighbours)."""
    if groups is not None:
        raw = np.asarray(groups, dtype=np.int64).reshape(-1)[ok]
        labels = np.full(raw.shape, -1, dtype=np.int64)
        labels[raw >= 0] = np.unique(raw[raw >= 0], return_inverse=True)[1]  # 0..k-1, whatever the ids
        return lambda x: _group_sum(x, labels)
    if len(shape) < 2 or radius == 0:
        return None
    plane = (-1, *shape[-2:])
    return lambda x: _neighbour_sum(x, ok, plane, radius)


def _neighbour_term(
    residuals: np.ndarray, v: np.ndarray, summed: Callable[[np.ndarray], np.ndarray] | None
) -> tuple[np.ndarray, float] | None:
    """``λ`` times the neighbours' mean residual, and ``λ``, from [all events, half A, half B] residuals
    about the dose trend; ``summed`` sums over each cell's neighbours (None: no term)."""
    if summed is None:
        return None
    sum_w = summed(1.0 / v)  # the same precision weights for all three
    has = sum_w > 0
    full, half_a, half_b = (
        np.where(has, summed(r / v) / np.where(has, sum_w, 1.0), 0.0) for r in residuals
    )  # each cell's neighbours' mean residual (0: no usable neighbour)

    def cov(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean((x - x.mean()) * (y - y.mean())))

    signal = 0.5 * (cov(residuals[2], half_a) + cov(residuals[1], half_b))
    lam = float(np.clip(signal / max(cov(full, full), 1e-300), 0.0, 1.0))
    return lam * full, lam


def _posterior(
    y: np.ndarray, v: np.ndarray, grid_points: int, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of ``exp(θ)`` under the NPMLE prior of θ given ``y ~ N(θ, v)``."""
    spread = max(float(y.max() - y.min()), 1e-6)
    grid = np.linspace(y.min() - 0.01 * spread, y.max() + 0.01 * spread, grid_points)
    v = np.maximum(v, (grid[1] - grid[0]) ** 2)  # a grid finer than the noise, so every row has mass
    log_lik = -0.5 * (y[:, None] - grid[None, :]) ** 2 / v[:, None]
    lik = np.exp(log_lik - log_lik.max(1, keepdims=True))
    weights = np.full(grid_points, 1.0 / grid_points)
    for _ in range(iterations):
        post = lik * weights
        post /= post.sum(1, keepdims=True)
        weights = post.mean(0)
    post = lik * weights
    post /= post.sum(1, keepdims=True)
    gain = np.exp(grid)
    mean = post @ gain
    return mean, np.sqrt(np.maximum(post @ gain**2 - mean**2, 0.0))


def pool_gains(
    fits: Sequence[SplitFit],
    dose: np.ndarray,
    usable: np.ndarray,
    pooling: Pooling | None = None,
    groups: np.ndarray | None = None,
) -> PooledGains:
    """Pool per-cell gains given one or more estimators' ``(all events, half A, half B)`` gains.

    ``dose`` orders the cells for the variance bins and the trend (e.g. the mean reference reading);
    ``usable`` marks the cells to pool (e.g. the active cells); ``groups`` (optional integer labels, negative:
    none) names the cells that age together, for the neighbours' term. Cells with a non-positive or
    non-finite gain in any fit are left at the first estimator's gain. All arrays have the cells' shape.
    """
    pooling = pooling or Pooling()
    if not fits:
        raise InputError("pool_gains needs at least one estimator's gains")
    arrays = [np.asarray(a, dtype=np.float64) for fit in fits for a in fit] + [np.asarray(dose, np.float64)]
    shape = arrays[0].shape
    if (
        any(a.shape != shape for a in arrays[1:])
        or np.shape(usable) != shape
        or (groups is not None and np.shape(groups) != shape)
        or any(len(f) != 3 for f in fits)
    ):
        raise InputError(f"pool_gains needs arrays of one shape, got {[a.shape for a in arrays]}")
    gains = np.stack(arrays[:-1]).reshape(len(fits), 3, -1)  # (estimator, [all, half A, half B], cell)
    dose = arrays[-1].reshape(-1)
    ok = np.asarray(usable, dtype=bool).reshape(-1) & np.isfinite(dose)
    with np.errstate(invalid="ignore"):
        ok &= (np.isfinite(gains) & (gains > 0)).all((0, 1))
    coefficients, uncertainty = gains[0, 0].copy(), np.full(dose.shape, np.nan)
    n = int(ok.sum())
    if n < pooling.min_cells:
        return PooledGains(coefficients.reshape(shape), uncertainty.reshape(shape), np.zeros(shape, bool), ())
    rank = _ranks(dose[ok])
    bins = rank * max(1, min(pooling.variance_bins, n // pooling.cells_per_bin)) // n
    logs, v, w = _combine(np.log(gains[:, :, ok]), bins)
    v = np.maximum(v, 1e-12)
    # the halves' trends too (each half has twice the variance; the weights are the same)
    trends = np.stack([_trend(y, v, rank, pooling.trend_cells) for y in logs])
    residuals, trend = logs - trends, trends[0]
    neighbours = _neighbour_term(residuals, v, _neighbours_of(ok, shape, pooling.neighbours, groups))
    if neighbours is not None:
        trend = trend + neighbours[0]
    mean, sd = _posterior(logs[0] - trend, v, pooling.grid_points, pooling.iterations)
    coefficients[ok], uncertainty[ok] = np.exp(trend) * mean, np.exp(trend) * sd
    return PooledGains(
        coefficients.reshape(shape),
        uncertainty.reshape(shape),
        ok.reshape(shape),
        tuple(float(x) for x in w.mean(0)),
        None if neighbours is None else neighbours[1],
    )


def pooled_fit(
    estimators: Sequence[Estimator],
    reference: Any,
    changed: Any,
    estimates: Sequence[np.ndarray],
    *,
    dose: np.ndarray,
    usable: np.ndarray,
    pooling: Pooling | None = None,
    groups: np.ndarray | None = None,
) -> PooledGains:
    """Run each estimator on two random halves of the events of both samples and pool ``estimates``
    (each estimator's gains on all events, in the same order); ``groups`` as in :func:`pool_gains`."""
    pooling = pooling or Pooling()
    if len(estimators) != len(estimates):
        raise InputError("pooled_fit needs one estimate per estimator")
    rng = np.random.default_rng(pooling.seed)
    ref_order, chg_order = rng.permutation(len(reference)), rng.permutation(len(changed))
    ref_half, chg_half = len(reference) // 2, len(changed) // 2
    halves = [
        (reference[r], changed[c])
        for r, c in (
            (ref_order[:ref_half], chg_order[:chg_half]),
            (ref_order[ref_half:], chg_order[chg_half:]),
        )
    ]  # sliced once, shared by every estimator
    fits: list[SplitFit] = []
    for estimator, estimate in zip(estimators, estimates, strict=True):
        half_a, half_b = (np.asarray(estimator(ref, chg), np.float64) for ref, chg in halves)
        fits.append((np.asarray(estimate, np.float64), half_a, half_b))
    return pool_gains(fits, dose, usable, pooling, groups)
