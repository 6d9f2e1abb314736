"""How much the data allow: the per-cell information bound, and what neighbouring cells add.

    python benchmarks/information.py [--settings calorimeter-paper-uniform,calorimeter-paper] [--seeds 1]
                                     [--events 30000] [--out FILE.json]

For readouts without noise and threshold (the hits do not depend on the gain), each cell's gain is a
shift of its log-deposit distribution between two samples. No estimator that uses one cell's readings
can beat ``var(log ĝ) ≥ (1/n_ref + 1/n_chg) / I`` (``I``: the Fisher information of the log-deposit
density for a shift, from a kernel density of the reference hits on a grid; ``n``: hits). The script
prints that bound as an RMSE over cells (bandwidth by Silverman's rule, and half of it, which
overstates ``I``) beside the ratio-of-means and quantile fits, and measures how much the other cells
of an event say about a cell: the spread of ``log x_i`` alone, over the sum of its 26 neighbours and
over the event sum, and the correlations. For every setting (the bound only without noise and
threshold) it splits the RMSE by quarter of occupancy (hit count) and gives the RMSE that would remain
if every cell outside the rarest quarter were exact: a floor for any method, however much it gains on
the busier cells. It does the same for the per-cell fit pooled over cells (``quantile+pool``,
``driftcal/calib/pooling.py``), and compares the pooled fit's errors with its posterior standard
deviation (``quantile+pool_z_rms``: 1 when the uncertainty is right).

What pooling could reach at best: the RMSE of the Bayes posterior mean for an oracle that knows each cell's
true prior (the simulator's aging law with its dose and ε) and sees one unbiased per-cell estimate with
Gaussian noise. ``oracle_prior`` gives that noise the RMS error of the per-cell quantile fit in the cell's
occupancy bin (20 bins); ``oracle_prior_at_bound`` gives it the per-cell information bound of the cell
(half bandwidth, which overstates the information), so that no estimator that pools one-cell estimates can
beat it on average: only the events themselves (the correlations between cells) could. Both are computed
for uniform gains, and for the dose law where the readout has no threshold and no noise (the dose is then
the hit count); the second only without noise and threshold, where the bound holds. The last stdout line
is one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from recovery import SETTINGS, _dataset

from driftcal.calib.fit import fit
from driftcal.calib.metrics import active_cells, rmse

GRID = np.linspace(-12.0, 6.0, 1801)  # log MeV
GAIN_GRID = np.round(np.linspace(0.40, 1.10, 701), 6)  # gains, steps of 0.001


def fisher_location(logs: np.ndarray, bandwidth: float) -> float:
    """Fisher information for a shift of the density of ``logs``, from a Gaussian kernel density."""
    d = (GRID[:, None] - logs[None, :]) / bandwidth
    k = np.exp(-0.5 * d * d) / (len(logs) * bandwidth * np.sqrt(2 * np.pi))
    f, fp = k.sum(1), (-d * k).sum(1) / bandwidth
    keep = f > 1e-12
    return float(np.sum(fp[keep] ** 2 / f[keep]) * (GRID[1] - GRID[0]))


def bound_variance(
    ref: np.ndarray, chg: np.ndarray, truth: np.ndarray, mask: np.ndarray, scale: float
) -> np.ndarray:
    """Per-cell variance of an efficient one-cell estimator on the ``mask`` cells.

    Delta method: sd(ĝ) = g·sd(log ĝ).
    """
    var = np.zeros(ref.shape[1])
    for i in np.flatnonzero(mask):
        logs = np.log(ref[ref[:, i] > 0, i].astype(np.float64))
        n_chg = int((chg[:, i] > 0).sum())
        if len(logs) < 2 or n_chg < 1:
            continue
        h = scale * 1.06 * np.std(logs) * len(logs) ** -0.2
        var[i] = (1 / len(logs) + 1 / n_chg) / fisher_location(logs, h)
    return truth * truth * var


def by_occupancy(squared_errors: np.ndarray, hits: np.ndarray, mask: np.ndarray) -> dict[str, object]:
    """RMSE in the four quarters of the ``mask`` cells by hit count, and the RMSE over all of them if every
    cell outside the rarest quarter were exact (what no gain on the busier cells can go below)."""
    edges = np.percentile(hits[mask], [25, 50, 75])
    quarter = np.digitize(hits, edges)
    rarest = mask & (quarter == 0)
    return {
        "hit_edges": [float(e) for e in edges],
        "quarter_rmse": [float(np.sqrt(np.mean(squared_errors[mask & (quarter == q)]))) for q in range(4)],
        "rmse_busier_exact": float(np.sqrt(np.sum(squared_errors[rarest]) / mask.sum())),
    }


def error_over_sd(errors: np.ndarray, sd: np.ndarray, mask: np.ndarray) -> float:
    """RMS of ``error / sd`` over the ``mask`` cells with a finite positive sd: 1 when the sd is right."""
    scored = mask & np.isfinite(sd) & (sd > 0)
    return float(np.sqrt(np.mean((errors[scored] / sd[scored]) ** 2)))


def true_prior(meta: dict, reference: np.ndarray) -> np.ndarray | None:
    """Each cell's prior of its gain on ``GAIN_GRID``, ``(cells, grid)``, from the simulator's aging law.

    None where the oracle cannot know it: the dose law with noise or a threshold (the dose, the true hit
    count, is then not the reading's hit count).
    """
    aging, eps = meta["aging"], float(meta["epsilon"])
    cells = reference.reshape(len(reference), -1).shape[1]
    if "low" in aging:  # UniformAging: U(low, high) + N(0, ε²), clipped back
        if eps:
            return None
        centre, half = (aging["low"] + aging["high"]) / 2, (aging["high"] - aging["low"]) / 2
        inside = np.abs(GAIN_GRID - centre) <= half + 1e-9
        return np.broadcast_to(inside / inside.sum(), (cells, len(GAIN_GRID)))
    if meta["noise"] or meta["threshold"] is not None:
        return None
    dose = (reference.reshape(len(reference), -1) > 0).sum(0).astype(np.float64)
    n_max = aging["n_max"] or meta["dose_max"]
    nominal = 1.0 - aging["max_loss"] * (dose / n_max) ** aging["power"]
    low, high = aging["alpha_min"], 1.0
    weights = np.zeros((cells, len(GAIN_GRID)))
    i_low, i_high = np.searchsorted(GAIN_GRID, [low, high])
    if eps == 0:
        clipped = np.clip(nominal, low, high)
        weights[np.arange(cells), np.abs(GAIN_GRID[None, :] - clipped[:, None]).argmin(1)] = 1.0
        return weights
    below, above = _normal_cdf((low - nominal) / eps), _normal_cdf((nominal - high) / eps)
    z = (GAIN_GRID[None, i_low + 1 : i_high] - nominal[:, None]) / eps
    inner = np.exp(-0.5 * z * z)
    inner /= np.maximum(inner.sum(1, keepdims=True), 1e-300)
    weights[:, i_low + 1 : i_high] = inner * (1.0 - below - above)[:, None]
    weights[:, i_low], weights[:, i_high] = below, above  # the clamps are point masses
    return weights


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return torch.special.ndtr(torch.as_tensor(x, dtype=torch.float64)).numpy()


def binned_sd(errors: np.ndarray, hits: np.ndarray, mask: np.ndarray, bins: int = 20) -> np.ndarray:
    """RMS of ``errors`` over the ``mask`` cells in each of ``bins`` equal-count bins of hit count (0 for
    the other cells)."""
    order = np.flatnonzero(mask)[np.argsort(hits[mask], kind="stable")]
    sd = np.zeros(len(errors))
    for chunk in np.array_split(order, bins):
        sd[chunk] = np.sqrt(np.mean(errors[chunk] ** 2))
    return sd


def oracle_prior(
    truth: np.ndarray, sd: np.ndarray, mask: np.ndarray, prior: np.ndarray, seed: int
) -> np.ndarray:
    """Per-cell mean squared error of the posterior mean under the true ``prior`` (``(cells, grid)``) given
    one estimate ``truth + sd · z`` per cell (Monte Carlo, 200 draws of ``z``); 0 outside ``mask``."""
    rng = np.random.default_rng(seed)
    mse = np.zeros(len(truth))
    for i in np.flatnonzero(mask):
        x = truth[i] + sd[i] * rng.standard_normal(200)
        log_like = -0.5 * ((x[:, None] - GAIN_GRID[None, :]) / sd[i]) ** 2
        post = prior[i][None, :] * np.exp(log_like - log_like.max(1, keepdims=True))
        mean = (post * GAIN_GRID).sum(1) / post.sum(1)
        mse[i] = np.mean((mean - truth[i]) ** 2)
    return mse


def neighbour_sums(events: np.ndarray) -> np.ndarray:
    """Sum of the 26 neighbours (3 × 3 × 3 box minus the cell) of every cell of ``(N, L, H, W)`` events."""
    padded = np.pad(events, ((0, 0), (1, 1), (1, 1), (1, 1)))
    _, layers, height, width = events.shape
    total = np.zeros_like(events)
    for a in range(3):
        for b in range(3):
            for c in range(3):
                total += padded[:, a : a + layers, b : b + height, c : c + width]
    return total - events


def correlations(reference: np.ndarray) -> dict[str, float]:
    """Median over cells of the spread of log x_i, alone and over its neighbours' and the event's sum."""
    x = reference.astype(np.float64)
    flat, near = x.reshape(len(x), -1), neighbour_sums(x).reshape(len(x), -1)
    event = flat.sum(1)
    rows = []
    for i in range(flat.shape[1]):
        hit = (flat[:, i] > 0) & (near[:, i] > 1e-3)
        if hit.sum() < 100:
            continue
        lx, ln, le = np.log(flat[hit, i]), np.log(near[hit, i]), np.log(event[hit])
        rows.append(
            (lx.std(), (lx - ln).std(), (lx - le).std(), np.corrcoef(lx, ln)[0, 1], np.corrcoef(lx, le)[0, 1])
        )
    m = np.median(np.array(rows), axis=0)
    return {
        "sd_log_x": float(m[0]),
        "sd_log_x_over_neighbours": float(m[1]),
        "sd_log_x_over_event": float(m[2]),
        "corr_neighbours": float(m[3]),
        "corr_event": float(m[4]),
        "cells": len(rows),
    }


def run(name: str, seed: int, events: int) -> dict:
    setting = SETTINGS[name]
    data = _dataset(setting, seed, events)
    ref = data.reference.reshape(len(data.reference), -1)
    chg = data.changed.reshape(len(data.changed), -1)
    truth = data.truth.reshape(-1)
    mask = active_cells(data.reference).reshape(-1)
    hits = (ref != 0).sum(0)
    readout = {"noise": setting.get("noise"), "threshold": setting.get("threshold")}
    out: dict = {"setting": name, "seed": seed, "events": events}
    for label, method, pool in (
        ("ratio-of-means", "ratio-of-means", False),
        ("quantile", "quantile", False),
        ("quantile+pool", "quantile", True),
    ):
        est = fit(
            data.reference, data.changed, model="cell-gain", method=method, seed=seed, pool=pool, **readout
        )
        coefficients = est.coefficients.reshape(-1)
        out[label] = rmse(coefficients, truth, mask)
        out[f"{label}_by_occupancy"] = by_occupancy((coefficients - truth) ** 2, hits, mask)
        if est.uncertainty is not None:
            out[f"{label}_z_rms"] = error_over_sd(coefficients - truth, est.uncertainty.reshape(-1), mask)
        if label == "quantile":
            per_cell_errors = coefficients - truth
    # the bound holds where the hits do not depend on the gain: no noise, no threshold
    bound_var = None
    if not (readout["noise"] or readout["threshold"]):
        for key, scale in (("bound_silverman", 1.0), ("bound_half_bandwidth", 0.5)):
            bound_var = bound_variance(ref, chg, truth, mask, scale)
            out[key] = float(np.sqrt(np.mean(bound_var[mask])))
            out[f"{key}_by_occupancy"] = by_occupancy(bound_var, hits, mask)
    prior = true_prior(data.meta, data.reference)
    if prior is not None:
        exact = truth.astype(np.float64)
        noise = {"oracle_prior": binned_sd(per_cell_errors, hits, mask)}
        if bound_var is not None:  # the last one computed: half bandwidth
            noise["oracle_prior_at_bound"] = np.sqrt(bound_var)
        for key, sd in noise.items():
            scored = mask & (sd > 0)
            mse = oracle_prior(exact, sd, scored, prior, seed)
            out[key] = float(np.sqrt(np.mean(mse[scored])))
            out[f"{key}_by_occupancy"] = by_occupancy(mse, hits, scored)
    out["correlations"] = correlations(data.reference)
    bound = (
        f"bound {out['bound_silverman']:.4f} (half bandwidth {out['bound_half_bandwidth']:.4f})"
        if "bound_silverman" in out
        else "bound n/a (noise or threshold)"
    )
    quarters = " ".join(f"{v:.4f}" for v in out["quantile_by_occupancy"]["quarter_rmse"])
    pooled = " ".join(f"{v:.4f}" for v in out["quantile+pool_by_occupancy"]["quarter_rmse"])
    z_rms = out.get("quantile+pool_z_rms", float("nan"))
    print(
        f"{name} seed={seed}: ratio {out['ratio-of-means']:.4f}  quantile {out['quantile']:.4f}  {bound}  "
        f"quantile by quarter of occupancy {quarters}, with the busier three exact "
        f"{out['quantile_by_occupancy']['rmse_busier_exact']:.4f}  pooled {out['quantile+pool']:.4f} "
        f"(by quarter {pooled}; error / posterior sd: rms {z_rms:.2f})  "
        f"oracle prior {out.get('oracle_prior', float('nan')):.4f} "
        f"(at the bound {out.get('oracle_prior_at_bound', float('nan')):.4f})  "
        f"spreads {out['correlations']}",
        file=sys.stderr,
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="calorimeter-paper-uniform,calorimeter-paper")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = [run(n, s, args.events) for n in args.settings.split(",") if n for s in range(args.seeds)]
    doc = {"benchmark": "information", "results": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
