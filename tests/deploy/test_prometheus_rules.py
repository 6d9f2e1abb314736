"""deploy/prometheus: the rules pass ``promtool check rules`` and their unit tests, and link runbooks."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from .tools import ALERTS, DEPLOY, OPERATIONS, RULE_TESTS, RULES, anchors, run, tool


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    proc = run([tool("promtool"), "check", "rules", str(RULES)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_promtool_test_rules() -> None:
    assert RULE_TESTS, "no rule unit tests in deploy/prometheus/tests"
    proc = run([tool("promtool"), "test", "rules", *map(str, RULE_TESTS)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_compose_prometheus_config_is_valid() -> None:
    proc = run([tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("alert", "broken"),
    [
        ("DriftcalDistanceSpike", "driftcal_wasserstein_distance > 0"),  # noise would page
        ("DriftcalStalled", "time() - driftcal_last_publish_timestamp_seconds > 1e9"),  # never fires
    ],
)
def test_rule_tests_catch_a_broken_rule(tmp_path: Path, alert: str, broken: str) -> None:
    """The unit tests are not vacuous: a wrong expression makes ``promtool test rules`` fail."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == alert:
                rule["expr"] = broken
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (tmp_path / "tests").mkdir()
    for test in RULE_TESTS:
        shutil.copy(test, tmp_path / "tests" / test.name)
    proc = run([tool("promtool"), "test", "rules", *(str(tmp_path / "tests" / t.name) for t in RULE_TESTS)])
    assert proc.returncode != 0, proc.stdout
    assert alert in proc.stdout + proc.stderr


def test_every_alert_is_there_with_severity_and_runbook() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    assert set(by_name) == set(ALERTS)
    doc_anchors = anchors(OPERATIONS.read_text())
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/operations.md", url
        assert anchor == name.lower(), url
        assert anchor in doc_anchors, f"{name}: no section #{anchor} in {OPERATIONS}"


def test_spike_rule_compares_with_the_exported_threshold() -> None:
    spike = next(rule for rule in rules() if rule["alert"] == "DriftcalDistanceSpike")
    assert "driftcal_wasserstein_distance" in spike["expr"]
    assert "driftcal_alarm_threshold" in spike["expr"]
    assert re.fullmatch(r"\d+m", spike["for"]), spike["for"]


def test_every_rule_is_tested() -> None:
    tested = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", [])}
    assert tested == set(ALERTS)
