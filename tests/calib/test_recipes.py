"""Which recipe starts where: one-shot fits from the per-cell fit, the daemon and the paper studies at 1."""

from driftcal.calib.online import OnlineCalibrator
from driftcal.calib.recipes import cold_start_recipe, default_recipe


def test_one_shot_cell_gain_fits_start_from_the_quantile_fit_at_a_small_rate():
    recipe = default_recipe("cell-gain", (6, 16, 16))
    assert recipe.init == "quantile" and recipe.critic == "conv"
    assert recipe.engine.lr_theta < cold_start_recipe("cell-gain", (6, 16, 16)).engine.lr_theta


def test_the_daemon_starts_at_one_with_the_cold_start_rates():
    cold = cold_start_recipe("cell-gain", (6, 16, 16))
    assert cold.init == "ones" and cold.engine.lr_theta == 1e-3 and cold.critic == "conv"
    calibrator = OnlineCalibrator("cell-gain", (2, 4, 4), device="cpu")
    assert calibrator.recipe.init == "ones"
    assert calibrator.recipe.engine.lr_theta == cold_start_recipe("cell-gain", (2, 4, 4)).engine.lr_theta
    assert cold_start_recipe("plane-shift", (3,)) == default_recipe("plane-shift", (3,))
