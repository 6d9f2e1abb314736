"""The streaming daemon: ingest → reservoir and window → warm-started updates → publish.

One :class:`Daemon` calibrates one ``detector/module``. It runs two kinds of task on one event loop:

- :class:`~driftcal.stream.ingest.Ingest` tasks poll the event (and reference) sources and fill bounded
  queues; they are never held by an update.
- the main loop drains the queues into the reference :class:`~driftcal.stream.reservoir.Reservoir` and
  the :class:`~driftcal.stream.reservoir.Window`, commits the offsets of what it stored, runs an update
  every ``update.every_events`` new events or ``update.every_seconds`` (in a worker thread, so the
  loop keeps serving ingest and health), and publishes coefficient documents by the
  :class:`~driftcal.stream.publisher.PublishPolicy`.

Updates are warm-started: one :class:`~driftcal.calib.online.OnlineCalibrator` lives as long as the
daemon, so θ, the critic and both optimizers carry over from one update to the next and the
coefficients follow time-dependent aging. The first update measures the noise floor (critic distance
between two halves of the reference); the drift alarm is ``distance > alarm.k × floor``.

:meth:`Daemon.request_stop` (SIGTERM/SIGINT in the CLI) stops consuming, lets the update in flight end
(early, between steps, once half the shutdown timeout has passed), stores what was already consumed,
publishes a final document, commits, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np

from driftcal.calib.online import OnlineCalibrator, UpdateResult
from driftcal.config import Settings
from driftcal.obs.health import Health
from driftcal.obs.metrics import Metrics
from driftcal.stream import state as checkpoints
from driftcal.stream.components import detector_spec, load_reference_files, make_calibrator
from driftcal.stream.ingest import Ingest, Item
from driftcal.stream.publisher import PublishPolicy, WindowIOV, coefficient_message
from driftcal.stream.reservoir import Reservoir, Window
from driftcal.stream.transport import Sink, Source, TopicPartition, TransportError

log = logging.getLogger(__name__)


class Daemon:
    """Calibrate one detector module from a stream of event batches.

    Parameters
    ----------
    settings : validated :class:`~driftcal.config.Settings`.
    events : source of the input topic (committed, consumer group).
    sink : where coefficient documents and dead letters go.
    reference : source of the reference topic (``reference.source == "topic"``).
    dlq : sink of dead letters (default ``sink``; a transactional ``sink`` needs a plain one here).
    metrics, health : observability (fresh ones by default).
    on_update : called after every update with the daemon (the demo uses it to score against truth).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        events: Source,
        sink: Sink,
        reference: Source | None = None,
        dlq: Sink | None = None,
        metrics: Metrics | None = None,
        health: Health | None = None,
        calibrator: OnlineCalibrator | None = None,
        on_update: Callable[[Daemon], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = s = settings
        self.events, self.sink, self.reference_source = events, sink, reference
        self.dlq = dlq or sink  # a transactional sink sends only inside transactions: give it a plain one
        if s.reference.source == "topic" and reference is None:
            raise ValueError("reference.source is 'topic' but no reference source was given")
        self.metrics = metrics or Metrics()
        self.health = health or Health()
        self.clock = clock
        self.on_update = on_update
        self.calibrator = calibrator or make_calibrator(s)
        shape, device = tuple(s.detector.shape), self.calibrator.device
        self.reservoir = Reservoir(
            shape, max_events=s.reference.max_events, max_bytes=s.reference.max_bytes, device=device,
            seed=s.update.seed,
        )  # fmt: skip
        self.window = Window(
            shape, max_events=s.window.max_events, max_bytes=s.window.max_bytes, device=device
        )
        self.policy = PublishPolicy(min_change=s.publish.min_change, heartbeat_s=s.publish.heartbeat_seconds)
        self.spec = detector_spec(s)
        self.queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=s.queue_max_batches)
        self.ref_queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=s.queue_max_batches)
        self.pending: dict[TopicPartition, int] = {}
        self.iov = WindowIOV(self.window.capacity)
        self.stop_event = asyncio.Event()
        self.stop_deadline: float | None = None
        self.updates = 0
        self.new_events = 0
        self.last_update = clock()
        self.floor: float | None = None
        self.distance: float | None = None
        self.distance_initial: float | None = None
        self.last_result: UpdateResult | None = None
        self.status = "tracking"
        self.labels = {"detector": s.detector.name, "module": s.detector.module}
        self._ingests: list[Ingest] = []
        self.last_checkpoint = clock()
        self.sequence_floor = 0  # the last sequence already on the output topic (set by the runner)
        # after a failed transaction: read the last committed sequence back before publishing again
        self.sequence_reader: Callable[[], Awaitable[int | None]] | None = None
        self.resync_sequence = False
        self.resync_after = 0.0
        self.commit_after = 0.0  # after a failed commit, the loop waits a second before the next try

    # -- control ---------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Begin a graceful shutdown (safe to call from a signal handler on the loop)."""
        if not self.stop_event.is_set():
            log.info("stop requested: finishing the update in flight, publishing and committing")
            self.stop_deadline = self.clock() + self.settings.shutdown_timeout_seconds / 2
            self.stop_event.set()
            for ingest in self._ingests:
                ingest.stopping.set()

    @property
    def reference_ready(self) -> bool:
        ref = self.settings.reference
        need = min(ref.first_events, self.reservoir.capacity)
        return self.reservoir.seen >= need or (ref.source != "first-events" and self._ref_caught_up())

    def _ref_caught_up(self) -> bool:
        if self.reference_source is None or self.reservoir.seen == 0:
            return False
        lags = self.reference_source.lag()  # partitions with an unknown end are left out: not caught up yet
        return bool(lags) and all(lag <= 0 for lag in lags.values())

    def coefficients(self) -> np.ndarray:
        return self.calibrator.coefficients()

    @property
    def rejected(self) -> int:
        """Messages dead-lettered so far (all sources)."""
        return sum(ingest.rejected for ingest in self._ingests)

    # -- storing -----------------------------------------------------------------------------------
    def _store(self, item: Item, *, reference: bool) -> None:
        events = item.events
        if events is not None and len(events):
            if not reference and self.settings.reference.source == "first-events":
                room = max(0, self.settings.reference.first_events - self.reservoir.seen)
                if room:
                    self.reservoir.add(events[:room])
                    events = events[room:]
            if reference:
                self.reservoir.add(events)
            elif len(events):
                self.window.add(events)
                self.new_events += len(events)
                assert item.batch is not None
                self.iov.add(item.batch, len(events))
        if not reference:
            for tp, offset in item.offsets.items():
                self.pending[tp] = max(offset, self.pending.get(tp, 0))

    def _drain(self) -> int:
        count = 0
        for queue, is_ref in ((self.ref_queue, True), (self.queue, False)):
            while not queue.empty():
                self._store(queue.get_nowait(), reference=is_ref)
                count += 1
        self.metrics.set_queue(self.queue.qsize())
        self.metrics.set_reservoir("reference", self.reservoir.size)
        self.metrics.set_reservoir("window", self.window.size)
        self.health.set_reference_ready(self.reference_ready)
        return count

    async def _commit(self, *, force: bool = False) -> None:
        if not self.pending or (not force and self.clock() < self.commit_after):
            return
        offsets, self.pending = self.pending, {}
        try:
            if self.sink.transactional:  # offsets go through the producer's transaction
                await self.sink.send_and_commit([], offsets)
            else:
                await self.events.commit(offsets)
            self.health.progress()
        except TransportError as exc:
            log.warning("commit failed (%s); will retry", exc)
            self.commit_after = self.clock() + 1.0
            self._keep_pending(offsets)

    def _keep_pending(self, offsets: dict[TopicPartition, int]) -> None:
        """Put offsets whose commit failed back, to go with the next commit."""
        for tp, off in offsets.items():
            self.pending[tp] = max(off, self.pending.get(tp, 0))

    async def on_revoke(self, partitions: set[TopicPartition]) -> None:
        """Rebalance hook: commit what is stored before the partitions go to another instance.

        Items still queued for those partitions are stored here but not committed, so the new owner
        reads them again (at-least-once). Takes no lock the poll loop holds.
        """
        log.info("partitions revoked: %s; committing what is stored", sorted(partitions))
        await self._commit(force=True)

    # -- updating --------------------------------------------------------------------------------------
    def _update_due(self) -> bool:
        if not self.reference_ready or self.window.size < self.settings.window.min_events:
            return False
        if self.updates == 0:
            return True
        upd = self.settings.update
        elapsed = self.clock() - self.last_update
        return self.new_events >= upd.every_events or elapsed >= upd.every_seconds

    def _should_stop(self) -> bool:
        return self.stop_deadline is not None and self.clock() > self.stop_deadline

    def _run_update(self) -> UpdateResult:
        """Runs in a worker thread; the loop does not touch the reservoir or window meanwhile."""
        cal, s = self.calibrator, self.settings
        ref, cur = self.reservoir.data, self.window.data
        if self.floor is None:
            self.floor = cal.noise_floor(ref, steps=s.alarm.floor_steps, should_stop=self._should_stop)
        steps = s.update.initial_steps if self.updates == 0 and s.update.initial_steps else s.update.steps
        return cal.update(ref, cur, steps=steps, should_stop=self._should_stop)

    async def _update(self) -> None:
        self.new_events = 0
        self.last_update = self.clock()
        try:
            result = await asyncio.to_thread(self._run_update)
        except Exception:
            log.exception("update failed")
            self.metrics.update(self.labels["detector"], self.labels["module"], "error")
            return
        self.updates += 1
        self.last_result = result
        self.distance = result.distance
        if self.distance_initial is None:
            self.distance_initial = result.distance_start
        floor = float("nan") if self.floor is None else self.floor
        threshold = self.settings.alarm.k * floor
        alarm = bool(np.isfinite(threshold) and result.distance > threshold)
        converged = result.max_change < self.settings.publish.min_change
        if alarm and self.status != "alarm":
            # a sudden change: the tracking rate would take thousands of steps to follow a jump
            self.calibrator.rewarm(max(1, self.settings.update.initial_steps // 2))
            log.warning("drift alarm: distance %.4g above %.4g; θ learning rate raised again",
                        result.distance, threshold)  # fmt: skip
        self.status = "alarm" if alarm else ("converged" if converged else "tracking")
        d, m = self.labels["detector"], self.labels["module"]
        self.metrics.update(d, m, "ok", result.seconds)
        self.metrics.set_distance(d, m, result.distance, threshold, alarm)
        self.metrics.set_noise_floor(d, m, floor)
        self.metrics.set_coefficients(d, m, self.coefficients().ravel())
        log.info(
            "update %d: %d steps in %.2fs, distance %.4g (threshold %.4g), max change %.4g, %s",
            self.updates, result.steps, result.seconds, result.distance, threshold, result.max_change,
            self.status,
        )  # fmt: skip
        if self.on_update is not None:
            self.on_update(self)

    # -- publishing --------------------------------------------------------------------------------------
    async def _publish(self, *, force: bool = False) -> None:
        if self.updates == 0:
            return
        coeffs, now = self.coefficients(), self.clock()
        reason = self.policy.due(coeffs, self.status, now=now) or ("final" if force else None)
        if reason is None:
            return
        if self.resync_sequence and self.sequence_reader is not None:
            if self.clock() < self.resync_after and not force:
                return
            last = await self.sequence_reader()
            if last is None:  # the output cannot be read yet: publish later
                self.resync_after = self.clock() + 5.0
                if force:
                    log.warning("final document not published: the output topic could not be read")
                return
            self.policy.sequence = max(self.policy.sequence, last)
            self.resync_sequence = False
        s = self.settings
        floor = float("nan") if self.floor is None else self.floor  # non-finite metrics are left out
        doc, message = coefficient_message(
            coeffs, topic=s.kafka.output_topic, model=s.detector.model, detector=s.detector.name,
            module=s.detector.module, sequence=self.policy.sequence + 1, status=self.status,
            distance_before=self.distance_initial, distance_after=self.distance, iov=self.iov.as_dict(),
            instance=s.instance, metrics={"noise_floor": floor, "updates": self.updates},
        )  # fmt: skip
        try:
            if self.sink.transactional:  # the document and the offsets it covers: both or neither
                offsets, self.pending = self.pending, {}
                try:
                    await self.sink.send_and_commit([message], offsets)
                except TransportError:
                    self._keep_pending(offsets)
                    self.resync_sequence = True  # the transaction may have committed after all
                    raise
            else:
                await self.sink.send(message)
        except TransportError as exc:
            log.warning("publish of sequence %d failed (%s); will retry", doc.sequence, exc)
            return
        self.policy.mark(coeffs, self.status, now=now)
        self.metrics.published(doc.detector, doc.module)
        log.info("published sequence %d (%s, %s)", doc.sequence, reason, self.status)
        await self._checkpoint()  # right after a publication: a restart continues its sequence

    async def _checkpoint(self, *, due_only: bool = False) -> None:
        if self.settings.checkpoint.path is None or self.updates == 0:
            return
        if due_only and self.clock() - self.last_checkpoint < self.settings.checkpoint.every_seconds:
            return
        if await checkpoints.save(self):
            self.last_checkpoint = self.clock()

    # -- the loop ------------------------------------------------------------------------------------------
    async def _start_transports(self) -> bool:
        """Connect every transport, retrying with backoff; False when a stop came first."""
        delay = 1.0
        parts: list[Source | Sink] = [self.sink, self.events]
        if self.dlq is not self.sink:
            parts.append(self.dlq)
        if self.reference_source is not None:
            parts.append(self.reference_source)
        started: list[Source | Sink] = []
        while not self.stop_event.is_set():
            try:
                for part in parts:
                    if part not in started:
                        await part.start()
                        started.append(part)
                return True
            except TransportError as exc:
                log.warning("cannot connect (%s); retrying in %.0fs", exc, delay)
                self.health.set_broker_ok(False)
                self.health.beat()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), delay)
                delay = min(delay * 2, 30.0)
        for part in started:
            await part.stop()
        return False

    def _make_ingest(self, source: Source, queue: asyncio.Queue[Item], kind: str) -> Ingest:
        k = self.settings.kafka
        ingest = Ingest(
            source, self.spec, queue, dlq=self.dlq, dlq_topic=k.dlq_topic, metrics=self.metrics,
            health=self.health, kind=kind, max_records=k.max_poll_records,
        )  # fmt: skip
        self._ingests.append(ingest)
        return ingest

    async def run(self) -> None:
        """Run until :meth:`request_stop`; then publish, commit and close the transports."""
        self.metrics.build_info(str(self.calibrator.device))
        if self.settings.reference.source == "files":
            load_reference_files(self.settings, self.reservoir)
        checkpoints.load_into(self)
        if self.policy.sequence < self.sequence_floor:  # published after the last checkpoint
            log.info("continuing after sequence %d found on the output topic", self.sequence_floor)
            self.policy.sequence = self.sequence_floor
        if not await self._start_transports():
            log.info("stopped before the broker could be reached; nothing consumed, nothing to commit")
            return
        tasks = [asyncio.create_task(self._make_ingest(self.events, self.queue, "events").run())]
        if self.reference_source is not None:
            ingest = self._make_ingest(self.reference_source, self.ref_queue, "reference")
            tasks.append(asyncio.create_task(ingest.run()))
        try:
            while not self.stop_event.is_set():
                self.health.beat()
                self._drain()
                await self._commit()
                if self._update_due():
                    await self._update()
                    self._drain()
                    await self._commit()
                await self._publish()
                await self._checkpoint(due_only=True)
                for task in tasks:
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), 0.1)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._drain()
            await self._commit(force=True)
            await self._publish(force=True)
            await self._checkpoint()  # also when the final publication failed
            for part in (self.events, self.reference_source, self.sink, self.dlq):
                if part is not None:
                    await part.stop()
            log.info("stopped after %d updates; last sequence %d", self.updates, self.policy.sequence)
