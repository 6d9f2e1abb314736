"""The pieces of ``benchmarks/information.py``: the Fisher information and the neighbour sums."""

from __future__ import annotations

import importlib

import numpy as np


def test_fisher_information_of_a_normal_shift(bench_modules):
    info = importlib.import_module("information")
    logs = np.random.default_rng(0).normal(-1.0, 0.5, 20000)
    # a Gaussian kernel of width h widens the density to sd sqrt(0.25 + h²): I = 1 / (0.25 + h²); a narrow
    # kernel adds sampling wiggles, which overstate I (hence the half-bandwidth column is an upper bound)
    assert abs(info.fisher_location(logs, 0.1) * (0.25 + 0.1**2) - 1.0) < 0.03
    assert info.fisher_location(logs, 0.02) > info.fisher_location(logs, 0.1)
    # twice as wide (kernel too): a quarter of the information
    assert 0.23 < info.fisher_location(2 * logs, 0.2) / info.fisher_location(logs, 0.1) < 0.27


def test_neighbour_sums_match_a_direct_sum(bench_modules):
    info = importlib.import_module("information")
    x = np.random.default_rng(1).random((3, 2, 4, 5))
    got = info.neighbour_sums(x)
    l, h, w = 1, 2, 3  # an inner cell: its 26 neighbours where they exist (2 layers: 17)
    box = x[:, max(l - 1, 0) : l + 2, h - 1 : h + 2, w - 1 : w + 2].sum(axis=(1, 2, 3)) - x[:, l, h, w]
    np.testing.assert_allclose(got[:, l, h, w], box)
    np.testing.assert_allclose(info.neighbour_sums(np.ones((1, 1, 1, 1))), 0.0)


def test_by_occupancy_splits_the_rmse_and_keeps_only_the_rarest_quarter(bench_modules):
    info = importlib.import_module("information")
    hits = np.array([10, 20, 30, 40, 50, 60, 70, 80, 5])
    mask = np.array([True] * 8 + [False])  # the last cell is not scored
    err2 = np.array([4.0, 4.0, 1.0, 1.0, 0.0, 0.0, 0.25, 0.25, 100.0])
    out = info.by_occupancy(err2, hits, mask)
    np.testing.assert_allclose(out["quarter_rmse"], [2.0, 1.0, 0.0, 0.5])
    # the rarest quarter's squared errors over all eight scored cells: sqrt(8 / 8)
    assert out["rmse_busier_exact"] == 1.0
    assert out["hit_edges"] == [27.5, 45.0, 62.5]


def test_error_over_sd_is_one_when_the_sd_is_right(bench_modules):
    info = importlib.import_module("information")
    rng = np.random.default_rng(2)
    sd = rng.uniform(0.01, 0.1, 20000)
    sd[:10] = np.nan  # not pooled: not scored
    errors = rng.normal(0.0, np.nan_to_num(sd, nan=1.0))
    mask = np.ones(sd.size, bool)
    assert abs(info.error_over_sd(errors, sd, mask) - 1.0) < 0.02
    assert abs(info.error_over_sd(2 * errors, sd, mask) - 2.0) < 0.04
