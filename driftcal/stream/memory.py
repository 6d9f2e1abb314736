"""An in-process broker with the :class:`~driftcal.stream.transport.Source`/``Sink`` interface.

It keeps topics as lists of partitions, committed offsets per consumer group, and wakes waiting
consumers when messages arrive. The embedded demo (``driftcal demo``) and the unit tests run the daemon
on it; integration tests use the real Kafka transport instead.

>>> import asyncio
>>> async def demo() -> list[bytes]:
...     broker = MemoryBroker()
...     sink, source = MemorySink(broker), MemorySource(broker, ["events"], group_id="g")
...     await sink.send(Outgoing("events", b"hello"))
...     await source.start()
...     return [r.value for r in await source.getmany(0.1)]
>>> asyncio.run(demo())
[b'hello']
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence

from driftcal.stream.transport import Outgoing, Record, Sink, Source, TopicPartition, TransportError


class MemoryBroker:
    """Topics, partitions and committed offsets, in memory. Keys hash onto partitions like Kafka's."""

    def __init__(self, partitions: int = 1) -> None:
        self.default_partitions = partitions
        self.topics: dict[str, list[list[Record]]] = {}
        self.committed: dict[tuple[str, TopicPartition], int] = {}
        self._arrived = asyncio.Event()
        self.available = True  # set False to simulate an outage

    def create_topic(self, name: str, partitions: int | None = None) -> None:
        if name not in self.topics:
            self.topics[name] = [[] for _ in range(partitions or self.default_partitions)]

    def append(self, message: Outgoing) -> Record:
        if not self.available:
            raise TransportError("in-memory broker unavailable")
        self.create_topic(message.topic)
        parts = self.topics[message.topic]
        partition = 0 if message.key is None else sum(message.key) % len(parts)
        log = parts[partition]
        record = Record(
            topic=message.topic,
            partition=partition,
            offset=len(log),
            value=bytes(message.value),
            key=message.key,
            timestamp_ms=int(time.time() * 1000),
            headers=tuple(message.headers),
        )
        log.append(record)
        self._arrived.set()
        return record

    def messages(self, topic: str) -> list[Record]:
        """Every record of ``topic`` (all partitions, partition by partition)."""
        return [r for part in self.topics.get(topic, []) for r in part]

    async def wait(self, timeout_s: float) -> None:
        self._arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), timeout_s)


class MemorySource(Source):
    """A consumer of :class:`MemoryBroker` topics; ``group_id=None`` reads from the start, uncommitted."""

    def __init__(self, broker: MemoryBroker, topics: Sequence[str], group_id: str | None = None) -> None:
        self.broker = broker
        self.topics = list(topics)
        self.group_id = group_id
        self.position: dict[TopicPartition, int] = {}
        self.paused = False
        self.started = False

    def _assignment(self) -> list[TopicPartition]:
        for topic in self.topics:
            self.broker.create_topic(topic)
        return [(t, p) for t in self.topics for p in range(len(self.broker.topics[t]))]

    async def start(self) -> None:
        if not self.broker.available:
            raise TransportError("in-memory broker unavailable")
        self.started = True
        for tp in self._assignment():
            self.position.setdefault(tp, self.broker.committed.get((self.group_id or "", tp), 0))

    async def stop(self) -> None:
        self.started = False
        self.position.clear()  # like a Kafka consumer, a restart resumes from the committed offsets

    def _ready(self, max_records: int | None) -> list[Record]:
        out: list[Record] = []
        for tp in self._assignment():
            pos = self.position.setdefault(tp, self.broker.committed.get((self.group_id or "", tp), 0))
            log = self.broker.topics[tp[0]][tp[1]]
            take = log[pos : pos + (max_records - len(out) if max_records else len(log))]
            out.extend(take)
            self.position[tp] = pos + len(take)
            if max_records and len(out) >= max_records:
                break
        return out

    async def getmany(self, timeout_s: float, max_records: int | None = None) -> list[Record]:
        if not self.started:
            raise TransportError("source not started")
        if self.paused or not self.broker.available:
            await asyncio.sleep(min(timeout_s, 0.05))
            return []
        records = self._ready(max_records)
        if not records and timeout_s > 0:
            await self.broker.wait(timeout_s)
            records = [] if self.paused else self._ready(max_records)
        return records

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not self.broker.available:
            raise TransportError("in-memory broker unavailable")
        if self.group_id is None:
            return
        for tp, offset in offsets.items():
            self.broker.committed[(self.group_id, tp)] = int(offset)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def lag(self) -> dict[TopicPartition, int]:
        return {tp: len(self.broker.topics[tp[0]][tp[1]]) - pos for tp, pos in self.position.items()}

    async def end_offsets(self) -> dict[TopicPartition, int]:
        if not self.broker.available:
            raise TransportError("in-memory broker unavailable")
        return {tp: len(self.broker.topics[tp[0]][tp[1]]) for tp in self._assignment()}


class MemorySink(Sink):
    """A producer into a :class:`MemoryBroker`; with ``group_id`` it is transactional for that group."""

    def __init__(self, broker: MemoryBroker, *, group_id: str | None = None) -> None:
        self.broker = broker
        self.group_id = group_id
        self.transactional = group_id is not None

    async def send_and_commit(
        self, messages: Sequence[Outgoing], offsets: Mapping[TopicPartition, int]
    ) -> None:
        if not self.transactional:
            raise TransportError("MemorySink without a group_id has no transactions")
        if not self.broker.available:
            raise TransportError("in-memory broker unavailable")
        for message in messages:
            self.broker.append(message)
        for tp, offset in offsets.items():
            self.broker.committed[(self.group_id, tp)] = int(offset)

    async def start(self) -> None:
        if not self.broker.available:
            raise TransportError("in-memory broker unavailable")

    async def stop(self) -> None:
        return None

    async def send(self, message: Outgoing) -> None:
        self.broker.append(message)
