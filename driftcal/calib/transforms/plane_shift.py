"""Per-plane shift: the tracker alignment transform."""

from __future__ import annotations

import torch
from torch import nn

from driftcal.calib.transforms.base import Direction, Transform


class PlaneShift(Transform):
    """Per-plane coordinate shift ``Δx`` with ``changed ≈ reference + Δx``.

    The first and last planes define the frame: their shift is 0 by definition, and only the
    ``P − 2`` inner shifts are trainable.

    Parameters
    ----------
    n_planes : number of planes P (≥ 3).
    direction : ``"forward"`` adds ``Δx`` to the reference, ``"inverse"`` subtracts it from the
        changed data.
    bounds : physical range of each shift (same units as the hits).
    init : initial inner shifts (scalar or ``(P − 2,)``).

    Examples
    --------
    >>> import torch
    >>> t = PlaneShift(3, init=0.01)
    >>> t(torch.zeros(1, 3)).tolist()
    [[0.0, 0.009999999776482582, 0.0]]
    >>> t.coefficients().tolist()
    [0.0, 0.009999999776482582, 0.0]
    """

    def __init__(
        self,
        n_planes: int,
        *,
        direction: Direction = "forward",
        bounds: tuple[float, float] = (-1.0, 1.0),
        init: float | torch.Tensor = 0.0,
    ) -> None:
        super().__init__(direction, bounds)
        if n_planes < 3:
            raise ValueError("plane-shift needs at least 3 planes (the first and last fix the frame)")
        self.n_planes = int(n_planes)
        start = torch.broadcast_to(torch.as_tensor(init, dtype=torch.float32), (n_planes - 2,)).clone()
        self.shift = nn.Parameter(start)
        self.clamp_()

    @property
    def theta(self) -> nn.Parameter:
        return self.shift

    def _full(self, inner: torch.Tensor) -> torch.Tensor:
        zero = inner.new_zeros(1)
        return torch.cat([zero, inner, zero])

    @torch.no_grad()
    def set_coefficients(self, values: torch.Tensor) -> None:
        full = torch.as_tensor(values, dtype=self.shift.dtype).reshape(self.n_planes)
        self.shift.copy_(full[1:-1])
        self.clamp_()

    def coefficients(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        return self._full((self.shift if theta is None else theta).detach()).clone()

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Shift a batch of hits ``(N, P)``; ``z`` is unused (no readout model for hits)."""
        full = self._full(self.shift).to(x.dtype)
        return x + full if self.direction == "forward" else x - full
