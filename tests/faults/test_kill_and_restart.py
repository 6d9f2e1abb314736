"""Fault injection: kill -9 of the daemon mid-stream, then a restart, with transactions and checkpoints.

A ``read_committed`` reader of the coefficient topic must see sequence numbers 1, 2, 3, ... with no gap and no
repeat, and the coefficients after the restart must continue from the checkpoint, not start again from 1.0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from driftcal.coefficients import CoefficientDocument
from driftcal.testing.kafka_broker import create_topics, free_port

from .corpus import good_blob

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (2, 4, 4)
TRUTH = np.ones(SHAPE)
TRUTH[0] = 0.8


def _published(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    name = "driftcal_coefficients_published_total{"
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def _produce(bootstrap: str, topic: str, blobs: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        for blob in blobs:
            await producer.send(topic, blob)
        await producer.flush()
    finally:
        await producer.stop()


async def _committed_documents(bootstrap: str, topic: str) -> list[CoefficientDocument]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    docs: list[CoefficientDocument] = []
    try:
        idle = 0
        while idle < 4:
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            docs += [CoefficientDocument.from_json(r.value) for part in batch.values() for r in part]
    finally:
        await consumer.stop()
    return docs


def _start(config: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTCAL_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    with log_path.open("a") as log:
        command = [sys.executable, "-m", "driftcal", "run", "--config", str(config)]
        return subprocess.Popen(command, env=env, stdout=log, stderr=log)


def _wait_published(daemon: subprocess.Popen, port: int, n: int, log_path: Path) -> None:
    deadline = time.monotonic() + 180
    while _published(port) < n:
        assert daemon.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"under {n} documents published: {log_path.read_text()[-2000:]}"
        time.sleep(0.5)


def test_kill_9_then_restart_continues_without_gaps_duplicates_or_a_reset(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(21)
    reference = rng.gamma(2.0, 1.0, (2000, *SHAPE)).astype(np.float32)
    changed = (rng.gamma(2.0, 1.0, (6000, *SHAPE)) * TRUTH).astype(np.float32)
    stream = np.concatenate([reference, changed])
    blobs = [good_blob(stream[i : i + 100], "kill", i) for i in range(0, len(stream), 100)]
    tag = uuid.uuid4().hex[:6]
    topics = {"input_topic": f"in-{tag}", "output_topic": f"out-{tag}", "dlq_topic": f"dlq-{tag}"}
    asyncio.run(create_topics(kafka_bootstrap, {topics["input_topic"]: {}}))
    asyncio.run(_produce(kafka_bootstrap, topics["input_topic"], blobs[:50]))  # reference + 3,000 changed

    port = free_port()
    config = tmp_path / "kill.yaml"
    config.write_text(yaml.safe_dump({
        "detector": {"name": "kill", "shape": list(SHAPE)},
        "kafka": {"bootstrap": kafka_bootstrap, "group_id": f"g-{tag}", "transactions": True,
                  "transactional_id": f"tx-{tag}", **topics},
        "reference": {"source": "first-events", "first_events": 2000, "max_events": 2000},
        "window": {"max_events": 2000, "min_events": 500},
        "update": {"every_events": 500, "every_seconds": 1.0, "steps": 10, "initial_steps": 150,
                   "critic": "mlp", "lr_theta": 0.005, "device": "cpu"},
        "publish": {"heartbeat_seconds": 1.0},
        "alarm": {"floor_steps": 10},
        "checkpoint": {"path": str(tmp_path / "state.pt"), "every_seconds": 1.0},
        "metrics": {"host": "127.0.0.1", "port": port},
    }))  # fmt: skip
    log_path = tmp_path / "daemon.log"

    first = _start(config, port, log_path)
    try:
        _wait_published(first, port, 4, log_path)
        first.send_signal(signal.SIGKILL)  # mid-stream, no chance to publish, commit or checkpoint
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert (tmp_path / "state.pt").is_file()

    asyncio.run(_produce(kafka_bootstrap, topics["input_topic"], blobs[50:]))  # the rest of the stream
    second = _start(config, port, log_path)
    try:
        _wait_published(second, port, 4, log_path)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()

    docs = asyncio.run(_committed_documents(kafka_bootstrap, topics["output_topic"]))
    sequences = [d.sequence for d in docs]
    assert sequences == list(range(1, len(docs) + 1)), sequences  # no gap, no duplicate
    assert "warm start from" in log_path.read_text()
    ones = float(np.sqrt(np.mean((1.0 - TRUTH) ** 2)))
    errors = [float(np.sqrt(np.mean((d.array() - TRUTH) ** 2))) for d in docs]
    assert max(errors) < 0.5 * ones, errors  # never back to 1.0: the restart continued from the checkpoint
