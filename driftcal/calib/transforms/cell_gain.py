"""Per-cell gain: the calorimeter aging transform."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from driftcal.calib.readout import forward_readout
from driftcal.calib.transforms.base import Direction, Transform


class CellGain(Transform):
    """Per-cell multiplicative gain ``A`` with ``changed ≈ A · reference``.

    Parameters
    ----------
    cells : shape of one event, e.g. ``(L, H, W)``.
    direction : ``"forward"`` multiplies the reference by ``A`` (the right direction when the
        readout is not invertible), ``"inverse"`` divides the changed data by ``A``.
    bounds : physical range of ``A`` (θ is clamped into it after every step).
    noise, threshold : the readout. In forward mode they make the transform *readout-aware*: the
        noise level that the gain removed is restored and the zero-suppression threshold applied
        again (see :func:`driftcal.calib.readout.forward_readout`). Ignored in inverse mode.
    sharpness : width of the smooth threshold used while training (None: hard step).
    init : initial gains (scalar or array of ``cells``); 1.0 by default.

    Examples
    --------
    >>> import torch
    >>> t = CellGain((2,), init=torch.tensor([0.5, 1.0]), threshold=1.0)
    >>> t(torch.tensor([[4.0, 4.0], [1.5, 1.5]])).tolist()
    [[2.0, 4.0], [0.0, 1.5]]
    >>> CellGain((2,), direction="inverse", init=0.5)(torch.tensor([[1.0, 2.0]])).tolist()
    [[2.0, 4.0]]
    """

    def __init__(
        self,
        cells: Sequence[int],
        *,
        direction: Direction = "forward",
        bounds: tuple[float, float] = (0.05, 1.5),
        noise: float | None = None,
        threshold: float | None = None,
        sharpness: float | None = None,
        init: float | torch.Tensor = 1.0,
    ) -> None:
        super().__init__(direction, bounds)
        if bounds[0] <= 0:
            raise ValueError("gain bounds must be positive")
        self.cells = tuple(int(c) for c in cells)
        self.noise = noise
        self.threshold = threshold
        self.sharpness = sharpness
        start = torch.broadcast_to(torch.as_tensor(init, dtype=torch.float32), self.cells).clone()
        self.gain = nn.Parameter(start)
        self.clamp_()

    @property
    def theta(self) -> nn.Parameter:
        return self.gain

    @property
    def needs_noise(self) -> bool:
        """Whether :meth:`forward` draws restored readout noise (then pass ``z`` for reproducibility)."""
        return self.direction == "forward" and bool(self.noise)

    @torch.no_grad()
    def set_coefficients(self, values: torch.Tensor) -> None:
        self.gain.copy_(torch.as_tensor(values, dtype=self.gain.dtype).reshape(self.cells))
        self.clamp_()

    def coefficients(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        return (self.gain if theta is None else theta).detach().clone()

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the gain (and, forward, the readout) to a batch ``(N, *cells)``."""
        gain = self.gain.to(x.dtype)
        if self.direction == "inverse":
            return x / gain
        if self.noise is None and self.threshold is None:
            return x * gain
        sharp = self.sharpness if self.training else None
        return forward_readout(x, gain, noise=self.noise, threshold=self.threshold, z=z, sharpness=sharp)
