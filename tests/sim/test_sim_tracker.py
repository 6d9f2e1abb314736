import numpy as np
import pytest

from driftcal.sim import TrackerGeometry, default_shifts, residuals, simulate_tracks


def test_shape_dtype_determinism():
    g = TrackerGeometry()
    a = simulate_tracks(100, g, noise=1e-3, shifts=None, rng=np.random.default_rng(0))
    b = simulate_tracks(100, g, noise=1e-3, shifts=None, rng=np.random.default_rng(0))
    assert a.shape == (100, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        simulate_tracks(10, g, noise=0.0, shifts=np.zeros(4), rng=np.random.default_rng(0))
    with pytest.raises(ValueError):
        TrackerGeometry(z=(0.0, 0.0, 1.0))


def test_track_mix_and_entry_point():
    g = TrackerGeometry(inclined_fraction=0.3, max_slope=0.2)
    h = simulate_tracks(20_000, g, noise=0.0, shifts=None, rng=np.random.default_rng(1))
    straight = np.isclose(h[:, 0], h[:, 2], atol=1e-6)
    assert straight.mean() == pytest.approx(0.7, abs=0.02)
    assert h[:, 0].min() >= 0 and h[:, 0].max() <= 1.0
    assert abs(h[:, 0].mean() - 0.5) < 0.01
    slopes = (h[~straight, 2] - h[~straight, 0]) / 1.0
    assert np.abs(slopes).max() <= 0.2 + 1e-6


@pytest.mark.parametrize("noise", [1e-4, 3e-3, 1e-2])
def test_residual_mean_is_shift_and_std_follows_noise(noise):
    g = TrackerGeometry()
    shifts = np.array([0.0, 0.01, 0.0])
    h = simulate_tracks(40_000, g, noise=noise, shifts=shifts, rng=np.random.default_rng(2))
    r = residuals(h, g).astype(np.float64)
    assert r.mean() == pytest.approx(0.01, abs=5 * noise * np.sqrt(1.5) / np.sqrt(r.size) + 1e-6)
    assert r.std() == pytest.approx(noise * np.sqrt(1.5), rel=0.03)


def test_residual_of_uneven_planes():
    g = TrackerGeometry(z=(0.0, 0.2, 0.7, 1.0))
    shifts = np.array([0.0, -0.01, 0.02, 0.0])
    h = simulate_tracks(40_000, g, noise=2e-3, shifts=shifts, rng=np.random.default_rng(3))
    for plane in (1, 2):
        w = g.z[plane] / g.z[-1]
        r = residuals(h, g, plane).astype(np.float64)
        assert r.mean() == pytest.approx(shifts[plane], abs=1e-4)
        assert r.std() == pytest.approx(2e-3 * np.sqrt(1 + w**2 + (1 - w) ** 2), rel=0.03)


def test_default_shifts():
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(default_shifts(TrackerGeometry(), rng), [0.0, 0.01, 0.0])
    s = default_shifts(TrackerGeometry(z=(0, 1, 2, 3, 4, 5)), rng)
    assert s[0] == 0 and s[-1] == 0
    assert ((np.abs(s[1:-1]) >= 0.005) & (np.abs(s[1:-1]) <= 0.015)).all()
    assert s.dtype == np.float32
