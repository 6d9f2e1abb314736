"""``fit``: the method switch, recovery at small scale, and the win over ratio of means."""

import numpy as np
import pytest

from driftcal.calib.fit import fit
from driftcal.calib.metrics import active_cells, rmse
from driftcal.errors import InputError
from driftcal.sim import Beam, CalorimeterGeometry, make_calorimeter_dataset, make_tracker_dataset

TINY = CalorimeterGeometry(layers=2, height=4, width=4, plates_per_layer=4)


@pytest.fixture(scope="module")
def zero_suppressed():
    # σ = 0.3 MeV, threshold 3σ: strong enough to bias the ratio of per-cell means
    return make_calorimeter_dataset(20_000, geometry=TINY, beam=Beam(), noise=0.3, threshold=0.9, seed=1)


def _rmse(result, data):
    return rmse(result.coefficients, data.truth, active_cells(data.reference))


def test_adversarial_beats_ratio_of_means_on_zero_suppressed_data(zero_suppressed):
    d = zero_suppressed
    ratio = fit(d.reference, d.changed, model="cell-gain", method="ratio-of-means")
    adv = fit(
        d.reference,
        d.changed,
        model="cell-gain",
        method="adversarial",
        noise=0.3,
        threshold=0.9,
        steps=400,
        seed=0,
        device="cpu",
    )
    assert adv.method.startswith("adversarial")
    assert adv.coefficients.shape == d.truth.shape
    assert _rmse(adv, d) < 0.75 * _rmse(ratio, d), (_rmse(adv, d), _rmse(ratio, d))
    assert adv.distance_after is not None and adv.distance_before is not None


def test_adversarial_cold_start_recovers_gains(zero_suppressed):
    from dataclasses import replace

    from driftcal.calib.recipes import default_recipe

    d = zero_suppressed
    recipe = replace(default_recipe("cell-gain", d.reference.shape[1:]), init="ones")
    adv = fit(
        d.reference,
        d.changed,
        model="cell-gain",
        noise=0.3,
        threshold=0.9,
        steps=500,
        seed=0,
        device="cpu",
        recipe=recipe,
    )
    start = rmse(np.ones_like(d.truth), d.truth, active_cells(d.reference))
    assert _rmse(adv, d) < 0.05 < start


def test_adversarial_recovers_tracker_shift():
    d = make_tracker_dataset(30_000, noise=1e-3, seed=3)
    res = fit(d.reference, d.changed, model="plane-shift", steps=600, seed=0, device="cpu")
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
        res = fit(d.reference, d.changed, model="cell-gain", method=method, noise=0.3, threshold=0.9)
        assert res.method == method and res.steps == 0
        assert _rmse(res, d) < 0.1


def test_unknown_model_or_method_is_an_input_error(zero_suppressed):
    d = zero_suppressed
    with pytest.raises(InputError, match="unknown method"):
        fit(d.reference, d.changed, model="cell-gain", method="magic")
    with pytest.raises(InputError, match="unknown model"):
        fit(d.reference, d.changed, model="gain", method="quantile")
