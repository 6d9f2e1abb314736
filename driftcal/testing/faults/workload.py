"""What the fault scenarios feed the daemon: a small aged calorimeter stream and a daemon config for it."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from driftcal.testing.faults.corpus import good_blob
from driftcal.testing.kafka_broker import create_topics, free_port

SHAPE = (2, 4, 4)
#: The injected gains: the first layer aged by 20 %.
TRUTH = np.ones(SHAPE)
TRUTH[0] = 0.8


def aged_stream(n_reference: int, n_changed: int, seed: int) -> np.ndarray:
    """``n_reference`` nominal events, then ``n_changed`` with the gains of :data:`TRUTH`."""
    rng = np.random.default_rng(seed)
    reference = rng.gamma(2.0, 1.0, (n_reference, *SHAPE))
    changed = rng.gamma(2.0, 1.0, (n_changed, *SHAPE)) * TRUTH
    return np.concatenate([reference, changed]).astype(np.float32)


def blobs_of(stream: np.ndarray, detector: str, batch: int = 100) -> list[bytes]:
    """``stream`` as encoded batches of ``batch`` events."""
    return [good_blob(stream[i : i + batch], detector, i) for i in range(0, len(stream), batch)]


def rms_to_truth(coefficients: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(coefficients) - TRUTH) ** 2)))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if nested else value
    return out


def daemon_config(bootstrap: str, name: str, **sections: Any) -> dict[str, Any]:
    """A daemon config on fresh topics (``in-``, ``out-``, ``dlq-`` + a random tag) and a free port.

    ``sections`` are merged into the defaults key by key (``update={"steps": 50}``).
    """
    tag = uuid.uuid4().hex[:6]
    base = {
        "detector": {"name": name, "shape": list(SHAPE)},
        "kafka": {"bootstrap": bootstrap, "group_id": f"g-{tag}", "input_topic": f"in-{tag}",
                  "output_topic": f"out-{tag}", "dlq_topic": f"dlq-{tag}", "reference_topic": f"ref-{tag}"},
        "reference": {"source": "first-events", "first_events": 1000, "max_events": 1000},
        "window": {"max_events": 2000, "min_events": 500},
        "update": {"every_events": 500, "every_seconds": 2.0, "steps": 10, "initial_steps": 100,
                   "critic": "mlp", "device": "cpu"},
        "alarm": {"floor_steps": 5},
        "metrics": {"host": "127.0.0.1", "port": free_port()},
    }  # fmt: skip
    config = _merge(base, sections)
    asyncio.run(create_topics(bootstrap, {config["kafka"]["input_topic"]: {}}))
    return config


async def _topic_size(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        if topic not in await consumer.topics():  # fresh cluster metadata
            return 0
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return sum((await consumer.end_offsets(tps)).values()) if tps else 0
    finally:
        await consumer.stop()


def topic_size(bootstrap: str, topic: str) -> int:
    """Messages ever written to ``topic`` (sum of its partitions' end offsets; 0 if it does not exist)."""
    return asyncio.run(_topic_size(bootstrap, topic))
