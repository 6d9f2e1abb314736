"""Filling the zero-suppressed reference entries just below the threshold."""

import numpy as np
import pytest

from driftcal.calib.baselines import QuantileGain
from driftcal.calib.suppressed import fill_suppressed

SIGMA, THRESHOLD = 0.05, 0.15


def _readout(
    gain: np.ndarray | float, rng: np.random.Generator, n: int = 40_000, cells: int = 8
) -> np.ndarray:
    deposits = rng.exponential(0.15, (n, cells)) * (rng.random((n, cells)) < 0.2)  # many deposits near T
    readings = gain * deposits + SIGMA * rng.standard_normal((n, cells))
    return np.where(readings > THRESHOLD, readings, 0.0).astype(np.float32)


def test_filling_removes_most_of_the_threshold_bias_of_the_per_cell_fit():
    rng = np.random.default_rng(1)
    gain = np.linspace(0.7, 0.95, 8)
    reference, changed = _readout(1.0, rng), _readout(gain, rng)
    plain = QuantileGain(noise=SIGMA, threshold=THRESHOLD).fit(reference, changed)
    filled = QuantileGain(noise=SIGMA, threshold=THRESHOLD).fit(
        fill_suppressed(reference, noise=SIGMA, threshold=THRESHOLD), changed
    )
    bias_plain, bias_filled = float((plain - gain).mean()), float((filled - gain).mean())
    assert bias_plain > 0.008  # the forward model alone misses deposits that pass only when aged
    assert abs(bias_filled) < 0.5 * bias_plain
    assert np.sqrt(((filled - gain) ** 2).mean()) < np.sqrt(((plain - gain) ** 2).mean())


def test_only_suppressed_entries_change_and_the_fill_is_reproducible():
    reference = _readout(1.0, np.random.default_rng(2), n=5000, cells=3)
    a = fill_suppressed(reference, noise=SIGMA, threshold=THRESHOLD, seed=7)
    b = fill_suppressed(reference, noise=SIGMA, threshold=THRESHOLD, seed=7)
    assert np.array_equal(a, b) and a.dtype == np.float32
    changed = a != reference
    assert changed.any() and not (changed & (reference != 0)).any()
    assert a[changed].min() >= THRESHOLD / 2 and a[changed].max() <= THRESHOLD


def test_a_cell_that_never_fires_stays_empty():
    reference = _readout(1.0, np.random.default_rng(3), n=2000, cells=2)
    reference[:, 1] = 0.0
    assert not fill_suppressed(reference, noise=SIGMA, threshold=THRESHOLD)[:, 1].any()


@pytest.mark.parametrize(("noise", "threshold"), [(0.0, 0.15), (0.05, 0.0)])
def test_needs_a_noise_and_a_threshold(noise: float, threshold: float):
    with pytest.raises(ValueError, match="noise > 0 and threshold > 0"):
        fill_suppressed(np.zeros((3, 2), dtype=np.float32), noise=noise, threshold=threshold)
