"""Helpers shared by the baseline estimators: input coercion and the tracker frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from driftcal.errors import InputError


def as_numpy(x: Any, name: str = "array") -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor or nested list) as a float64 numpy array with events first."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 1 or a.shape[0] == 0:
        raise InputError(f"{name} must have at least one event, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or Inf")
    return a


def check_pair(reference: np.ndarray | torch.Tensor, changed: np.ndarray | torch.Tensor) -> None:
    """Raise InputError unless both datasets have the same per-event shape."""
    if tuple(reference.shape[1:]) != tuple(changed.shape[1:]):
        raise InputError(
            f"reference events have shape {tuple(reference.shape[1:])}, changed {tuple(changed.shape[1:])}"
        )


def plane_weights(n_planes: int, z: Any = None) -> np.ndarray:
    """Interpolation weights ``w_k = (z_k − z_1)/(z_P − z_1)``; z defaults to equal spacing in [0, 1]."""
    if n_planes < 2:
        raise InputError(f"the frame needs at least 2 planes, got {n_planes}")
    zz = np.linspace(0.0, 1.0, n_planes) if z is None else np.asarray(z, dtype=np.float64).reshape(-1)
    if zz.shape != (n_planes,):
        raise InputError(f"z has {zz.size} positions for {n_planes} planes")
    if zz[-1] == zz[0]:
        raise InputError("first and last planes must be at different z")
    return (zz - zz[0]) / (zz[-1] - zz[0])


def to_frame(shifts: np.ndarray, z: Any = None) -> np.ndarray:
    """Express per-plane shifts in the frame of the first and last planes (their shift becomes exactly 0).

    >>> to_frame(np.array([0.1, 0.3, 0.1])).round(12).tolist()
    [0.0, 0.2, 0.0]
    """
    s = np.asarray(shifts, dtype=np.float64)
    w = plane_weights(s.shape[-1], z)
    out = s - ((1.0 - w) * s[..., :1] + w * s[..., -1:])
    out[..., 0] = 0.0
    out[..., -1] = 0.0
    return out
