"""Fault injection: SIGTERM while the first (long) update runs.

Expected: a clean exit with the final publish, the commit and the checkpoint, within the shutdown timeout.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from driftcal.stream.checkpoint import load_checkpoint
from driftcal.testing.kafka_broker import create_topics, free_port

from .corpus import good_blob
from .test_kill_and_restart import SHAPE, TRUTH, _committed_documents, _produce, _start

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def _committed_offset(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


def test_sigterm_during_an_update_publishes_commits_and_checkpoints(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(31)
    stream = np.concatenate([
        rng.gamma(2.0, 1.0, (1000, *SHAPE)), rng.gamma(2.0, 1.0, (1000, *SHAPE)) * TRUTH
    ]).astype(np.float32)  # fmt: skip
    blobs = [good_blob(stream[i : i + 100], "term", i) for i in range(0, len(stream), 100)]
    tag = uuid.uuid4().hex[:6]
    topics = {"input_topic": f"in-{tag}", "output_topic": f"out-{tag}", "dlq_topic": f"dlq-{tag}"}
    asyncio.run(create_topics(kafka_bootstrap, {topics["input_topic"]: {}}))
    asyncio.run(_produce(kafka_bootstrap, topics["input_topic"], blobs))
    port, group, timeout = free_port(), f"g-{tag}", 10.0
    config = tmp_path / "term.yaml"
    config.write_text(yaml.safe_dump({
        "detector": {"name": "term", "shape": list(SHAPE)},
        "kafka": {"bootstrap": kafka_bootstrap, "group_id": group, **topics},
        "reference": {"source": "first-events", "first_events": 1000, "max_events": 1000},
        "window": {"max_events": 1000, "min_events": 500},
        "update": {"initial_steps": 1_000_000, "critic": "mlp", "device": "cpu"},  # an update that never ends
        "alarm": {"floor_steps": 5},
        "checkpoint": {"path": str(tmp_path / "state.pt")},
        "metrics": {"host": "127.0.0.1", "port": port},
        "shutdown_timeout_seconds": timeout,
    }))  # fmt: skip
    log_path = tmp_path / "daemon.log"
    daemon = _start(config, port, log_path)
    try:
        deadline = time.monotonic() + 120
        while "assigned partitions" not in log_path.read_text():
            assert daemon.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.5)
        time.sleep(4.0)  # everything is consumed and the million-step first update is under way
        start = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=timeout + 20) == 0, log_path.read_text()[-3000:]
        elapsed = time.monotonic() - start
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert elapsed < timeout, elapsed
    log = log_path.read_text()
    assert "update 1:" in log and "published sequence 1" in log  # the update in flight ended, published
    assert "update 2:" not in log
    docs = asyncio.run(_committed_documents(kafka_bootstrap, topics["output_topic"]))
    assert [d.sequence for d in docs] == list(range(1, len(docs) + 1)) and docs
    assert asyncio.run(_committed_offset(kafka_bootstrap, group, topics["input_topic"])) == len(blobs)
    owner = {"detector": "term", "module": "0", "model": "cell-gain", "shape": list(SHAPE)}
    state = load_checkpoint(tmp_path / "state.pt", owner=owner)
    assert state["sequence"] == docs[-1].sequence
