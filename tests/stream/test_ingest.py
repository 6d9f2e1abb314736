"""Ingest: poll → decode → dead-letter queue or bounded queue, with backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from driftcal.obs.health import Health
from driftcal.obs.metrics import Metrics
from driftcal.stream.codec import REASONS, DetectorSpec, EventBatch, encode
from driftcal.stream.ingest import ERROR_HEADER, SOURCE_HEADER, Ingest, Item
from driftcal.stream.memory import MemoryBroker, MemorySink, MemorySource
from driftcal.stream.replay import to_batch
from driftcal.stream.transport import Outgoing
from driftcal.testing.faults.corpus import rewrite_header

CELLS = (2, 2, 2)
SPEC = DetectorSpec(cells=CELLS, noise=0.1, detector="t")
TOPIC, DLQ = "in", "dlq"


def _events(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(2.0, 1.0, (n, *CELLS)).astype(np.float32)


def _blob(events: np.ndarray, first_event: int = 0, layout: str = "dense") -> bytes:
    return encode(to_batch(events, detector="t", module="0", first_event=first_event, layout=layout))


def _bad_blobs() -> dict[str, tuple[bytes, str | None]]:
    good = _blob(_events())
    nan = _events()
    nan[1, 0, 1, 1] = np.nan
    negative = _events()
    negative[0, 1, 0, 0] = -1.0  # the floor is -5 σ = -0.5

    def set_meta(key: str, value: object) -> Callable[[dict], None]:
        return lambda h: h["__metadata__"].__setitem__(key, value)

    def huge(h: dict) -> None:
        h["energy"]["shape"] = [10**9, *CELLS]
        h["energy"]["data_offsets"] = [0, 10**9 * 8 * 4]

    return {
        "empty": (b"", "empty"),
        "random bytes": (np.random.default_rng(1).bytes(300), None),
        "truncated length": (good[:5], "truncated"),
        "truncated header": (good[:30], "truncated"),
        "truncated data": (good[:-4], "size"),
        "header not json": (struct.pack("<Q", 6) + b"{oops}" + b"\0" * 16, "bad_header"),
        "unknown schema": (rewrite_header(good, set_meta("schema", "driftcal.events/0")), "unknown_schema"),
        "wrong shape": (_blob(np.ones((2, 2, 2, 3), np.float32)), "shape"),
        "nan": (_blob(nan), "non_finite"),
        "below noise floor": (_blob(negative), "below_noise_floor"),
        "wrong dtype": (rewrite_header(good, lambda h: h["energy"].__setitem__("dtype", "F64")), "dtype"),
        "huge declared size": (rewrite_header(good, huge), "size"),
        "other detector": (
            encode(EventBatch(detector="x", module="0", first_event=0, energy=_events())),
            "detector",
        ),
        # header values of the wrong JSON type once made decode raise TypeError/OverflowError
        "layout is a list": (rewrite_header(good, set_meta("layout", ["dense"])), "bad_header"),
        "dtype is a list": (
            rewrite_header(good, lambda h: h["energy"].__setitem__("dtype", ["F32"])),
            "dtype",
        ),
        "shape overflows": (
            rewrite_header(good, lambda h: h["energy"].__setitem__("shape", [10**30])),
            "shape",
        ),
        "first_event too large": (rewrite_header(good, set_meta("first_event", str(10**40))), "bad_header"),
    }


class RecordingSource(MemorySource):
    """A memory source that records its pause/resume calls."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")
        super().pause()

    def resume(self) -> None:
        self.calls.append("resume")
        super().resume()


@dataclass
class Rig:
    broker: MemoryBroker
    source: RecordingSource
    queue: asyncio.Queue[Item]
    ingest: Ingest
    metrics: Metrics
    task: asyncio.Task[None]
    dlq_broker: MemoryBroker
    sent: list[bytes] = field(default_factory=list)

    async def send(self, value: bytes, key: bytes | None = None, headers: list | None = None) -> None:
        self.broker.append(Outgoing(TOPIC, value, key=key, headers=list(headers or [])))
        self.sent.append(value)

    async def items(self, n: int, timeout_s: float = 5.0) -> list[Item]:
        async with asyncio.timeout(timeout_s):
            return [await self.queue.get() for _ in range(n)]


@contextlib.asynccontextmanager
async def _rig(maxsize: int = 64, max_records: int = 100) -> AsyncIterator[Rig]:
    broker, dlq_broker = MemoryBroker(), MemoryBroker()
    source = RecordingSource(broker, [TOPIC], group_id="g")
    await source.start()
    queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=maxsize)
    metrics = Metrics()
    ingest = Ingest(
        source, SPEC, queue, dlq=MemorySink(dlq_broker), dlq_topic=DLQ, metrics=metrics, health=Health(),
        poll_timeout_s=0.05, max_records=max_records,
    )  # fmt: skip
    task = asyncio.create_task(ingest.run())
    rig = Rig(broker, source, queue, ingest, metrics, task, dlq_broker)
    try:
        yield rig
    finally:
        ingest.stopping.set()
        while not queue.empty():  # a put blocked on a full queue must be able to finish
            queue.get_nowait()
        async with asyncio.timeout(3.0):
            await task


@pytest.mark.asyncio
async def test_good_batches_are_queued_as_dense_items_with_their_offsets() -> None:
    async with _rig() as rig:
        dense = _events(4, seed=1)
        sparse = _events(5, seed=2) * (np.random.default_rng(3).random((5, *CELLS)) < 0.2)
        await rig.send(_blob(dense, first_event=10, layout="dense"))
        await rig.send(_blob(sparse, first_event=14, layout="csr"))
        first, second = await rig.items(2)
        assert first.record.offset == 0 and first.offsets == {(TOPIC, 0): 1}
        assert second.record.offset == 1 and second.offsets == {(TOPIC, 0): 2}
        assert first.batch is not None and first.batch.layout == "dense" and first.batch.first_event == 10
        assert second.batch is not None and second.batch.layout == "csr" and second.batch.n_events == 5
        for item, events in ((first, dense), (second, sparse)):
            assert item.events is not None and item.events.dtype == np.float32
            assert item.events.shape == events.shape
            np.testing.assert_array_equal(item.events, events)
        assert rig.dlq_broker.messages(DLQ) == [] and rig.ingest.rejected == 0
        assert rig.metrics.value("driftcal_events_consumed_total", topic=TOPIC) == 9
        assert not rig.task.done()


@pytest.mark.asyncio
@pytest.mark.parametrize("case", list(_bad_blobs()))
async def test_a_bad_blob_is_dead_lettered_and_ingest_goes_on(case: str) -> None:
    blob, reason = _bad_blobs()[case]
    async with _rig() as rig:
        await rig.send(_blob(_events(2, seed=5)))
        await rig.send(blob, key=b"t/0", headers=[("trace", b"abc"), (ERROR_HEADER, b"stale")])
        await rig.send(_blob(_events(3, seed=6), first_event=2))
        before, rejected, after = await rig.items(3)
        # the rejected record still goes through the queue, in order, so its offset gets committed
        assert [i.record.offset for i in (before, rejected, after)] == [0, 1, 2]
        assert rejected.events is None and rejected.batch is None
        assert rejected.offsets == {(TOPIC, 0): 2}
        assert before.events is not None and after.events is not None and after.events.shape[0] == 3
        (letter,) = rig.dlq_broker.messages(DLQ)
        assert letter.value == blob and letter.key == b"t/0"
        headers = dict(letter.headers)
        assert [k for k, _ in letter.headers].count(ERROR_HEADER) == 1
        assert headers["trace"] == b"abc"
        assert headers[SOURCE_HEADER] == f"{TOPIC}/0/1".encode()
        error = headers[ERROR_HEADER].decode()
        got = error.split(":", 1)[0]
        assert got in REASONS, error
        if reason is not None:
            assert got == reason, error
        assert len(error) > len(got) + 2  # the reason is followed by a message
        assert rig.metrics.value("driftcal_messages_rejected_total", reason=got) == 1
        assert rig.ingest.rejected == 1
        assert not rig.task.done()  # the ingest task keeps running
        await rig.send(_blob(_events(1, seed=7)))
        (later,) = await rig.items(1)
        assert later.events is not None and later.record.offset == 3


@pytest.mark.asyncio
async def test_every_bad_blob_in_one_stream() -> None:
    cases = _bad_blobs()
    async with _rig() as rig:
        for blob, _ in cases.values():
            await rig.send(blob)
            await rig.send(_blob(_events(1)))
        items = await rig.items(2 * len(cases))
        assert [i.record.offset for i in items] == list(range(2 * len(cases)))
        assert all(i.events is None for i in items[::2]) and all(i.events is not None for i in items[1::2])
        letters = rig.dlq_broker.messages(DLQ)
        assert [r.value for r in letters] == [blob for blob, _ in cases.values()]
        assert [dict(r.headers)[SOURCE_HEADER] for r in letters] == [
            f"{TOPIC}/0/{2 * i}".encode() for i in range(len(cases))
        ]
        for reason in {r for _, r in cases.values() if r is not None}:
            expected = sum(1 for _, r in cases.values() if r == reason)
            assert rig.metrics.value("driftcal_messages_rejected_total", reason=reason) >= expected
        assert rig.ingest.rejected == len(cases) and not rig.task.done()


@pytest.mark.asyncio
async def test_a_record_is_queued_only_after_its_dead_letter_was_written() -> None:
    async with _rig() as rig:
        rig.dlq_broker.available = False  # the dead-letter send fails and is retried (every 1 s)
        await rig.send(b"")
        await asyncio.sleep(0.3)
        assert rig.queue.empty() and rig.dlq_broker.messages(DLQ) == []
        rig.dlq_broker.available = True
        (item,) = await rig.items(1, timeout_s=3.0)
        assert item.events is None and len(rig.dlq_broker.messages(DLQ)) == 1


@pytest.mark.asyncio
async def test_backpressure_pauses_the_source_and_resumes_after_draining() -> None:
    async with _rig(maxsize=2, max_records=1) as rig:
        for i in range(10):
            await rig.send(_blob(_events(1, seed=i), first_event=i))
        async with asyncio.timeout(3.0):
            while not rig.source.paused:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # paused: nothing more is fetched
        assert rig.source.calls == ["pause"] and rig.ingest.paused
        assert rig.queue.full()
        assert rig.source.lag()[(TOPIC, 0)] >= 10 - 2 - 1  # at most one record waits on the full queue
        got: list[Item] = []
        async with asyncio.timeout(5.0):
            while len(got) < 10:
                got.append(await rig.queue.get())
                await asyncio.sleep(0.02)  # a slow consumer
        assert [i.record.offset for i in got] == list(range(10))
        assert [i.batch.first_event for i in got if i.batch is not None] == list(range(10))
        async with asyncio.timeout(2.0):
            while rig.source.paused:
                await asyncio.sleep(0.01)
        assert rig.source.calls[0] == "pause" and rig.source.calls[-1] == "resume"
        assert "resume" in rig.source.calls and rig.source.lag() == {(TOPIC, 0): 0}
        assert not rig.task.done()


@pytest.mark.asyncio
async def test_readiness_follows_the_broker_not_empty_polls() -> None:
    """An idle source proves the broker is there by a round trip; an outage makes it not ready."""
    broker = MemoryBroker()
    health = Health(broker_timeout_s=0.3)
    source = MemorySource(broker, ["in"], group_id="g")
    await source.start()
    queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=4)
    ingest = Ingest(source, DetectorSpec(cells=(2, 2, 2)), queue, dlq=MemorySink(broker), dlq_topic="dlq",
                    metrics=Metrics(), health=health, poll_timeout_s=0.02)  # fmt: skip
    ingest.probe_every_s = 0.05
    task = asyncio.create_task(ingest.run())
    try:
        await asyncio.sleep(0.2)
        assert health.readyz()[1]["checks"]["broker_reachable"] is True
        broker.available = False
        await asyncio.sleep(0.6)
        assert health.readyz()[1]["checks"]["broker_reachable"] is False
        broker.available = True
        await asyncio.sleep(0.3)
        assert health.readyz()[1]["checks"]["broker_reachable"] is True
    finally:
        ingest.stopping.set()
        await asyncio.wait_for(task, 5)


@pytest.mark.asyncio
async def test_the_lag_metric_keeps_rising_while_the_queue_is_full() -> None:
    """The poll loop waits on the full queue; the lag refresher still reports what piles up."""
    async with _rig(maxsize=1, max_records=1) as rig:
        rig.ingest.lag_every_s = 0.05
        await rig.send(_blob(_events(1)))
        await rig.send(_blob(_events(1, seed=1), first_event=1))
        async with asyncio.timeout(3.0):
            while not rig.queue.full():
                await asyncio.sleep(0.01)
        for i in range(2, 30):  # nobody drains the queue: the poll loop is stuck in put()
            await rig.send(_blob(_events(1, seed=i), first_event=i))
        async with asyncio.timeout(3.0):
            while rig.metrics.value("driftcal_consumer_lag_messages", topic=TOPIC, partition="0") < 27:
                await asyncio.sleep(0.02)
        assert not rig.task.done()
