"""Fixed input normalizations for critics, fitted once on data and stored as buffers.

A WGAN critic is 1-Lipschitz in the space it sees, so the scale of each input decides how much
its mismatch can weigh. Per-cell standardization gives every cell the same say; whitening also
decorrelates small inputs (tracker hits), which exposes narrow residual directions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class Standardize(nn.Module):
    """Per-feature ``(x − μ) / s``, with ``μ`` and ``s`` estimated by :meth:`fit`.

    >>> import torch
    >>> s = Standardize((2,)).fit(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))
    >>> s(torch.tensor([[1.0, 20.0]])).tolist()
    [[0.0, 0.0]]
    """

    def __init__(self, shape: Sequence[int], *, min_scale: float = 1e-6) -> None:
        super().__init__()
        self.min_scale = min_scale
        self.register_buffer("mean", torch.zeros(tuple(shape)))
        self.register_buffer("scale", torch.ones(tuple(shape)))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> Standardize:
        """Estimate mean and scale per feature from a sample ``(N, *shape)``."""
        x = x.float()
        self.mean.copy_(x.mean(0))
        std = x.std(0)
        # features that never fire get the median scale, so they cannot blow up a difference
        floor = max(self.min_scale, float(std[std > 0].median()) if bool((std > 0).any()) else 1.0)
        self.scale.copy_(torch.where(std > self.min_scale, std, torch.full_like(std, floor)))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class AsinhStandardize(nn.Module):
    """Per-cell ``asinh(x / s)`` (log-like above ``s``, linear near 0), then per-cell standardization.

    In this space a gain is a shift of every hit of a cell by about ``log A``. The event-to-event energy
    fluctuation is a shift common to all the cells of an event, so differences between neighbours
    cancel it. ``s`` is ``factor`` times the cell's median non-zero ``|x|``, estimated by :meth:`fit`.

    >>> import torch
    >>> a = AsinhStandardize((2,)).fit(torch.tensor([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]]))
    >>> a.cell_scale.tolist()
    [2.0, 20.0]
    """

    def __init__(self, shape: Sequence[int], *, factor: float = 1.0) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("cell_scale", torch.ones(tuple(shape)))
        self.standardize = Standardize(shape)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> AsinhStandardize:
        """Estimate the per-cell scale and the standardization from a sample ``(N, *shape)``."""
        mag = x.float().abs()
        hit = torch.where(mag > 0, mag, torch.full_like(mag, float("nan")))
        med = torch.nanmedian(hit.reshape(hit.shape[0], -1), dim=0).values.reshape(self.cell_scale.shape)
        fallback = float(med[~med.isnan()].median()) if bool((~med.isnan()).any()) else 1.0
        self.cell_scale.copy_(torch.nan_to_num(med, nan=fallback).clamp_min(1e-12) * self.factor)
        self.standardize.fit(torch.asinh(x.float() / self.cell_scale))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardize(torch.asinh(x / self.cell_scale))


class Whiten(nn.Module):
    """ZCA whitening ``(x − μ) Σ^{-1/2}`` for small flat inputs ``(N, F)``.

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(4000, 2, generator=g) @ torch.tensor([[1.0, 0.9], [0.0, 0.1]])
    >>> w = Whiten(2).fit(x)
    >>> torch.cov(w(x).T).round(decimals=2).abs().tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """

    def __init__(self, n_features: int, *, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("matrix", torch.eye(n_features))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> Whiten:
        """Estimate mean and the inverse square root of the covariance from ``(N, F)``."""
        x = x.double().reshape(x.shape[0], -1)
        self.mean.copy_(x.mean(0).float())
        cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1])
        vals, vecs = torch.linalg.eigh(cov)
        inv_sqrt = vecs @ torch.diag(1.0 / torch.sqrt(vals.clamp_min(self.eps * float(vals.max())))) @ vecs.T
        self.matrix.copy_(inv_sqrt.float())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.reshape(x.shape[0], -1) - self.mean) @ self.matrix


def make_preprocess(kind: str | None, shape: Sequence[int]) -> nn.Module:
    """Build a preprocessing module by name: ``standardize``, ``whiten`` or None (identity)."""
    if kind is None or kind == "none":
        return nn.Identity()
    if kind == "standardize":
        return Standardize(shape)
    if kind == "whiten":
        return Whiten(math.prod(shape))
    if kind.startswith("asinh"):  # "asinh" or "asinh:FACTOR"
        _, _, factor = kind.partition(":")
        return AsinhStandardize(shape, factor=float(factor) if factor else 1.0)
    raise ValueError(f"unknown preprocessing {kind!r}; use standardize, asinh[:FACTOR], whiten or none")
