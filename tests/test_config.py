"""Tests of driftcal.config: sources and their priority, validation, problem lines, the field reference."""

import os
import socket
from pathlib import Path

import pytest

from driftcal.config import ConfigError, Settings, load_settings, settings_reference
from driftcal.errors import DriftcalError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No DRIFTCAL_* variable of the calling environment may leak into a test."""
    for name in list(os.environ):
        if name.upper().startswith("DRIFTCAL_"):
            monkeypatch.delenv(name)


def _write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _problems(*args, **kwargs):
    with pytest.raises(ConfigError) as info:
        load_settings(*args, **kwargs)
    return info.value.problems


def test_defaults():
    s = Settings(detector={"shape": [3]})
    assert s.detector.name == "calo" and s.detector.model == "cell-gain" and s.detector.noise is None
    assert s.kafka.bootstrap == "localhost:9092" and s.kafka.output_topic == "driftcal.coefficients"
    assert s.reference.source == "first-events" and s.reference.files == []
    assert s.reference.max_bytes == 1 << 30 and s.window.max_bytes == 512 << 20
    assert (s.window.max_events, s.window.min_events) == (20000, 2000)
    assert (s.update.steps, s.update.initial_steps, s.update.device) == (25, 300, "auto")
    assert s.publish.min_change == 0.005 and s.alarm.k == 3.0 and s.metrics.port == 9108
    assert s.queue_max_batches == 64 and s.log_level == "INFO" and s.log_json is False
    assert s.instance == socket.gethostname()


def test_load_without_file_needs_shape():
    assert _problems() == ["detector: Field required"]
    assert load_settings(detector={"shape": [2, 2]}).detector.shape == [2, 2]


@pytest.mark.parametrize("name", ["calorimeter.yaml", "tracker.yaml", "demo.yaml"])
def test_ready_configs_load(name):
    s = load_settings(CONFIGS / name)
    assert isinstance(s, Settings)


def test_ready_config_values():
    calo = load_settings(CONFIGS / "calorimeter.yaml")
    assert calo.detector.shape == [6, 16, 16] and calo.detector.noise == 0.05
    assert calo.detector.threshold == 0.15 and calo.reference.source == "topic"
    assert (calo.update.every_events, calo.update.steps, calo.update.initial_steps) == (5000, 25, 400)
    tracker = load_settings(CONFIGS / "tracker.yaml")
    assert tracker.detector.model == "plane-shift" and tracker.detector.shape == [3]
    assert tracker.reference.first_events == 50000 and tracker.window.max_events == 50000
    assert (tracker.update.every_events, tracker.update.steps, tracker.update.initial_steps) == (
        10000,
        50,
        1500,
    )
    demo = load_settings(CONFIGS / "demo.yaml")
    assert demo.detector.name == "demo-calo" and demo.detector.shape == [4, 8, 8]
    assert (demo.window.max_events, demo.window.min_events) == (8000, 2000)
    assert (demo.update.every_events, demo.update.every_seconds) == (1000, 5.0)
    assert demo.publish.heartbeat_seconds == 10 and demo.alarm.floor_steps == 100


def test_env_beats_yaml_and_merges_nested(tmp_path, monkeypatch):
    path = _write(tmp_path, "detector: {shape: [3]}\nupdate: {steps: 7, seed: 4}\n")
    assert load_settings(path).update.steps == 7
    monkeypatch.setenv("DRIFTCAL_UPDATE__STEPS", "20")
    monkeypatch.setenv("DRIFTCAL_KAFKA__BOOTSTRAP", "broker:9092")
    monkeypatch.setenv("DRIFTCAL_LOG_LEVEL", "DEBUG")
    s = load_settings(path)
    assert s.update.steps == 20 and s.update.seed == 4  # the YAML's other update keys survive
    assert s.kafka.bootstrap == "broker:9092" and s.kafka.group_id == "driftcal"
    assert s.log_level == "DEBUG"


def test_env_json_list(monkeypatch):
    monkeypatch.setenv("DRIFTCAL_DETECTOR__SHAPE", "[4, 8, 8]")
    assert load_settings().detector.shape == [4, 8, 8]
    monkeypatch.setenv("DRIFTCAL_DETECTOR__SHAPE", "[4, 8")
    (problem,) = _problems()
    assert problem.startswith("environment:") and "detector" in problem


def test_init_beats_env(tmp_path, monkeypatch):
    path = _write(tmp_path, "detector: {shape: [3]}\nupdate: {steps: 7, seed: 4}\n")
    monkeypatch.setenv("DRIFTCAL_UPDATE__STEPS", "20")
    s = load_settings(path, update={"steps": 9}, log_json=True)
    assert s.update.steps == 9 and s.update.seed == 4 and s.log_json is True


def test_unknown_keys_rejected(tmp_path, monkeypatch):
    path = _write(tmp_path, "detector: {shape: [3], colour: red}\nbogus: 1\n")
    assert sorted(_problems(path)) == [
        "bogus: Extra inputs are not permitted (got 1)",
        "detector.colour: Extra inputs are not permitted (got 'red')",
    ]
    monkeypatch.setenv("DRIFTCAL_UPDATE__STESP", "3")
    assert _problems(detector={"shape": [3]}) == ["update.stesp: Extra inputs are not permitted (got '3')"]


def test_several_problems_one_line_each(tmp_path):
    path = _write(
        tmp_path,
        "detector: {shape: [3, 0]}\n"
        "update: {steps: -1, device: tpu}\n"
        "window: {min_events: 10, max_events: 5}\n"
        "reference: {first_events: 100, max_events: 10}\n"
        "metrics: {port: 70000}\n"
        "log_level: " + "x" * 100 + "\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    err = info.value
    problems = err.problems
    assert len(problems) == 7
    assert all("\n" not in p for p in problems)
    assert "update.steps: Input should be greater than 0 (got -1)" in problems
    assert any(p.startswith("update.device: ") and "(got 'tpu')" in p for p in problems)
    assert any(p.startswith("detector.shape: ") and "> 0" in p for p in problems)
    assert any(p.startswith("window: ") and "min_events" in p for p in problems)
    assert any(p.startswith("reference: ") and "first_events" in p for p in problems)
    assert any(p.startswith("metrics.port: ") for p in problems)
    (long_line,) = [p for p in problems if p.startswith("log_level: ")]
    got = long_line.split("(got ", 1)[1][:-1]
    assert len(got) <= 60 and got.endswith("...")
    assert str(err) == "invalid configuration: 7 problem(s): " + "; ".join(problems)
    assert isinstance(err, DriftcalError)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert _problems(path) == [f"config file {str(path)!r}: not found"]
    assert _problems(str(path)) == [f"config file {str(path)!r}: not found"]


def test_invalid_yaml(tmp_path):
    path = _write(tmp_path, "detector:\n  shape: [3]\nupdate: steps: 3\n")
    (problem,) = _problems(path)
    assert problem.startswith(f"config file {str(path)!r}: not valid YAML (line 3)")


def test_top_level_must_be_mapping(tmp_path):
    (problem,) = _problems(_write(tmp_path, "- 1\n- 2\n"))
    assert problem.endswith(": top level must be a mapping, got list")


def test_empty_file_is_all_defaults(tmp_path):
    path = _write(tmp_path, "# nothing yet\n")
    assert _problems(path) == ["detector: Field required"]
    assert load_settings(path, detector={"shape": [5]}).detector.shape == [5]


def test_files_source(tmp_path):
    present = _write(tmp_path, "x", name="ref.h5")
    missing = tmp_path / "missing.h5"
    path = _write(
        tmp_path, f"detector: {{shape: [3]}}\nreference: {{source: files, files: [{present}, {missing}]}}\n"
    )
    (problem,) = _problems(path)
    assert problem.startswith("reference.files: ") and str(missing) in problem and str(present) not in problem
    assert _problems(detector={"shape": [3]}, reference={"source": "files"})[0].startswith(
        "reference.files: "
    )
    s = load_settings(detector={"shape": [3]}, reference={"source": "files", "files": [str(present)]})
    assert s.reference.files == [present]
    # files are only checked when they are the source
    assert load_settings(detector={"shape": [3]}, reference={"files": [str(missing)]}).reference.files


@pytest.mark.parametrize("shape", [[2], [3, 1], [], [0]])
def test_plane_shift_shape_rejected(shape):
    (problem,) = _problems(detector={"model": "plane-shift", "shape": shape})
    assert problem.startswith("detector.shape: ")


def test_shapes_accepted():
    assert load_settings(detector={"model": "plane-shift", "shape": [5]}).detector.shape == [5]
    assert load_settings(detector={"shape": [7]}).detector.shape == [7]  # cell-gain: any rank >= 1
    s = load_settings(detector={"shape": [2, 3], "threshold": 0.1})  # threshold without noise is allowed
    assert s.detector.threshold == 0.1 and s.detector.noise is None


def test_settings_reference_covers_every_field():
    rows = settings_reference()
    names = [r[0] for r in rows]
    assert len(names) == len(set(names))
    assert all(len(r) == 4 and all(isinstance(x, str) for x in r) for r in rows)
    assert all(r[3] for r in rows), "every field needs a description"
    expected = set()

    def walk(model: type, prefix: str) -> None:
        for name, info in model.model_fields.items():
            expected.add(prefix + name)
            if isinstance(info.annotation, type) and hasattr(info.annotation, "model_fields"):
                walk(info.annotation, f"{prefix}{name}.")

    walk(Settings, "")
    assert set(names) == expected and "kafka.security.sasl_password_file" in expected
    by_name = {r[0]: r for r in rows}
    assert by_name["update.steps"][1:3] == ("int", "25")
    assert by_name["detector.shape"][2] == "required"
    assert by_name["detector.noise"][1] == "float | None"
    assert by_name["kafka.bootstrap"][2] == '"localhost:9092"'
    assert names.index("kafka") < names.index("kafka.bootstrap")
