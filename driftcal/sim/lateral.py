"""GFlash lateral profile: core + tail, sampled per energy spot.

``f(r) = p · 2r R_c²/(r² + R_c²)² + (1-p) · 2r R_t²/(r² + R_t²)²`` with ``r`` in Molière radii and
``τ = t/T`` the depth in units of the shower maximum:

* ``R_c = z1 + z2 τ``, ``z1 = 0.0251 + 0.00319 ln E``, ``z2 = 0.1162 - 0.000381 Z``;
* ``R_t = k1 [exp(k3 (τ - k2)) + exp(k4 (τ - k2))]``, ``k1 = 0.659 - 0.00309 Z``, ``k2 = 0.645``,
  ``k3 = -2.59``, ``k4 = 0.3585 + 0.0412 ln E``;
* ``p = p1 exp((p2 - τ)/p3 - exp((p2 - τ)/p3))``, ``p1 = 2.632 - 0.00094 Z``, ``p2 = 0.401 + 0.00187 Z``,
  ``p3 = 1.313 - 0.0686 ln E``.

Each term ``2r R²/(r² + R²)²`` has the closed-form CDF ``r²/(r² + R²)``, so a radius is drawn exactly by
picking the core with probability ``p`` and inverting: ``r = R sqrt(u / (1 - u))``. The azimuth is uniform.
For the non-EM part of hadronic showers the same form is used with the radii scaled by
``CalorimeterGeometry.hadronic_lateral_scale`` (see ``showers.py``).

Examples
--------
>>> rc, rt, p = lateral_parameters(np.array([1.0]), 10.0, 82.0)
>>> round(float(rc[0]), 4), round(float(rt[0]), 3), round(float(p[0]), 3)
(0.1174, 0.638, 0.88)
>>> r = sample_radii(np.full(20000, 1.0), 10.0, 82.0, np.random.default_rng(0))
>>> bool(0.05 < np.median(r) < 0.5)
True

References
----------
G. Grindhammer and S. Peters, hep-ex/0001020, section on the radial profile.
"""

from __future__ import annotations

import numpy as np

_TAU_MAX = 20.0


def lateral_parameters(
    tau: np.ndarray, energy_gev: np.ndarray | float, z: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GFlash ``(R_c, R_t, p)`` at depth ``τ`` (units of the shower maximum), energy ``E`` (GeV), ``Z``.

    Parameters
    ----------
    tau : ndarray
    energy_gev : ndarray or float
        Broadcastable against ``tau``.
    z : float
        (Effective) atomic number.
    """
    tau = np.clip(np.asarray(tau, dtype=np.float64), 0.0, _TAU_MAX)
    lne = np.log(np.asarray(energy_gev, dtype=np.float64))
    z1 = 0.0251 + 0.00319 * lne
    z2 = 0.1162 - 0.000381 * z
    rc = z1 + z2 * tau
    k1 = 0.659 - 0.00309 * z
    k2 = 0.645
    k3 = -2.59
    k4 = 0.3585 + 0.0412 * lne
    rt = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    p1 = 2.632 - 0.00094 * z
    p2 = 0.401 + 0.00187 * z
    p3 = 1.313 - 0.0686 * lne
    x = (p2 - tau) / p3
    p = np.clip(p1 * np.exp(x - np.exp(x)), 0.0, 1.0)
    return rc, rt, p


def lateral_pdf(r: np.ndarray, tau: float, energy_gev: float, z: float) -> np.ndarray:
    """Normalized radial density ``f(r)`` (per unit r, r in Molière radii)."""
    rc, rt, p = lateral_parameters(np.asarray(tau), energy_gev, z)
    r = np.asarray(r, dtype=np.float64)
    core = 2 * r * rc**2 / (r**2 + rc**2) ** 2
    tail = 2 * r * rt**2 / (r**2 + rt**2) ** 2
    return p * core + (1 - p) * tail


def sample_radii(
    tau: np.ndarray, energy_gev: np.ndarray | float, z: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw one radius (Molière radii) per entry of ``tau`` from ``f(r)``."""
    rc, rt, p = lateral_parameters(tau, energy_gev, z)
    n = np.shape(rc)
    radius = np.where(rng.random(n) < p, rc, rt)
    u = rng.random(n)
    return radius * np.sqrt(u / (1.0 - u))


def sample_offsets(
    tau: np.ndarray,
    energy_gev: np.ndarray | float,
    z: float,
    scale: float | np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Transverse offsets ``(dx, dy)`` = radius × ``scale`` at a uniform azimuth."""
    r = sample_radii(tau, energy_gev, z, rng) * scale
    phi = rng.uniform(0.0, 2.0 * np.pi, np.shape(r))
    return r * np.cos(phi), r * np.sin(phi)
