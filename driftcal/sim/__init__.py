"""Simulators: toy tracker, sampling-calorimeter showers, readout and aging.

Modules
-------
geometry      calorimeter geometry, materials, beam spectrum and impact points
longitudinal  GFlash (EM) and Bock (hadronic) longitudinal profiles with per-event fluctuations
lateral       GFlash core + tail radial profile
showers       vectorized spot simulation binned into cells (MeV of visible energy)
readout       gain, electronic noise, zero suppression; typical noise scales
aging         dose-driven, dose-independent (uniform), time-dependent and sudden-drop gain fields
tracker       N-plane tracker with straight/inclined tracks and plane shifts
datasets      reference/changed pairs with truth for the cell-gain and plane-shift models

Realistic readout for benchmarks: noise σ ≈ 5 % of the median non-zero cell deposit (about 0.013 MeV for
6 × 16 × 16 with 3 plates per layer, π⁻ beam), threshold ≈ 3σ; see :func:`typical_readout`.
"""

from driftcal.sim.aging import DoseAging, ModuleDrop, TimeDependentAging, UniformAging, cell_dose
from driftcal.sim.datasets import Dataset, make_calorimeter_dataset, make_tracker_dataset
from driftcal.sim.geometry import (
    LEAD,
    POLYSTYRENE,
    Beam,
    CalorimeterGeometry,
    Material,
    sample_energies,
    sample_impacts,
)
from driftcal.sim.readout import Readout, apply_readout, typical_noise, typical_readout
from driftcal.sim.showers import iter_showers, simulate_showers
from driftcal.sim.tracker import TrackerGeometry, default_shifts, residuals, simulate_tracks

__all__ = [
    "LEAD",
    "POLYSTYRENE",
    "Beam",
    "CalorimeterGeometry",
    "Dataset",
    "DoseAging",
    "Material",
    "ModuleDrop",
    "Readout",
    "TimeDependentAging",
    "TrackerGeometry",
    "UniformAging",
    "apply_readout",
    "cell_dose",
    "default_shifts",
    "iter_showers",
    "make_calorimeter_dataset",
    "make_tracker_dataset",
    "residuals",
    "sample_energies",
    "sample_impacts",
    "simulate_showers",
    "simulate_tracks",
    "typical_noise",
    "typical_readout",
]
