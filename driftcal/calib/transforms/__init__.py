"""Transforms T_θ: one class each, θ = physical parameters with their range."""

from driftcal.calib.transforms.base import Direction, Transform
from driftcal.calib.transforms.cell_gain import CellGain
from driftcal.calib.transforms.plane_shift import PlaneShift

__all__ = ["CellGain", "Direction", "PlaneShift", "Transform"]
