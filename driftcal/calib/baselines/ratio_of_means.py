"""The paper's classical baseline: per-cell ratio of mean responses."""

from __future__ import annotations

from typing import Any

import numpy as np

from driftcal.calib.baselines._common import as_numpy, check_pair
from driftcal.errors import InputError


class RatioOfMeans:
    """Per-cell gain ``A_i = mean(changed_i) / mean(reference_i)``, clipped to ``alpha_range``.

    Exact in distribution for a pure scale ``changed = A · reference``; biased low on zero-suppressed
    data, because an aged cell loses the small deposits it pushes below threshold (the surviving
    mean is inflated), and the reference loses fewer.

    Parameters
    ----------
    alpha_range : (lo, hi) bounds the gains are clipped to.
    min_mean : cells whose reference mean is at most this (no visible signal) get gain 1.0.

    Attributes
    ----------
    coefficients_ : float64 array of shape ``cells``, the fitted gains.
    identifiable_ : bool array of shape ``cells``, False where the reference mean was too small.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.exponential(1.0, size=(20000, 2))
    >>> chg = np.array([0.8, 0.5]) * rng.exponential(1.0, size=(30000, 2))
    >>> RatioOfMeans().fit(ref, chg).round(2).tolist()
    [0.8, 0.5]

    References
    ----------
    S. Ali et al., *Correcting Sensor-Induced Distribution Drift with Wasserstein Adversarial
    Learning* (2026): the "ratio of per-cell mean responses" baseline.
    """

    def __init__(self, alpha_range: tuple[float, float] = (0.05, 1.5), min_mean: float = 1e-9) -> None:
        lo, hi = alpha_range
        if not lo < hi:
            raise InputError(f"alpha_range must be increasing, got {alpha_range}")
        self.alpha_range = (float(lo), float(hi))
        self.min_mean = float(min_mean)

    def fit(self, reference: Any, changed: Any) -> np.ndarray:
        """Fit per-cell gains from ``(N_ref, *cells)`` reference and ``(N_chg, *cells)`` changed data."""
        ref = as_numpy(reference, "reference")
        chg = as_numpy(changed, "changed")
        check_pair(ref, chg)
        m_ref = ref.mean(axis=0)
        m_chg = chg.mean(axis=0)
        ok = m_ref > self.min_mean
        gain = np.ones_like(m_ref)
        np.divide(m_chg, m_ref, out=gain, where=ok)
        gain = np.where(ok, np.clip(gain, *self.alpha_range), 1.0)
        self.identifiable_ = np.asarray(ok, dtype=bool)
        self.coefficients_ = np.asarray(gain, dtype=np.float64)
        return self.coefficients_
