"""The embedded demo: its settings match configs/demo.yaml, and a short run tracks a tiny detector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from driftcal.cli import main
from driftcal.config import load_settings
from driftcal.stream.demo import DEMO_SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def test_builtin_demo_settings_equal_configs_demo_yaml() -> None:
    from_file = load_settings(ROOT / "configs" / "demo.yaml").model_dump(exclude={"instance"})
    builtin = load_settings(None, **DEMO_SETTINGS).model_dump(exclude={"instance"})
    assert from_file == builtin


@pytest.mark.slow
def test_short_demo_run_prints_json_and_improves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    config["detector"]["shape"] = [2, 4, 4]
    config["reference"].update(first_events=3000, max_events=3000)
    config["window"].update(max_events=3000, min_events=1000)
    config["update"].update(initial_steps=150, every_events=500, every_seconds=2.0)
    config["alarm"]["floor_steps"] = 20
    config["metrics"]["port"] = 0
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["demo", "--config", str(path), "--duration", "30", "--json"]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out.strip().splitlines()[-1])
    for key in ("events", "updates", "rmse_initial", "rmse_final", "distance_initial", "distance_final"):
        assert summary[key] is not None, key
    assert summary["events"] > 3000
    assert summary["updates"] >= 1
    assert summary["rejected"] >= 1  # the simulated DAQ sends malformed messages too
    assert summary["rmse_final"] < summary["rmse_initial"]
    assert "RMSE to truth" in out.err
