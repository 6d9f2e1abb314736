"""``driftcal run`` and ``driftcal replay``: bad input gives one ``driftcal: error:`` line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import driftcal
from driftcal.obs.logging import teardown_logging

REPO = Path(driftcal.__file__).resolve().parent.parent
PREFIX = "driftcal: error: invalid configuration: "


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DRIFTCAL_* variable of the calling environment may leak into a test, nor a log handler.

    An earlier in-process ``driftcal demo``/``run`` leaves ``setup_logging``'s root handler behind,
    bound to that test's (closed) captured stderr; aiokafka's connection errors would go there.
    """
    for name in list(os.environ):
        if name.upper().startswith("DRIFTCAL_"):
            monkeypatch.delenv(name)
    teardown_logging()


def test_run_with_a_bad_config_prints_one_line_per_problem(cli: Callable, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("detector:\n  name: calo\nupdate:\n  steps: -1\n")
    outcome = cli("run", "--config", config)
    assert outcome.code == 2, outcome.err
    assert "Traceback" not in outcome.err and outcome.out == ""
    lines = outcome.err_lines
    assert len(lines) == 2, lines
    assert all(line.startswith(PREFIX) for line in lines), lines
    problems = sorted(line.removeprefix(PREFIX) for line in lines)
    assert problems[0] == "detector.shape: Field required"
    assert problems[1].startswith("update.steps: ")
    assert "greater than 0" in problems[1] and "-1" in problems[1]


def test_run_with_unknown_keys_and_bad_values_lists_each(cli: Callable, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "detector:\n  shape: [2, 0]\nkafka:\n  bootstrp: x:1\nupdate:\n  device: tpu\nqueue_max_batches: 0\n"
    )
    outcome = cli("run", "--config", config)
    assert outcome.code == 2 and "Traceback" not in outcome.err
    lines = outcome.err_lines
    assert len(lines) == 4 and all(line.startswith(PREFIX) for line in lines), lines
    text = "\n".join(lines)
    for where in ("detector.shape", "kafka.bootstrp", "update.device", "queue_max_batches"):
        assert where in text, (where, text)


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "not found"), ("detector: [1, 2\n", "not valid YAML"), ("- 1\n- 2\n", "top level")],
)
def test_run_with_a_missing_or_unparsable_config_is_one_line(
    cli: Callable, tmp_path: Path, content: str | None, needle: str
) -> None:
    config = tmp_path / "c.yaml"
    if content is not None:
        config.write_text(content)
    outcome = cli("run", "--config", config)
    assert outcome.code == 2 and "Traceback" not in outcome.err
    assert len(outcome.err_lines) == 1 and outcome.err_lines[0].startswith(PREFIX)
    assert needle in outcome.err_lines[0]


def test_replay_of_a_missing_file_is_one_line(cli: Callable, tmp_path: Path) -> None:
    missing = tmp_path / "missing.npy"
    cli("replay", "--input", missing, "--topic", "t").assert_input_error("does not exist", "missing.npy")


def test_replay_of_a_one_dimensional_array_is_one_line(cli: Callable, save: Callable) -> None:
    path = save("flat.npy", np.ones(5, np.float32))
    cli("replay", "--input", path, "--topic", "t").assert_input_error("(N, ...) events")


def test_replay_to_an_unreachable_broker_is_one_line_and_quick(cli: Callable, save: Callable) -> None:
    path = save("ev.npy", np.ones((10, 2, 2, 2), np.float32))
    start = time.monotonic()
    outcome = cli("replay", "--input", path, "--topic", "t", "--bootstrap", "127.0.0.1:1")
    elapsed = time.monotonic() - start
    outcome.assert_input_error("127.0.0.1:1")
    assert elapsed < 20, elapsed


def test_replay_to_an_unreachable_broker_is_one_line_as_a_process(save: Callable) -> None:
    path = save("ev.npy", np.ones((10, 2, 2, 2), np.float32))
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("DRIFTCAL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "driftcal", "replay", "--input", str(path), "--topic", "t",
         "--bootstrap", "127.0.0.1:1"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "driftcal: error: cannot produce to Kafka at 127.0.0.1:1: no broker reachable (KafkaConnectionError)"
    ]
