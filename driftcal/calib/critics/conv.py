"""A convolutional critic for calorimeters: the layers are the input channels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from driftcal.calib.critics.preprocess import make_preprocess


def _norm(kind: str | None, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":  # GroupNorm with one group normalizes over (C, H, W): safe with a gradient penalty
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class ConvCritic(nn.Module):
    """The paper's critic shape: ``Conv(L → w) + LeakyReLU``, conv blocks, a conv to 1 channel, max-pool.

    Weight sharing across the transverse plane keeps the capacity low, which matters for
    distribution matching: a critic that can separate two finite samples of the same distribution
    estimates noise, not distance.

    Parameters
    ----------
    in_shape : ``(L, H, W)``.
    width : channels of the first conv; the blocks use ``2·width`` and ``4·width``.
    blocks : number of conv blocks after the first conv (a stride-2 block halves H and W while ≥ 8).
    norm : ``instance`` (the paper), ``layer`` or ``none`` (use ``layer``/``none`` with a gradient penalty).
    pool : ``max`` (the paper) or ``mean`` over the final map.
    preprocess : per-cell ``standardize``, ``asinh[:FACTOR]`` (log-like, then standardized) or ``none``.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> ConvCritic((4, 8, 8), width=4)(torch.zeros(3, 4, 8, 8)).shape
    torch.Size([3])
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        *,
        width: int = 32,
        blocks: int = 3,
        norm: str | None = "layer",
        pool: str = "max",
        preprocess: str = "standardize",
    ) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"ConvCritic needs (L, H, W) events, got shape {tuple(in_shape)}")
        self.in_shape = tuple(int(s) for s in in_shape)
        channels, height, wide = self.in_shape
        self.preprocess = make_preprocess(preprocess, self.in_shape)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        c_in, size = width, min(height, wide)
        for i in range(blocks):
            c_out = width * min(2 ** (i + 1), 4)
            if size >= 8:
                layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
                size //= 2
            else:
                layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            layers += [_norm(norm, c_out), nn.LeakyReLU(0.2)]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, 1, min(4, size)))
        self.net = nn.Sequential(*layers)
        self.pool = pool
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def fit_preprocess(self, x: torch.Tensor) -> ConvCritic:
        """Fit the per-cell normalization on a sample of target data."""
        if hasattr(self.preprocess, "fit"):
            self.preprocess.fit(x)
        return self

    def body(self, features: torch.Tensor) -> torch.Tensor:
        """The trainable part, on preprocessed inputs (the Lipschitz constraint applies here)."""
        out = self.net(features).flatten(1)
        return out.amax(1) if self.pool == "max" else out.mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.preprocess(x))
