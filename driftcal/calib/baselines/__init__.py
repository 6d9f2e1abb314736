"""Classical baseline estimators, one class each with ``fit(reference, changed) -> coefficients``.

Calorimeter gains (``changed ≈ A · reference``): :class:`RatioOfMeans`, :class:`QuantileGain`.
Tracker shifts (``changed ≈ reference + Δx``, in the frame of the outer planes): :class:`MeanShift`,
:class:`QuantileShift`, :class:`ResidualShift`.
"""

from driftcal.calib.baselines.quantile import QuantileGain
from driftcal.calib.baselines.ratio_of_means import RatioOfMeans
from driftcal.calib.baselines.shift import MeanShift, QuantileShift, ResidualShift

__all__ = ["MeanShift", "QuantileGain", "QuantileShift", "RatioOfMeans", "ResidualShift"]
