"""Classical baselines on synthetic data built inline (independent of driftcal.sim)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftcal.calib.baselines import MeanShift, QuantileGain, QuantileShift, RatioOfMeans, ResidualShift
from driftcal.errors import InputError

NOISE, THRESHOLD = 0.1, 0.5


def calo(n_ref, n_chg, n_cells=100, noise=None, threshold=None, seed=0):
    """Exponential deposits with cell-dependent scale and occupancy; gains in [0.7, 1.0]."""
    rng = np.random.default_rng(seed)
    occupancy = rng.uniform(0.6, 1.0, n_cells)
    scale = rng.uniform(0.5, 2.0, n_cells)
    truth = rng.uniform(0.7, 1.0, n_cells)

    def readout(n, gain):
        e = (rng.random((n, n_cells)) < occupancy) * rng.exponential(1.0, (n, n_cells)) * scale
        r = gain * e
        if noise:
            r = r + rng.normal(0.0, noise, r.shape)
        if threshold is not None:
            r = r * (r > threshold)
        return r.astype(np.float32)

    return readout(n_ref, 1.0), readout(n_chg, truth), truth


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


@pytest.fixture(scope="module")
def suppressed():
    return calo(12000, 9000, noise=NOISE, threshold=THRESHOLD, seed=1)


@pytest.fixture(scope="module")
def quantile_fit(suppressed):
    ref, chg, _ = suppressed
    est = QuantileGain(noise=NOISE, threshold=THRESHOLD, seed=3)
    return est, est.fit(ref, chg)


def test_ratio_of_means_recovers_clean_gains():
    ref, chg, truth = calo(10000, 10000, seed=2)
    est = RatioOfMeans()
    gain = est.fit(ref, chg)
    assert gain.shape == truth.shape and gain.dtype == np.float64
    assert rmse(gain, truth) < 0.02
    assert est.coefficients_ is gain


def test_ratio_of_means_clips_and_flags_empty_cells():
    rng = np.random.default_rng(0)
    ref = rng.exponential(1.0, (5000, 3))
    ref[:, 2] = 0.0
    chg = ref * [3.0, 0.01, 1.0]
    est = RatioOfMeans(alpha_range=(0.05, 1.5))
    assert est.fit(ref, chg).tolist() == [1.5, 0.05, 1.0]
    assert est.identifiable_.tolist() == [True, True, False]


def test_ratio_of_means_is_biased_by_zero_suppression(suppressed, quantile_fit):
    ref, chg, truth = suppressed
    rom = rmse(RatioOfMeans().fit(ref, chg), truth)
    quant = rmse(quantile_fit[1], truth)
    assert rom > 0.025  # the aged cell loses its small deposits below threshold
    assert rom > 1.75 * quant


def test_quantile_gain_recovers_suppressed_noisy_gains(suppressed, quantile_fit):
    _, _, truth = suppressed
    est, gain = quantile_fit
    assert gain.shape == truth.shape and gain.dtype == np.float64
    assert rmse(gain, truth) < 0.02
    assert abs(np.mean(gain - truth)) < 0.005  # no systematic bias
    assert est.identifiable_.all() and np.all(est.distance_ >= 0)


def test_quantile_gain_is_deterministic_under_seed(suppressed, quantile_fit):
    ref, chg, _ = suppressed
    ref, chg = ref[:, :20], chg[:, :20]
    a = QuantileGain(noise=NOISE, threshold=THRESHOLD, seed=7).fit(ref, chg)
    b = QuantileGain(noise=NOISE, threshold=THRESHOLD, seed=7).fit(
        torch.from_numpy(ref), torch.from_numpy(chg)
    )
    c = QuantileGain(noise=NOISE, threshold=THRESHOLD, seed=8).fit(ref, chg)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.max(np.abs(a - c)) < 0.03  # another seed moves the fit only within its noise


def test_quantile_gain_plain_scale_without_readout_effects():
    ref, chg, truth = calo(10000, 6000, seed=4)
    gain = QuantileGain().fit(ref, chg)
    assert rmse(gain, truth) < 0.02


def test_quantile_gain_compares_hits_when_the_hit_pattern_is_gain_free():
    # no noise, no threshold: which entries are hit does not depend on the gain, so the fit compares the
    # hit distributions and ignores a different share of empty events in the two samples
    rng = np.random.default_rng(8)
    hits = rng.exponential(1.0, (100, 2)).astype(np.float32)
    ref = np.concatenate([hits, np.zeros((900, 2), np.float32)])  # 10 % occupancy
    chg = np.concatenate([hits * np.float32([0.7, 0.9]), np.zeros((1400, 2), np.float32)])  # 6.7 %
    np.testing.assert_allclose(QuantileGain().fit(ref, chg), [0.7, 0.9], atol=2e-3)


def test_quantile_gain_on_log_readings_wins_on_heavy_tailed_spectra():
    # log-normal deposits (σ = 2 in log): a few large readings dominate W1 on the readings themselves
    rng = np.random.default_rng(9)
    truth = rng.uniform(0.7, 1.0, 60)

    def readout(n, gain):
        return (gain * rng.lognormal(0.0, 2.0, (n, 60)) * (rng.random((n, 60)) < 0.3)).astype(np.float32)

    ref, chg = readout(6000, 1.0), readout(6000, truth)
    linear, log = (QuantileGain(compare=c).fit(ref, chg) for c in ("linear", "log"))
    assert rmse(log, truth) < 0.8 * rmse(linear, truth)  # measured 0.061 against 0.118
    assert rmse(log, truth) < 0.08


def test_quantile_gain_on_log_readings_with_noise_and_threshold(suppressed, quantile_fit):
    ref, chg, truth = suppressed
    gain = QuantileGain(noise=NOISE, threshold=THRESHOLD, seed=3, compare="log").fit(ref, chg)
    assert rmse(gain, truth) < 0.035  # consistent; on exponential spectra the readings do better (0.015)
    assert not np.array_equal(gain, quantile_fit[1])
    with pytest.raises(InputError, match="compare"):
        QuantileGain(compare="sqrt")


def test_quantile_gain_coarse_subsample_keeps_accuracy(suppressed, quantile_fit):
    ref, chg, truth = suppressed
    gain = QuantileGain(noise=NOISE, threshold=THRESHOLD, seed=3, coarse_hits=2000).fit(ref, chg)
    assert abs(rmse(gain, truth) - rmse(quantile_fit[1], truth)) < 0.003


def test_sparse_cells_are_resolved_and_not_subsampled():
    rng = np.random.default_rng(6)
    n, cells = 10000, 60
    occupancy = np.where(np.arange(cells) < 30, 0.03, 0.8)  # 30 sparse cells (~300 hits), 30 dense
    truth = rng.uniform(0.7, 1.0, cells)

    def readout(gain):
        e = (rng.random((n, cells)) < occupancy) * rng.exponential(2.0, (n, cells))
        r = gain * e + rng.normal(0.0, NOISE, (n, cells))
        return (r * (r > THRESHOLD)).astype(np.float32)

    ref, chg = readout(1.0), readout(truth)
    a = QuantileGain(noise=NOISE, threshold=THRESHOLD, coarse_hits=1000).fit(ref, chg)
    b = QuantileGain(noise=NOISE, threshold=THRESHOLD, coarse_hits=2000).fit(ref, chg)
    # sparse cells keep all their events in the coarse grid, whatever the cap above their hit count
    np.testing.assert_array_equal(a[:30], b[:30])
    assert rmse(a[30:], truth[30:]) < 0.02 and rmse(b[30:], truth[30:]) < 0.02
    # the quantile levels sit on the non-zero part: sparse cells beat the ratio of means
    assert rmse(a[:30], truth[:30]) < rmse(RatioOfMeans().fit(ref, chg)[:30], truth[:30])


def test_quantile_gain_unidentifiable_cells_and_cell_shape():
    ref, chg, truth = calo(4000, 5000, n_cells=24, noise=NOISE, threshold=THRESHOLD, seed=5)
    ref[:, 3] = 0.0
    chg[:, 3] = 0.0
    ref[:15, 7] = 1.0  # a handful of hits only
    ref[15:, 7] = 0.0
    shape = (2, 3, 4)
    est = QuantileGain(noise=NOISE, threshold=THRESHOLD, min_nonzero=20)
    gain = est.fit(ref.reshape(-1, *shape), chg.reshape(-1, *shape))
    assert gain.shape == shape
    flat = gain.reshape(-1)
    assert flat[3] == 1.0 and flat[7] == 1.0
    assert not est.identifiable_.reshape(-1)[[3, 7]].any()
    live = np.ones(24, dtype=bool)
    live[[3, 7]] = False
    assert rmse(flat[live], truth[live]) < 0.04


def test_quantile_gain_restores_torch_threads():
    before = torch.get_num_threads()
    QuantileGain(num_threads=1).fit(np.ones((30, 2)), np.ones((30, 2)))
    assert torch.get_num_threads() == before


def test_quantile_gain_rejects_mismatched_cells():
    with pytest.raises(InputError):
        QuantileGain().fit(np.ones((10, 3)), np.ones((10, 4)))
    with pytest.raises(InputError):
        QuantileGain(alpha_range=(1.0, 0.5))


def tracks(n, rng, z=(0.0, 0.5, 1.0), sigma=1e-3):
    z = np.asarray(z)
    x0 = rng.uniform(0.0, 1.0, n)
    slope = rng.uniform(-0.3, 0.3, n)
    hits = x0[:, None] + slope[:, None] * z
    return hits + rng.normal(0.0, sigma, hits.shape)


SHIFTERS = [MeanShift, QuantileShift, ResidualShift]


def test_residual_shift_reaches_the_noise_floor():
    rng = np.random.default_rng(0)
    ref, chg = tracks(20000, rng), tracks(20000, rng) + np.array([0.0, 0.01, 0.0])
    shift = ResidualShift().fit(ref, chg)
    assert abs(shift[1] - 0.01) < 1e-4
    assert shift[0] == 0.0 and shift[2] == 0.0


@pytest.mark.parametrize("cls", SHIFTERS)
def test_shift_estimators_in_the_frame(cls):
    rng = np.random.default_rng(1)
    z = np.array([0.0, 0.3, 0.55, 1.0])
    delta = np.array([0.002, 0.012, -0.004, 0.003])
    ref = tracks(20000, rng, z=z)
    chg = tracks(20000, rng, z=z) + delta
    shift = cls(z=z).fit(ref, chg)
    w = (z - z[0]) / (z[-1] - z[0])
    expected = delta - ((1 - w) * delta[0] + w * delta[-1])
    assert shift.shape == (4,) and shift.dtype == np.float64
    assert shift[0] == 0.0 and shift[-1] == 0.0
    tol = 1e-4 if cls is ResidualShift else 6e-3
    np.testing.assert_allclose(shift, expected, atol=tol)


@pytest.mark.parametrize("cls", SHIFTERS)
def test_global_shift_and_tilt_are_invisible(cls):
    rng = np.random.default_rng(2)
    z = np.array([0.0, 0.2, 0.5, 1.0])
    ref = tracks(5000, rng, z=z)
    moved = torch.from_numpy(ref + 0.05 + 0.02 * z)  # constant shift plus a tilt: a weak mode
    shift = cls(z=z).fit(torch.from_numpy(ref), moved)
    np.testing.assert_allclose(shift, 0.0, atol=1e-9)


def test_mean_and_quantile_shift_recover_inner_plane():
    rng = np.random.default_rng(3)
    ref, chg = tracks(20000, rng), tracks(20000, rng) + np.array([0.0, 0.01, 0.0])
    for cls in (MeanShift, QuantileShift):
        assert abs(cls().fit(ref, chg)[1] - 0.01) < 6e-3


def test_shift_rejects_bad_input():
    with pytest.raises(InputError):
        ResidualShift().fit(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(InputError):
        MeanShift(z=[0.0, 1.0]).fit(np.zeros((10, 3)), np.zeros((10, 3)))
