"""The base of every transform: trainable physical parameters θ with their physical range."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Literal

import torch
from torch import nn

Direction = Literal["forward", "inverse"]


class Transform(nn.Module, metaclass=ABCMeta):
    """A deterministic map T_θ whose trainable weights are physical parameters.

    ``direction="forward"`` distorts the reference toward the changed data (``T(ref) ≈ chg``);
    ``direction="inverse"`` corrects the changed data toward the reference (``T(chg) ≈ ref``).
    Subclasses define :meth:`forward`, :attr:`theta` and :meth:`coefficients`.
    """

    direction: Direction
    bounds: tuple[float, float]

    def __init__(self, direction: Direction = "forward", bounds: tuple[float, float] = (-1e9, 1e9)) -> None:
        super().__init__()
        if direction not in ("forward", "inverse"):
            raise ValueError(f"direction must be 'forward' or 'inverse', got {direction!r}")
        lo, hi = bounds
        if not lo < hi:
            raise ValueError(f"bounds must satisfy lo < hi, got {bounds}")
        self.direction = direction
        self.bounds = (float(lo), float(hi))

    @property
    @abstractmethod
    def theta(self) -> nn.Parameter:
        """The trainable parameter tensor."""

    @property
    def source(self) -> Literal["reference", "changed"]:
        """Which dataset the transform is applied to."""
        return "reference" if self.direction == "forward" else "changed"

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project θ back into its physical range (after each optimizer step)."""
        self.theta.clamp_(*self.bounds)

    @abstractmethod
    def set_coefficients(self, values: torch.Tensor) -> None:
        """Warm start: set θ from physical coefficients (clamped to the range)."""

    @abstractmethod
    def coefficients(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        """Physical coefficients (detached) for θ (default: the current θ)."""
