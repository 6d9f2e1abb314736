"""The readout-aware forward model: what aging does to a reference reading.

A reference reading is ``r = e + n`` with deposit ``e`` and electronic noise ``n ~ N(0, σ²)``,
kept only where ``r > T`` (zero suppression). An aged cell of gain ``g`` reads ``g·e + n'``.
Scaling the reference by ``g`` scales its noise to ``g·σ``; the forward model restores the missing
``sqrt(1 − g²)·σ`` and then applies the threshold again, so that a deposit pushed below threshold
by aging disappears exactly as in the aged readout:

    y = g·r + sqrt(max(1 − g², 0))·σ·z      (z ~ N(0, 1); only where r was read out)
    y = y · [y > T]                           (when a threshold is set)

Reference entries that were suppressed (``r = 0`` with a threshold) stay 0: their deposit is
unknown and an aged cell reads even less. One thing is left out: a pure-noise entry passes the
threshold in the aged readout as often as in the reference (``P(n' > T)``), while the model scales the
reference's own noise hits down by the gain. Modelling those passes removed the bias this leaves in rarely
hit cells of low gain, but made their fits noisier, and was not adopted (``docs/results.md``, "Not
adopted: the pedestal in the forward model").

>>> import torch
>>> r = torch.tensor([[0.0, 1.0, 4.0]])
>>> g = torch.tensor([0.5, 0.5, 0.5])
>>> forward_readout(r, g, threshold=1.0).tolist()
[[0.0, 0.0, 2.0]]
"""

from __future__ import annotations

import torch


def forward_readout(
    reference: torch.Tensor,
    gain: torch.Tensor,
    *,
    noise: float | None = None,
    threshold: float | None = None,
    z: torch.Tensor | None = None,
    sharpness: float | None = None,
) -> torch.Tensor:
    """Apply gain, noise restoration and zero suppression to reference readings.

    Parameters
    ----------
    reference : (N, *cells) reference readings.
    gain : (*cells) gains, broadcast over events.
    noise : electronic noise σ of the readout (same units as the readings), or None.
    threshold : zero-suppression threshold T, or None when the readout keeps everything.
    z : standard normal draws of the reference's shape for the restored noise (common random numbers);
        drawn fresh when None.
    sharpness : when given, the threshold keeps its exact values but passes the gradient of a sigmoid
        step of this width (in units of the readings), so that θ also learns from readings that cross
        the threshold (a straight-through estimator).
    """
    y = reference * gain
    if noise is not None and noise > 0:
        if z is None:
            z = torch.randn_like(reference)
        # clamp away from 0: d/dg sqrt(1 - g²) is infinite at g = 1
        extra = torch.sqrt(torch.clamp(1.0 - gain * gain, min=1e-6)) * noise
        restored = extra * z
        if threshold is not None:
            restored = restored * (reference != 0)
        y = y + restored
    if threshold is not None:
        hard = y * (y > threshold)
        if sharpness is not None and sharpness > 0:
            # straight-through: the values stay exactly zero-suppressed, the gradient is the sigmoid's
            soft = y * torch.sigmoid((y - threshold) / sharpness)
            y = soft + (hard - soft).detach()
        else:
            y = hard
    return y
