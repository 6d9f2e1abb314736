"""``fit``: the method switch, recovery at small scale, and the win over ratio of means."""

from dataclasses import replace

import numpy as np
import pytest

from driftcal.calib.fit import fit
from driftcal.calib.metrics import active_cells, rmse
from driftcal.calib.recipes import default_recipe
from driftcal.errors import InputError
from driftcal.sim import Beam, CalorimeterGeometry, make_calorimeter_dataset, make_tracker_dataset

TINY = CalorimeterGeometry(layers=2, height=4, width=4, plates_per_layer=4)


@pytest.fixture(scope="module")
def zero_suppressed():
    # σ = 0.5 MeV, threshold 3σ: strong enough to bias the ratio of per-cell means
    return make_calorimeter_dataset(10_000, geometry=TINY, beam=Beam(), noise=0.5, threshold=1.5, seed=1)


def _rmse(result, data):
    return rmse(result.coefficients, data.truth, active_cells(data.reference))


def test_adversarial_beats_ratio_of_means_on_zero_suppressed_showers():
    # 4 x 8 x 8 cells, noise σ = 0.05 MeV, threshold 3σ; the default (conv critic) recipe, shortened
    geometry = CalorimeterGeometry(layers=4, height=8, width=8, plates_per_layer=3)
    d = make_calorimeter_dataset(10_000, geometry=geometry, beam=Beam(), noise=0.05, threshold=0.15, seed=1)
    start = rmse(np.ones_like(d.truth), d.truth, active_cells(d.reference))
    ratio = fit(d.reference, d.changed, model="cell-gain", method="ratio-of-means")
    adv = fit(
        d.reference,
        d.changed,
        model="cell-gain",
        method="adversarial",
        noise=0.05,
        threshold=0.15,
        steps=300,
        seed=0,
        device="cpu",
    )
    assert adv.method == "adversarial" and adv.steps > 0 and adv.start == "quantile"  # the hybrid
    assert adv.coefficients.shape == d.truth.shape
    assert _rmse(adv, d) < 0.5 * start
    assert _rmse(adv, d) < 0.85 * _rmse(ratio, d), (_rmse(adv, d), _rmse(ratio, d))
    assert adv.distance_after < adv.distance_before


def test_hybrid_keeps_its_start_unless_the_refinement_lowers_the_heldout_distance(zero_suppressed):
    d = zero_suppressed
    base = default_recipe("cell-gain", d.reference.shape[1:])
    readout = {"model": "cell-gain", "noise": 0.5, "threshold": 1.5, "seed": 0}
    start = fit(d.reference, d.changed, method="quantile", **readout).coefficients

    def run(accept_z):
        recipe = replace(base, accept_z=accept_z)
        return fit(d.reference, d.changed, steps=60, device="cpu", probe_steps=20, recipe=recipe, **readout)

    kept = run(1e6)  # no refinement can lower the distance by a million standard errors
    assert kept.refined is False and kept.steps == 60
    np.testing.assert_array_equal(kept.coefficients, start)  # the per-cell fit itself, not a float32 copy
    assert kept.distance_after == kept.distance_start
    taken = run(-1e6)  # any refinement is kept
    assert taken.refined is True and np.max(np.abs(taken.coefficients - start)) > 1e-4
    assert taken.distance_start is not None and taken.distance_after != taken.distance_start
    always = run(None)  # no check: the refinement is returned as it is
    assert always.refined is None and always.distance_start is None
    np.testing.assert_array_equal(always.coefficients, taken.coefficients)


def test_adversarial_recovers_tracker_shift():
    d = make_tracker_dataset(20_000, noise=1e-3, seed=3)
    res = fit(d.reference, d.changed, model="plane-shift", steps=400, seed=0, device="cpu")
    assert res.coefficients[0] == 0.0 and res.coefficients[-1] == 0.0
    assert abs(res.coefficients[1] - d.truth[1]) < 5e-4


def test_seeded_fits_are_deterministic_on_cpu(zero_suppressed):
    d = zero_suppressed
    runs = [
        fit(
            d.reference[:3000],
            d.changed[:3000],
            model="cell-gain",
            noise=0.3,
            threshold=0.9,
            steps=20,
            seed=5,
            device="cpu",
        ).coefficients
        for _ in range(2)
    ]
    assert np.array_equal(runs[0], runs[1])


def test_baseline_methods_route_to_their_estimators(zero_suppressed):
    d = zero_suppressed
    for method in ("ratio-of-means", "quantile"):
        res = fit(d.reference, d.changed, model="cell-gain", method=method, noise=0.5, threshold=1.5)
        assert res.method == method and res.steps == 0
        assert _rmse(res, d) < 0.1


def test_unknown_model_or_method_is_an_input_error(zero_suppressed):
    d = zero_suppressed
    with pytest.raises(InputError, match="unknown method"):
        fit(d.reference, d.changed, model="cell-gain", method="magic")
    with pytest.raises(InputError, match="unknown model"):
        fit(d.reference, d.changed, model="gain", method="quantile")


def test_auto_picks_the_measured_best_method_and_says_so(zero_suppressed):
    d = make_tracker_dataset(5_000, noise=1e-3, seed=4)
    res = fit(d.reference, d.changed, model="plane-shift", method="auto")
    assert res.method == "ratio-of-means"
    assert abs(res.coefficients[1] - d.truth[1]) < 1e-4
    cells = fit(zero_suppressed.reference, zero_suppressed.changed, model="cell-gain", method="auto")
    assert cells.method == "quantile"
