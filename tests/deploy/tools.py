"""Helpers of the deployment tests: the real tools, free ports, PromQL extraction, HTTP JSON."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
GRAFANA_ALERTS = sorted((DEPLOY / "grafana" / "provisioning" / "alerting").glob("*.yaml"))
OPERATIONS = ROOT / "docs" / "operations.md"
ALERTS = (
    "DriftcalDistanceSpike",
    "DriftcalStalled",
    "DriftcalConsumerLagHigh",
    "DriftcalDeadLetters",
    "DriftcalDown",
)

#: What Grafana puts in place of its variables before the query reaches Prometheus.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "instance": ".*",
    "detector": ".*",
    "module": ".*",
}
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")
_METRIC = re.compile(r"(?<![\w:\"])(driftcal_[a-zA-Z0-9_:]*|up|ALERTS)\b(?!\s*\()")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.S)


def tool(name: str) -> str:
    """Path of a real command-line tool; the test fails, never skips, when it is absent.

    ``.ci/run`` installs Debian's ``prometheus`` package (``promtool`` and ``prometheus``) and the test
    extra (``check-jsonschema``, ``kubernetes-validate``, ``hadolint``), so a missing tool is a broken
    setup, never a reason to skip.
    """
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None and Path(f"/usr/bin/{name}").exists():
        found = f"/usr/bin/{name}"
    if found is None:
        message = f"{name} not found (Debian: apt-get install prometheus; Python: pip install -e '.[test]')"
        pytest.fail(message, pytrace=False)
    return found


def anchors(markdown: str) -> set[str]:
    r"""GitHub-style anchors of the Markdown headings.

    >>> sorted(anchors("# Top\n## Reading the coefficient topic\n### DriftcalDown"))
    ['driftcaldown', 'reading-the-coefficient-topic', 'top']
    """
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    return found


def run(args: list[str], timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a tool, capturing its text output."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kw)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, params: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    """GET ``url`` (with query ``params``) and decode the JSON answer."""
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def substitute(expr: str) -> str:
    """``expr`` with Grafana's variables replaced as Grafana would (fails on an unknown variable)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GRAFANA_VARIABLES:
            raise AssertionError(f"unknown Grafana variable ${name} in {expr!r}")
        return GRAFANA_VARIABLES[name]

    return _VARIABLE.sub(value, expr)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from _walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child)


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every panel target and every ``label_values`` variable of a dashboard."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text or "")
        assert match, f"variable {var['name']}: expected label_values(selector, label), got {text!r}"
        found.append((f"variable {var['name']}", match.group(1)))
    return found


def grafana_alert_queries(provisioning: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every Prometheus query of a Grafana alert provisioning file."""
    found = []
    for group in provisioning["groups"]:
        for rule in group["rules"]:
            for query in rule["data"]:
                if query["datasourceUid"] != "__expr__":
                    found.append((f"alert {rule['uid']} {query['refId']}", query["model"]["expr"]))
    return found


def all_queries() -> list[tuple[str, str]]:
    """Every PromQL query of the dashboards and Grafana alert files, variables substituted."""
    queries = []
    for path in DASHBOARDS:
        found = dashboard_queries(json.loads(path.read_text()))
        queries += [(f"{path.name}: {where}", substitute(q)) for where, q in found]
    for path in GRAFANA_ALERTS:
        found = grafana_alert_queries(yaml.safe_load(path.read_text()))
        queries += [(f"{path.name}: {where}", substitute(q)) for where, q in found]
    return queries


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (``driftcal_*``, ``up`` and ``ALERTS``; not functions or labels).

    >>> sorted(metric_names('sum by (le) (rate(driftcal_x_bucket{job=~"driftcal_y"}[1m])) / up'))
    ['driftcal_x_bucket', 'up']
    """
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_groupings = _GROUPING.sub("", without_strings)
    return set(_METRIC.findall(without_groupings))


def exported_families(exposition: str) -> dict[str, str]:
    """``{family: type}`` from the ``# TYPE`` lines of a Prometheus text exposition."""
    families = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            families[name] = kind
    return families


def series_names(families: dict[str, str]) -> set[str]:
    """Every series name the families expose (histograms: ``_bucket``, ``_sum``, ``_count``)."""
    names = set()
    for name, kind in families.items():
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        if kind == "counter" and not name.endswith("_total"):
            names.add(f"{name}_total")
    return names
