"""Kafka TLS/SASL settings: secrets only from the environment or files, never in a config file or a log."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import driftcal.config as config
from driftcal.config import ConfigError, Settings, load_settings
from driftcal.stream.kafka import client_security
from driftcal.testing.kafka_broker import free_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hunter2-not-for-logs"
SASL = {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "calo"}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"detector": {"shape": [2, 3]}, **data}))
    return path


def test_sasl_password_from_the_environment_reaches_the_client_options_and_no_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTCAL_KAFKA__SECURITY__SASL_PASSWORD", SECRET)
    settings = load_settings(_write(tmp_path, {"kafka": {"security": SASL}}))
    options = client_security(settings.kafka.security)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512" and options["sasl_plain_username"] == "calo"
    assert options["sasl_plain_password"] == SECRET
    assert isinstance(options["ssl_context"], ssl.SSLContext) and options["ssl_context"].check_hostname
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert SECRET not in text


def test_a_secret_written_in_the_config_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = _write(tmp_path, {"kafka": {"security": {**SASL, "sasl_password": SECRET}}})
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    (problem,) = err.value.problems
    assert "kafka.security.sasl_password is a secret" in problem
    assert "DRIFTCAL_KAFKA__SECURITY__SASL_PASSWORD" in problem and SECRET not in problem


def test_secret_files_are_read_and_their_trailing_newline_dropped(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET + "\n")
    security = {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u",
                "sasl_password_file": str(tmp_path / "pw")}  # fmt: skip
    settings = load_settings(_write(tmp_path, {"kafka": {"security": security}}))
    options = client_security(settings.kafka.security)
    assert options["sasl_plain_password"] == SECRET and "ssl_context" not in options


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        ({"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u"}, "needs a password"),
        ({"protocol": "SASL_SSL", "sasl_password_file": "/x"}, "needs sasl_mechanism and sasl_username"),
        ({"protocol": "SSL", "ssl_certfile": "/c.pem"}, "ssl_certfile and ssl_keyfile go together"),
        ({"protocol": "TLS"}, "kafka.security.protocol"),
    ],
)
def test_inconsistent_security_settings_are_one_readable_problem(
    tmp_path: Path, security: dict, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, {"kafka": {"security": security}}))
    assert len(err.value.problems) == 1 and expected in err.value.problems[0]


def test_an_unreadable_tls_file_is_a_config_error(tmp_path: Path) -> None:
    security = {"protocol": "SSL", "ssl_cafile": "/no/ca.pem"}
    settings = Settings(detector={"shape": [2]}, kafka={"security": security})
    with pytest.raises(ConfigError, match="cannot load the TLS files"):
        client_security(settings.kafka.security)


def test_metrics_bind_to_loopback_outside_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "in_container", lambda: False)
    assert Settings(detector={"shape": [2]}).metrics.host == "127.0.0.1"
    monkeypatch.setattr(config, "in_container", lambda: True)
    assert Settings(detector={"shape": [2]}).metrics.host == "0.0.0.0"
    assert Settings(detector={"shape": [2]}, metrics={"host": "10.0.0.5"}).metrics.host == "10.0.0.5"


def test_the_daemon_never_logs_its_secrets_and_a_missing_secret_file_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTCAL_")}
    env |= {"PYTHONPATH": str(ROOT), "DRIFTCAL_KAFKA__SECURITY__SASL_PASSWORD": SECRET}
    security = {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u"}
    path = _write(tmp_path, {
        "kafka": {"bootstrap": f"127.0.0.1:{free_port()}", "security": security, "request_timeout_ms": 2000},
        "metrics": {"host": "127.0.0.1", "port": 0}, "log_level": "DEBUG",
    })  # fmt: skip
    command = [sys.executable, "-m", "driftcal", "run", "--config", str(path)]
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "serving /metrics" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3.0)  # tries the (absent) broker with SASL, logging at DEBUG
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    text = log.read_text()
    assert "serving /metrics" in text and "DEBUG" in text and SECRET not in text

    env.pop("DRIFTCAL_KAFKA__SECURITY__SASL_PASSWORD")
    missing = {**security, "sasl_password_file": str(tmp_path / "absent")}
    path = _write(tmp_path, {"kafka": {"security": missing}, "metrics": {"host": "127.0.0.1", "port": 0}})
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("driftcal: error: invalid configuration: kafka.security.")
    assert "cannot read" in lines[0] and "Traceback" not in done.stderr
