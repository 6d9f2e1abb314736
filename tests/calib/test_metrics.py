"""Evaluation metrics: known values, masks, input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from driftcal.calib.metrics import abs_error, active_cells, mean_std, r2, rmse
from driftcal.errors import InputError


def test_rmse_known_value_and_mask():
    est = np.array([1.0, 0.7, 0.5, 9.0])
    tru = np.array([0.9, 0.8, 0.5, 0.0])
    assert rmse(est[:3], tru[:3]) == pytest.approx(math.sqrt(0.02 / 3))
    assert rmse(est, tru, mask=[True, True, True, False]) == pytest.approx(math.sqrt(0.02 / 3))
    assert rmse(est, tru) > 4.0
    assert rmse(
        torch.tensor(est), torch.tensor(tru), mask=torch.tensor([1, 1, 1, 0]).bool()
    ) == pytest.approx(math.sqrt(0.02 / 3))


def test_rmse_on_cell_grids():
    tru = np.full((2, 3, 4), 0.9)
    est = tru + 0.01
    assert rmse(est, tru) == pytest.approx(0.01)
    mask = np.zeros((2, 3, 4), dtype=bool)
    mask[0, 0, 0] = True
    est[1] = 5.0
    assert rmse(est, tru, mask=mask) == pytest.approx(0.01)


def test_r2_known_values():
    tru = np.array([1.0, 0.8, 0.6, 0.7])
    assert r2(tru, tru) == 1.0
    assert r2(np.full(4, tru.mean()), tru) == pytest.approx(0.0)
    assert r2([0.9, 0.8, 0.7], [1.0, 0.8, 0.6]) == pytest.approx(0.75)
    assert r2([0.9, 0.8, 0.7, -5.0], tru, mask=[True, True, True, False]) == pytest.approx(0.75)
    assert r2(tru[::-1], tru) < 0.0
    assert math.isnan(r2([0.9, 0.8], [0.9, 0.9]))


def test_abs_error_shape_and_values():
    err = abs_error(np.array([[0.9, 1.2]]), np.array([[1.0, 1.0]]))
    assert err.shape == (1, 2)
    np.testing.assert_allclose(err, [[0.1, 0.2]])


def test_shape_mismatch_and_empty_mask_raise():
    with pytest.raises(InputError):
        rmse([1.0, 2.0], [1.0])
    with pytest.raises(InputError):
        r2([1.0, 2.0], [1.0, 2.0], mask=[False, False])
    with pytest.raises(InputError):
        rmse([1.0, 2.0], [1.0, 2.0], mask=[True])
    with pytest.raises(InputError):
        abs_error([1.0], [1.0, 2.0])


def test_active_cells_zero_suppressed():
    x = np.zeros((200, 2, 2))
    x[:50, 0, 0] = 2.0
    x[:49, 0, 1] = 2.0
    x[:, 1, 1] = 0.5
    active = active_cells(x, min_hits=50)
    assert active.tolist() == [[True, False], [False, True]]


def test_active_cells_without_zero_suppression():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (20000, 3)) + np.array([0.0, 0.005, 0.3])
    assert active_cells(x).tolist() == [False, False, True]
    # the same data read as zero-suppressed counts positive readings only
    assert active_cells(x, zero_suppressed=True).all()


def test_mean_std():
    m, s = mean_std([0.01, 0.02, 0.03])
    assert m == pytest.approx(0.02) and s == pytest.approx(0.01)
    assert mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(InputError):
        mean_std([])
