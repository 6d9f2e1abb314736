"""deploy/grafana: the dashboard, the provisioning files and the alert rule, and that every PromQL parses.

Which metric names the queries may use is checked against a live scrape in test_prometheus_live.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .tools import DASHBOARDS, DEPLOY, GRAFANA_ALERTS, all_queries, dashboard_queries, metric_names, run, tool

GRAFANA = DEPLOY / "grafana"
DATASOURCE_UID = "driftcal-prometheus"


def dashboard() -> dict:
    return json.loads((GRAFANA / "dashboards" / "driftcal.json").read_text())


def alert_rules() -> list[dict]:
    return [
        rule
        for path in GRAFANA_ALERTS
        for g in yaml.safe_load(path.read_text())["groups"]
        for rule in g["rules"]
    ]


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    """promtool parses each expression (Grafana variables substituted) as a recording rule."""
    queries = all_queries()
    assert len(queries) >= 15
    groups = [
        {
            "name": "grafana",
            "rules": [{"record": f"grafana:query_{i}", "expr": q} for i, (_, q) in enumerate(queries)],
        }
    ]
    path = tmp_path / "grafana-queries.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    proc = run([tool("promtool"), "check", "rules", str(path)])
    assert proc.returncode == 0, (
        proc.stdout + proc.stderr + "\n".join(f"{i}: {w}" for i, (w, _) in enumerate(queries))
    )


def test_promtool_rejects_a_broken_query(tmp_path: Path) -> None:
    """The parse check above can fail: an unbalanced expression is refused."""
    path = tmp_path / "broken.yml"
    rule = {
        "record": "grafana:broken",
        "expr": "sum by (le (rate(driftcal_update_duration_seconds_bucket[1m]))",
    }
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    assert run([tool("promtool"), "check", "rules", str(path)]).returncode != 0


def test_dashboard_shows_what_operators_need() -> None:
    dash = dashboard()
    assert dash["uid"] == "driftcal"
    used = set().union(*(metric_names(q) for _, q in dashboard_queries(dash)))
    for name in (
        "driftcal_wasserstein_distance",
        "driftcal_alarm_threshold",
        "driftcal_coefficient_min",
        "driftcal_coefficient_mean",
        "driftcal_coefficient_max",
        "driftcal_update_duration_seconds_bucket",
        "driftcal_consumer_lag_messages",
        "driftcal_messages_rejected_total",
        "driftcal_build_info",
    ):
        assert name in used, f"the dashboard shows no {name}"
    distance = next(p for p in dash["panels"] if "driftcal_wasserstein_distance" in json.dumps(p["targets"]))
    exprs = [t["expr"] for t in distance["targets"]]
    assert any("driftcal_alarm_threshold" in e for e in exprs), "no threshold line beside the distance"
    styled = [o for o in distance["fieldConfig"]["overrides"] if "threshold" in o["matcher"]["options"]]
    assert styled and any(p["id"] == "custom.lineStyle" for p in styled[0]["properties"])
    device = next(p for p in dash["panels"] if "driftcal_build_info" in json.dumps(p["targets"]))
    assert "{{device}}" in device["targets"][0]["legendFormat"]


def test_dashboard_layout_and_datasources() -> None:
    dash = dashboard()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], int] = {}
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"panels {cells.get((x, y))} and {panel['id']} overlap"
                cells[x, y] = panel["id"]
        assert panel["datasource"]["uid"] == DATASOURCE_UID
        assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"])
    for var in dash["templating"]["list"]:
        assert var["datasource"]["uid"] == DATASOURCE_UID


def test_provisioning_points_at_the_dashboard_and_datasource() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    (source,) = sources["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "driftcal.yaml").read_text())
    (provider,) = providers["providers"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert DASHBOARDS == [GRAFANA / "dashboards" / "driftcal.json"]


def test_grafana_alert_rule_for_distance_spikes() -> None:
    (rule,) = alert_rules()
    assert rule["uid"] == "driftcal-distance-spike"
    refs = {q["refId"]: q for q in rule["data"]}
    assert rule["condition"] in refs
    query = refs["A"]
    assert query["datasourceUid"] == DATASOURCE_UID
    assert query["model"]["expr"] == "driftcal_wasserstein_distance / driftcal_alarm_threshold"
    condition = refs[rule["condition"]]["model"]
    assert condition["type"] == "threshold"
    assert condition["conditions"][0]["evaluator"] == {"type": "gt", "params": [1]}
    assert rule["annotations"]["runbook_url"] == "docs/operations.md#driftcaldistancespike"
    assert rule["annotations"]["__dashboardUid__"] == dashboard()["uid"]
    assert rule["for"] == "2m" and rule["noDataState"] == "OK"
