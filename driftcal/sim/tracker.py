"""Toy tracker: P planes measuring one coordinate of straight tracks.

A track enters the first plane at ``x0 ~ U(0, width)``. A fraction ``inclined_fraction`` of the tracks is
inclined with slope ``~ U(-max_slope, max_slope)``; the others are perpendicular to the planes (slope 0).
The measured hit on plane ``p`` is ``x0 + slope (z_p - z_0) + shift_p + N(0, σ²)``: a plane shifted by
``shift_p`` reports positions larger by ``shift_p`` (the paper's ``T(h) = (h1, h2 + Δx2, h3)`` maps the
nominal to the shifted detector).

The residual of an inner plane with respect to the line through the first and last hits,
``h_p - [(1 - w) h_1 + w h_P]`` with ``w = (z_p - z_1)/(z_P - z_1)``, has mean ``shift_p`` (first and last
shifts 0) and standard deviation ``σ sqrt(1 + (1 - w)² + w²)`` (``σ sqrt(1.5)`` for the middle plane).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> h = simulate_tracks(4, TrackerGeometry(), noise=0.0, shifts=np.array([0, 0.01, 0]), rng=rng)
>>> h.shape, h.dtype
((4, 3), dtype('float32'))
>>> np.round(residuals(h, TrackerGeometry()), 6)
array([0.01, 0.01, 0.01, 0.01], dtype=float32)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrackerGeometry:
    """Plane positions and track mix.

    Parameters
    ----------
    z : tuple of float
        Plane positions along the beam, strictly increasing (default ``(0.0, 0.5, 1.0)``).
    width : float
        Width of the entry region on the first plane (default 1).
    inclined_fraction : float
        Fraction of inclined tracks (default 0.5).
    max_slope : float
        Inclined slopes are uniform in ``[-max_slope, max_slope]`` (default 0.5).
    """

    z: tuple[float, ...] = (0.0, 0.5, 1.0)
    width: float = 1.0
    inclined_fraction: float = 0.5
    max_slope: float = 0.5

    def __post_init__(self) -> None:
        z = tuple(float(v) for v in self.z)
        object.__setattr__(self, "z", z)
        if len(z) < 2 or any(b <= a for a, b in itertools.pairwise(z)):
            raise ValueError("z needs at least 2 strictly increasing plane positions")
        if self.width <= 0 or not 0 <= self.inclined_fraction <= 1 or self.max_slope < 0:
            raise ValueError("need width > 0, 0 <= inclined_fraction <= 1, max_slope >= 0")

    @property
    def n_planes(self) -> int:
        return len(self.z)


def simulate_tracks(
    n: int,
    geometry: TrackerGeometry,
    *,
    noise: float,
    shifts: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Hits ``(n, P)`` float32 of ``n`` tracks.

    Parameters
    ----------
    n : int
    geometry : TrackerGeometry
    noise : float
        Gaussian hit resolution σ.
    shifts : ndarray of shape (P,), optional
        Shift of each plane (``None``: nominal detector).
    rng : numpy.random.Generator
    """
    z = np.asarray(geometry.z)
    x0 = rng.uniform(0.0, geometry.width, n)
    inclined = rng.random(n) < geometry.inclined_fraction
    slope = np.where(inclined, rng.uniform(-geometry.max_slope, geometry.max_slope, n), 0.0)
    hits = x0[:, None] + slope[:, None] * (z - z[0])[None, :]
    if shifts is not None:
        s = np.asarray(shifts, dtype=np.float64).reshape(-1)
        if s.shape[0] != z.shape[0]:
            raise ValueError(f"shifts has {s.shape[0]} entries for {z.shape[0]} planes")
        hits += s[None, :]
    if noise < 0:
        raise ValueError("noise must be >= 0")
    if noise > 0:
        hits += noise * rng.standard_normal(hits.shape)
    return hits.astype(np.float32)


def residuals(hits: np.ndarray, geometry: TrackerGeometry, plane: int = 1) -> np.ndarray:
    """``h_plane`` minus the straight-line interpolation between the first and last planes."""
    z = geometry.z
    w = (z[plane] - z[0]) / (z[-1] - z[0])
    return hits[:, plane] - ((1.0 - w) * hits[:, 0] + w * hits[:, -1])


def default_shifts(geometry: TrackerGeometry, rng: np.random.Generator) -> np.ndarray:
    """Default truth: 3 planes → ``[0, 0.01, 0]``; more planes → first and last 0, inner planes of magnitude
    uniform in [0.005, 0.015] with a random sign; 2 planes → zeros. float32."""
    p = geometry.n_planes
    s = np.zeros(p, dtype=np.float64)
    if p == 3:
        s[1] = 0.01
    elif p > 3:
        mag = rng.uniform(0.005, 0.015, p - 2)
        s[1:-1] = np.where(rng.random(p - 2) < 0.5, -mag, mag)
    return s.astype(np.float32)
