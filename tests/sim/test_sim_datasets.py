import json

import numpy as np
import pytest

from driftcal.sim import (
    Beam,
    CalorimeterGeometry,
    Dataset,
    DoseAging,
    TrackerGeometry,
    UniformAging,
    cell_dose,
    make_calorimeter_dataset,
    make_tracker_dataset,
    residuals,
)

GEOM = CalorimeterGeometry(layers=4, height=8, width=8)


@pytest.fixture(scope="module")
def calo():
    return make_calorimeter_dataset(1500, geometry=GEOM, seed=3)


def test_calorimeter_dataset_layout(calo):
    assert calo.reference.shape == (1500, 4, 8, 8) and calo.changed.shape == (1500, 4, 8, 8)
    assert calo.reference.dtype == calo.changed.dtype == calo.truth.dtype == np.float32
    assert calo.truth.shape == (4, 8, 8)
    assert calo.truth.min() >= 0.5 and calo.truth.max() <= 1.0
    meta = json.loads(json.dumps(calo.meta))
    assert meta["model"] == "cell-gain"
    assert meta["epsilon"] == 0.01 and meta["noise"] == 0.0 and meta["threshold"] is None
    assert meta["seed"] == 3 and meta["shape"] == [4, 8, 8] and "MeV" in meta["units"]
    assert meta["beam"]["particle"] == "pi-"


def test_calorimeter_dataset_physics():
    # fixed-energy electrons: E_sum fluctuates little, so the global response ratio is sharp
    beam = Beam(particle="e-", e_min_gev=10.0, e_max_gev=10.0)
    calo = make_calorimeter_dataset(1500, geometry=GEOM, beam=beam, seed=4)
    # dose from the reference: busier cells have lower gains
    dose = cell_dose(calo.reference)
    assert np.corrcoef(dose.ravel(), calo.truth.ravel())[0, 1] < -0.7
    # the changed sample responds less, by about the energy-weighted mean gain
    ref_mean = calo.reference.mean(axis=0, dtype=np.float64)
    ratio = calo.changed.sum(dtype=np.float64) / calo.reference.sum(dtype=np.float64)
    expected = (ref_mean * calo.truth).sum() / ref_mean.sum()
    assert ratio == pytest.approx(expected, abs=0.01)
    assert ratio < 0.95
    # independent events: no event correspondence
    assert not np.allclose(calo.changed[:10] / np.maximum(calo.reference[:10], 1e-9), calo.truth)


def test_calorimeter_dataset_determinism_and_options():
    kw = {"geometry": CalorimeterGeometry(layers=2, height=4, width=4), "seed": 5}
    a = make_calorimeter_dataset(200, **kw)
    b = make_calorimeter_dataset(200, **kw)
    np.testing.assert_array_equal(a.reference, b.reference)
    np.testing.assert_array_equal(a.changed, b.changed)
    np.testing.assert_array_equal(a.truth, b.truth)
    c = make_calorimeter_dataset(200, n_changed=50, noise=0.02, threshold=0.06, epsilon=0.0, **kw)
    assert c.changed.shape[0] == 50
    assert ((c.reference == 0) | (c.reference > 0.06)).all()
    # epsilon overrides aging.epsilon: with 0 the truth is the noiseless law
    d = make_calorimeter_dataset(200, aging=DoseAging(epsilon=0.3), epsilon=0.0, **kw)
    law = DoseAging(epsilon=0.0).nominal(cell_dose(a.reference))  # same reference events (same seed)
    np.testing.assert_allclose(d.truth, np.clip(law, 0.5, 1.0), atol=1e-6)
    u = make_calorimeter_dataset(200, aging=UniformAging(0.6, 0.7), epsilon=0.0, **kw)
    assert u.truth.min() >= 0.6 and u.truth.max() <= 0.7 and "U(low, high)" in u.meta["aging_law"]


def test_save_load_roundtrip(tmp_path, calo):
    calo.save(tmp_path / "ds")
    back = Dataset.load(tmp_path / "ds")
    np.testing.assert_array_equal(back.changed, calo.changed)
    np.testing.assert_array_equal(back.truth, calo.truth)
    assert back.meta == json.loads(json.dumps(calo.meta))


def test_tracker_dataset():
    ds = make_tracker_dataset(20_000, noise=1e-3, seed=1)
    assert ds.reference.shape == (20_000, 3) and ds.changed.dtype == np.float32
    np.testing.assert_allclose(ds.truth, [0.0, 0.01, 0.0])
    g = TrackerGeometry()
    assert residuals(ds.changed, g).mean() - residuals(ds.reference, g).mean() == pytest.approx(
        0.01, abs=2e-4
    )
    assert json.loads(json.dumps(ds.meta))["model"] == "plane-shift"
    assert ds.meta["z"] == [0.0, 0.5, 1.0] and ds.meta["noise"] == 1e-3
    big = make_tracker_dataset(10, geometry=TrackerGeometry(z=(0, 1, 2, 3, 4)), seed=2, n_changed=7)
    assert big.changed.shape == (7, 5) and big.truth[0] == 0 and big.truth[-1] == 0
    assert (np.abs(big.truth[1:-1]) > 0).all()
    same = make_tracker_dataset(10, geometry=TrackerGeometry(z=(0, 1, 2, 3, 4)), seed=2, n_changed=7)
    np.testing.assert_array_equal(same.truth, big.truth)
    with pytest.raises(ValueError):
        make_tracker_dataset(10, shifts=np.zeros(2))
