"""The consuming side of the daemon: poll a source, decode, dead-letter bad messages, queue the rest.

:class:`Ingest` runs in its own task so the poll loop is never held by an update (aiokafka #848). It
puts one :class:`Item` per record on a bounded :class:`asyncio.Queue`; when the queue is full it
pauses the source's partitions until there is room again (backpressure: nothing is dropped).

A rejected record is sent to the dead-letter topic with its original bytes and the headers
``driftcal-error`` (the reason and message) and ``driftcal-source`` (``topic/partition/offset``), the
counter ``driftcal_messages_rejected_total{reason}`` rises, and an :class:`Item` without events still
goes through the queue. That way offsets are committed strictly in order, after the events before them
were stored (at-least-once): see :meth:`Item.offsets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import numpy as np

from driftcal.obs.health import Health
from driftcal.obs.metrics import Metrics
from driftcal.stream.codec import CodecError, DetectorSpec, EventBatch, decode
from driftcal.stream.transport import Outgoing, Record, Sink, Source, TopicPartition, TransportError

log = logging.getLogger(__name__)

ERROR_HEADER = "driftcal-error"
SOURCE_HEADER = "driftcal-source"


@dataclass
class Item:
    """One consumed record: its decoded events (None when dead-lettered) and where it came from."""

    record: Record
    batch: EventBatch | None
    events: np.ndarray | None

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        """The offset to commit once this item is stored: the next one to read."""
        return {self.record.tp: self.record.offset + 1}


def dead_letter(record: Record, topic: str, error: CodecError) -> Outgoing:
    """The dead-letter message for ``record``: original bytes, key and headers plus the driftcal headers."""
    headers = [(k, v) for k, v in record.headers if k not in (ERROR_HEADER, SOURCE_HEADER)]
    headers += [(ERROR_HEADER, str(error).encode()[:1024]), (SOURCE_HEADER, record.source.encode())]
    return Outgoing(topic=topic, value=record.value, key=record.key, headers=headers)


class Ingest:
    """Consume ``source`` into ``queue``.

    Parameters
    ----------
    source : the transport to read.
    spec : what a batch must match (cells or planes, noise floor, detector name).
    queue : bounded queue of :class:`Item`.
    dlq : sink and topic for rejected records.
    metrics, health : observability hooks.
    kind : ``events`` or ``reference`` (for logs).
    """

    def __init__(
        self,
        source: Source,
        spec: DetectorSpec,
        queue: asyncio.Queue[Item],
        *,
        dlq: Sink,
        dlq_topic: str,
        metrics: Metrics,
        health: Health,
        kind: str = "events",
        poll_timeout_s: float = 0.5,
        max_records: int = 100,
    ) -> None:
        self.source = source
        self.spec = spec
        self.queue = queue
        self.dlq = dlq
        self.dlq_topic = dlq_topic
        self.metrics = metrics
        self.health = health
        self.kind = kind
        self.poll_timeout_s = poll_timeout_s
        self.max_records = max_records
        self.paused = False
        self.stopping = asyncio.Event()
        self.rejected = 0
        self.probe_every_s = 5.0
        self.probe_timeout_s = 5.0
        self.lag_every_s = 2.0
        self._last_probe = float("-inf")

    def decode(self, record: Record) -> Item | CodecError:
        """Decode one record into an :class:`Item`, or the :class:`CodecError` that rejects it."""
        cells = self.spec.cells if self.spec.cells is not None else (self.spec.planes or 0,)
        try:
            batch = decode(record.value, self.spec)
            return Item(record, batch, batch.dense(tuple(cells)))
        except CodecError as exc:
            return exc
        except Exception as exc:  # hostile input that trips the decoder must not kill the ingest task
            return CodecError("bad_header", f"undecodable message ({type(exc).__name__}: {exc})")

    async def _reject(self, record: Record, error: CodecError) -> Item:
        self.rejected += 1
        self.metrics.rejected(error.reason)
        log.warning("dead-lettering %s: %s", record.source, error)
        while True:  # the record's offset must not be committed before its dead letter is written
            try:
                await self.dlq.send(dead_letter(record, self.dlq_topic, error))
                break
            except TransportError as exc:
                if self.stopping.is_set():
                    raise
                log.warning("dead-letter send failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
        return Item(record, None, None)

    async def _put(self, item: Item) -> None:
        if self.queue.full() and not self.paused:
            self.source.pause()
            self.paused = True
            log.info("%s queue full (%d batches): partitions paused", self.kind, self.queue.maxsize)
        await self.queue.put(item)
        self.metrics.set_queue(self.queue.qsize())

    def _maybe_resume(self) -> None:
        if self.paused and self.queue.qsize() < max(1, self.queue.maxsize // 2):
            self.source.resume()
            self.paused = False
            log.info("%s queue drained: partitions resumed", self.kind)

    async def _note_progress(self, received: bool) -> None:
        """Tell health the broker is reachable, from records received or, when idle, a cheap round trip.

        An empty poll proves nothing (the client swallows connection errors and retries), so an idle
        source asks for its end offsets every ``probe_every_s`` (aiokafka #1154: no public health signal).
        """
        now = time.monotonic()
        if received:
            self.health.progress()
            self._last_probe = now
            return
        if now - self._last_probe < self.probe_every_s:
            return
        self._last_probe = now
        try:
            await asyncio.wait_for(self.source.end_offsets(), self.probe_timeout_s)
        except (TransportError, TimeoutError) as exc:
            log.warning("%s: broker unreachable (%s)", self.kind, exc or "no answer")
            return
        self.health.progress()

    def _publish_lag(self) -> None:
        for tp, lag in self.source.lag().items():
            self.metrics.set_lag(tp[0], tp[1], lag)

    async def _refresh_lag(self) -> None:
        """Ask for the end offsets every ``lag_every_s``, so the lag stays true while the poll loop waits.

        The end the client learns from fetch responses goes stale under backpressure: a paused partition,
        or one with prefetched records, is not fetched, so the lag it gives stops rising exactly when
        the daemon falls behind.
        """
        while not self.stopping.is_set():
            try:
                await asyncio.wait_for(self.source.end_offsets(), self.probe_timeout_s)
                self._publish_lag()
            except (TransportError, TimeoutError) as exc:
                log.debug("%s: end offsets for the lag: %s", self.kind, exc or "no answer")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.lag_every_s)

    async def run(self) -> None:
        """Poll until :attr:`stopping` is set. Transport errors are logged and retried, never fatal."""
        refresher = asyncio.create_task(self._refresh_lag())
        try:
            await self._poll_loop()
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)

    async def _poll_loop(self) -> None:
        while not self.stopping.is_set():
            self.health.beat()
            self._maybe_resume()
            # keep polling while paused (it returns nothing for paused partitions): a consumer that stops
            # polling for max_poll_interval_ms loses its partitions (aiokafka #848)
            timeout = 0.05 if self.paused else self.poll_timeout_s
            try:
                records = await self.source.getmany(timeout, self.max_records)
            except TransportError as exc:
                log.warning("%s poll failed: %s", self.kind, exc)
                await asyncio.sleep(1.0)
                continue
            await self._note_progress(bool(records))
            self._publish_lag()
            for record in records:
                decoded = self.decode(record)
                if isinstance(decoded, CodecError):
                    decoded = await self._reject(record, decoded)
                else:
                    self.metrics.consumed(record.topic, decoded.batch.n_events if decoded.batch else 0)
                await self._put(decoded)
