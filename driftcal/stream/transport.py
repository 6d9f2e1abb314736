"""The broker layer's interface: what the daemon needs from a message transport.

The daemon never touches aiokafka directly. It reads :class:`Record` objects from a :class:`Source`
and writes through a :class:`Sink`; :mod:`driftcal.stream.memory` implements both in process (demo,
unit tests) and :mod:`driftcal.stream.kafka` with aiokafka (production, integration tests).

Delivery contract (at-least-once): a source hands out records in offset order per partition; the
daemon calls :meth:`Source.commit` with the *next* offset to read per partition only after the
records before it are stored (reservoir or window) or dead-lettered. After a restart the source
resumes from the last committed offsets.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from driftcal.errors import DriftcalError

#: A partition of a topic.
TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Record:
    """One message as received."""

    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def source(self) -> str:
        """``topic/partition/offset``, the ``driftcal-source`` dead-letter header."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


@dataclass
class Outgoing:
    """One message to send."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Source(abc.ABC):
    """Records from one or more topics, with pause/resume for backpressure and explicit commits."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect (may raise :class:`TransportError` when the broker cannot be reached)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect; pending commits are not made."""

    @abc.abstractmethod
    async def getmany(self, timeout_s: float, max_records: int | None = None) -> list[Record]:
        """The next records (possibly none after ``timeout_s``) of the partitions that are not paused."""

    @abc.abstractmethod
    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` (next offset to read, per partition)."""

    @abc.abstractmethod
    def pause(self) -> None:
        """Stop fetching from every assigned partition (backpressure)."""

    @abc.abstractmethod
    def resume(self) -> None:
        """Fetch again after :meth:`pause`."""

    @abc.abstractmethod
    def lag(self) -> dict[TopicPartition, int]:
        """Messages between the end of each assigned partition and the consumer's position."""

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """End offset of each assigned partition (used to read a reference topic to its end)."""
        return {}


class Sink(abc.ABC):
    """Sends messages (coefficient documents, dead letters)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Flush and disconnect."""

    @abc.abstractmethod
    async def send(self, message: Outgoing) -> None:
        """Send one message and wait until the broker acknowledged it."""

    async def send_all(self, messages: Sequence[Outgoing]) -> None:
        """Send several messages (in order)."""
        for message in messages:
            await self.send(message)

    #: True when :meth:`send_and_commit` is atomic (messages and consumer offsets in one transaction).
    transactional: bool = False

    async def send_and_commit(
        self, messages: Sequence[Outgoing], offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Send ``messages`` and commit ``offsets`` of the consumer group atomically (transactional sinks)."""
        raise TransportError(f"{type(self).__name__} has no transactions")


class TransportError(DriftcalError):
    """The broker cannot be reached or refused an operation."""
