"""Critics C_φ and the Lipschitz constraints that make them Wasserstein critics."""

from driftcal.calib.critics.conv import ConvCritic
from driftcal.calib.critics.lipschitz import (
    GradientPenalty,
    Lipschitz,
    SpectralNorm,
    WeightClipping,
    make_lipschitz,
)
from driftcal.calib.critics.mlp import MLPCritic
from driftcal.calib.critics.preprocess import AsinhStandardize, Standardize, Whiten

__all__ = [
    "AsinhStandardize",
    "ConvCritic",
    "GradientPenalty",
    "Lipschitz",
    "MLPCritic",
    "SpectralNorm",
    "Standardize",
    "WeightClipping",
    "Whiten",
    "make_lipschitz",
]
