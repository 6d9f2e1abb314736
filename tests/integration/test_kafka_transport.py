"""The aiokafka transport against a real broker (the session fixture ``kafka_bootstrap``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from driftcal.stream.kafka import KafkaSink, KafkaSource, TopicSpec, ensure_topics
from driftcal.stream.transport import Outgoing, Record, TransportError

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

FAST = {"request_timeout_ms": 10000, "session_timeout_ms": 10000}


def new_topic(prefix: str = "t") -> str:
    return f"dc-{prefix}-{uuid.uuid4().hex[:12]}"


async def produce(bootstrap: str, topic: str, n: int, *, start: int = 0) -> None:
    sink = KafkaSink(bootstrap)
    await sink.start()
    try:
        await sink.send_all(
            [Outgoing(topic, f"v{i}".encode(), key=f"k{i}".encode()) for i in range(start, n)]
        )
    finally:
        await sink.stop()


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return condition()


async def drain(source: KafkaSource, n: int, timeout_s: float = 20.0) -> list[Record]:
    """Poll until ``n`` records arrived (or the deadline passed)."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < n and time.monotonic() < deadline:
        records += await source.getmany(0.5)
    return records


async def test_sink_to_source_keeps_key_headers_and_order(kafka_bootstrap: str) -> None:
    topic = new_topic("roundtrip")
    await ensure_topics(kafka_bootstrap, {topic: TopicSpec(partitions=1)})
    sink = KafkaSink(kafka_bootstrap)
    await sink.start()
    messages = [
        Outgoing(
            topic, f"value-{i}".encode(), key=f"key-{i}".encode(), headers=[("h", bytes([i])), ("x", b"")]
        )
        for i in range(5)
    ]
    try:
        await sink.send_all(messages[:4])
        await sink.send(messages[4])
    finally:
        await sink.stop()

    source = KafkaSource(kafka_bootstrap, [topic], new_topic("group"), **FAST)
    await source.start()
    try:
        records = await drain(source, 5)
    finally:
        await source.stop()
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]
    assert [(r.value, r.key, r.headers) for r in records] == [
        (m.value, m.key, tuple(m.headers)) for m in messages
    ]
    assert all(r.tp == (topic, 0) and r.timestamp_ms for r in records)


async def test_commit_then_restart_resumes_after_committed_offset(kafka_bootstrap: str) -> None:
    topic, group = new_topic("commit"), new_topic("group")
    await ensure_topics(kafka_bootstrap, {topic: TopicSpec(partitions=1)})
    await produce(kafka_bootstrap, topic, 10)

    first = KafkaSource(kafka_bootstrap, [topic], group, **FAST)
    await first.start()
    try:
        records = await drain(first, 10)
        assert [r.offset for r in records] == list(range(10))
        await first.commit({(topic, 0): 6})  # records 6..9 "not stored yet"
    finally:
        await first.stop()

    second = KafkaSource(kafka_bootstrap, [topic], group, **FAST)
    await second.start()
    try:
        again = await drain(second, 4)
        assert [r.offset for r in again] == [6, 7, 8, 9]  # uncommitted records are re-delivered
        assert await second.getmany(1.0) == []
    finally:
        await second.stop()


async def test_pause_stops_delivery_and_resume_restarts_it(kafka_bootstrap: str) -> None:
    topic = new_topic("pause")
    await ensure_topics(kafka_bootstrap, {topic: TopicSpec(partitions=2)})
    await produce(kafka_bootstrap, topic, 4)
    source = KafkaSource(kafka_bootstrap, [topic], new_topic("group"), **FAST)
    await source.start()
    try:
        assert len(await drain(source, 4)) == 4
        source.pause()
        await produce(kafka_bootstrap, topic, 10, start=4)
        assert await source.getmany(2.0) == []
        assert await source.getmany(0.5) == []
        source.resume()
        rest = await drain(source, 6)
        assert sorted(r.value for r in rest) == sorted(f"v{i}".encode() for i in range(4, 10))
    finally:
        await source.stop()


async def test_lag_is_positive_after_producing_without_consuming(kafka_bootstrap: str) -> None:
    topic = new_topic("lag")
    await ensure_topics(kafka_bootstrap, {topic: TopicSpec(partitions=1)})
    await produce(kafka_bootstrap, topic, 7)
    source = KafkaSource(kafka_bootstrap, [topic], new_topic("group"), max_poll_records=3, **FAST)
    assert source.lag() == {}  # not started: empty, no error
    await source.start()
    try:
        # the fetcher learns the high watermark in the background, without getmany()
        assert await wait_until(lambda: (topic, 0) in source.lag())
        assert source.lag() == {(topic, 0): 7}
        assert [r.offset for r in await drain(source, 3)] == [0, 1, 2]
        assert source.lag() == {(topic, 0): 4}
        assert await source.end_offsets() == {(topic, 0): 7}
    finally:
        await source.stop()


async def test_lag_of_a_paused_partition_follows_the_end_offsets(kafka_bootstrap: str) -> None:
    """A paused partition is not fetched, so only an end-offsets request shows what arrived since."""
    topic = new_topic("lagpause")
    await ensure_topics(kafka_bootstrap, {topic: TopicSpec(partitions=1)})
    await produce(kafka_bootstrap, topic, 5)
    source = KafkaSource(kafka_bootstrap, [topic], new_topic("group"), max_poll_records=5, **FAST)
    await source.start()
    try:
        assert len(await drain(source, 5)) == 5
        source.pause()
        await produce(kafka_bootstrap, topic, 25, start=5)
        await asyncio.sleep(1.0)
        assert source.lag().get((topic, 0), 0) < 20  # the fetch metadata has not seen the new records
        assert await source.end_offsets() == {(topic, 0): 25}
        assert source.lag() == {(topic, 0): 20}
    finally:
        await source.stop()


async def test_no_group_reads_every_partition_from_the_beginning(kafka_bootstrap: str) -> None:
    topic = new_topic("reference")
    await ensure_topics(kafka_bootstrap, {topic: TopicSpec(partitions=2)})
    await produce(kafka_bootstrap, topic, 12)
    source = KafkaSource(kafka_bootstrap, [topic], None, **FAST)
    await source.start()
    try:
        assert source.assignment() == {(topic, 0), (topic, 1)}
        ends = await source.end_offsets()
        assert set(ends) == {(topic, 0), (topic, 1)} and sum(ends.values()) == 12
        records = await drain(source, 12)
        assert sorted(r.value for r in records) == sorted(f"v{i}".encode() for i in range(12))
        for p in (0, 1):
            assert [r.offset for r in records if r.partition == p] == list(range(ends[(topic, p)]))
        await source.commit({(topic, 0): 3})  # no group: a no-op
        await source.seek_to_beginning()
        assert len(await drain(source, 12)) == 12
    finally:
        await source.stop()


async def test_on_revoke_is_awaited_and_may_commit(kafka_bootstrap: str) -> None:
    topic, group = new_topic("revoke"), new_topic("group")
    await ensure_topics(kafka_bootstrap, {topic: TopicSpec(partitions=2)})
    await produce(kafka_bootstrap, topic, 8)
    revoked: list[set[tuple[str, int]]] = []
    first: KafkaSource

    async def on_revoke(partitions: set[tuple[str, int]]) -> None:
        revoked.append(partitions)
        await first.commit(dict.fromkeys(partitions, 1))  # what the daemon does: flush & commit

    first = KafkaSource(kafka_bootstrap, [topic], group, on_revoke=on_revoke, **FAST)
    await first.start()
    second = KafkaSource(kafka_bootstrap, [topic], group, **FAST)
    try:
        assert first.assignment() == {(topic, 0), (topic, 1)}
        join = asyncio.create_task(second.start())  # joining rebalances the group
        deadline = time.monotonic() + 30
        while not join.done() and time.monotonic() < deadline:
            await first.getmany(0.2)  # the daemon keeps polling meanwhile
        await join
        assert revoked and revoked[0] == {(topic, 0), (topic, 1)}
        owned = second.assignment()
        assert len(owned) == 1
        assert await wait_until(lambda: first.assignment() == {(topic, 0), (topic, 1)} - owned)
        records = await drain(second, 1)
        assert records[0].offset == 1  # starts after the offset committed in on_revoke
    finally:
        await second.stop()
        await first.stop()


@pytest.mark.slow
async def test_partitions_assigned_while_paused_stay_paused(kafka_bootstrap: str) -> None:
    topic, group = new_topic("repause"), new_topic("group")
    await ensure_topics(kafka_bootstrap, {topic: TopicSpec(partitions=2)})
    first = KafkaSource(kafka_bootstrap, [topic], group, **FAST)
    await first.start()
    first.pause()
    second = KafkaSource(kafka_bootstrap, [topic], group, **FAST)
    try:
        join = asyncio.create_task(second.start())
        while not join.done():
            assert await first.getmany(0.2) == []
        await join
        await second.stop()  # leaving hands both partitions back to the paused source
        assert await wait_until(lambda: len(first.assignment()) == 2, 30)
        await produce(kafka_bootstrap, topic, 6)
        assert await first.getmany(2.0) == []
        first.resume()
        assert len(await drain(first, 6)) == 6
    finally:
        await second.stop()
        await first.stop()


async def test_ensure_topics_creates_a_compacted_topic_idempotently(kafka_bootstrap: str) -> None:
    topic, dlq = new_topic("coeffs"), new_topic("dlq")
    specs = {
        topic: TopicSpec(partitions=3, config={"cleanup.policy": "compact"}),
        dlq: TopicSpec(partitions=1),
    }
    await ensure_topics(kafka_bootstrap, specs)
    await ensure_topics(kafka_bootstrap, specs)  # already there: no error
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})]
        )
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    [(_code, _message, _type, name, entries)] = response.resources
    assert name == topic
    assert {e[0]: e[1] for e in entries}["cleanup.policy"] == "compact"
    assert len(described[0]["partitions"]) == 3

    with pytest.raises(TransportError, match="InvalidReplicationFactor"):
        await ensure_topics(kafka_bootstrap, {new_topic("bad"): TopicSpec(replication=5)})


async def test_unreachable_bootstrap_raises_transport_error_quickly() -> None:
    start = time.monotonic()
    for endpoint in (
        KafkaSource("127.0.0.1:1", ["t"], "g", request_timeout_ms=2000),
        KafkaSource("127.0.0.1:1", ["t"], None, request_timeout_ms=2000),
        KafkaSink("127.0.0.1:1", request_timeout_ms=2000),
    ):
        with pytest.raises(TransportError, match=r"127\.0\.0\.1:1"):
            await asyncio.wait_for(endpoint.start(), 10)
    with pytest.raises(TransportError, match=r"127\.0\.0\.1:1"):
        await asyncio.wait_for(ensure_topics("127.0.0.1:1", {"t": TopicSpec()}, timeout_ms=2000), 10)
    assert time.monotonic() - start < 10
    with pytest.raises(TransportError, match="not started"):
        await KafkaSink("127.0.0.1:1").send(Outgoing("t", b"x"))
