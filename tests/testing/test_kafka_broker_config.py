"""The local Kafka helper without a broker: config text, ports, ids, fetch errors, fixture order, CLI."""

from __future__ import annotations

import base64
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from driftcal.testing import kafka_broker as kb
from driftcal.testing import kafka_jars as kj

LOG4J = "org.apache.logging.log4j"


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_server_properties_single_node_kraft(tmp_path):
    props = _props(kb.server_properties(9092, 9093, tmp_path / "data"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    for key in ("offsets.topic", "transaction.state.log"):
        assert props[f"{key}.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"
    assert props["num.partitions"] == "1"


def test_server_properties_overrides_win(tmp_path):
    text = kb.server_properties(1, 2, tmp_path, {"num.partitions": 3, "transaction.max.timeout.ms": 5000})
    props = _props(text)
    assert props["num.partitions"] == "3"
    assert props["transaction.max.timeout.ms"] == "5000"
    assert text.count("\nnum.partitions=") == 1


def test_free_port_is_bindable_and_honours_exclude():
    first = kb.free_port()
    second = kb.free_port(exclude={first})
    assert first != second
    for port in (first, second):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_cluster_id_is_16_bytes_url_safe_base64():
    for _ in range(50):
        cid = kb.new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_pom_lists_kafka_and_extras():
    pom = ET.fromstring(kj._pom("4.4.0", ["org.apache.logging.log4j:log4j-slf4j-impl:2.25.5"]))
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    deps = [
        tuple(dep.findtext(f"m:{tag}", namespaces=ns) for tag in ("groupId", "artifactId", "version"))
        for dep in pom.iterfind("m:dependencies/m:dependency", ns)
    ]
    assert deps == [
        ("org.apache.kafka", "kafka_2.13", "4.4.0"),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.25.5"),
    ]


@pytest.mark.parametrize(
    ("jars", "extras"),
    [
        (
            ["slf4j-api-1.7.36.jar", "log4j-core-2.25.5.jar"],
            ["org.apache.logging.log4j:log4j-slf4j-impl:2.25.5"],
        ),
        (
            ["slf4j-api-2.0.17.jar", "log4j-core-2.25.1.jar"],
            ["org.apache.logging.log4j:log4j-slf4j2-impl:2.25.1"],
        ),
        (["slf4j-api-1.7.36.jar"], ["ch.qos.reload4j:reload4j:1.2.25", "org.slf4j:slf4j-reload4j:1.7.36"]),
        (["slf4j-api-1.7.36.jar", "log4j-core-2.25.5.jar", "log4j-slf4j-impl-2.25.5.jar"], []),
    ],
)
def test_logging_extras(tmp_path, jars, extras):
    for jar in jars:
        (tmp_path / jar).touch()
    assert kj._logging_extras(tmp_path) == extras


def test_fetch_is_idempotent_once_marked(tmp_path, monkeypatch):
    root = tmp_path / "kafka-9.9.9"
    (root / "libs").mkdir(parents=True)
    (root / ".complete").write_text("done\n")
    monkeypatch.setattr(kj.shutil, "which", lambda name: None)  # would fail if it tried to download
    assert kb.fetch("9.9.9", tmp_path) == root / "libs"


def test_fetch_without_mvn_is_one_readable_line(tmp_path, monkeypatch):
    monkeypatch.setattr(kj.shutil, "which", lambda name: None)
    with pytest.raises(kb.BrokerError) as info:
        kb.fetch("9.9.9", tmp_path)
    assert "mvn not found" in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "kafka-9.9.9" / ".complete").exists()


def test_fetch_reports_the_maven_error(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "mvn"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho '[INFO] x'\n"
        "echo '[ERROR] Failed to execute goal: Could not find artifact kafka_2.13:jar:9.9.9 -> [Help 1]'\n"
        "echo '[ERROR] '\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(kj.shutil, "which", lambda name: str(fake) if name == "mvn" else None)
    monkeypatch.setattr(kj, "_java", lambda: "java")
    with pytest.raises(kb.BrokerError) as info:
        kb.fetch("9.9.9", tmp_path / "cache")
    assert str(info.value) == (
        "mvn failed to fetch Kafka 9.9.9: "
        "Failed to execute goal: Could not find artifact kafka_2.13:jar:9.9.9"
    )
    assert not (tmp_path / "cache" / "kafka-9.9.9" / ".complete").exists()


def test_bootstrap_before_start_is_an_error():
    with pytest.raises(kb.BrokerError):
        _ = kb.LocalKafka("4.4.0").bootstrap


def test_fixture_prefers_the_environment(monkeypatch):
    monkeypatch.setenv(kb.ENV_BOOTSTRAP, "broker.example:9092")
    monkeypatch.setattr(kb, "_docker_kafka", lambda: pytest.fail("must not look for Docker"))
    monkeypatch.setattr(kb, "LocalKafka", lambda *a, **k: pytest.fail("must not start a broker"))
    with kb.kafka_bootstrap() as bootstrap:
        assert bootstrap == "broker.example:9092"


def test_cli_error_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(kj.shutil, "which", lambda name: None)
    assert kb.main(["fetch", "--version", "9.9.9", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kafka-local: error: mvn not found")
    assert err.count("\n") == 1


def test_cli_fetch_prints_the_libs_folder(tmp_path, capsys):
    root = Path(tmp_path, "kafka-9.9.9")
    (root / "libs").mkdir(parents=True)
    (root / ".complete").touch()
    assert kb.main(["fetch", "--version", "9.9.9", "--cache", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{root / 'libs'}\n"
