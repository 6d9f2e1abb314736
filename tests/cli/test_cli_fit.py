"""``driftcal fit`` argument handling and the document it writes (with a stand-in fit)."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from driftcal.calib import fit as fitting
from driftcal.coefficients import CoefficientDocument


def test_arguments_reach_fit(cli, calo_pair, fake_fit, tmp_path):
    out = tmp_path / "doc.json"
    outcome = cli(
        "fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain",
        "--method", "quantile", "--threshold", "0.2", "--noise", "0.05", "--steps", "30", "--seed", "4",
        "--device", "cpu", "--out", out,
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    (call,) = fake_fit.calls
    assert call["reference"].shape == (200, 2, 3, 3) and call["changed"].shape == (150, 2, 3, 3)
    expected = {"model": "cell-gain", "method": "quantile", "threshold": 0.2, "noise": 0.05, "steps": 30}
    expected |= {"seed": 4, "device": "cpu", "progress": False}
    assert {k: call[k] for k in expected} == expected
    assert outcome.err == ""
    assert outcome.out.strip().splitlines() == [
        "cell-gain (quantile): 18 coefficients, min 0.9 mean 0.9 max 0.9; distance 0.5 -> 0.05; 7 steps; "
        f"wrote {out}"
    ]


def test_defaults(cli, calo_pair, fake_fit):
    assert (
        cli("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain").code == 0
    )
    (call,) = fake_fit.calls
    expected = {"method": "adversarial", "threshold": None, "noise": None, "steps": None, "seed": 0}
    expected |= {"pool": None, "time_budget": 540.0}  # fit() decides the pooling; 9 minutes
    assert {k: call[k] for k in expected} == expected
    assert call["device"] == "auto"
    assert call["progress"] is False  # stderr is not a TTY under pytest


@pytest.mark.parametrize(("flag", "pool"), [("--pool", True), ("--no-pool", False)])
def test_pool_flag_reaches_fit(cli, calo_pair, fake_fit, flag, pool):
    argv = ("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    assert cli(*argv, "--method", "quantile", flag).code == 0
    assert fake_fit.calls[0]["pool"] is pool


@pytest.mark.parametrize(
    ("cells", "weight", "neighbours", "says"),
    [
        (
            17,
            0.25,
            None,
            "; pooled 17 cells about the dose trend (empirical Bayes, log-reading fit weight 0.25)",
        ),
        (
            17,
            0.25,
            0.4,
            "; pooled 17 cells about the dose trend (empirical Bayes, log-reading fit weight 0.25, "
            "neighbours' weight 0.40)",
        ),
        (17, None, None, "; pooled 17 cells about the dose trend (empirical Bayes)"),
        (0, None, None, "; too few cells to pool"),
    ],
)
def test_summary_says_whether_it_pooled(cli, calo_pair, monkeypatch, cells, weight, neighbours, says):
    def pooled(reference, changed, **kwargs):
        return fitting.FitResult(
            model="cell-gain",
            method="quantile",
            coefficients=np.full(reference.shape[1:], 0.9),
            pooled_cells=cells,
            pool_log_weight=weight,
            pool_neighbour_weight=neighbours,
        )

    monkeypatch.setattr(fitting, "fit", pooled)
    outcome = cli("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    assert outcome.code == 0, outcome.err
    assert outcome.err.strip().splitlines()[-1].endswith(says)


@pytest.mark.parametrize(
    ("argv", "budget"), [(("--time-budget", "90"), 90.0), (("--time-budget", "0"), None)]
)
def test_time_budget_reaches_fit(cli, calo_pair, fake_fit, argv, budget):
    assert (
        cli("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain", *argv).code
        == 0
    )
    assert fake_fit.calls[0]["time_budget"] == budget  # 0: no limit


def test_summary_says_when_the_time_budget_cut_the_fit(cli, calo_pair, monkeypatch):
    def cut(reference, changed, **kwargs):
        return fitting.FitResult(
            model="cell-gain",
            method="adversarial",
            coefficients=np.full(reference.shape[1:], 0.9),
            steps=40,
            refined=False,
            time_limited=True,
        )

    monkeypatch.setattr(fitting, "fit", cut)
    argv = ("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    outcome = cli(*argv, "--time-budget", "75")
    assert outcome.code == 0, outcome.err
    says = "; kept the per-cell start (no time left to check the refinement)"
    says += "; cut short by the time budget (75 s)"
    assert outcome.err.strip().splitlines()[-1].endswith(says)


def test_negative_time_budget_is_a_usage_error(cli, calo_pair):
    argv = ("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    outcome = cli(*argv, "--time-budget", "-5")
    assert outcome.code == 2 and "--time-budget" in outcome.err


def test_cells_without_a_posterior_sd_have_null_uncertainty(cli, calo_pair, monkeypatch, tmp_path):
    def partly_pooled(reference, changed, **kwargs):
        uncertainty = np.full(reference.shape[1:], 0.02)
        uncertainty[0, 0, 0] = np.nan  # a cell that was not pooled
        return fitting.FitResult(
            model="cell-gain",
            method="quantile",
            coefficients=np.full(reference.shape[1:], 0.9),
            uncertainty=uncertainty,
            pooled_cells=17,
        )

    monkeypatch.setattr(fitting, "fit", partly_pooled)
    out = tmp_path / "doc.json"
    argv = ("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    assert cli(*argv, "--out", out).code == 0
    raw = json.loads(out.read_text())["uncertainty"]
    assert raw[0][0][0] is None and raw[0][0][1] == 0.02  # strict JSON: null, not NaN
    unc = CoefficientDocument.from_json(out.read_text()).uncertainty_array()
    assert np.isnan(unc[0, 0, 0]) and np.isfinite(unc.reshape(-1)[1:]).all()


def test_document_written(cli, calo_pair, fake_fit, tmp_path):
    out = tmp_path / "doc.json"
    argv = ("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    assert cli(*argv, "--method", "auto", "--detector", "ecal", "--module", "7", "--out", out).code == 0
    doc = CoefficientDocument.from_json(out.read_text())
    assert doc.schema_ == "driftcal.coefficients/1"
    assert (doc.detector, doc.module, doc.key) == ("ecal", "7", "ecal/7")
    assert doc.model == "cell-gain" and doc.method == "ratio-of-means"  # the method the fit reports
    assert doc.shape == [2, 3, 3]
    np.testing.assert_allclose(doc.array(), 0.9)
    np.testing.assert_allclose(doc.uncertainty_array(), 0.01)
    assert (doc.iov.first_event, doc.iov.last_event) == (0, 149)
    assert (doc.distance.before, doc.distance.after) == (0.5, 0.05)
    assert doc.status == "converged"
    assert doc.metrics is None


def test_document_to_stdout_without_out(cli, tracker_pair, fake_fit):
    outcome = cli(
        "fit", "--reference", tracker_pair[0], "--changed", tracker_pair[1], "--model", "plane-shift"
    )
    assert outcome.code == 0
    doc = CoefficientDocument.from_json(outcome.out)
    assert doc.model == "plane-shift" and doc.shape == [4]
    assert json.loads(outcome.out)["schema"] == "driftcal.coefficients/1"
    assert outcome.err.startswith("plane-shift (adversarial): 4 coefficients")


def test_plane_shift_truth(cli, tracker_pair, fake_fit, save, tmp_path):
    fake_fit.value = 0.0
    truth = save("truth.npy", np.array([0.0, 0.1, -0.2, 0.0]))
    out = tmp_path / "doc.json"
    outcome = cli(
        "fit", "--reference", tracker_pair[0], "--changed", tracker_pair[1], "--model", "plane-shift",
        "--truth", truth, "--out", out,
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert outcome.out.strip().splitlines()[-1] == "truth: abs error per plane [0, 0.1, 0.2, 0], max 0.2"
    metrics = CoefficientDocument.from_json(out.read_text()).metrics
    assert metrics == pytest.approx(
        {
            "max_abs_error": 0.2,
            "abs_error_plane_0": 0.0,
            "abs_error_plane_1": 0.1,
            "abs_error_plane_2": 0.2,
            "abs_error_plane_3": 0.0,
        }
    )


@pytest.fixture
def stub_metrics(monkeypatch):
    """Simple stand-ins for driftcal.calib.metrics, to test the CLI's bookkeeping on its own."""
    module = types.ModuleType("driftcal.calib.metrics")

    def active_cells(reference, min_hits=50):
        return (reference > 0).sum(axis=0) >= min_hits

    def rmse(estimate, truth, mask=None):
        return float(np.sqrt(np.mean((estimate - truth)[mask] ** 2)))

    def r2(estimate, truth, mask=None):
        return float("nan")  # e.g. constant truth: not stored, shown as nan

    module.active_cells, module.rmse, module.r2 = active_cells, rmse, r2
    monkeypatch.setitem(sys.modules, "driftcal.calib.metrics", module)
    return module


def test_cell_gain_truth_over_active_cells(cli, save, fake_fit, stub_metrics, tmp_path):
    reference = np.ones((60, 2, 2), dtype=np.float32)
    reference[20:, 1, 1] = 0.0  # only 20 hits: not an active cell
    ref, chg = save("ref.npy", reference), save("chg.npy", reference)
    truth_values = np.full((2, 2), 0.9)
    truth_values[0, 0] = 1.0
    truth_values[1, 1] = 5.0  # far off, but inactive
    truth = save("truth.npy", truth_values)
    out = tmp_path / "doc.json"
    outcome = cli(
        "fit", "--reference", ref, "--changed", chg, "--model", "cell-gain", "--truth", truth, "--out", out
    )
    assert outcome.code == 0, outcome.err
    line = outcome.out.strip().splitlines()[-1]
    assert line == "truth: RMSE 0.05774, R² nan over 3/4 active cells of the reference (≥ 50 hits)"
    metrics = CoefficientDocument.from_json(out.read_text()).metrics
    assert metrics == pytest.approx({"rmse": np.sqrt(0.01 / 3), "n_cells": 3.0})


def test_wrong_coefficient_shape_from_fit_is_reported(cli, calo_pair, monkeypatch):
    from driftcal.calib import fit as fitting

    def sloppy(reference, changed, **kwargs):
        return fitting.FitResult(model="cell-gain", method="x", coefficients=np.ones(3))

    monkeypatch.setattr(fitting, "fit", sloppy)
    outcome = cli("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    assert outcome.code == 1
    assert len(outcome.err_lines) == 1 and "shape (3,)" in outcome.err
