"""Classical per-plane shift estimators for the tracker, reported in the frame of the outer planes.

Hits are ``(N, P)`` coordinates on P planes at positions ``z`` (default: equally spaced in [0, 1]).
The physical coefficient is ``Δx`` with ``changed ≈ reference + Δx``. The first and last planes define
the frame: a raw per-plane estimate ``s_k`` is reported as ``s_k − [(1 − w_k) s_1 + w_k s_P]`` with
``w_k = (z_k − z_1)/(z_P − z_1)``, so their coefficients are exactly 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from driftcal.calib.baselines._common import as_numpy, check_pair, plane_weights, to_frame
from driftcal.errors import InputError


def _hits(reference: Any, changed: Any) -> tuple[np.ndarray, np.ndarray]:
    ref = as_numpy(reference, "reference")
    chg = as_numpy(changed, "changed")
    check_pair(ref, chg)
    if ref.ndim != 2:
        raise InputError(f"tracker hits must be (N, P), got shape {ref.shape}")
    return ref, chg


class MeanShift:
    """Per-plane difference of the marginal means, in the frame of the outer planes.

    Parameters
    ----------
    z : plane positions (P,), default equally spaced in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def tracks(n):
    ...     x0, slope = rng.uniform(0, 1, n), rng.uniform(-0.2, 0.2, n)
    ...     return x0[:, None] + slope[:, None] * np.array([0.0, 0.5, 1.0])
    >>> MeanShift().fit(tracks(200000), tracks(200000) + [0.0, 0.01, 0.0]).round(2).tolist()
    [0.0, 0.01, 0.0]

    References
    ----------
    S. Ali et al., *Correcting Sensor-Induced Distribution Drift with Wasserstein Adversarial
    Learning* (2026), tracker case study.
    """

    def __init__(self, z: Any = None) -> None:
        self.z = None if z is None else np.asarray(z, dtype=np.float64)

    def fit(self, reference: Any, changed: Any) -> np.ndarray:
        """Fit per-plane shifts from ``(N_ref, P)`` and ``(N_chg, P)`` hits."""
        ref, chg = _hits(reference, changed)
        self.coefficients_ = to_frame(chg.mean(0) - ref.mean(0), self.z)
        return self.coefficients_


class QuantileShift:
    """Per-plane 1-D W1 fit of a pure shift between the marginals, in the frame of the outer planes.

    The shift minimizing ``mean_u |Q_chg(u) − Q_ref(u) − s|`` is the median over u of
    ``Q_chg(u) − Q_ref(u)`` (interpolated quantiles at ``n_quantiles`` mid-point levels).

    Parameters
    ----------
    z : plane positions (P,), default equally spaced in [0, 1].
    n_quantiles : number of quantile levels u = (k + ½)/n_quantiles.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def tracks(n):
    ...     x0, slope = rng.uniform(0, 1, n), rng.uniform(-0.2, 0.2, n)
    ...     return x0[:, None] + slope[:, None] * np.array([0.0, 0.5, 1.0])
    >>> QuantileShift().fit(tracks(200000), tracks(200000) + [0.0, 0.01, 0.0]).round(2).tolist()
    [0.0, 0.01, 0.0]

    References
    ----------
    C. Villani, *Optimal Transport: Old and New* (2009): W1 on the line as the L1 distance of quantile
    functions.
    """

    def __init__(self, z: Any = None, n_quantiles: int = 512) -> None:
        if n_quantiles < 1:
            raise InputError(f"n_quantiles must be positive, got {n_quantiles}")
        self.z = None if z is None else np.asarray(z, dtype=np.float64)
        self.n_quantiles = n_quantiles

    def fit(self, reference: Any, changed: Any) -> np.ndarray:
        """Fit per-plane shifts from ``(N_ref, P)`` and ``(N_chg, P)`` hits."""
        ref, chg = _hits(reference, changed)
        u = (np.arange(self.n_quantiles) + 0.5) / self.n_quantiles
        diff = np.quantile(chg, u, axis=0) - np.quantile(ref, u, axis=0)
        self.coefficients_ = to_frame(np.median(diff, axis=0), self.z)
        return self.coefficients_


class ResidualShift:
    """Residual-based shifts: the statistical floor for straight-line tracks.

    Each event's residual on plane k is ``r_k = h_k − [(1 − w_k) h_1 + w_k h_P]``, its offset from the
    straight line through the outer hits; ``Δx_k = mean(r_k | changed) − mean(r_k | reference)`` on the
    inner planes, 0 on the outer ones. The track-to-track spread (entry point, slope) cancels event by
    event, leaving only the hit noise.

    Parameters
    ----------
    z : plane positions (P,), default equally spaced in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def tracks(n):
    ...     x0, slope = rng.uniform(0, 1, n), rng.uniform(-0.2, 0.2, n)
    ...     hits = x0[:, None] + slope[:, None] * np.array([0.0, 0.5, 1.0])
    ...     return hits + rng.normal(0.0, 1e-3, hits.shape)
    >>> ResidualShift().fit(tracks(20000), tracks(20000) + [0.0, 0.01, 0.0]).round(4).tolist()
    [0.0, 0.01, 0.0]

    References
    ----------
    V. Blobel, *Software alignment for tracking detectors*, NIM A 566 (2006) 5 — alignment from track
    residuals.
    """

    def __init__(self, z: Any = None) -> None:
        self.z = None if z is None else np.asarray(z, dtype=np.float64)

    def fit(self, reference: Any, changed: Any) -> np.ndarray:
        """Fit per-plane shifts from ``(N_ref, P)`` and ``(N_chg, P)`` hits."""
        ref, chg = _hits(reference, changed)
        w = plane_weights(ref.shape[1], self.z)

        def mean_residual(h: np.ndarray) -> np.ndarray:
            return (h - ((1.0 - w) * h[:, :1] + w * h[:, -1:])).mean(0)

        shift = mean_residual(chg) - mean_residual(ref)
        shift[0] = shift[-1] = 0.0
        self.coefficients_ = shift
        return self.coefficients_
