"""``driftcal report``: figures from a result, and one readable line for every bad input."""

from __future__ import annotations

import copy
import json
import sys

import pytest

from driftcal.report.figures import FILES


def _write(path, doc) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.slow
def test_report_writes_figures_and_summary(cli, paper_result, tmp_path):
    path, _ = paper_result
    result = cli("report", "--from", path, "--out", tmp_path / "fig")
    assert result.code == 0, result.err
    printed = result.out.split()
    assert len(printed) == len(FILES) + 1
    assert (tmp_path / "fig" / "summary.md").exists()
    assert all((tmp_path / "fig" / name).exists() for name in FILES.values())


@pytest.mark.slow
def test_partial_result_renders_what_it_holds(cli, paper_result, tmp_path):
    _, doc = paper_result
    part = {k: v for k, v in doc.items() if k not in ("tracker_noise", "epsilon_sweep", "threshold_sweep")}
    result = cli("report", "--from", _write(tmp_path / "part.json", part), "--out", tmp_path / "out")
    assert result.code == 0, result.err
    assert not (tmp_path / "out" / FILES["tracker_noise"]).exists()
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Not in this run: tracker_noise, epsilon_sweep, threshold_sweep" in summary


def test_missing_file(cli, tmp_path):
    cli("report", "--from", tmp_path / "nope.json", "--out", tmp_path).assert_input_error(
        "no such file", "nope.json"
    )


def test_invalid_json(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    cli("report", "--from", bad, "--out", tmp_path / "o").assert_input_error("not valid JSON", "bad.json")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ([1, 2], "not a JSON object"),
        ({"benchmark": "recovery"}, "not a benchmarks/paper.py result"),
        ({"schema": "driftcal.paper/1"}, "none of the studies"),
        ({"schema": "driftcal.paper/1", "esum": {"title": "x"}}, "has no 'methods'"),
        ({"schema": "driftcal.paper/1", "esum": {"methods": {"adversarial": {}}}}, "lacks the method(s)"),
    ],
)
def test_not_a_result(cli, tmp_path, doc, needle):
    path = _write(tmp_path / "r.json", doc)
    cli("report", "--from", path, "--out", tmp_path / "o").assert_input_error(needle)


def test_malformed_section(cli, tmp_path):
    methods = {m: {} for m in ("adversarial", "ratio_of_means", "w1_per_cell")}
    doc = {"schema": "driftcal.paper/1", "epsilon_sweep": {"methods": methods}}
    path = _write(tmp_path / "r.json", doc)
    cli("report", "--from", path, "--out", tmp_path / "o").assert_input_error("epsilon_sweep", "malformed")


@pytest.mark.slow
def test_malformed_section_of_a_real_result(cli, paper_result, tmp_path):
    _, doc = paper_result
    broken = copy.deepcopy(doc)
    del broken["esum"]["edges"]
    path = _write(tmp_path / "r.json", broken)
    cli("report", "--from", path, "--out", tmp_path / "o").assert_input_error("'esum' is malformed")


def test_without_matplotlib(cli, tmp_path, monkeypatch):
    methods = {m: {} for m in ("adversarial", "ratio_of_means", "w1_per_cell")}
    path = _write(tmp_path / "r.json", {"schema": "driftcal.paper/1", "esum": {"methods": methods}})
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    line = cli("report", "--from", path, "--out", tmp_path / "o").assert_input_error(
        "install driftcal[report]"
    )
    assert "matplotlib" in line
    assert not (tmp_path / "o").exists()


def test_usage_error(cli):
    assert cli("report", "--out", "x").code == 2
