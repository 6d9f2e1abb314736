"""Ways to keep a critic (approximately) 1-Lipschitz: one small class each, one API.

``prepare(critic)`` runs once on construction, ``penalty(body, real, fake)`` is added to the
critic loss, ``after_step(critic)`` runs after every critic optimizer step. The constraint holds in
the space the critic's trainable body sees: after its fixed input normalization.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Lipschitz:
    """No constraint (base class)."""

    name = "none"

    def prepare(self, critic: nn.Module) -> nn.Module:
        """Modify the critic once, before its optimizer is built."""
        return critic

    def penalty(
        self,
        body: Callable[[torch.Tensor], torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """A term added to the critic loss (``body`` maps features to scores)."""
        return real.new_zeros(())

    @torch.no_grad()
    def after_step(self, critic: nn.Module) -> None:
        """Project the critic after an optimizer step."""


class WeightClipping(Lipschitz):
    """Clip every critic weight to ``[−c, c]`` (Arjovsky et al. 2017; the paper's default, c = 0.01).

    >>> import torch
    >>> lin = torch.nn.Linear(2, 1)
    >>> WeightClipping(0.01).after_step(lin)
    >>> bool(lin.weight.abs().max() <= 0.01)
    True
    """

    name = "clip"

    def __init__(self, clip: float = 0.01) -> None:
        self.clip = clip

    @torch.no_grad()
    def after_step(self, critic: nn.Module) -> None:
        for p in critic.parameters():
            p.clamp_(-self.clip, self.clip)


class GradientPenalty(Lipschitz):
    """Two-sided gradient penalty ``λ (‖∇C(x̂)‖ − 1)²`` on random interpolates (Gulrajani et al. 2017)."""

    name = "gp"

    def __init__(self, weight: float = 10.0) -> None:
        self.weight = weight

    def penalty(
        self,
        body: Callable[[torch.Tensor], torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        n = min(real.shape[0], fake.shape[0])
        real, fake = real[:n].detach(), fake[:n].detach()
        shape = (n,) + (1,) * (real.dim() - 1)
        eps = torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        out = body(mixed)
        (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
        norm = grad.reshape(n, -1).norm(dim=1)
        return self.weight * ((norm - 1.0) ** 2).mean()


class SpectralNorm(Lipschitz):
    """Spectral normalization of every linear and conv layer (Miyato et al. 2018)."""

    name = "sn"

    def prepare(self, critic: nn.Module) -> nn.Module:
        for module in list(critic.modules()):
            if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
                nn.utils.parametrizations.spectral_norm(module)
        return critic


def make_lipschitz(kind: str, *, clip: float = 0.01, gp_weight: float = 10.0) -> Lipschitz:
    """Build a constraint by name: ``clip``, ``gp``, ``sn`` or ``none``."""
    if kind == "clip":
        return WeightClipping(clip)
    if kind == "gp":
        return GradientPenalty(gp_weight)
    if kind == "sn":
        return SpectralNorm()
    if kind == "none":
        return Lipschitz()
    raise ValueError(f"unknown Lipschitz constraint {kind!r}; use clip, gp, sn or none")
