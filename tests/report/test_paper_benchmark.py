"""``benchmarks/paper.py --quick`` at a tiny size writes every study with the three methods, and the
report renders every figure from it; plus the pieces the benchmark is built from."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from driftcal.report import SUMMARY, render_report
from driftcal.report.figures import FILES

STUDIES = (
    "esum",
    "tracker_noise",
    "rmse_vs_epoch",
    "cellwise",
    "esum_calibrated",
    "epsilon_sweep",
    "threshold_sweep",
)
METHODS = ("adversarial", "ratio_of_means", "w1_per_cell")

pytestmark = pytest.mark.slow


def test_every_study_holds_the_three_methods_over_three_seeds(paper_result):
    _, doc = paper_result
    assert doc["schema"] == "driftcal.paper/1" and doc["mode"] == "quick"
    assert doc["studies"] == list(STUDIES)
    for study in STUDIES:
        assert set(doc[study]["methods"]) == set(METHODS), study
    # per-seed values and their summary, everywhere
    rmse = doc["cellwise"]["methods"]["adversarial"]["rmse"]
    assert len(rmse["values"]) == 3 and rmse["mean"] == pytest.approx(np.mean(rmse["values"]))
    assert rmse["std"] == pytest.approx(np.std(rmse["values"], ddof=1))
    for sweep, key in (
        ("epsilon_sweep", "rmse"),
        ("threshold_sweep", "rmse"),
        ("tracker_noise", "abs_error"),
    ):
        xs = doc[sweep]["x"]["values"]
        assert len(xs) == 2
        for method in METHODS:
            stats = doc[sweep]["methods"][method][key]
            assert len(stats["mean"]) == len(stats["std"]) == 2
            assert all(len(v) == 3 for v in stats["values"])
    assert doc["threshold_sweep"]["x"]["values"] == pytest.approx([0.05, 0.15])
    # the RMSE curve: one point per step, the baselines as constants
    curve = doc["rmse_vs_epoch"]["methods"]["adversarial"]["curve"]
    assert doc["rmse_vs_epoch"]["x"]["values"] == [1, 2, 3, 4]
    assert len(curve["mean"]) == 4 and all(len(v) == 3 for v in curve["values"])
    assert curve["mean"][-1] == pytest.approx(rmse["mean"])
    # cell-by-cell arrays line up with the truth
    cells = doc["cellwise"]["cells"]
    assert all(len(t) == cells for t in doc["cellwise"]["truth"])
    assert all(len(e) == cells for e in doc["cellwise"]["methods"]["w1_per_cell"]["estimate"])
    # E_sum histograms are normalized per seed
    hist = doc["esum"]["histograms"]["undamaged"]["mean"]
    assert len(hist) == len(doc["esum"]["edges"]) - 1 and sum(hist) == pytest.approx(1.0)
    assert set(doc["esum_calibrated"]["histograms"]) >= {"undamaged", "damaged", *METHODS}
    # the tracker floor is σ·sqrt(3/N)
    n = doc["tracker_noise"]["settings"]["events"]
    assert doc["tracker_noise"]["floor"]["stderr"][0] == pytest.approx(1e-3 * math.sqrt(3 / n))
    # self-describing
    assert {"versions", "settings", "timings", "environment", "paper", "performance"} <= set(doc)
    assert doc["performance"]["steps_per_s"] > 0 and doc["performance"]["flops"]["per_step"] > 0


def test_report_renders_every_figure_and_the_table(paper_result, tmp_path):
    _, doc = paper_result
    written = render_report(doc, tmp_path)
    assert {p.name for p in written} == {*FILES.values(), SUMMARY}
    for name in FILES.values():
        assert (tmp_path / name).stat().st_size > 5000, name
    summary = (tmp_path / SUMMARY).read_text()
    for label in ("adversarial (driftcal)", "ratio of means", "per-cell 1D-W1", "0.0176 ± 0.0005"):
        assert label in summary
    for name in FILES.values():
        assert f"]({name})" in summary


def test_realize_reproduces_make_calorimeter_dataset(bench_modules):
    paper_data = importlib.import_module("paper_data")
    from driftcal.sim import CalorimeterGeometry, make_calorimeter_dataset

    g = CalorimeterGeometry(layers=2, height=4, width=4)
    pair = paper_data.simulate_pair(60, g, seed=5)
    for eps, noise, thr in ((0.0, 0.0, None), (0.05, 0.02, 0.06)):
        a = paper_data.realize(pair, epsilon=eps, noise=noise, threshold=thr)
        b = make_calorimeter_dataset(60, geometry=g, epsilon=eps, noise=noise, threshold=thr, seed=5)
        for x, y in ((a.reference, b.reference), (a.changed, b.changed), (a.truth, b.truth)):
            np.testing.assert_array_equal(x, y)


def test_parallel_simulation_is_deterministic(bench_modules):
    paper_data = importlib.import_module("paper_data")
    from driftcal.sim import CalorimeterGeometry

    g = CalorimeterGeometry(layers=2, height=4, width=4)
    a = paper_data.simulate_pair(50, g, seed=1, workers=2, chunk=20)
    b = paper_data.simulate_pair(50, g, seed=1, workers=2, chunk=20)
    assert a.reference.shape == (50, 2, 4, 4) and a.reference.sum() > 0
    np.testing.assert_array_equal(a.reference, b.reference)
    np.testing.assert_array_equal(a.changed, b.changed)
    assert not np.array_equal(a.reference, a.changed)


def test_esum_and_w1_helpers(bench_modules):
    paper_data = importlib.import_module("paper_data")
    x = np.array([[[1.0, 2.0]], [[3.0, 4.0]]])
    assert paper_data.esum(x).tolist() == [3.0, 7.0]
    assert paper_data.esum(x, np.array([[0.5, 1.0]])).tolist() == [4.0, 10.0]
    assert paper_data.w1_1d(np.zeros(10), np.ones(10)) == pytest.approx(1.0)


def test_tracker_floor_and_peak_table(bench_modules):
    tracker = importlib.import_module("paper_tracker")
    paper = importlib.import_module("paper")
    assert tracker.floor(2e-3, 1200) == pytest.approx(2e-3 * math.sqrt(3 / 1200))
    # an off-centre plane: Var r = σ² (1 + (1 − w)² + w²)
    assert tracker.floor(1.0, 2, z=(0.0, 0.25, 1.0)) == pytest.approx(math.sqrt(1 + 0.75**2 + 0.25**2))
    assert paper.bf16_peak("NVIDIA H200") == 989.0
    assert paper.bf16_peak("NVIDIA A100-SXM4-80GB") == 312.0
    assert paper.bf16_peak("NVIDIA H100 PCIe") == 756.0
    assert paper.bf16_peak("Tesla T4") is None


def test_paper_scale_flops_estimate(bench_modules):
    paper = importlib.import_module("paper")
    flops = paper.critic_flops(paper.SCALES["paper"])
    # conv critic width 64 on 40 × 16 × 16: about 64 MFLOP per event forward
    assert 5e7 < flops["forward_per_event"] < 8e7
    assert flops["events_per_step"] == 8192 * 7
    assert flops["per_step"] > 1e13
