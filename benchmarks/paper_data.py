"""Data for ``benchmarks/paper.py``: showers simulated once per seed, then realized for every setting.

The ε sweep and the threshold sweep change only the aging draw and the readout, not the showers. So the
true deposits of one seed (reference and changed events, independent) are simulated once
(:func:`simulate_pair`) and every (ε, noise, threshold) is realized from them (:func:`realize`). With
``workers=1`` the result is identical to :func:`driftcal.sim.make_calorimeter_dataset` with the same seed,
because the same random streams are used in the same order: ``SeedSequence(seed).spawn(5)`` gives the
reference showers, the changed showers, the aging draw, the reference readout noise and the changed
readout noise. With ``workers > 1`` (the paper scale: 1e5 + 1e5 events of 40 × 16 × 16 cells) the showers
are simulated in chunks on a process pool, each chunk from its own child of the same streams; the data
are then equally valid but not identical to the single-process ones. Common random numbers across the
sweep points make the differences between them less noisy.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from driftcal.sim import Beam, CalorimeterGeometry, DoseAging, Readout, apply_readout, simulate_showers
from driftcal.sim.aging import cell_dose
from driftcal.sim.datasets import Dataset

CHUNK_EVENTS = 5000  # events per process-pool task


@dataclass
class ShowerPair:
    """True visible deposits (MeV) of one seed, before aging and readout."""

    reference: np.ndarray
    changed: np.ndarray
    dose: np.ndarray
    seed: int
    geometry: CalorimeterGeometry
    beam: Beam
    workers: int


def _streams(seed: int) -> list[np.random.SeedSequence]:
    return list(np.random.SeedSequence(seed).spawn(5))


def _simulate(
    n: int,
    geometry: CalorimeterGeometry,
    beam: Beam,
    stream: np.random.SeedSequence,
    workers: int,
    chunk: int = CHUNK_EVENTS,
) -> np.ndarray:
    if workers <= 1 or n <= chunk:
        return simulate_showers(n, geometry, beam, rng=np.random.default_rng(stream))
    sizes = [min(chunk, n - lo) for lo in range(0, n, chunk)]
    children = stream.spawn(len(sizes))
    out = np.empty((n, *geometry.shape), dtype=np.float32)
    context = multiprocessing.get_context("spawn")  # no fork after torch has started its threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            pool.submit(simulate_showers, size, geometry, beam, rng=np.random.default_rng(child))
            for size, child in zip(sizes, children, strict=True)
        ]
        lo = 0
        for size, future in zip(sizes, futures, strict=True):
            out[lo : lo + size] = future.result()
            lo += size
    return out


def simulate_pair(
    events: int,
    geometry: CalorimeterGeometry,
    *,
    seed: int,
    beam: Beam | None = None,
    workers: int = 1,
    chunk: int = CHUNK_EVENTS,
) -> ShowerPair:
    """Simulate the reference and changed showers of one seed (``events`` each) and the reference dose.

    With ``workers > 1`` and more than ``chunk`` events, chunks of ``chunk`` events are simulated on a
    process pool of ``workers`` processes.
    """
    beam = beam or Beam()
    s_ref, s_chg, *_ = _streams(seed)
    ref = _simulate(events, geometry, beam, s_ref, workers, chunk)
    chg = _simulate(events, geometry, beam, s_chg, workers, chunk)
    return ShowerPair(ref, chg, cell_dose(ref), seed, geometry, beam, workers)


def realize(
    pair: ShowerPair, *, epsilon: float, noise: float = 0.0, threshold: float | None = None
) -> Dataset:
    """Age the changed showers with ``DoseAging(epsilon=ε)`` and apply the readout to both samples.

    >>> g = CalorimeterGeometry(layers=2, height=4, width=4)
    >>> from driftcal.sim import make_calorimeter_dataset
    >>> a = realize(simulate_pair(40, g, seed=3), epsilon=0.02, noise=0.01, threshold=0.03)
    >>> b = make_calorimeter_dataset(40, geometry=g, epsilon=0.02, noise=0.01, threshold=0.03, seed=3)
    >>> pairs = [(a.reference, b.reference), (a.changed, b.changed), (a.truth, b.truth)]
    >>> all(np.array_equal(x, y) for x, y in pairs)
    True
    """
    _, _, s_age, s_ro_ref, s_ro_chg = _streams(pair.seed)
    aging = replace(DoseAging(), epsilon=float(epsilon))
    readout = Readout(noise=float(noise), threshold=None if threshold is None else float(threshold))
    gains = aging.sample(pair.dose, np.random.default_rng(s_age))
    reference = apply_readout(pair.reference, 1.0, readout, rng=np.random.default_rng(s_ro_ref))
    changed = apply_readout(pair.changed, gains, readout, rng=np.random.default_rng(s_ro_chg))
    meta = {
        "model": "cell-gain",
        "shape": list(pair.geometry.shape),
        "seed": pair.seed,
        "epsilon": float(epsilon),
        "noise": float(noise),
        "threshold": threshold,
        "n_reference": int(reference.shape[0]),
        "n_changed": int(changed.shape[0]),
        "workers": pair.workers,
    }
    return Dataset(reference, changed, gains.astype(np.float32), meta)


def esum(events: np.ndarray, gains: np.ndarray | None = None) -> np.ndarray:
    """Total energy per event (float64); with ``gains``, of the events divided by them (calibrated).

    >>> esum(np.ones((2, 2, 2)), gains=np.full((2, 2), 0.5)).tolist()
    [8.0, 8.0]
    """
    x = np.asarray(events)
    flat = x.reshape(x.shape[0], -1)
    if gains is None:
        return flat.sum(1, dtype=np.float64)
    inv = (1.0 / np.asarray(gains, dtype=np.float64)).reshape(-1)
    block = 8192  # bounded float64 copies for 1e5 events of 10,240 cells
    return np.concatenate([flat[i : i + block].astype(np.float64) @ inv for i in range(0, len(flat), block)])


def w1_1d(a: np.ndarray, b: np.ndarray, n_quantiles: int = 1000) -> float:
    """1-D Wasserstein-1 distance between two samples (mean absolute difference of their quantiles).

    >>> round(w1_1d(np.arange(100.0), np.arange(100.0) + 2.0), 6)
    2.0
    """
    u = (np.arange(n_quantiles) + 0.5) / n_quantiles
    return float(np.mean(np.abs(np.quantile(a, u) - np.quantile(b, u))))
