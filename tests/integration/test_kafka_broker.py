"""The Kafka fixture really works: topics, headers, group commits, transactions (aiokafka)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from driftcal.testing.kafka_broker import LocalKafka, create_topics

pytestmark = pytest.mark.integration


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _consume(consumer: AIOKafkaConsumer, n: int, timeout: float = 30.0) -> list:
    """Exactly ``n`` records (fails if fewer arrive within ``timeout`` s)."""
    records: list = []
    async with asyncio.timeout(timeout):
        while len(records) < n:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    return records


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


@pytest.mark.asyncio
async def test_produce_consume_headers_and_group_commit(kafka_bootstrap):
    topic, group = _name("it-plain"), _name("it-group")
    await create_topics(kafka_bootstrap, {topic: {"partitions": 1, "config": {"cleanup.policy": "delete"}}})
    tp = TopicPartition(topic, 0)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(
                topic, f"v{i}".encode(), key=b"k", headers=[("seq", str(i).encode())]
            )
    finally:
        await producer.stop()

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    first = consumer()
    await first.start()
    try:
        records = await _consume(first, 3)
        await first.commit()
        assert await first.committed(tp) == 3
    finally:
        await first.stop()
    assert [r.value for r in records] == [b"v0", b"v1", b"v2"]
    assert [r.headers for r in records] == [(("seq", str(i).encode()),) for i in range(3)]

    # the same group resumes after the commit: only a message produced later is seen
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"v3")
    finally:
        await producer.stop()
    second = consumer()
    await second.start()
    try:
        later = await _consume(second, 1)
        assert [(r.offset, r.value) for r in later] == [(3, b"v3")]
        assert not await second.getmany(timeout_ms=500)
    finally:
        await second.stop()


@pytest.mark.asyncio
async def test_transactional_producer_read_committed(kafka_bootstrap):
    topic = _name("it-tx")
    await create_topics(kafka_bootstrap, {topic: {"partitions": 1}})

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=_name("it-txid"))
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed")
    finally:
        await producer.stop()

    reader = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await reader.start()
    try:
        records = await _consume(reader, 1)
        assert [r.value for r in records] == [b"committed"]
        assert not await reader.getmany(timeout_ms=500)
    finally:
        await reader.stop()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_local_kafka_restarts_on_the_same_port_with_its_data():
    """kill() and stop() are outages, not resets: start() brings back the same broker and log."""
    broker = LocalKafka()
    try:
        await asyncio.to_thread(broker.start)
        bootstrap, workdir = broker.bootstrap, broker.workdir
        await create_topics(bootstrap, {"outage": {"partitions": 1}})
        await _produce(bootstrap, "outage", b"before-kill")
        broker.kill()
        assert not broker.running
        await asyncio.to_thread(broker.start)
        await _produce(bootstrap, "outage", b"after-kill")
        await asyncio.to_thread(broker.restart)
        assert (broker.bootstrap, broker.workdir) == (bootstrap, workdir)
        reader = AIOKafkaConsumer("outage", bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await reader.start()
        try:
            assert [r.value for r in await _consume(reader, 2)] == [b"before-kill", b"after-kill"]
        finally:
            await reader.stop()
    finally:
        broker.close()
    assert workdir is not None and not workdir.exists()
