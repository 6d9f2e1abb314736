"""A calorimeter that keeps aging while it streams: the data source of the demo and the tracking benchmark.

:class:`DriftingCalorimeter` simulates showers on demand and reads them out with the gains of a
:class:`~driftcal.sim.aging.TimeDependentAging` law at the current stream position, so a consumer sees
the gains fall as events accumulate (plus any sudden :class:`~driftcal.sim.aging.ModuleDrop`). The
clock starts at ``start`` events, so the detector is already aged when streaming begins.

>>> from driftcal.sim.geometry import CalorimeterGeometry
>>> from driftcal.sim.readout import Readout
>>> cal = DriftingCalorimeter(CalorimeterGeometry(layers=2, height=4, width=4), readout=Readout(),
...                           rate=1e-5, start=10_000, seed=0, occupancy_events=200)
>>> cal.reference(100).shape, cal.stream(50).shape, cal.position
((100, 2, 4, 4), (50, 2, 4, 4), 10050)
>>> bool(cal.truth().min() < 1.0)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftcal.sim.aging import ModuleDrop, TimeDependentAging
from driftcal.sim.geometry import Beam, CalorimeterGeometry
from driftcal.sim.readout import Readout, apply_readout
from driftcal.sim.showers import simulate_showers


class DriftingCalorimeter:
    """Reference events (gain 1) and a stream of events aged by the events seen so far.

    Parameters
    ----------
    geometry, beam, readout : the detector, the beam and its readout (noise, threshold).
    rate, power, epsilon, alpha_min : the :class:`~driftcal.sim.aging.TimeDependentAging` law, with the
        occupancy measured on ``occupancy_events`` simulated events.
    start : stream position (events) at which streaming begins.
    drops : sudden module drops, at stream positions.
    seed : one seed for every draw.
    """

    def __init__(
        self,
        geometry: CalorimeterGeometry,
        *,
        beam: Beam = Beam(),  # noqa: B008 - frozen dataclass
        readout: Readout = Readout(),  # noqa: B008 - frozen dataclass
        rate: float = 5e-6,
        power: float = 1.0,
        epsilon: float = 0.3,
        alpha_min: float = 0.5,
        start: int = 100_000,
        drops: Sequence[ModuleDrop] = (),
        seed: int = 0,
        occupancy_events: int = 2000,
    ) -> None:
        self.geometry, self.beam, self.readout = geometry, beam, readout
        s_occ, s_age, self._rng_ref, self._rng_stream = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )
        deposits = simulate_showers(occupancy_events, geometry, beam, rng=s_occ)
        self.aging = TimeDependentAging.from_deposits(
            deposits, rate, power=power, epsilon=epsilon, alpha_min=alpha_min, drops=drops, rng=s_age
        )
        self.position = int(start)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.geometry.shape)

    def truth(self, position: int | None = None) -> np.ndarray:
        """The gain field at ``position`` (default: now)."""
        return self.aging.gains_at(self.position if position is None else position)

    def reference(self, n: int) -> np.ndarray:
        """``n`` events of the nominal detector (gain 1), float32 ``(n, L, H, W)``."""
        deposits = simulate_showers(int(n), self.geometry, self.beam, rng=self._rng_ref)
        return apply_readout(deposits, 1.0, self.readout, rng=self._rng_ref, out=deposits)

    def stream(self, n: int) -> np.ndarray:
        """The next ``n`` events, read out with the gains at the current position; advances the clock."""
        deposits = simulate_showers(int(n), self.geometry, self.beam, rng=self._rng_stream)
        out = apply_readout(deposits, self.truth(), self.readout, rng=self._rng_stream, out=deposits)
        self.position += int(n)
        return out
