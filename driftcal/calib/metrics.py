"""Evaluation metrics for fitted coefficients against injected truth, and reporting helpers.

All functions accept numpy arrays or torch tensors; masks select the cells that count (e.g. the
active cells of a calorimeter).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from driftcal.errors import InputError


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _pair(estimate: Any, truth: Any, mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    est, tru = _np(estimate), _np(truth)
    if est.shape != tru.shape:
        raise InputError(f"estimate has shape {est.shape}, truth {tru.shape}")
    if mask is not None:
        m = np.asarray(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask, dtype=bool)
        if m.shape != est.shape:
            raise InputError(f"mask has shape {m.shape}, coefficients {est.shape}")
        est, tru = est[m], tru[m]
    est, tru = est.reshape(-1), tru.reshape(-1)
    if est.size == 0:
        raise InputError("no cells selected")
    return est, tru


def rmse(estimate: Any, truth: Any, mask: Any = None) -> float:
    """Root-mean-square error of ``estimate`` against ``truth`` over the cells where ``mask`` is True.

    >>> round(rmse([1.0, 0.8, 0.5], [1.0, 0.9, 0.9], mask=[True, True, False]), 6)
    0.070711
    """
    est, tru = _pair(estimate, truth, mask)
    return float(np.sqrt(np.mean((est - tru) ** 2)))


def r2(estimate: Any, truth: Any, mask: Any = None) -> float:
    """Coefficient of determination ``1 − Σ(est − truth)² / Σ(truth − mean(truth))²`` over masked cells.

    1 is perfect, 0 is no better than predicting the mean truth, negative is worse; NaN when the truth
    is constant over the selected cells.

    >>> round(r2([0.9, 0.8, 0.7], [1.0, 0.8, 0.6]), 6)
    0.75
    >>> round(r2([0.9, 0.8, 0.0], [1.0, 0.8, 0.6], mask=[True, True, False]), 6)
    0.5
    """
    est, tru = _pair(estimate, truth, mask)
    ss_tot = float(np.sum((tru - tru.mean()) ** 2))
    if ss_tot == 0.0:
        return math.nan
    return 1.0 - float(np.sum((est - tru) ** 2)) / ss_tot


def abs_error(estimate: Any, truth: Any) -> np.ndarray:
    """Per-coefficient absolute error ``|estimate − truth|`` (float64, same shape).

    >>> abs_error([0.9, 1.1], [1.0, 1.0]).round(6).tolist()
    [0.1, 0.1]
    """
    est, tru = _np(estimate), _np(truth)
    if est.shape != tru.shape:
        raise InputError(f"estimate has shape {est.shape}, truth {tru.shape}")
    return np.abs(est - tru)


def active_cells(reference: Any, min_hits: int = 50, zero_suppressed: bool | None = None) -> np.ndarray:
    """Cells of ``(N, *cells)`` readings with a visible signal, as a bool array of shape ``cells``.

    Zero-suppressed data (a 0 means "not read out"): cells with at least ``min_hits`` readings > 0.
    Data without zero suppression (pedestal-subtracted, noise on every reading): cells whose mean
    reading exceeds 5 standard errors of that mean (``5·std/√N``), and that have at least ``min_hits``
    readings > 0. ``zero_suppressed=None`` decides from the data: no negative reading means
    zero-suppressed (noise-free data behaves the same under both rules apart from the 5σ test).

    >>> import numpy as np
    >>> x = np.zeros((100, 3)); x[:60, 0] = 1.0; x[:10, 1] = 1.0
    >>> active_cells(x).tolist()
    [True, False, False]
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(0.0, 1.0, (10000, 2)) + [0.0, 0.2]
    >>> active_cells(y).tolist()
    [False, True]
    """
    x = _np(reference)
    if x.ndim < 1 or x.shape[0] == 0:
        raise InputError("reference must have at least one event")
    hits = (x > 0).sum(axis=0) >= min_hits
    if zero_suppressed is None:
        zero_suppressed = bool(np.all(x >= 0))
    if zero_suppressed:
        return hits
    n = x.shape[0]
    stderr = x.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(x.shape[1:], np.inf)
    return hits & (x.mean(axis=0) > 5.0 * stderr)


def mean_std(values: Any) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) for reporting over seeds.

    >>> [round(v, 6) for v in mean_std([0.010, 0.012, 0.014])]
    [0.012, 0.002]
    """
    v = _np(values).reshape(-1)
    if v.size == 0:
        raise InputError("no values")
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(v.mean()), std
