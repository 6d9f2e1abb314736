import numpy as np
import pytest

from driftcal.sim import Beam, CalorimeterGeometry, Readout, apply_readout, simulate_showers, typical_readout

GEOM = CalorimeterGeometry(layers=4, height=8, width=8)


@pytest.fixture(scope="module")
def deposits():
    return simulate_showers(500, GEOM, Beam(), rng=np.random.default_rng(0))


def test_gain_only_is_exact(deposits):
    gain = np.linspace(0.5, 1.0, GEOM.n_cells, dtype=np.float32).reshape(GEOM.shape)
    out = apply_readout(deposits, gain, Readout(), rng=np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == deposits.shape
    np.testing.assert_array_equal(out, deposits * gain)
    np.testing.assert_array_equal(
        apply_readout(deposits, 1.0, Readout(), rng=np.random.default_rng(0)), deposits
    )


def test_noise_without_threshold_keeps_negative_values(deposits):
    out = apply_readout(deposits, 1.0, Readout(noise=0.05), rng=np.random.default_rng(1))
    diff = (out - deposits).ravel()
    assert diff.std() == pytest.approx(0.05, rel=0.02)
    assert abs(diff.mean()) < 1e-3
    assert (out < 0).mean() > 0.3  # empty cells become pedestal noise around 0
    again = apply_readout(deposits, 1.0, Readout(noise=0.05), rng=np.random.default_rng(1))
    np.testing.assert_array_equal(out, again)


def test_zero_suppression(deposits):
    t = 0.2
    out = apply_readout(deposits, 0.8, Readout(noise=0.05, threshold=t), rng=np.random.default_rng(2))
    assert ((out == 0) | (out > t)).all()
    assert (out >= 0).all()
    # without noise a deposit survives exactly when gain * deposit > T
    clean = apply_readout(deposits, 0.8, Readout(threshold=t), rng=np.random.default_rng(2))
    np.testing.assert_array_equal(clean > 0, deposits * np.float32(0.8) > t)
    # suppression removes more cells as the gain drops
    low = apply_readout(deposits, 0.5, Readout(threshold=t), rng=np.random.default_rng(2))
    assert (low > 0).sum() < (clean > 0).sum()


def test_in_place_and_validation(deposits):
    x = deposits.copy()
    out = apply_readout(x, 2.0, Readout(), rng=np.random.default_rng(0), out=x)
    assert out is x
    np.testing.assert_array_equal(x, deposits * 2)
    with pytest.raises(ValueError):
        apply_readout(deposits, np.ones((3, 3)), Readout(), rng=np.random.default_rng(0))
    with pytest.raises(ValueError):
        Readout(noise=-1.0)


def test_typical_readout_scale():
    r = typical_readout(GEOM, Beam(), n_events=300, seed=5)
    x = simulate_showers(300, GEOM, Beam(), rng=np.random.default_rng(5))
    med = np.median(x[x > 0])
    assert r.noise == pytest.approx(0.05 * med, rel=1e-6)
    assert 0.001 < r.noise < 0.1  # MeV: a few % of a sub-MeV median deposit
    assert r.threshold == pytest.approx(3 * r.noise)
