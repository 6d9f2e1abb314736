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
    raise ValueError(f"unknown preprocessing {kind!r}; use standardize, whiten or none")
