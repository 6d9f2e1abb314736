"""Aging of calorimeter cells: dose-driven gains, gains that evolve with the stream, sudden module drops.

Dose. The dose ``n_i`` of cell ``i`` is its hit count: the number of events where its true deposit exceeds a
tiny cut (default: strictly positive).

Static law (:class:`DoseAging`, the paper's setting)::

    A_i = clip(f(n_i) + N(0, ε²), α_min, 1),   f(n) = 1 - max_loss · (n / n_max)^power

with defaults ``max_loss = 0.3``, ``power = 0.5``, ``α_min = 0.5``, ``ε = 0.01`` and ``n_max`` the largest
dose in the dataset. The square root spreads the aging over the many low-dose cells (doses span two to three
orders of magnitude); the busiest cell loses 30 %.

Time-dependent law (:class:`TimeDependentAging`): after ``t`` streamed events cell ``i`` has received
``o_i · t`` hits (``o_i`` its occupancy, hits per event) and::

    A_i(t) = clip(1 - rate · (o_i t)^power · (1 + ε_i), α_min, 1),   ε_i ~ N(0, ε²) drawn once

so ``A(t)`` is smooth and non-increasing in ``t`` (``ε_i`` is clipped to > -1) and ``A(0) = 1``.

Sudden drop (:class:`ModuleDrop`): from event ``at_event`` on, the gains of a block of cells are multiplied
by ``factor``.

Examples
--------
>>> dose = np.array([0, 10, 100, 1000])
>>> DoseAging(epsilon=0.0).sample(dose, np.random.default_rng(0))
array([1.       , 0.97     , 0.9051317, 0.7      ], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

_BLOCK_ELEMENTS = 1 << 24


def cell_dose(deposits: np.ndarray, cut: float = 0.0) -> np.ndarray:
    """Per-cell hit count: number of events with deposit ``> cut``; shape ``deposits.shape[1:]``, int64.

    >>> cell_dose(np.array([[0.0, 1.0], [2.0, 0.0], [3.0, 0.0]]))
    array([2, 1])
    """
    deposits = np.asarray(deposits)
    dose = np.zeros(deposits.shape[1:], dtype=np.int64)
    per_event = max(1, int(np.prod(deposits.shape[1:], dtype=np.int64)))
    step = max(1, _BLOCK_ELEMENTS // per_event)
    for lo in range(0, deposits.shape[0], step):
        dose += (deposits[lo : lo + step] > cut).sum(axis=0)
    return dose


@dataclass(frozen=True)
class DoseAging:
    """Dose-driven aging ``A = clip(1 - max_loss (n/n_max)^power + N(0, ε²), α_min, 1)``.

    Parameters
    ----------
    max_loss : float
        Relative loss of the busiest cell (default 0.3).
    power : float
        Exponent of the relative dose (default 0.5).
    alpha_min : float
        Lower clamp (default 0.5).
    epsilon : float
        Standard deviation of the cell-to-cell Gaussian term (default 0.01).
    n_max : float or None
        Dose normalization; ``None`` uses the largest dose.
    """

    LAW: ClassVar[str] = "A = clip(1 - max_loss*(n/n_max)**power + N(0, epsilon**2), alpha_min, 1)"

    max_loss: float = 0.3
    power: float = 0.5
    alpha_min: float = 0.5
    epsilon: float = 0.01
    n_max: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.max_loss <= 1 or self.power <= 0 or not 0 <= self.alpha_min <= 1 or self.epsilon < 0:
            raise ValueError("need 0<=max_loss<=1, power>0, 0<=alpha_min<=1, epsilon>=0")

    def nominal(self, dose: np.ndarray) -> np.ndarray:
        """The noiseless law ``f(n)`` (float64, not clamped)."""
        dose = np.asarray(dose, dtype=np.float64)
        n_max = float(dose.max()) if self.n_max is None else float(self.n_max)
        rel = dose / n_max if n_max > 0 else np.zeros_like(dose)
        return 1.0 - self.max_loss * np.clip(rel, 0.0, None) ** self.power

    def sample(self, dose: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw ``A`` (float32, same shape as ``dose``, within ``[alpha_min, 1]``)."""
        f = self.nominal(dose)
        a = f + self.epsilon * rng.standard_normal(f.shape)
        return np.clip(a, self.alpha_min, 1.0).astype(np.float32)


@dataclass(frozen=True)
class UniformAging:
    """Gains drawn uniformly in ``[low, high]``, independent of the dose (plus ``N(0, ε²)``, clipped back).

    A control for the dose law: under :class:`DoseAging` the rarely hit cells keep gains near 1, so a fit
    that starts at 1 and moves little on them looks good for a reason that is the simulator's, not the
    method's. Here every cell, busy or not, may have aged by up to ``1 − low``.

    >>> UniformAging(0.6, 1.0).sample(np.zeros(4), np.random.default_rng(0)).round(3)
    array([0.855, 0.708, 0.616, 0.607], dtype=float32)
    """

    LAW: ClassVar[str] = "A = clip(U(low, high) + N(0, epsilon**2), low, high)"

    low: float = 0.6
    high: float = 1.0
    epsilon: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high or self.epsilon < 0:
            raise ValueError("need 0 < low <= high and epsilon >= 0")

    def nominal(self, dose: np.ndarray) -> np.ndarray:
        """The mean gain, for every cell (float64)."""
        return np.full(np.shape(dose), (self.low + self.high) / 2, dtype=np.float64)

    def sample(self, dose: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw ``A`` (float32, same shape as ``dose``, within ``[low, high]``)."""
        a = rng.uniform(self.low, self.high, np.shape(dose))
        a = a + self.epsilon * rng.standard_normal(a.shape)
        return np.clip(a, self.low, self.high).astype(np.float32)


@dataclass(frozen=True, eq=False)
class ModuleDrop:
    """Sudden gain drop of a block of cells from event ``at_event`` on.

    Parameters
    ----------
    at_event : int
        First streamed-event count at which the drop is active (``events_seen >= at_event``).
    cells : boolean mask or index expression
        A boolean mask of the cell shape, or a tuple of slices/ints, e.g. ``(2,)`` for layer 2 or
        ``(slice(None), slice(4, 8), slice(4, 8))`` for a 4 × 4 tower.
    factor : float
        Multiplicative factor applied to those gains (e.g. 0.5).

    Examples
    --------
    >>> drop = ModuleDrop(at_event=100, cells=(0,), factor=0.5)
    >>> drop.apply(np.ones((2, 2)), 99)[:, 0], drop.apply(np.ones((2, 2)), 100)[:, 0]
    (array([1., 1.]), array([0.5, 1. ]))
    """

    at_event: int
    cells: np.ndarray | tuple | slice | int
    factor: float

    def mask(self, shape: Sequence[int]) -> np.ndarray:
        """Boolean mask of the affected cells for a gain field of ``shape``."""
        cells = self.cells
        if isinstance(cells, np.ndarray) and cells.dtype == bool:
            if cells.shape != tuple(shape):
                raise ValueError(f"mask shape {cells.shape} != gain shape {tuple(shape)}")
            return cells
        m = np.zeros(tuple(shape), dtype=bool)
        m[tuple(cells) if isinstance(cells, list) else cells] = True
        return m

    def active(self, events_seen: int) -> bool:
        return int(events_seen) >= int(self.at_event)

    def apply(self, gains: np.ndarray, events_seen: int) -> np.ndarray:
        """Return a copy of ``gains`` with the drop applied when ``events_seen >= at_event``."""
        g = np.array(gains, copy=True)
        if self.active(events_seen):
            g[self.mask(g.shape)] *= self.factor
        return g


class TimeDependentAging:
    """Gains that decrease as the dose accumulates with the streamed events.

    ``A_i(t) = clip(1 - rate · (o_i t)^power · (1 + ε_i), α_min, 1)``, then the :class:`ModuleDrop` s active
    at ``t`` are applied (a drop may take a gain below ``α_min``).

    Parameters
    ----------
    occupancy : ndarray
        Hits per event of every cell (e.g. ``cell_dose(deposits) / len(deposits)``).
    rate : float
        Relative loss per accumulated hit (to the power ``power``). E.g. ``rate=1e-5`` with ``power=1``:
        a cell hit in every event loses 10 % after 10,000 events.
    power : float
        Dose exponent (default 1).
    alpha_min : float
        Lower clamp (default 0.5).
    epsilon : float
        Relative cell-to-cell spread of the aging speed, drawn once (default 0.0).
    drops : sequence of ModuleDrop
    rng : numpy.random.Generator or int
        Generator (or seed) for the ``ε_i`` draw.

    Examples
    --------
    >>> aging = TimeDependentAging(np.array([0.0, 0.5, 1.0]), rate=1e-5)
    >>> aging.gains_at(0), aging.gains_at(10_000)
    (array([1., 1., 1.], dtype=float32), array([1.  , 0.95, 0.9 ], dtype=float32))
    """

    def __init__(
        self,
        occupancy: np.ndarray,
        rate: float,
        *,
        power: float = 1.0,
        alpha_min: float = 0.5,
        epsilon: float = 0.0,
        drops: Sequence[ModuleDrop] = (),
        rng: np.random.Generator | int = 0,
    ) -> None:
        self.occupancy = np.asarray(occupancy, dtype=np.float64)
        if (self.occupancy < 0).any() or rate < 0 or power <= 0:
            raise ValueError("need occupancy >= 0, rate >= 0, power > 0")
        self.rate = float(rate)
        self.power = float(power)
        self.alpha_min = float(alpha_min)
        self.epsilon = float(epsilon)
        self.drops = tuple(drops)
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.cell_factor = np.maximum(1.0 + self.epsilon * gen.standard_normal(self.occupancy.shape), 0.01)

    @classmethod
    def from_deposits(
        cls, deposits: np.ndarray, rate: float, *, cut: float = 0.0, **kwargs: object
    ) -> TimeDependentAging:
        """Build from true deposits ``(n, *cells)``: occupancy = hit count / n."""
        return cls(cell_dose(deposits, cut) / max(1, len(deposits)), rate, **kwargs)  # type: ignore[arg-type]

    def loss_at(self, events_seen: int | float) -> np.ndarray:
        """Relative loss ``rate · (o_i t)^power · (1 + ε_i)`` before clamping (float64)."""
        t = max(float(events_seen), 0.0)
        return self.rate * (self.occupancy * t) ** self.power * self.cell_factor

    def gains_at(self, events_seen: int | float) -> np.ndarray:
        """Gain field after ``events_seen`` streamed events (float32, the occupancy's shape)."""
        a = np.clip(1.0 - self.loss_at(events_seen), self.alpha_min, 1.0)
        for drop in self.drops:
            a = drop.apply(a, int(events_seen))
        return a.astype(np.float32)
