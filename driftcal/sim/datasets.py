"""Reference/changed dataset pairs with known truth, for the cell-gain and plane-shift models.

The reference and changed samples come from *independent* events (no event correspondence). Randomness is
split with ``numpy.random.SeedSequence(seed).spawn(...)`` so each stream (reference events, changed events,
aging draw, readout noise) is reproducible on its own.

Calorimeter: the dose is the hit count of the reference true deposits; ``A = aging.sample(dose)``;
``reference = readout(showers_1, gain 1)``, ``changed = readout(showers_2, gain A)``. Units: MeV of visible
(scintillator) energy per cell.

Examples
--------
>>> from driftcal.sim.geometry import CalorimeterGeometry
>>> ds = make_calorimeter_dataset(50, geometry=CalorimeterGeometry(layers=2, height=4, width=4), seed=1)
>>> ds.reference.shape, ds.changed.shape, ds.truth.shape, ds.meta["model"]
((50, 2, 4, 4), (50, 2, 4, 4), (2, 4, 4), 'cell-gain')
>>> t = make_tracker_dataset(10, seed=0)
>>> t.truth.tolist(), t.meta["model"]
([0.0, 0.009999999776482582, 0.0], 'plane-shift')
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from driftcal.sim.aging import DoseAging, UniformAging, cell_dose
from driftcal.sim.geometry import Beam, CalorimeterGeometry
from driftcal.sim.readout import Readout, apply_readout
from driftcal.sim.showers import DEFAULT_CHUNK, DEFAULT_MAX_SPOTS, simulate_showers
from driftcal.sim.tracker import TrackerGeometry, default_shifts, simulate_tracks

CALO_UNITS = "MeV (visible energy per cell)"


@dataclass
class Dataset:
    """A reference/changed pair with the injected truth.

    Attributes
    ----------
    reference : ndarray, float32
        Readout of the nominal detector (gain 1 / no shifts).
    changed : ndarray, float32
        Readout of the aged / shifted detector, from independent events.
    truth : ndarray, float32
        Gains ``(L, H, W)`` or shifts ``(P,)``.
    meta : dict
        JSON-serializable description (model, geometry, beam, seed, epsilon, noise, threshold, units, ...).
    """

    reference: np.ndarray
    changed: np.ndarray
    truth: np.ndarray
    meta: dict = field(default_factory=dict)

    def save(self, directory: str | Path) -> Path:
        """Write ``reference.npy``, ``changed.npy``, ``truth.npy`` and ``meta.json`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "reference.npy", self.reference)
        np.save(d / "changed.npy", self.changed)
        np.save(d / "truth.npy", self.truth)
        (d / "meta.json").write_text(json.dumps(self.meta, indent=2, sort_keys=True))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Dataset:
        """Read a dataset written by :meth:`save`."""
        d = Path(directory)
        meta_path = d / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(np.load(d / "reference.npy"), np.load(d / "changed.npy"), np.load(d / "truth.npy"), meta)


def make_calorimeter_dataset(
    n_events: int,
    *,
    geometry: CalorimeterGeometry = CalorimeterGeometry(),  # noqa: B008 - frozen dataclass
    beam: Beam = Beam(),  # noqa: B008 - frozen dataclass
    epsilon: float = 0.01,
    noise: float = 0.0,
    threshold: float | None = None,
    aging: DoseAging | UniformAging | None = None,
    seed: int = 0,
    n_changed: int | None = None,
    max_spots: int = DEFAULT_MAX_SPOTS,
    chunk: int = DEFAULT_CHUNK,
    dose_cut: float = 0.0,
) -> Dataset:
    """Cell-gain dataset: reference and dose-aged calorimeter readouts.

    Parameters
    ----------
    n_events : int
        Reference events (also the changed events unless ``n_changed`` is given).
    geometry, beam
        Detector and beam.
    epsilon : float
        Cell-to-cell Gaussian σ of the aging law; it overrides ``aging.epsilon``.
    noise, threshold : float
        Readout electronic noise σ and zero-suppression threshold (MeV), applied to both samples.
    aging : DoseAging or UniformAging, optional
        Aging law (default ``DoseAging()``: max_loss 0.3, power 0.5, α_min 0.5).
    seed : int
    n_changed : int, optional
    max_spots, chunk
        Passed to :func:`~driftcal.sim.showers.simulate_showers`.
    dose_cut : float
        A cell counts as hit when its true deposit is ``> dose_cut``.
    """
    aging = replace(aging or DoseAging(), epsilon=float(epsilon))
    readout = Readout(noise=float(noise), threshold=None if threshold is None else float(threshold))
    n_chg = int(n_events if n_changed is None else n_changed)
    s_ref, s_chg, s_age, s_ro_ref, s_ro_chg = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )

    ref = simulate_showers(int(n_events), geometry, beam, rng=s_ref, chunk=chunk, max_spots=max_spots)
    dose = cell_dose(ref, dose_cut)
    gains = aging.sample(dose, s_age)
    reference = apply_readout(ref, 1.0, readout, rng=s_ro_ref, out=ref)
    chg = simulate_showers(n_chg, geometry, beam, rng=s_chg, chunk=chunk, max_spots=max_spots)
    changed = apply_readout(chg, gains, readout, rng=s_ro_chg, out=chg)
    meta = {
        "model": "cell-gain",
        "simulator": "driftcal.sim (GFlash EM / Bock hadronic spots)",
        "units": CALO_UNITS,
        "shape": list(geometry.shape),
        "geometry": asdict(geometry),
        "beam": asdict(beam),
        "aging": asdict(aging),
        "aging_law": aging.LAW,
        "dose_max": int(dose.max()) if dose.size else 0,
        "dose_cut": float(dose_cut),
        "seed": int(seed),
        "epsilon": float(epsilon),
        "noise": float(noise),
        "threshold": None if threshold is None else float(threshold),
        "n_reference": int(n_events),
        "n_changed": n_chg,
        "max_spots": int(max_spots),
    }
    return Dataset(reference, changed, gains.astype(np.float32), meta)


def make_tracker_dataset(
    n_events: int,
    *,
    geometry: TrackerGeometry = TrackerGeometry(),  # noqa: B008 - frozen dataclass
    noise: float = 1e-3,
    shifts: np.ndarray | None = None,
    seed: int = 0,
    n_changed: int | None = None,
) -> Dataset:
    """Plane-shift dataset: nominal and shifted tracker hits from independent tracks.

    Parameters
    ----------
    n_events : int
    geometry : TrackerGeometry
    noise : float
        Hit resolution σ (same length unit as ``z`` and ``width``).
    shifts : ndarray of shape (P,), optional
        Plane shifts; default :func:`~driftcal.sim.tracker.default_shifts` (``[0, 0.01, 0]`` for 3 planes;
        first and last planes 0, the frame).
    seed : int
    n_changed : int, optional
    """
    s_ref, s_chg, s_shift = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    truth = (
        default_shifts(geometry, s_shift)
        if shifts is None
        else np.asarray(shifts, dtype=np.float32).reshape(-1)
    )
    if truth.shape[0] != geometry.n_planes:
        raise ValueError(f"shifts has {truth.shape[0]} entries for {geometry.n_planes} planes")
    n_chg = int(n_events if n_changed is None else n_changed)
    reference = simulate_tracks(int(n_events), geometry, noise=noise, shifts=None, rng=s_ref)
    changed = simulate_tracks(n_chg, geometry, noise=noise, shifts=truth, rng=s_chg)
    meta = {
        "model": "plane-shift",
        "units": "length (same unit as z and width)",
        "geometry": asdict(geometry),
        "z": list(geometry.z),
        "noise": float(noise),
        "shifts": truth.tolist(),
        "shift_convention": "changed hit = true position + shift; first and last planes define the frame",
        "seed": int(seed),
        "n_reference": int(n_events),
        "n_changed": n_chg,
    }
    return Dataset(reference, changed, truth, meta)
