"""Empirical-Bayes pooling of per-cell gains (driftcal/calib/pooling.py)."""

from __future__ import annotations

import numpy as np
import pytest

from driftcal.calib.fit import fit
from driftcal.calib.pooling import Pooling, pool_gains, pooled_fit
from driftcal.errors import InputError


def _noisy(truth: np.ndarray, sd: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A full-sample estimate and two half-sample ones with log-normal noise (halves: twice the variance)."""
    a = truth * np.exp(rng.normal(0.0, sd * np.sqrt(2.0)))
    b = truth * np.exp(rng.normal(0.0, sd * np.sqrt(2.0)))
    return np.sqrt(a * b), a, b  # the full sample's log estimate is the mean of the halves'


def _rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((x - y) ** 2)))


@pytest.mark.parametrize("law", ["smooth", "step"])
def test_pooling_lowers_the_rmse_and_follows_the_dose(law):
    rng = np.random.default_rng(0)
    n = 1200
    dose = rng.uniform(0.0, 1.0, n)
    base = 1.0 - 0.3 * np.sqrt(dose) if law == "smooth" else np.where(dose < 0.5, 0.95, 0.7)
    truth = base * np.exp(rng.normal(0.0, 0.01, n))  # gains follow the dose
    sd = np.where(dose < 0.5, 0.15, 0.03)  # rarely hit cells: noisy estimates
    est, a, b = _noisy(truth, sd, rng)
    pooled = pool_gains([(est, a, b)], dose, np.ones(n, bool))
    assert pooled.pooled.all() and pooled.weights == (1.0,)
    assert _rmse(pooled.coefficients, truth) < 0.4 * _rmse(est, truth)  # measured 0.14x and 0.30x
    flat = pool_gains([(est, a, b)], dose, np.ones(n, bool), Pooling(trend_cells=2 * n + 1))  # no trend
    assert _rmse(pooled.coefficients, truth) < 0.5 * _rmse(flat.coefficients, truth)
    z = (pooled.coefficients - truth) / pooled.uncertainty
    if law == "smooth":  # the posterior sd has the right size; at a step the running mean smears the trend
        assert 0.5 < np.sqrt(np.mean(z**2)) < 2.0


def test_pooling_helps_without_structure_and_keeps_a_precise_outlier():
    rng = np.random.default_rng(1)
    n = 800
    truth = rng.uniform(0.6, 1.0, n)
    truth[:5] = 0.3  # dead cells, precisely measured
    sd = rng.choice([0.02, 0.12], n)
    sd[:5] = 0.01
    est, a, b = _noisy(truth, sd, rng)
    pooled = pool_gains([(est, a, b)], rng.uniform(size=n), np.ones(n, bool))
    assert _rmse(pooled.coefficients, truth) < 0.9 * _rmse(est, truth)
    np.testing.assert_allclose(pooled.coefficients[:5], 0.3, atol=0.02)


def test_two_estimators_are_combined_by_their_split_half_variances():
    rng = np.random.default_rng(4)
    n = 1000
    truth = rng.uniform(0.6, 1.0, n)
    coarse, fine = _noisy(truth, np.full(n, 0.08), rng), _noisy(truth, np.full(n, 0.04), rng)
    usable, dose = np.ones(n, bool), rng.uniform(size=n)
    both = pool_gains([coarse, fine], dose, usable)
    assert sum(both.weights) == pytest.approx(1.0)
    assert 0.7 < both.weights[1] < 0.9  # 0.08² / (0.08² + 0.04²) = 0.8 for independent noise
    fine_only = pool_gains([fine], dose, usable)
    assert _rmse(both.coefficients, truth) < _rmse(fine_only.coefficients, truth)
    unbiased = _noisy(truth, np.full(n, 0.02), rng)
    useless = _noisy(truth, np.full(n, 0.3), rng)
    assert pool_gains([useless, unbiased], dose, usable).weights[1] > 0.95
    same = (truth, truth, truth)  # no spread between the halves at all: equal weights, gains kept
    exact = pool_gains([same, same], dose, usable)
    assert exact.weights == (0.5, 0.5)
    np.testing.assert_allclose(exact.coefficients, truth, rtol=3e-3)  # up to the prior's grid step


def test_neighbours_carry_high_voltage_groups_and_stay_out_without_a_pattern():
    rng = np.random.default_rng(5)
    shape = (4, 20, 20)
    dose = rng.uniform(size=shape)
    groups = np.repeat(np.repeat(rng.uniform(0.75, 1.0, (4, 4, 4)), 5, axis=1), 5, axis=2)
    sd = rng.choice([0.03, 0.15], shape)  # half the cells rarely hit
    usable = np.ones(shape, bool)
    for truth, patterned in (
        (groups * np.exp(rng.normal(0.0, 0.02, shape)), True),
        (rng.permutation(groups.reshape(-1)).reshape(shape), False),
    ):
        fits = [_noisy(truth, sd, rng)]
        near = pool_gains(fits, dose, usable)
        alone = pool_gains(fits, dose, usable, Pooling(neighbours=0))
        assert alone.neighbour_weight is None
        if patterned:  # measured: λ 1.0 (clipped), RMSE 0.88x; seeds 0-4: 0.85-0.91x
            assert near.neighbour_weight > 0.5
            assert _rmse(near.coefficients, truth) < 0.95 * _rmse(alone.coefficients, truth)
        else:  # the same gains shuffled over the cells: measured λ 0.32 (seeds 0-4: 0-0.21), RMSE 1.001x;
            # λ is noisy without a pattern, but the neighbours' mean residual is then close to 0
            assert near.neighbour_weight < 0.5
            assert _rmse(near.coefficients, truth) < 1.02 * _rmse(alone.coefficients, truth)
    flat_fits = [tuple(x.reshape(-1) for x in fits[0])]
    flat = pool_gains(flat_fits, dose.reshape(-1), usable.reshape(-1))  # cells without a plane
    assert flat.neighbour_weight is None


def test_a_group_map_carries_groups_that_no_square_follows():
    rng = np.random.default_rng(6)
    shape = (4, 20, 20)
    labels = rng.integers(0, 64, shape)  # scattered groups, e.g. readout boards wired across the layer
    group_gain = rng.uniform(0.75, 1.0, 64)
    truth = group_gain[labels] * np.exp(rng.normal(0.0, 0.02, shape))
    dose, usable = rng.uniform(size=shape), np.ones(shape, bool)
    sd = np.where(dose < 0.5, 0.15, 0.03)  # the low-dose half rarely hit
    fits = [_noisy(truth, sd, rng)]
    square = pool_gains(fits, dose, usable)
    grouped = pool_gains(fits, dose, usable, groups=labels)
    # measured on seeds 0-4: λ 0.96-1.00, RMSE 0.41-0.58x the square's
    assert grouped.neighbour_weight > 0.8
    assert _rmse(grouped.coefficients, truth) < 0.7 * _rmse(square.coefficients, truth)
    unrelated = pool_gains(fits, dose, usable, groups=rng.permutation(labels.reshape(-1)).reshape(shape))
    assert unrelated.neighbour_weight < 0.3  # measured 0-0.15, RMSE 1.000-1.001x
    assert _rmse(unrelated.coefficients, truth) < 1.02 * _rmse(square.coefficients, truth)
    partial = labels.copy()
    partial[0] = -1  # the first layer is in no group: it gets no term, and is still pooled
    some = pool_gains(fits, dose, usable, groups=partial)
    assert some.pooled.all()  # the other layers: measured 0.44-0.59x
    assert _rmse(some.coefficients[1:], truth[1:]) < 0.7 * _rmse(square.coefficients[1:], truth[1:])
    channels = pool_gains(fits, dose, usable, groups=labels * 1_000_003 + 10**12)  # ids as a DAQ numbers them
    np.testing.assert_array_equal(channels.coefficients, grouped.coefficients)
    with pytest.raises(InputError, match="one shape"):
        pool_gains(fits, dose, usable, groups=labels[0])


def test_fit_checks_the_group_map():
    reference, changed, _ = _calorimeter(np.random.default_rng(3), 500)
    labels = np.arange(240) // 10
    ok = fit(reference, changed, model="cell-gain", method="auto", groups=labels.astype(np.float32))
    assert ok.pool_neighbour_weight is not None  # cells in a row, but the groups give the term
    for bad, says in ((labels[:10], "shape"), (labels + 0.5, "whole numbers")):
        with pytest.raises(InputError, match=says):
            fit(reference, changed, model="cell-gain", method="auto", groups=bad)
    with pytest.raises(InputError, match="used by pooling"):
        fit(reference, changed, model="cell-gain", method="quantile", groups=labels)


def test_unusable_cells_are_left_alone_and_too_few_cells_pool_nothing():
    rng = np.random.default_rng(2)
    n = 300
    truth = rng.uniform(0.6, 1.0, n)
    est, a, b = _noisy(truth, np.full(n, 0.05), rng)
    est[0], a[1], b[2] = 1.0, 0.0, np.nan  # 0 is not usable; 1 and 2 lack a half estimate
    usable = np.ones(n, bool)
    usable[0] = False
    grid = [x.reshape(3, 100) for x in (est, a, b, np.arange(float(n)), usable)]
    pooled = pool_gains([tuple(grid[:3])], grid[3], grid[4])
    assert pooled.coefficients.shape == (3, 100)
    flat, unc = pooled.coefficients.reshape(-1), pooled.uncertainty.reshape(-1)
    np.testing.assert_array_equal(flat[:3], est[:3])
    assert np.isnan(unc[:3]).all() and np.isfinite(unc[3:]).all()
    assert pooled.pooled.sum() == n - 3
    few = pool_gains([(est[3:12], a[3:12], b[3:12])], np.arange(9), np.ones(9, bool))
    assert few.weights == () and not few.pooled.any()
    np.testing.assert_array_equal(few.coefficients, est[3:12])


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="one shape"):
        pool_gains([(np.ones(3), np.ones(3), np.ones(4))], np.ones(3), np.ones(3, bool))
    with pytest.raises(InputError, match="at least one"):
        pool_gains([], np.ones(3), np.ones(3, bool))
    with pytest.raises(InputError, match="trend_cells"):
        Pooling(trend_cells=0)
    with pytest.raises(InputError, match="neighbours"):
        Pooling(neighbours=-1)
    with pytest.raises(InputError, match="one estimate per estimator"):
        pooled_fit([np.mean], np.ones((4, 3)), np.ones((4, 3)), [], dose=np.ones(3), usable=np.ones(3, bool))


def test_pooled_fit_runs_each_estimator_on_disjoint_halves():
    seen: list[tuple[str, int, int, float]] = []

    def estimator(name: str):
        def run(reference: np.ndarray, changed: np.ndarray) -> np.ndarray:
            seen.append((name, len(reference), len(changed), float(reference[:, 0].sum())))
            return changed.mean(0) / reference.mean(0)

        return run

    reference = np.arange(1.0, 101.0)[:, None] * np.ones((1, 30))
    changed = 0.9 * reference[:60]
    estimates = [np.full(30, 0.9), np.full(30, 0.9)]
    pooled_fit(
        [estimator("a"), estimator("b")],
        reference,
        changed,
        estimates,
        dose=np.ones(30),
        usable=np.ones(30, bool),
    )
    assert [s[0] for s in seen] == ["a", "a", "b", "b"]
    (_, n_ref_a, n_chg_a, sum_a), (_, n_ref_b, n_chg_b, sum_b) = seen[:2]
    assert (n_ref_a, n_ref_b, n_chg_a, n_chg_b) == (50, 50, 30, 30)
    assert sum_a + sum_b == pytest.approx(reference[:, 0].sum())  # the halves split the events
    assert seen[2][1:] == seen[0][1:] and seen[3][1:] == seen[1][1:]  # both estimators see the same halves


def _calorimeter(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells with occupancy from 2 % to 60 % and gains that fall with it (a dose law)."""
    occupancy = np.geomspace(0.02, 0.6, 240)
    truth = 1.0 - 0.3 * np.sqrt(occupancy / occupancy.max())

    def sample(gain: np.ndarray) -> np.ndarray:
        hit = rng.random((n, occupancy.size)) < occupancy
        return (gain * rng.gamma(2.0, 1.0, (n, occupancy.size)) * hit).astype(np.float32)

    return sample(np.ones_like(truth)), sample(truth), truth


def test_fit_pools_by_default_for_auto_and_not_for_the_baseline():
    reference, changed, truth = _calorimeter(np.random.default_rng(3), 4000)
    per_cell = fit(reference, changed, model="cell-gain", method="quantile")
    pooled = fit(reference, changed, model="cell-gain", method="auto")
    assert per_cell.pooled_cells is None and per_cell.uncertainty is None
    assert pooled.method == "quantile" and pooled.pooled_cells == 240
    assert pooled.pool_log_weight is not None and 0.0 <= pooled.pool_log_weight <= 1.0
    assert pooled.uncertainty is not None and np.isfinite(pooled.uncertainty).all()
    assert _rmse(pooled.coefficients, truth) < 0.8 * _rmse(per_cell.coefficients, truth)
    explicit = fit(reference, changed, model="cell-gain", method="quantile", pool=True)
    np.testing.assert_array_equal(explicit.coefficients, pooled.coefficients)
    off = fit(reference, changed, model="cell-gain", method="auto", pool=False)
    np.testing.assert_array_equal(off.coefficients, per_cell.coefficients)
    assert pooled.pool_neighbour_weight is None  # cells in a row: no plane, no neighbours' term
    plane = fit(reference.reshape(-1, 12, 20), changed.reshape(-1, 12, 20), model="cell-gain", method="auto")
    assert plane.pool_neighbour_weight is not None and 0.0 <= plane.pool_neighbour_weight <= 1.0
    assert plane.coefficients.shape == (12, 20)


def test_pooling_plane_shifts_is_an_input_error():
    hits = np.zeros((100, 3))
    with pytest.raises(InputError, match="cell gains"):
        fit(hits, hits, model="plane-shift", method="ratio-of-means", pool=True)
