"""docs/operations.md: its generated configuration reference is current and it names what deploy/ holds."""

from __future__ import annotations

import importlib.util
import re
import types

import yaml

from .tools import ALERTS, DEPLOY, OPERATIONS, ROOT, anchors


def settings_reference() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("settings_reference", DEPLOY / "settings_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_current() -> None:
    tool = settings_reference()
    text = OPERATIONS.read_text()
    assert tool.replace_block(text, tool.render()) == text, (
        "docs/operations.md: run python deploy/settings_reference.py --write docs/operations.md"
    )
    assert tool.main(["--check", str(OPERATIONS)]) == 0


def test_configuration_reference_lists_every_setting() -> None:
    from driftcal.config import settings_reference as rows

    text = OPERATIONS.read_text()
    for key, *_ in rows():
        env = "DRIFTCAL_" + key.upper().replace(".", "__")
        assert f"`{key}`" in text and f"`{env}`" in text, key


def test_every_alert_has_a_runbook_section() -> None:
    headings = re.findall(r"^### (\w+)$", OPERATIONS.read_text(), flags=re.M)
    assert [h for h in headings if h.startswith("Driftcal")] == list(ALERTS)


def test_every_path_the_guide_names_exists() -> None:
    text = OPERATIONS.read_text()
    paths = set(re.findall(r"`((?:deploy|configs|docs)/[\w./-]+?)`", text))
    assert len(paths) > 10
    for path in paths:
        assert (ROOT / path.rstrip("/")).exists(), path


def test_topics_section_matches_the_stack() -> None:
    text = OPERATIONS.read_text()
    script = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["kafka-topics"]["command"][0]
    for topic in ("driftcal.events", "driftcal.reference", "driftcal.coefficients", "driftcal.dlq"):
        assert f"`{topic}`" in text and f"--topic {topic} " in script
    for setting in ("cleanup.policy=compact", "retention.ms=-1", "min.compaction.lag.ms"):
        assert setting in text and setting in script, setting
    for subscriber_rule in ("read_committed", "`detector/module`", "iov.first_event", "sequence"):
        assert subscriber_rule in text, subscriber_rule


def test_links_within_the_guide_resolve() -> None:
    text = OPERATIONS.read_text()
    links = set(re.findall(r"\]\(#([\w-]+)\)", text))
    assert len(links) >= 7
    assert links <= anchors(text), links - anchors(text)
    dashboard_link = "docs/operations.md#alerts"
    assert dashboard_link in (DEPLOY / "grafana" / "dashboards" / "driftcal.json").read_text()
    assert "alerts" in anchors(text)
