"""The configuration text of :class:`~driftcal.testing.kafka_broker.LocalKafka`, a single-node KRaft broker.

* :func:`server_properties` is its ``server.properties`` (broker *and* controller on 127.0.0.1, every
  internal topic with one replica and one partition, short heartbeats for restart tests).
* :func:`new_cluster_id` is the random cluster id that ``kafka-storage format`` takes.
* ``_LOG4J2`` and ``_LOG4J1`` are the log4j2 and log4j 1 (reload4j) configurations, both written so that
  whichever backend the Kafka version brings finds one: templates with a ``{log}`` placeholder, WARN and
  above to that one file.

Pure text, no processes or I/O; :mod:`driftcal.testing.kafka_broker` re-exports these names.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from pathlib import Path


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 bytes, URL-safe base64 without padding, not starting with '-'.

    >>> len(new_cluster_id())
    22
    """
    while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cid


def server_properties(
    port: int, controller_port: int, log_dir: Path, overrides: Mapping[str, object] | None = None
) -> str:
    """The ``server.properties`` text of a single-node KRaft broker+controller (``overrides`` win)."""
    props: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(log_dir),
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 1,  # fast first group coordination on two cores
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.num.partitions": 1,
        "transaction.state.log.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "true",
        "num.partitions": 1,
        "num.network.threads": 2,
        "num.io.threads": 2,
        "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
        # after kill() the old registration blocks the restarted broker until its session expires (9 s)
        "broker.heartbeat.interval.ms": 1000,
        "broker.session.timeout.ms": 4000,
    }
    props.update(overrides or {})
    return "".join(f"{key}={value}\n" for key, value in props.items())


_LOG4J2 = """status = warn
shutdownHook = disable
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
"""
_LOG4J1 = """log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
"""
