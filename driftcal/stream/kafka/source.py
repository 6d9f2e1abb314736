""":class:`KafkaSource`: records from Kafka through an :class:`aiokafka.AIOKafkaConsumer`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka import TopicPartition as KafkaTP
from aiokafka import errors as ke

from driftcal.stream.kafka._errors import _CONNECT_ERRORS, _describe
from driftcal.stream.transport import Record, Source, TopicPartition, TransportError

log = logging.getLogger(__name__)

#: Fetch errors that retrying cannot fix: :meth:`KafkaSource.getmany` raises them as TransportError.
_FATAL: tuple[type[BaseException], ...] = (
    *(ke.TopicAuthorizationFailedError, ke.GroupAuthorizationFailedError, ke.ClusterAuthorizationFailedError),
    *(ke.AuthenticationFailedError, ke.SaslAuthenticationFailed, ke.UnsupportedVersionError),
    *(ke.OffsetOutOfRangeError, ke.RecordTooLargeError, ke.ConsumerStoppedError, ke.IllegalOperation),
)


def _record(m: ConsumerRecord[bytes, bytes]) -> Record:
    headers = tuple((str(k), bytes(v or b"")) for k, v in (m.headers or ()))
    return Record(m.topic, m.partition, m.offset, m.value or b"", m.key, m.timestamp, headers)


class _Listener(ConsumerRebalanceListener):
    """Forwards revocations to the daemon and keeps new assignments paused while paused."""

    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    async def on_partitions_revoked(self, revoked: set[KafkaTP]) -> None:
        await self._source._on_revoked({(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[KafkaTP]) -> None:
        log.info("assigned partitions: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))
        self._source._apply_pause()


class KafkaSource(Source):
    """Records of ``topics`` through an :class:`aiokafka.AIOKafkaConsumer` (no auto-commit).

    ``on_revoke`` is awaited with the revoked partitions before a rebalance takes them away (the
    daemon flushes and commits there; it must not wait on a lock that the poll loop holds, since
    aiokafka runs the callback from its coordinator task). It is not called on :meth:`stop`.
    ``start_timeout_s`` bounds :meth:`start` (bootstrap, metadata, first group assignment); by
    default ``(request_timeout_ms + session_timeout_ms) / 1000``. ``security`` holds TLS/SASL client
    options (:func:`~driftcal.stream.kafka.security.client_security`). ``group_instance_id`` makes the
    membership static (KIP-345): a restart with the same id takes its partitions back without waiting
    for the old member's session to expire.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str | None,
        *,
        client_id: str = "driftcal",
        max_poll_records: int = 100,
        request_timeout_ms: int = 30000,
        session_timeout_ms: int = 30000,
        auto_offset_reset: str = "earliest",
        isolation_level: str = "read_uncommitted",
        on_revoke: Callable[[set[TopicPartition]], Awaitable[None]] | None = None,
        start_timeout_s: float | None = None,
        security: Mapping[str, Any] | None = None,
        group_instance_id: str | None = None,
    ) -> None:
        if not topics:
            raise ValueError("KafkaSource needs at least one topic")
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.group_id = group_id
        self._on_revoke = on_revoke
        self._request_timeout_s = request_timeout_ms / 1000
        self._start_timeout_s = start_timeout_s or (request_timeout_ms + session_timeout_ms) / 1000
        self._read_committed = isolation_level == "read_committed"
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "group_id": group_id,
            "enable_auto_commit": False,
            "max_poll_records": max_poll_records,
            "request_timeout_ms": request_timeout_ms,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": min(3000, session_timeout_ms // 3),
            "auto_offset_reset": auto_offset_reset,
            "isolation_level": isolation_level,
            **({"group_instance_id": group_instance_id} if group_instance_id else {}),
            **(security or {}),
        }
        self._consumer: AIOKafkaConsumer | None = None
        self._paused = False
        self._stopping = False
        self._handed_out: dict[TopicPartition, int] = {}  # next offset after the last record returned
        self._ends: dict[TopicPartition, int] = {}  # from the last end_offsets() answer

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, join the group (or assign every partition) and wait for the first assignment."""
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(**self._options)
        if self.group_id is None:
            consumer.subscribe(self.topics)  # no group: aiokafka assigns all partitions itself
        else:
            consumer.subscribe(self.topics, listener=_Listener(self))
        self._stopping = False
        try:
            await asyncio.wait_for(consumer.start(), self._start_timeout_s)
        except (*_CONNECT_ERRORS, *_FATAL) as err:
            await consumer.stop()
            reason = f"timed out after {self._start_timeout_s:g} s" if isinstance(err, TimeoutError) else ""
            raise TransportError(
                f"cannot consume {','.join(self.topics)} from Kafka at {self.bootstrap}: "
                f"{reason or _describe(err)}"
            ) from err
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._apply_pause()

    async def stop(self) -> None:
        """Leave the group and disconnect, without committing (``on_revoke`` is not called)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            self._stopping = True
            await consumer.stop()
        self._handed_out.clear()
        self._ends.clear()

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise TransportError("KafkaSource is not started")
        return self._consumer

    # -- consuming --------------------------------------------------------------------------------

    async def getmany(self, timeout_s: float, max_records: int | None = None) -> list[Record]:
        """Up to ``max_records`` records (offset order per partition); ``[]`` on transient errors."""
        consumer = self._require()
        if self._paused:
            self._apply_pause()  # partitions added without a rebalance callback (no-group mode)
        try:
            batches = await consumer.getmany(
                timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records
            )
        except _FATAL as err:
            raise TransportError(f"fetching from Kafka at {self.bootstrap} failed: {_describe(err)}") from err
        except _CONNECT_ERRORS as err:
            log.warning("transient Kafka fetch error (retrying): %s", _describe(err))
            await asyncio.sleep(min(max(timeout_s, 0.05), 1.0))  # no hot loop while the broker is away
            return []
        records: list[Record] = []
        for tp, messages in batches.items():
            records += [_record(m) for m in messages]
            if messages:
                self._handed_out[(tp.topic, tp.partition)] = messages[-1].offset + 1
        return records

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the next offsets to read; no-op without a group.

        Partitions that are no longer assigned (taken by a rebalance) are skipped with a log line:
        their records will be re-delivered to the new owner (at-least-once). Any broker error, or
        no answer within ``request_timeout_ms``, raises :class:`TransportError`.
        """
        if self.group_id is None or not offsets:
            return
        consumer = self._require()
        assigned = consumer.assignment()
        wanted = {KafkaTP(t, p): int(o) for (t, p), o in offsets.items()}
        kept = {tp: o for tp, o in wanted.items() if tp in assigned}
        if len(kept) < len(wanted):
            log.info("not committing unassigned partitions %s", sorted(set(wanted) - set(kept)))
        if not kept:
            return
        try:
            await asyncio.wait_for(consumer.commit(kept), self._request_timeout_s)
        except TimeoutError as err:
            raise TransportError(
                f"commit to Kafka at {self.bootstrap} timed out after {self._request_timeout_s:g} s"
            ) from err
        except (ke.KafkaError, ke.IllegalOperation, ke.ConsumerStoppedError) as err:
            raise TransportError(f"commit to Kafka at {self.bootstrap} failed: {_describe(err)}") from err

    # -- flow control and monitoring ---------------------------------------------------------------

    def pause(self) -> None:
        """Stop fetching from every assigned partition, including ones assigned later."""
        self._paused = True
        self._apply_pause()

    def resume(self) -> None:
        """Fetch again from every assigned partition."""
        self._paused = False
        consumer = self._consumer
        if consumer is not None:
            try:
                consumer.resume(*consumer.assignment())
            except ke.KafkaError as err:  # assignment changed under us; the next rebalance settles it
                log.debug("resume: %s", _describe(err))

    def _apply_pause(self) -> None:
        consumer = self._consumer
        if not self._paused or consumer is None:
            return
        try:
            consumer.pause(*(consumer.assignment() - consumer.paused()))
        except ke.KafkaError as err:
            log.debug("pause: %s", _describe(err))

    def lag(self) -> dict[TopicPartition, int]:
        """``end - position`` per assigned partition from cached fetch metadata (never blocks or raises).

        ``end`` is the high watermark (the last stable offset with ``read_committed``) from the last fetch
        response, or the last :meth:`end_offsets` answer if that is further on (a paused partition, or one
        with prefetched records, is not fetched); partitions whose end is not known yet are left out.
        """
        consumer = self._consumer
        lags: dict[TopicPartition, int] = {}
        if consumer is None:
            return lags
        try:
            for tp in consumer.assignment():
                end = consumer.last_stable_offset(tp) if self._read_committed else None
                if end is None or end < 0:
                    end = consumer.highwater(tp)
                asked = self._ends.get((tp.topic, tp.partition))
                if asked is not None and (end is None or asked > end):
                    end = asked
                position = self._cached_position(consumer, tp)
                if end is not None and position is not None:
                    lags[(tp.topic, tp.partition)] = max(0, end - position)
        except Exception as err:  # a monitoring call must never take the daemon down
            log.debug("lag: %s", _describe(err))
        return lags

    def _cached_position(self, consumer: AIOKafkaConsumer, tp: KafkaTP) -> int | None:
        """The consumer's position without awaiting ``consumer.position`` (it may block)."""
        try:  # aiokafka keeps it where ``highwater()`` reads from; no public sync accessor exists
            state = consumer._subscription.subscription.assignment.state_value(tp)
            if state is not None and state.has_valid_position:
                return int(state.position)
        except Exception:
            pass
        return self._handed_out.get((tp.topic, tp.partition))

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """End offset (offset of the next message) of each assigned partition."""
        consumer = self._require()
        assigned = list(consumer.assignment())
        if not assigned:
            return {}
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(assigned), self._request_timeout_s * 2)
        except (*_CONNECT_ERRORS, ke.IllegalOperation) as err:
            raise TransportError(f"end offsets from Kafka at {self.bootstrap}: {_describe(err)}") from err
        answer = {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}
        self._ends.update(answer)
        return answer

    async def seek_to_beginning(self) -> None:
        """Read every assigned partition again from its first available offset."""
        consumer = self._require()
        assigned = consumer.assignment()
        if assigned:
            await consumer.seek_to_beginning(*assigned)
        self._handed_out.clear()

    def assignment(self) -> set[TopicPartition]:
        """The partitions currently assigned to this source."""
        consumer = self._consumer
        return set() if consumer is None else {(tp.topic, tp.partition) for tp in consumer.assignment()}

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self._handed_out.pop(tp, None)
            self._ends.pop(tp, None)
        if revoked:
            log.info("revoking partitions: %s", sorted(f"{t}/{p}" for t, p in revoked))
        if self._on_revoke is not None and revoked and not self._stopping:
            await self._on_revoke(revoked)
