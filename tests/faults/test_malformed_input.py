"""Fault injection: 1,000 malformed messages among good ones, against a real broker and a real daemon process.

Every bad message must land in the dead-letter topic with the right reason and its source offset, every good
event must be used, and the process must stay alive and stop cleanly.
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
from aiokafka import AIOKafkaConsumer

from driftcal.testing.kafka_broker import create_topics, free_port

from .corpus import REASON, interleaved
from .test_kill_and_restart import _produce

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
N_BAD, N_GOOD_EVENTS, BATCH = 1000, 3000, 50


def _counter(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + "{"))


async def _read_all(bootstrap: str, topic: str, n: int, timeout_s: float = 60.0) -> list:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < n:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


def test_a_thousand_malformed_messages_are_dead_lettered_and_every_good_event_is_used(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    events = rng.gamma(2.0, 1.0, (N_GOOD_EVENTS, 2, 4, 4)).astype(np.float32)
    corpus = list(interleaved(events, N_BAD, detector="faults", batch=BATCH, seed=12))
    tag = uuid.uuid4().hex[:6]
    topics = {"input_topic": f"in-{tag}", "output_topic": f"out-{tag}", "dlq_topic": f"dlq-{tag}",
              "reference_topic": f"ref-{tag}"}  # fmt: skip
    asyncio.run(create_topics(kafka_bootstrap, {topics["input_topic"]: {}}))
    asyncio.run(_produce(kafka_bootstrap, topics["input_topic"], [blob for blob, _ in corpus]))

    port = free_port()
    config = {
        "detector": {"name": "faults", "shape": [2, 4, 4], "noise": 0.05},
        "kafka": {"bootstrap": kafka_bootstrap, "group_id": f"g-{tag}", **topics},
        "reference": {"source": "first-events", "first_events": 1000, "max_events": 1000},
        "window": {"max_events": 2000, "min_events": 500},
        "update": {"every_events": 1000, "steps": 5, "initial_steps": 20, "critic": "mlp", "device": "cpu"},
        "alarm": {"floor_steps": 5},
        "metrics": {"host": "127.0.0.1", "port": port},
    }  # fmt: skip
    (tmp_path / "faults.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTCAL_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "driftcal", "run", "--config", str(tmp_path / "faults.yaml")],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
    try:
        deadline, text = time.monotonic() + 180, ""
        while time.monotonic() < deadline:
            assert daemon.poll() is None, log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                text = ""
            done = _counter(text, "driftcal_events_consumed_total") >= N_GOOD_EVENTS
            if done and _counter(text, "driftcal_messages_rejected_total") >= N_BAD:
                break
            time.sleep(1.0)
        assert _counter(text, "driftcal_events_consumed_total") == N_GOOD_EVENTS
        assert _counter(text, "driftcal_messages_rejected_total") == N_BAD
        assert daemon.poll() is None  # alive after 1,000 bad messages
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()

    letters = asyncio.run(_read_all(kafka_bootstrap, topics["dlq_topic"], N_BAD))
    assert len(letters) == N_BAD
    kinds = {offset: kind for offset, (_, kind) in enumerate(corpus)}
    for record in letters:
        headers = dict(record.headers)
        source = headers["driftcal-source"].decode()
        topic, partition, offset = source.rsplit("/", 2)
        assert (topic, partition) == (topics["input_topic"], "0")
        kind = kinds[int(offset)]
        assert kind is not None, f"a good message was dead-lettered: {source}"
        reason = headers["driftcal-error"].decode().split(":")[0]
        assert reason in REASON[kind], (kind, reason)
        assert record.value == corpus[int(offset)][0]  # the original bytes
