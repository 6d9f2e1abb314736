"""The in-process broker: delivery, partitions, commits, at-least-once, pause/resume, lag, outages."""

from __future__ import annotations

import asyncio
import time

import pytest

from driftcal.stream.memory import MemoryBroker, MemorySink, MemorySource
from driftcal.stream.transport import Outgoing, TransportError


async def _fill(broker: MemoryBroker, topic: str, n: int, key: bytes | None = None) -> None:
    sink = MemorySink(broker)
    await sink.start()
    await sink.send_all([Outgoing(topic, f"m{i}".encode(), key=key) for i in range(n)])


@pytest.mark.asyncio
async def test_send_and_receive_keep_value_key_headers_and_order() -> None:
    broker = MemoryBroker()
    sink = MemorySink(broker)
    await sink.start()
    await sink.send(Outgoing("t", b"a", key=b"k", headers=[("h", b"1")]))
    await sink.send(Outgoing("t", bytearray(b"b")))
    source = MemorySource(broker, ["t"], group_id="g")
    await source.start()
    records = await source.getmany(0.1)
    assert [r.value for r in records] == [b"a", b"b"]
    assert [r.offset for r in records] == [0, 1]
    first = records[0]
    assert (first.topic, first.partition, first.key, first.headers) == ("t", 0, b"k", (("h", b"1"),))
    assert first.source == "t/0/0" and first.tp == ("t", 0)
    assert isinstance(records[1].value, bytes) and first.timestamp_ms is not None
    assert await source.getmany(0) == []  # nothing new
    await source.stop()


@pytest.mark.asyncio
async def test_getmany_needs_start_and_honours_max_records() -> None:
    broker = MemoryBroker()
    await _fill(broker, "t", 5)
    source = MemorySource(broker, ["t"], group_id="g")
    with pytest.raises(TransportError):
        await source.getmany(0)
    await source.start()
    assert [r.offset for r in await source.getmany(0, max_records=2)] == [0, 1]
    assert [r.offset for r in await source.getmany(0, max_records=2)] == [2, 3]
    assert [r.offset for r in await source.getmany(0, max_records=2)] == [4]


@pytest.mark.asyncio
async def test_keys_hash_onto_partitions() -> None:
    broker = MemoryBroker(partitions=3)
    sink = MemorySink(broker)
    keys = [b"calo/0", b"calo/1", b"calo/2", b"tracker/0", b"a", b"b", b"c"]
    for round_ in range(3):
        for key in keys:
            await sink.send(Outgoing("t", key + b"#%d" % round_, key=key))
    assert len(broker.topics["t"]) == 3
    where: dict[bytes, set[int]] = {}
    for partition, log in enumerate(broker.topics["t"]):
        assert [r.offset for r in log] == list(range(len(log)))  # offsets count per partition
        for record in log:
            assert record.partition == partition
            where.setdefault(record.key, set()).add(partition)
    assert all(len(parts) == 1 for parts in where.values())  # one key, one partition
    assert len({p for parts in where.values() for p in parts}) > 1  # the keys spread over partitions
    # per key, order is kept
    for key in keys:
        values = [r.value for r in broker.messages("t") if r.key == key]
        assert values == [key + b"#%d" % i for i in range(3)]
    # a source reads every partition
    source = MemorySource(broker, ["t"], group_id="g")
    await source.start()
    assert len(await source.getmany(0)) == 3 * len(keys)
    assert set(source.lag()) == {("t", 0), ("t", 1), ("t", 2)}


@pytest.mark.asyncio
async def test_a_new_source_in_the_group_resumes_after_the_committed_offset() -> None:
    broker = MemoryBroker()
    await _fill(broker, "t", 5)
    first = MemorySource(broker, ["t"], group_id="g")
    await first.start()
    records = await first.getmany(0, max_records=3)
    await first.commit({("t", 0): records[-1].offset + 1})
    await first.stop()
    assert broker.committed[("g", ("t", 0))] == 3
    second = MemorySource(broker, ["t"], group_id="g")
    await second.start()
    assert [r.value for r in await second.getmany(0)] == [b"m3", b"m4"]
    # another group starts from the beginning
    other = MemorySource(broker, ["t"], group_id="other")
    await other.start()
    assert len(await other.getmany(0)) == 5


@pytest.mark.asyncio
async def test_uncommitted_records_are_delivered_again_to_a_new_source() -> None:
    broker = MemoryBroker()
    await _fill(broker, "t", 4)
    first = MemorySource(broker, ["t"], group_id="g")
    await first.start()
    got = await first.getmany(0)
    assert len(got) == 4
    await first.commit({("t", 0): 1})  # only the first one was stored
    await first.stop()
    second = MemorySource(broker, ["t"], group_id="g")
    await second.start()
    assert [r.offset for r in await second.getmany(0)] == [1, 2, 3]  # at-least-once


@pytest.mark.asyncio
async def test_restarting_a_source_resumes_from_the_committed_offset() -> None:
    broker = MemoryBroker()
    await _fill(broker, "t", 4)
    source = MemorySource(broker, ["t"], group_id="g")
    await source.start()
    assert len(await source.getmany(0)) == 4
    await source.commit({("t", 0): 2})
    await source.stop()
    await source.start()  # the same object, as after a reconnect: uncommitted records come again
    assert [r.offset for r in await source.getmany(0)] == [2, 3]


@pytest.mark.asyncio
async def test_without_a_group_commits_are_not_kept() -> None:
    broker = MemoryBroker()
    await _fill(broker, "t", 2)
    source = MemorySource(broker, ["t"])
    await source.start()
    await source.getmany(0)
    await source.commit({("t", 0): 2})
    assert broker.committed == {}
    again = MemorySource(broker, ["t"])
    await again.start()
    assert len(await again.getmany(0)) == 2


@pytest.mark.asyncio
async def test_pause_returns_nothing_and_resume_delivers() -> None:
    broker = MemoryBroker()
    await _fill(broker, "t", 3)
    source = MemorySource(broker, ["t"], group_id="g")
    await source.start()
    source.pause()
    assert await source.getmany(0.2) == []
    assert source.lag() == {("t", 0): 3}
    source.resume()
    assert len(await source.getmany(0.2)) == 3


@pytest.mark.asyncio
async def test_lag_counts_messages_after_the_position() -> None:
    broker = MemoryBroker()
    await _fill(broker, "t", 6)
    source = MemorySource(broker, ["t"], group_id="g")
    await source.start()
    assert source.lag() == {("t", 0): 6}
    await source.getmany(0, max_records=4)
    assert source.lag() == {("t", 0): 2}
    await _fill(broker, "t", 3)
    assert source.lag() == {("t", 0): 5}
    assert await source.end_offsets() == {("t", 0): 9}
    await source.getmany(0)
    assert source.lag() == {("t", 0): 0}


@pytest.mark.asyncio
async def test_an_unavailable_broker_raises_transport_errors() -> None:
    broker = MemoryBroker()
    await _fill(broker, "t", 2)
    sink = MemorySink(broker)
    source = MemorySource(broker, ["t"], group_id="g")
    broker.available = False
    with pytest.raises(TransportError):
        await sink.start()
    with pytest.raises(TransportError):
        await sink.send(Outgoing("t", b"x"))
    with pytest.raises(TransportError):
        await source.start()
    broker.available = True
    await source.start()
    broker.available = False
    assert await source.getmany(0.05) == []  # polling during an outage gives nothing, no error
    with pytest.raises(TransportError):
        await source.commit({("t", 0): 1})
    assert broker.committed == {}
    assert len(broker.messages("t")) == 2  # the failed send did not append
    broker.available = True
    assert len(await source.getmany(0)) == 2
    await source.commit({("t", 0): 2})
    assert broker.committed == {("g", ("t", 0)): 2}


@pytest.mark.asyncio
async def test_getmany_waits_for_the_timeout_when_nothing_arrives() -> None:
    broker = MemoryBroker()
    source = MemorySource(broker, ["t"], group_id="g")
    await source.start()
    start = time.monotonic()
    assert await source.getmany(0.2) == []
    assert 0.15 <= time.monotonic() - start < 1.0


@pytest.mark.asyncio
async def test_getmany_wakes_when_a_message_arrives() -> None:
    broker = MemoryBroker()
    source = MemorySource(broker, ["t"], group_id="g")
    await source.start()

    async def produce_later() -> None:
        await asyncio.sleep(0.1)
        await MemorySink(broker).send(Outgoing("t", b"late"))

    producer = asyncio.create_task(produce_later())
    start = time.monotonic()
    records = await source.getmany(5.0)
    elapsed = time.monotonic() - start
    await producer
    assert [r.value for r in records] == [b"late"]
    assert 0.05 <= elapsed < 2.0  # woke on arrival, long before the 5 s timeout
