import numpy as np
import pytest

from driftcal.sim import DoseAging, ModuleDrop, TimeDependentAging, UniformAging, cell_dose


def test_cell_dose_counts_events_above_cut():
    x = np.zeros((5, 2, 3), dtype=np.float32)
    x[:, 0, 0] = 1.0
    x[:2, 1, 2] = 0.5
    x[0, 0, 1] = 1e-4
    d = cell_dose(x)
    assert d.shape == (2, 3)
    assert d[0, 0] == 5 and d[1, 2] == 2 and d[0, 1] == 1 and d[1, 0] == 0
    assert cell_dose(x, cut=1e-3)[0, 1] == 0


def test_dose_aging_monotone_and_anchored():
    dose = np.arange(0, 1001, 10)
    a = DoseAging(epsilon=0.0).sample(dose, np.random.default_rng(0))
    assert a.dtype == np.float32
    assert (np.diff(a) <= 0).all()
    assert a[0] == 1.0
    assert a[-1] == pytest.approx(0.7)  # busiest cell loses max_loss


def test_dose_aging_noise_and_clamp():
    dose = np.random.default_rng(0).integers(0, 1000, size=(4, 8, 8))
    aging = DoseAging(max_loss=0.6, epsilon=0.2, alpha_min=0.55)
    a = aging.sample(dose, np.random.default_rng(1))
    assert a.shape == dose.shape
    assert a.min() >= 0.55 and a.max() <= 1.0
    assert (a == 0.55).any() and (a == 1.0).any()
    # with small epsilon, the residual around the law has std ~ epsilon
    small = DoseAging(epsilon=0.01, max_loss=0.3)
    b = small.sample(dose, np.random.default_rng(2))
    resid = b - small.nominal(dose)
    inside = (b > 0.5) & (b < 1.0)
    assert resid[inside].std() == pytest.approx(0.01, rel=0.3)
    assert np.corrcoef(dose.ravel(), b.ravel())[0, 1] < -0.8  # busier cells age more


def test_time_dependent_gains_decrease_with_events():
    occ = np.array([[0.0, 0.1], [0.5, 1.0]])
    aging = TimeDependentAging(occ, rate=1e-5, epsilon=0.1, rng=3, alpha_min=0.6)
    np.testing.assert_array_equal(aging.gains_at(0), np.ones((2, 2), dtype=np.float32))
    ts = [0, 1_000, 10_000, 30_000, 100_000]
    g = np.stack([aging.gains_at(t) for t in ts])
    assert (np.diff(g, axis=0) <= 0).all()
    assert (g[-2][occ > 0] < 1.0).all()
    assert g[:, 0, 0].tolist() == [1.0] * len(ts)  # never hit, never ages
    assert g.min() >= 0.6 and g[-1, 1, 1] == pytest.approx(0.6)
    # busier cell ages faster; the per-cell draw is fixed (smooth, reproducible in t)
    assert g[2, 1, 1] < g[2, 1, 0] < g[2, 0, 1]
    np.testing.assert_array_equal(aging.gains_at(10_000), aging.gains_at(10_000))


def test_time_dependent_from_deposits():
    x = np.zeros((100, 1, 2), dtype=np.float32)
    x[:50, 0, 0] = 1.0
    x[:, 0, 1] = 1.0
    aging = TimeDependentAging.from_deposits(x, rate=1e-4)
    np.testing.assert_allclose(aging.occupancy, [[0.5, 1.0]])
    np.testing.assert_allclose(aging.gains_at(1000), [[0.95, 0.9]], rtol=1e-6)


def test_module_drop_only_after_event_and_only_its_cells():
    shape = (3, 4, 4)
    gains = np.full(shape, 0.9, dtype=np.float32)
    tower = (slice(None), slice(1, 3), slice(1, 3))
    drop = ModuleDrop(at_event=500, cells=tower, factor=0.5)
    np.testing.assert_array_equal(drop.apply(gains, 499), gains)
    after = drop.apply(gains, 500)
    mask = drop.mask(shape)
    assert mask.sum() == 12
    np.testing.assert_allclose(after[mask], 0.45)
    np.testing.assert_array_equal(after[~mask], gains[~mask])
    np.testing.assert_array_equal(gains, np.float32(0.9))  # input untouched
    layer_mask = np.zeros(shape, dtype=bool)
    layer_mask[1] = True
    by_mask = ModuleDrop(at_event=0, cells=layer_mask, factor=0.0).apply(gains, 0)
    assert (by_mask[1] == 0).all() and (by_mask[[0, 2]] == np.float32(0.9)).all()


def test_drop_inside_time_dependent_aging():
    occ = np.full((2, 2, 2), 0.5)
    drop = ModuleDrop(at_event=1000, cells=(0,), factor=0.5)
    aging = TimeDependentAging(occ, rate=1e-6, drops=[drop])
    before, after = aging.gains_at(999), aging.gains_at(1000)
    assert np.allclose(after[1], before[1], atol=1e-6)
    assert np.allclose(after[0], 0.5 * before[0], atol=1e-6)


def test_uniform_aging_ignores_the_dose_and_stays_in_range():
    dose = np.repeat(np.array([0, 10, 1000]), 4000)
    a = UniformAging(0.6, 1.0, epsilon=0.02).sample(dose, np.random.default_rng(0))
    assert a.dtype == np.float32 and a.min() >= 0.6 and a.max() <= 1.0
    means = [float(a[dose == d].mean()) for d in (0, 10, 1000)]
    assert max(means) - min(means) < 0.01 and abs(means[0] - 0.8) < 0.01
    with pytest.raises(ValueError):
        UniformAging(1.0, 0.5)
