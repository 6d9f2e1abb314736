"""Cell readout: gain, Gaussian electronic noise and zero suppression.

``measured = gain * deposit + N(0, σ²)`` on every cell, then, when a threshold ``T`` is set, every value
``<= T`` is set to 0. Without a threshold the pedestal-subtracted readout keeps small negative values.

Realistic settings. Deposits are visible energies in MeV. For the default π⁻ beam (exponential spectrum,
mean 10 GeV, 1–100 GeV) the median *non-zero* cell deposit is about 0.26 MeV for a 6 × 16 × 16 geometry with
3 plates per layer (5 % of the cells non-zero per event) and about 0.24 MeV for the 40 × 16 × 16 single-plate
geometry (2 % non-zero); one MIP crossing one 5 mm tile leaves about 1.0 MeV. A reasonable electronic noise is
a few per cent of that median, e.g. ``σ ≈ 0.013 MeV`` (5 %), with a zero-suppression threshold
``T ≈ 3σ ≈ 0.04 MeV``. :func:`typical_noise` and
:func:`typical_readout` compute these scales for any geometry and beam.

Examples
--------
>>> x = np.array([[0.0, 0.5, 2.0]], dtype=np.float32)
>>> apply_readout(x, 0.5, Readout(), rng=np.random.default_rng(0))
array([[0.  , 0.25, 1.  ]], dtype=float32)
>>> apply_readout(x, 1.0, Readout(noise=0.01, threshold=0.6), rng=np.random.default_rng(0))
array([[0.       , 0.       , 1.9957343]], dtype=float32)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftcal.sim.geometry import Beam, CalorimeterGeometry

_BLOCK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Readout:
    """Readout settings.

    Parameters
    ----------
    noise : float
        Standard deviation of the Gaussian electronic noise added to every cell (same unit as the deposits).
    threshold : float or None
        Zero-suppression threshold: values ``<= threshold`` are set to 0. ``None`` disables it.
    """

    noise: float = 0.0
    threshold: float | None = None

    def __post_init__(self) -> None:
        if not np.isfinite(self.noise) or self.noise < 0:
            raise ValueError("noise must be a finite value >= 0")
        if self.threshold is not None and not np.isfinite(self.threshold):
            raise ValueError("threshold must be finite or None")


def apply_readout(
    deposits: np.ndarray,
    gain: np.ndarray | float,
    readout: Readout,
    *,
    rng: np.random.Generator,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Apply gain, noise and zero suppression; return float32 readout of the same shape.

    Parameters
    ----------
    deposits : ndarray, shape (n, *cells)
        True deposits.
    gain : float or ndarray broadcastable to ``cells``
        Per-cell gain (e.g. the aging field ``A``).
    readout : Readout
    rng : numpy.random.Generator
    out : ndarray, optional
        float32 array of the same shape to write into (may be ``deposits`` itself for in-place use).
    """
    deposits = np.asarray(deposits)
    g = np.asarray(gain, dtype=np.float32)
    if g.ndim > deposits.ndim - 1 or np.broadcast_shapes(g.shape, deposits.shape[1:]) != deposits.shape[1:]:
        raise ValueError(f"gain shape {g.shape} does not broadcast to cell shape {deposits.shape[1:]}")
    if out is None:
        out = np.empty(deposits.shape, dtype=np.float32)
    elif out.shape != deposits.shape or out.dtype != np.float32:
        raise ValueError("out must be a float32 array of the deposits' shape")
    n = deposits.shape[0]
    per_event = max(1, int(np.prod(deposits.shape[1:], dtype=np.int64)))
    step = max(1, _BLOCK_ELEMENTS // per_event)
    for lo in range(0, n, step):
        block = np.multiply(deposits[lo : lo + step], g, dtype=np.float32)
        if readout.noise > 0:
            block += np.float32(readout.noise) * rng.standard_normal(block.shape, dtype=np.float32)
        if readout.threshold is not None:
            block[block <= readout.threshold] = 0.0
        out[lo : lo + step] = block
    return out


def typical_noise(
    geometry: CalorimeterGeometry,
    beam: Beam,
    *,
    fraction: float = 0.05,
    n_events: int = 2000,
    seed: int = 0,
) -> float:
    """A realistic electronic-noise σ: ``fraction`` of the median non-zero true cell deposit.

    Parameters
    ----------
    geometry, beam
        Detector and beam to estimate the deposit scale for (a short simulation of ``n_events``).
    fraction : float
        Default 5 %.

    Examples
    --------
    >>> g = CalorimeterGeometry(layers=6, plates_per_layer=3)
    >>> round(typical_noise(g, Beam()), 3)
    0.006
    """
    from driftcal.sim.showers import simulate_showers

    x = simulate_showers(n_events, geometry, beam, rng=np.random.default_rng(seed))
    nz = x[x > 0]
    return float(fraction * np.median(nz)) if nz.size else 0.0


def typical_readout(
    geometry: CalorimeterGeometry,
    beam: Beam,
    *,
    fraction: float = 0.05,
    n_sigma: float = 3.0,
    n_events: int = 2000,
    seed: int = 0,
) -> Readout:
    """:class:`Readout` with :func:`typical_noise` and a threshold of ``n_sigma`` noise σ."""
    sigma = typical_noise(geometry, beam, fraction=fraction, n_events=n_events, seed=seed)
    return Readout(noise=sigma, threshold=n_sigma * sigma)
