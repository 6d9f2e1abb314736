"""Vectorized shower simulation: energy spots binned into the cells of a sampling calorimeter.

Each event is split into components (one for e⁻; an EM and a non-EM component for π⁻). A component has a
per-event longitudinal law (``longitudinal.py``), a lateral law (``lateral.py``), a mean visible energy and a
number of spots. Spots are drawn for all events of a chunk at once:

* depth: Gamma law of the component (measured from the first interaction for π⁻), converted to mm with
  the effective X0 (EM) or λ (non-EM), then to a plate and a readout layer (``plates_per_layer`` plates
  per layer);
* transverse position: impact point + GFlash core/tail radius (non-EM part: radii ×
  ``hadronic_lateral_scale``) at uniform azimuth;
* energy: independent Gamma draws of shape ``k = max(E / (s² n), 1)`` for ``n`` spots carrying a component
  of true energy ``E`` (GeV), times a per-component Gamma factor of mean 1 that carries the rest of the
  sampling variance, so the visible energy has relative spread ``s / sqrt(E)`` whatever the spot count (the
  count can be capped with ``max_spots`` for speed) while single spots stay no spikier than exponential.

The spot count is ``N = 93 ln Z_eff · E^0.876`` (GFlash), capped at ``max_spots`` (default 4096). Before its
first interaction a π⁻ is a MIP and leaves ``mip_visible_mev`` (×Gamma(8)/8 fluctuation) in the impact cell
of every plate it crosses; a π⁻ that does not interact inside the calorimeter is a punch-through MIP.
Spots beyond the last plate or outside the ``H x W`` face are lost (leakage).

Units: the output is the visible (active-layer) energy per cell in MeV, float32, shape ``(n, L, H, W)``.
Deposits are continuous and non-negative; cells without a spot are exactly 0.

Examples
--------
>>> from driftcal.sim.geometry import Beam, CalorimeterGeometry
>>> g = CalorimeterGeometry(layers=4, height=8, width=8)
>>> x = simulate_showers(3, g, Beam(particle="e-"), rng=np.random.default_rng(1))
>>> x.shape, x.dtype, bool((x >= 0).all())
((3, 4, 8, 8), dtype('float32'), True)

References
----------
G. Grindhammer and S. Peters, hep-ex/0001020 (GFlash spots, longitudinal and lateral profiles).
R. K. Bock et al., Nucl. Instrum. Meth. 186 (1981) 533 (hadronic longitudinal profile).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from driftcal.sim.geometry import Beam, CalorimeterGeometry, sample_energies, sample_impacts
from driftcal.sim.lateral import sample_offsets
from driftcal.sim.longitudinal import (
    BOCK_B,
    BOCK_D,
    bock_maxima,
    sample_em_profile,
    sample_hadronic_profile,
)

DEFAULT_MAX_SPOTS = 4096
DEFAULT_CHUNK = 1024
_MAX_BINS = 1 << 23  # bound on chunk * n_cells (bincount buffer of 64 MB)
_MIP_SHAPE = 8.0
_SPOT_SHAPE_MIN = 1.0  # exponential spot energies at the spikiest


def spot_counts(energy_gev: np.ndarray, z_eff: float, max_spots: int) -> np.ndarray:
    """GFlash spot count ``93 ln Z · E^0.876`` capped to ``[2, max_spots]``."""
    n = np.rint(93.0 * np.log(z_eff) * np.asarray(energy_gev) ** 0.876)
    return np.clip(n, 2, max(int(max_spots), 2)).astype(np.int64)


def _components(
    e: np.ndarray, geometry: CalorimeterGeometry, beam: Beam, rng: np.random.Generator, max_spots: int
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Per-(component, event) rows describing how to draw spots; plus π⁻ first-interaction depths."""
    g = geometry
    m = e.shape[0]
    f_e = g.sampling_fraction_em
    ev = np.arange(m)
    if beam.particle == "e-":
        n_tot = spot_counts(e, g.z_eff, max_spots)
        alpha, beta = sample_em_profile(e, g, rng)
        rows = {
            "event": ev,
            "n": n_tot,
            "shape": alpha,
            "rate": beta,
            "unit": np.full(m, g.x0_eff_mm),
            "start": np.zeros(m),
            "tmax": (alpha - 1.0) / beta,
            "e_true": e,
            "visible": e * 1e3 * f_e,
            "term": np.full(m, g.em_sampling_term),
            "lat": np.full(m, g.moliere_eff_mm),
        }
        return rows, None
    h = sample_hadronic_profile(e, g, rng)
    n_tot = spot_counts(h.energy_gev, g.z_eff, max_spots)
    e_em = h.f_em * h.energy_gev
    e_had = h.energy_gev - e_em
    v_em = e_em * 1e3 * f_e
    v_had = e_had * 1e3 * f_e / g.e_over_h * h.visible
    share = v_em / np.maximum(v_em + v_had, 1e-300)
    n_em = np.clip(np.rint(n_tot * share).astype(np.int64), 1, n_tot - 1)
    t_em, t_had = bock_maxima(h.a)
    rows = {
        "event": np.concatenate([ev, ev]),
        "n": np.concatenate([n_em, n_tot - n_em]),
        "shape": np.concatenate([h.a, h.a]),
        "rate": np.concatenate([np.full(m, BOCK_B), np.full(m, BOCK_D)]),
        "unit": np.concatenate([np.full(m, g.x0_eff_mm), np.full(m, g.lambda_eff_mm)]),
        "start": np.concatenate([h.first_mm, h.first_mm]),
        "tmax": np.concatenate([t_em, t_had]),
        "e_true": np.concatenate([e_em, e_had]),
        "visible": np.concatenate([v_em, v_had]),
        "term": np.concatenate([np.full(m, g.em_sampling_term), np.full(m, g.had_sampling_term)]),
        "lat": np.concatenate(
            [np.full(m, g.moliere_eff_mm), np.full(m, g.moliere_eff_mm * g.hadronic_lateral_scale)]
        ),
    }
    return rows, h.first_mm


def _shower_chunk(
    e: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    geometry: CalorimeterGeometry,
    beam: Beam,
    rng: np.random.Generator,
    max_spots: int,
) -> np.ndarray:
    g = geometry
    m = e.shape[0]
    L, H, W = g.shape
    c = g.cell_size_mm
    rows, first_mm = _components(e, g, beam, rng, max_spots)

    idx = np.repeat(np.arange(rows["n"].shape[0]), rows["n"])
    t = rng.standard_gamma(rows["shape"][idx]) / rows["rate"][idx]
    depth = rows["start"][idx] + t * rows["unit"][idx]
    tau = t / rows["tmax"][idx]
    e_lat = np.maximum(rows["e_true"][idx], 0.01)
    dx, dy = sample_offsets(tau, e_lat, g.z_eff, rows["lat"][idx], rng)
    event = rows["event"][idx]
    # Spot energies: Gamma(k) draws of shape at least _SPOT_SHAPE_MIN, so that single spots are not
    # unphysically spiky; the rest of the sampling variance s²/E is a per-component Gamma factor of mean 1.
    # Together they keep the sampling term whatever the spot count.
    k_req = np.maximum(rows["e_true"] / (rows["term"] ** 2 * rows["n"]), 1e-6)
    k = np.maximum(k_req, _SPOT_SHAPE_MIN)
    rel_var = np.maximum(1.0 / (rows["n"] * k_req) - 1.0 / (rows["n"] * k), 0.0)
    factor = np.ones_like(rel_var)
    fluct = rel_var > 1e-12
    factor[fluct] = rng.standard_gamma(1.0 / rel_var[fluct]) * rel_var[fluct]
    scale = rows["visible"] * factor / (rows["n"] * k)
    energy = rng.standard_gamma(k[idx]) * scale[idx]

    plate = np.floor(depth / g.plate_mm)
    ix = np.floor((x0[event] + dx) / c + 0.5 * W)
    iy = np.floor((y0[event] + dy) / c + 0.5 * H)
    ok = (plate < g.n_plates) & (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    layer = plate[ok].astype(np.int64) // g.plates_per_layer
    flat = ((event[ok] * L + layer) * H + iy[ok].astype(np.int64)) * W + ix[ok].astype(np.int64)
    out = np.bincount(flat, weights=energy[ok], minlength=m * g.n_cells).astype(np.float32)
    out = out.reshape(m, L, H, W)

    if first_mm is not None:  # π⁻: MIP track up to the plate of the first interaction
        n_mip = np.minimum(np.floor(first_mm / g.plate_mm), g.n_plates).astype(np.int64)
        crossed = np.arange(g.n_plates)[None, :] < n_mip[:, None]
        mip = rng.standard_gamma(_MIP_SHAPE, (m, g.n_plates)) * (g.mip_visible_mev / _MIP_SHAPE) * crossed
        mip = mip.reshape(m, L, g.plates_per_layer).sum(axis=2)
        ix0 = np.clip(np.floor(x0 / c + 0.5 * W), 0, W - 1).astype(np.int64)
        iy0 = np.clip(np.floor(y0 / c + 0.5 * H), 0, H - 1).astype(np.int64)
        out[np.arange(m)[:, None], np.arange(L)[None, :], iy0[:, None], ix0[:, None]] += mip.astype(
            np.float32
        )
    return out


def _chunk_size(geometry: CalorimeterGeometry, chunk: int) -> int:
    return max(1, min(int(chunk), _MAX_BINS // geometry.n_cells))


def iter_showers(
    n: int,
    geometry: CalorimeterGeometry,
    beam: Beam,
    *,
    rng: np.random.Generator,
    chunk: int = DEFAULT_CHUNK,
    max_spots: int = DEFAULT_MAX_SPOTS,
    energies: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(energies_gev, deposits)`` blocks of at most ``chunk`` events (memory-bounded streaming).

    Parameters are those of :func:`simulate_showers`.
    """
    if energies is not None:
        energies = np.asarray(energies, dtype=np.float64).reshape(-1)
        if energies.shape[0] != n:
            raise ValueError(f"energies has {energies.shape[0]} entries, expected {n}")
        if (energies <= 0).any():
            raise ValueError("energies must be positive")
    step = _chunk_size(geometry, chunk)
    for lo in range(0, n, step):
        m = min(step, n - lo)
        e = sample_energies(m, beam, rng) if energies is None else energies[lo : lo + m]
        x0, y0 = sample_impacts(m, geometry, beam, rng)
        yield e, _shower_chunk(e, x0, y0, geometry, beam, rng, max_spots)


def simulate_showers(
    n: int,
    geometry: CalorimeterGeometry,
    beam: Beam,
    *,
    rng: np.random.Generator,
    chunk: int = DEFAULT_CHUNK,
    max_spots: int = DEFAULT_MAX_SPOTS,
    energies: np.ndarray | None = None,
) -> np.ndarray:
    """Simulate ``n`` single-particle showers; return true visible deposits (MeV), ``(n, L, H, W)`` float32.

    Parameters
    ----------
    n : int
        Number of events.
    geometry : CalorimeterGeometry
    beam : Beam
    rng : numpy.random.Generator
        Source of randomness (results are reproducible for a given seed, chunk and max_spots).
    chunk : int
        Events simulated per vectorized block (also bounded so that ``chunk * n_cells <= 2**23``).
    max_spots : int
        Cap on spots per event; the sampling resolution is preserved by the spot energies.
    energies : ndarray, optional
        Incident energies (GeV) to use instead of drawing them from the beam spectrum.

    Examples
    --------
    >>> from driftcal.sim.geometry import Beam, CalorimeterGeometry
    >>> g = CalorimeterGeometry(layers=4, height=8, width=8)
    >>> e = np.full(200, 10.0)
    >>> x = simulate_showers(200, g, Beam(particle="e-"), rng=np.random.default_rng(0), energies=e)
    >>> bool(200 < x.sum(axis=(1, 2, 3)).mean() < 260)  # ~10 GeV x 2.5 % EM sampling fraction, minus leakage
    True
    """
    n = int(n)
    out = np.empty((n, *geometry.shape), dtype=np.float32)
    lo = 0
    for _, block in iter_showers(
        n, geometry, beam, rng=rng, chunk=chunk, max_spots=max_spots, energies=energies
    ):
        out[lo : lo + block.shape[0]] = block
        lo += block.shape[0]
    return out
