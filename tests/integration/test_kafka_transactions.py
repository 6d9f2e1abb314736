"""TransactionalKafkaSink against a real broker: documents and offsets commit together, or not at all."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from driftcal.stream.kafka import TransactionalKafkaSink
from driftcal.stream.transport import Outgoing, TransportError
from driftcal.testing.faults.harness import committed_values
from driftcal.testing.kafka_broker import create_topics

pytestmark = pytest.mark.integration


@pytest.mark.asyncio
async def test_documents_and_offsets_in_one_transaction(kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:6]
    out, source_topic, group = f"out-{tag}", f"in-{tag}", f"g-{tag}"
    await create_topics(kafka_bootstrap, {source_topic: {}, out: {}})  # offsets need an existing topic
    sink = TransactionalKafkaSink(kafka_bootstrap, transactional_id=f"tx-{tag}", group_id=group)
    await sink.start()
    try:
        await sink.send_and_commit([Outgoing(out, b"doc-1", key=b"calo/0")], {(source_topic, 0): 5})
        await sink.send_and_commit([], {(source_topic, 0): 9})  # offsets only
        await sink.send_all([Outgoing(out, b"doc-2", key=b"calo/0")])
    finally:
        await sink.stop()
    assert await committed_values(kafka_bootstrap, out) == [b"doc-1", b"doc-2"]
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        assert await consumer.committed(TopicPartition(source_topic, 0)) == 9
    finally:
        await consumer.stop()


@pytest.mark.asyncio
async def test_a_new_instance_with_the_same_id_fences_the_old_one(kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:6]
    out = f"out-{tag}"
    old = TransactionalKafkaSink(kafka_bootstrap, transactional_id=f"tx-{tag}", group_id=f"g-{tag}",
                                 send_timeout_s=10)  # fmt: skip
    new = TransactionalKafkaSink(kafka_bootstrap, transactional_id=f"tx-{tag}", group_id=f"g-{tag}")
    await old.start()
    await old.send_all([Outgoing(out, b"from-old")])
    await new.start()  # bumps the epoch: the old producer is fenced
    try:
        await new.send_all([Outgoing(out, b"from-new")])
        with pytest.raises(TransportError):
            await old.send_all([Outgoing(out, b"zombie")])
    finally:
        await asyncio.gather(old.stop(), new.stop(), return_exceptions=True)
    assert await committed_values(kafka_bootstrap, out) == [b"from-old", b"from-new"]
