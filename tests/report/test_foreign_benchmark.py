"""``benchmarks/foreign.py``: the simulator that is not ours, and one tiny run through the CLI."""

from __future__ import annotations

import importlib
import json

import numpy as np


def test_foreign_data_have_the_promised_readout_and_aging(bench_modules):
    foreign = importlib.import_module("foreign")
    reference, changed, truth = foreign.dataset(foreign.SETTINGS["foreign-dose"], 2000, seed=0)
    assert reference.shape == changed.shape == (2000, 4, 20, 20) and truth.shape == (4, 20, 20)
    hits = reference[reference != 0]
    assert hits.min() >= 0.3  # zero-suppressed at the threshold
    assert 0.001 < (reference > 0).mean() < 0.05  # rarely hit cells
    failed = truth < 0.55
    assert 0 < failed.sum() < 0.03 * truth.size  # about 1 % failed channels
    assert truth[~failed].min() > 0.5 and truth[~failed].max() < 1.1
    clean, _, _ = foreign.dataset(foreign.SETTINGS["foreign-clean"], 500, seed=0)
    assert clean.min() == 0.0 and 0 < clean[clean > 0].min() < 0.3  # no threshold: small deposits stay
    patchy = foreign.gains("patchy", np.ones((4, 20, 20)), np.random.default_rng(0))
    block = patchy[0, :5, :5]
    assert np.ptp(np.log(block)) < 0.2 and np.ptp(patchy) > 0.1  # one gain per 5 x 5 group, up to 2 %


def test_a_tiny_run_goes_through_the_cli(bench_modules, capsys):
    foreign = importlib.import_module("foreign")
    argv = ["--seeds", "1", "--events", "1500", "--settings", "foreign-clean"]
    assert foreign.main([*argv, "--methods", "ratio-of-means,quantile"]) == 0
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    methods = document["results"]["foreign-clean"]["methods"]
    assert set(methods) == {"ratio-of-means", "quantile"}
    for summary in methods.values():
        assert 0.0 < summary["rmse"]["mean"] < 0.5 and summary["seconds"]["mean"] > 0.0
