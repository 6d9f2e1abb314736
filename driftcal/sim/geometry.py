"""Sampling-calorimeter geometry, materials and beam.

The default geometry is the paper's: 20 mm Pb absorber + 5 mm polystyrene scintillator per plate, the central
16x16 cells of 40 readout layers. Lengths are in mm, energies of the beam in GeV, deposits in MeV of *visible*
energy (energy left in the scintillator).

The sampling structure is treated as a homogeneous effective medium (GFlash convention): effective radiation
length ``X0_eff``, Molière radius ``R_M_eff``, critical energy ``Ec_eff``, nuclear interaction length
``lambda_eff`` and mass-weighted ``Z_eff``. ``F_s = X0_eff / (d_active + d_passive)`` and
``e_hat = 1 / (1 + 0.007 (Z_passive - Z_active))`` enter the sampling corrections of the longitudinal profile.

Examples
--------
>>> g = CalorimeterGeometry()
>>> round(g.x0_eff_mm, 2), round(g.moliere_eff_mm, 1), round(g.z_eff, 1), round(g.sampling_fraction_mip, 4)
(6.99, 19.2, 80.3, 0.0387)

References
----------
G. Grindhammer and S. Peters, "The parameterized simulation of electromagnetic showers in homogeneous and
sampling calorimeters", hep-ex/0001020.
Particle Data Group, "Atomic and nuclear properties of materials" (Pb, polystyrene).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

E_SCALE_MEV = 21.2052  # multiple-scattering energy E_s of the Molière radius, MeV


@dataclass(frozen=True)
class Material:
    """A homogeneous material layer.

    Parameters
    ----------
    name : str
    z : float
        (Effective) atomic number.
    density : float
        g/cm^3.
    x0_mm : float
        Radiation length in mm.
    lambda_mm : float
        Nuclear interaction length in mm.
    ec_mev : float
        Critical energy (electrons) in MeV.
    dedx_mip : float
        Minimum-ionizing stopping power in MeV/mm.
    """

    name: str
    z: float
    density: float
    x0_mm: float
    lambda_mm: float
    ec_mev: float
    dedx_mip: float


LEAD = Material("Pb", z=82.0, density=11.35, x0_mm=5.612, lambda_mm=175.9, ec_mev=7.43, dedx_mip=1.2735)
POLYSTYRENE = Material(
    "polystyrene", z=5.6, density=1.06, x0_mm=413.1, lambda_mm=770.7, ec_mev=93.11, dedx_mip=0.2052
)


@dataclass(frozen=True)
class CalorimeterGeometry:
    """Sampling calorimeter: ``layers`` readout layers of ``height x width`` square cells.

    Each readout layer sums ``plates_per_layer`` plates; a plate is ``absorber_mm`` of absorber followed by
    ``active_mm`` of active material. Only the energy seen by the active material is recorded.

    Parameters
    ----------
    layers, height, width : int
        Readout shape (L, H, W). Default 40 x 16 x 16 (the paper's central 16 x 16 cells).
    plates_per_layer : int
        Absorber+active plates summed into one readout layer (default 1). E.g. 6 layers x 3 plates.
    cell_size_mm : float
        Transverse cell pitch, default 20 mm (about one effective Molière radius, 19.2 mm).
    absorber_mm, active_mm : float
        Plate thicknesses, default 20 mm Pb + 5 mm polystyrene.
    absorber, active : Material
    em_sampling_term : float
        Stochastic term of the electromagnetic sampling resolution, ``sigma/E = term/sqrt(E/GeV)`` (GFlash
        default 0.11). Carried by the spot energies.
    had_sampling_term : float
        Stochastic sampling term of the hadronic component (default 0.30).
    e_over_h : float
        Ratio of the visible response to the EM and the non-EM hadronic component (default 1.1; a 4:1
        Pb/scintillator volume ratio is close to compensating).
    hadronic_lateral_scale : float
        The hadronic (non-EM) component uses the GFlash core+tail lateral form with its radii scaled by this
        factor (default 4, i.e. ~77 mm per unit radius; the hadronic component is ~1 interaction length wide).
    """

    layers: int = 40
    height: int = 16
    width: int = 16
    plates_per_layer: int = 1
    cell_size_mm: float = 20.0
    absorber_mm: float = 20.0
    active_mm: float = 5.0
    absorber: Material = field(default=LEAD)
    active: Material = field(default=POLYSTYRENE)
    em_sampling_term: float = 0.11
    had_sampling_term: float = 0.30
    e_over_h: float = 1.1
    hadronic_lateral_scale: float = 4.0

    def __post_init__(self) -> None:
        for name in ("layers", "height", "width", "plates_per_layer"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.cell_size_mm <= 0 or self.absorber_mm < 0 or self.active_mm <= 0:
            raise ValueError("cell size and active thickness must be positive, absorber non-negative")

    # -- shape ---------------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Readout shape ``(L, H, W)``."""
        return (self.layers, self.height, self.width)

    @property
    def n_cells(self) -> int:
        return self.layers * self.height * self.width

    @property
    def n_plates(self) -> int:
        return self.layers * self.plates_per_layer

    @property
    def plate_mm(self) -> float:
        """Thickness of one absorber+active plate (mm)."""
        return self.absorber_mm + self.active_mm

    @property
    def depth_mm(self) -> float:
        return self.n_plates * self.plate_mm

    # -- effective medium ----------------------------------------------------------------------------------
    @property
    def _mass_fractions(self) -> tuple[float, float]:
        ma = self.absorber_mm * self.absorber.density
        mb = self.active_mm * self.active.density
        return ma / (ma + mb), mb / (ma + mb)

    @property
    def z_eff(self) -> float:
        """Mass-weighted effective atomic number."""
        wa, wb = self._mass_fractions
        return wa * self.absorber.z + wb * self.active.z

    @property
    def x0_eff_mm(self) -> float:
        return self.plate_mm / (self.absorber_mm / self.absorber.x0_mm + self.active_mm / self.active.x0_mm)

    @property
    def lambda_eff_mm(self) -> float:
        return self.plate_mm / (
            self.absorber_mm / self.absorber.lambda_mm + self.active_mm / self.active.lambda_mm
        )

    @property
    def moliere_eff_mm(self) -> float:
        inv = (
            self.absorber_mm * self.absorber.ec_mev / self.absorber.x0_mm
            + self.active_mm * self.active.ec_mev / self.active.x0_mm
        ) / (self.plate_mm * E_SCALE_MEV)
        return 1.0 / inv

    @property
    def ec_eff_mev(self) -> float:
        return E_SCALE_MEV * self.x0_eff_mm / self.moliere_eff_mm

    @property
    def f_s(self) -> float:
        """GFlash sampling parameter ``F_s = X0_eff / (d_active + d_passive)`` (both in mm)."""
        return self.x0_eff_mm / self.plate_mm

    @property
    def e_hat(self) -> float:
        """GFlash e/mip ratio ``1 / (1 + 0.007 (Z_passive - Z_active))``."""
        return 1.0 / (1.0 + 0.007 * (self.absorber.z - self.active.z))

    @property
    def sampling_fraction_mip(self) -> float:
        """Fraction of a MIP's energy loss seen in the active layer."""
        a = self.active_mm * self.active.dedx_mip
        return a / (a + self.absorber_mm * self.absorber.dedx_mip)

    @property
    def sampling_fraction_em(self) -> float:
        """Visible fraction of electromagnetic energy: ``e_hat`` times the MIP sampling fraction."""
        return self.e_hat * self.sampling_fraction_mip

    @property
    def mip_loss_mev_per_mm(self) -> float:
        """Mean total MIP energy loss per mm of the absorber+active structure."""
        return (
            self.active_mm * self.active.dedx_mip + self.absorber_mm * self.absorber.dedx_mip
        ) / self.plate_mm

    @property
    def mip_visible_mev(self) -> float:
        """Mean visible energy of a MIP crossing one active tile (MeV)."""
        return self.active_mm * self.active.dedx_mip


@dataclass(frozen=True)
class Beam:
    """Single-particle beam at normal incidence.

    The energy follows an exponential spectrum ``p(E) ∝ exp(-E / mean_energy_gev)`` truncated to
    ``[e_min_gev, e_max_gev]`` (a fixed energy when ``e_min_gev == e_max_gev``). The impact point is flat in
    the square ``|x|, |y| <= impact_halfwidth_mm`` around the face centre (clipped to the face).

    Parameters
    ----------
    particle : {"pi-", "e-"}
    mean_energy_gev, e_min_gev, e_max_gev : float
    impact_halfwidth_mm : float
        Default 20 mm: flat over the central 2 x 2 cells of 20 mm (the face centre is a cell corner for an
        even number of cells).

    Examples
    --------
    >>> e = sample_energies(5, Beam(), np.random.default_rng(0))
    >>> bool(((e >= 1.0) & (e <= 100.0)).all())
    True
    """

    particle: Literal["pi-", "e-"] = "pi-"
    mean_energy_gev: float = 10.0
    e_min_gev: float = 1.0
    e_max_gev: float = 100.0
    impact_halfwidth_mm: float = 20.0

    def __post_init__(self) -> None:
        if self.particle not in ("pi-", "e-"):
            raise ValueError(f"unsupported particle {self.particle!r}; use 'pi-' or 'e-'")
        if not (0 < self.e_min_gev <= self.e_max_gev) or self.mean_energy_gev <= 0:
            raise ValueError("need 0 < e_min_gev <= e_max_gev and mean_energy_gev > 0")
        if self.impact_halfwidth_mm < 0:
            raise ValueError("impact_halfwidth_mm must be >= 0")


def sample_energies(n: int, beam: Beam, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` incident energies (GeV, float64) from the beam's truncated exponential spectrum."""
    if beam.e_max_gev == beam.e_min_gev:
        return np.full(n, beam.e_min_gev)
    mu = beam.mean_energy_gev
    span = -math.expm1(-(beam.e_max_gev - beam.e_min_gev) / mu)
    u = rng.random(n)
    return beam.e_min_gev - mu * np.log1p(-u * span)


def sample_impacts(
    n: int, geometry: CalorimeterGeometry, beam: Beam, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Flat transverse impact points ``(x, y)`` in mm, relative to the face centre."""
    hx = min(beam.impact_halfwidth_mm, 0.5 * geometry.cell_size_mm * geometry.width * (1 - 1e-9))
    hy = min(beam.impact_halfwidth_mm, 0.5 * geometry.cell_size_mm * geometry.height * (1 - 1e-9))
    return rng.uniform(-hx, hx, n), rng.uniform(-hy, hy, n)
