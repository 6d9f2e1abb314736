"""A fully connected critic for small inputs (tracker hits, a few hundred cells)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from driftcal.calib.critics.preprocess import make_preprocess


class MLPCritic(nn.Module):
    """``C_φ(x)``: preprocessing, then ``Linear → LeakyReLU(0.2)`` blocks, then a scalar.

    Parameters
    ----------
    in_shape : shape of one event, e.g. ``(P,)`` or ``(L, H, W)`` (flattened inside).
    hidden : widths of the hidden layers.
    preprocess : ``standardize`` (per feature), ``asinh[:FACTOR]``, ``whiten`` (ZCA, for small inputs) or
        ``none``; fitted by :meth:`fit_preprocess` on target data.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> c = MLPCritic((3,), hidden=(8,))
    >>> c(torch.zeros(5, 3)).shape
    torch.Size([5])
    """

    def __init__(
        self, in_shape: Sequence[int], *, hidden: Sequence[int] = (256, 256), preprocess: str = "standardize"
    ) -> None:
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.preprocess = make_preprocess(preprocess, self.in_shape)
        layers: list[nn.Module] = []
        width = math.prod(self.in_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def fit_preprocess(self, x: torch.Tensor) -> MLPCritic:
        """Fit the input normalization on a sample of target data."""
        if hasattr(self.preprocess, "fit"):
            self.preprocess.fit(x)
        return self

    def body(self, features: torch.Tensor) -> torch.Tensor:
        """The trainable part, on preprocessed inputs (the Lipschitz constraint applies here)."""
        return self.net(features.reshape(features.shape[0], -1)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.preprocess(x))
