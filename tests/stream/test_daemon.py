"""The daemon end to end on the in-memory broker: reference, window, updates, publish, DLQ, commits, stop."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

from driftcal.coefficients import CoefficientDocument
from driftcal.config import Settings
from driftcal.stream.codec import encode
from driftcal.stream.daemon import Daemon
from driftcal.stream.memory import MemoryBroker, MemorySink, MemorySource
from driftcal.stream.replay import to_batch
from driftcal.stream.transport import Outgoing

SHAPE = (2, 4, 4)
TRUTH = np.ones(SHAPE)
TRUTH[0] = 0.8  # half of the cells lost 20 % of their gain
BATCH = 100
N_REF = 2000


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No DRIFTCAL_* variable of the calling environment leaks in; one torch thread.

    The updates are tiny matrix products: on two shared cores one thread is steadier and faster than
    two competing with whatever else runs (measured: 26 ms a step vs. 100-400 ms under load).
    """
    for name in list(os.environ):
        if name.upper().startswith("DRIFTCAL_"):
            monkeypatch.delenv(name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _settings(**overrides: object) -> Settings:
    fields: dict = dict(
        detector={"name": "t", "shape": list(SHAPE), "noise": None, "threshold": None},
        reference={"first_events": N_REF},
        window={"max_events": 2000, "min_events": 500},
        update={"every_events": 500, "steps": 20, "initial_steps": 150, "critic": "mlp", "lr_theta": 0.005,
                "device": "cpu"},
        alarm={"floor_steps": 20},
        metrics={"enabled": False},
        publish={"heartbeat_seconds": 1.0},
    )  # fmt: skip
    fields.update(overrides)
    return Settings(**fields)


def _rmse(coefficients: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(coefficients) - TRUTH) ** 2)))


class Feed:
    """Sends events to the input topic as encoded batches, numbering events from 0."""

    def __init__(self, broker: MemoryBroker, topic: str) -> None:
        self.broker, self.topic = broker, topic
        self.next_event = 0
        self.messages = 0

    def events(self, events: np.ndarray) -> None:
        for i in range(0, len(events), BATCH):
            chunk = events[i : i + BATCH]
            blob = encode(to_batch(chunk, detector="t", module="0", first_event=self.next_event))
            self.raw(blob)
            self.next_event += len(chunk)

    def raw(self, blob: bytes) -> int:
        """Send one message as it is; returns its offset."""
        self.messages += 1
        return self.broker.append(Outgoing(self.topic, blob, key=b"t/0")).offset


async def _until(condition: Callable[[], bool], task: asyncio.Task[None], timeout_s: float = 60.0) -> None:
    """Wait for ``condition``; fail early if the daemon task died."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            if task.done():
                task.result()
                pytest.fail("the daemon stopped on its own")
            await asyncio.sleep(0.02)


def _documents(broker: MemoryBroker, topic: str) -> list[CoefficientDocument]:
    records = broker.messages(topic)
    assert all(r.key == b"t/0" for r in records)
    return [CoefficientDocument.from_json(r.value) for r in records]


def _gamma(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.gamma(2.0, 1.0, (n, *SHAPE)).astype(np.float32)


@pytest.mark.asyncio
async def test_daemon_calibrates_publishes_dead_letters_and_commits() -> None:
    s = _settings()
    k = s.kafka
    rng = np.random.default_rng(0)
    reference = _gamma(rng, N_REF)
    changed = (_gamma(rng, 3000) * TRUTH).astype(np.float32)
    nan = changed[:3].copy()
    nan[1, 0, 0, 0] = np.nan
    bad = [b"not an event batch", encode(to_batch(nan, detector="t", module="0", first_event=0))]

    broker = MemoryBroker()
    feed = Feed(broker, k.input_topic)
    feed.events(reference[:1000])
    bad_offsets = [feed.raw(bad[0])]  # a malformed message among the reference events
    feed.events(reference[1000:])
    feed.events(changed[:1000])
    bad_offsets.append(feed.raw(bad[1]))
    source = MemorySource(broker, [k.input_topic], group_id="g")
    daemon = Daemon(s, events=source, sink=MemorySink(broker))
    task = asyncio.create_task(daemon.run())

    await _until(lambda: daemon.updates >= 1, task)
    feed.events(changed[1000:])  # new events: the next update is due after every_events=500 of them
    await _until(lambda: daemon.updates >= 2 and all(v == 0 for v in source.lag().values()), task)
    published = len(broker.messages(k.output_topic))
    daemon.request_stop()  # synchronously after counting: nothing is published in between
    async with asyncio.timeout(s.shutdown_timeout_seconds):
        await task

    docs = _documents(broker, k.output_topic)
    assert len(docs) >= published + 1  # a final document at stop
    assert [d.sequence for d in docs] == list(range(1, len(docs) + 1))
    last = docs[-1]
    np.testing.assert_allclose(last.array(), daemon.coefficients())  # the final one: the state at stop
    assert last.sequence == daemon.policy.sequence
    assert (last.detector, last.module, last.model, last.shape) == ("t", "0", "cell-gain", list(SHAPE))
    assert last.status == daemon.status and last.metrics is not None and last.metrics["updates"] >= 2
    assert last.iov.first_event == 5000 - 2000 and last.iov.last_event == 4999  # the window's events
    assert last.distance.before is not None and last.distance.after is not None

    rmse, rmse_ones = _rmse(last.array()), _rmse(np.ones(SHAPE))
    print(f"RMSE to truth: {rmse:.4f} (all ones: {rmse_ones:.4f}) after {daemon.updates} updates")
    assert rmse <= 0.5 * rmse_ones, (rmse, rmse_ones)

    letters = broker.messages(k.dlq_topic)
    assert [r.value for r in letters] == bad
    assert [dict(r.headers)["driftcal-source"] for r in letters] == [
        f"{k.input_topic}/0/{offset}".encode() for offset in bad_offsets
    ]
    assert daemon.metrics.value("driftcal_messages_rejected_total", reason="non_finite") == 1

    # everything stored or dead-lettered was committed
    assert broker.committed == {("g", (k.input_topic, 0)): feed.messages}
    assert daemon.reservoir.size == N_REF == daemon.reservoir.seen
    np.testing.assert_array_equal(daemon.reservoir.data.numpy(), reference)  # exactly the first events
    assert daemon.window.total == 3000 and daemon.window.size == 2000


@pytest.mark.asyncio
async def test_stop_during_a_long_first_update_ends_it_at_the_deadline_and_publishes() -> None:
    s = _settings(shutdown_timeout_seconds=3.0, update={**_settings().update.model_dump(),
                                                        "initial_steps": 100_000})  # fmt: skip
    k = s.kafka
    rng = np.random.default_rng(1)
    broker = MemoryBroker()
    feed = Feed(broker, k.input_topic)
    feed.events(_gamma(rng, N_REF))
    feed.events((_gamma(rng, 600) * TRUTH).astype(np.float32))
    daemon = Daemon(s, events=MemorySource(broker, [k.input_topic], group_id="g"), sink=MemorySink(broker))
    task = asyncio.create_task(daemon.run())

    await _until(lambda: daemon.calibrator.steps > 0, task)  # the first update is under way
    start = time.monotonic()
    daemon.request_stop()
    async with asyncio.timeout(s.shutdown_timeout_seconds + 10):
        await task
    elapsed = time.monotonic() - start
    print(f"stopped {elapsed:.2f} s after request_stop; the first update ran {daemon.calibrator.steps} steps")
    assert elapsed < s.shutdown_timeout_seconds, elapsed  # ended early, about half the timeout
    assert daemon.updates == 1 and daemon.last_result is not None
    assert 0 < daemon.last_result.steps < 100_000
    docs = _documents(broker, k.output_topic)
    assert len(docs) >= 1 and [d.sequence for d in docs] == list(range(1, len(docs) + 1))
    np.testing.assert_allclose(docs[-1].array(), daemon.coefficients())
    assert broker.committed == {("g", (k.input_topic, 0)): feed.messages}


@pytest.mark.asyncio
@pytest.mark.parametrize("source", ["files", "topic"])
async def test_reference_from_files_or_a_reference_topic(source: str, tmp_path: object) -> None:
    rng = np.random.default_rng(2)
    reference = _gamma(rng, 1500)
    broker = MemoryBroker()
    ref_source = None
    if source == "files":
        path = tmp_path / "reference.npy"  # type: ignore[operator]
        np.save(path, reference)
        ref_settings = {"source": "files", "files": [str(path)], "first_events": 1500}
    else:
        Feed(broker, "reference-topic").events(reference)
        ref_source = MemorySource(broker, ["reference-topic"], group_id=None)
        ref_settings = {"source": "topic", "first_events": 1500}
    s = _settings(reference=ref_settings, kafka={"reference_topic": "reference-topic"})
    k = s.kafka
    feed = Feed(broker, k.input_topic)
    feed.events((_gamma(rng, 1000) * TRUTH).astype(np.float32))
    daemon = Daemon(s, events=MemorySource(broker, [k.input_topic], group_id="g"), sink=MemorySink(broker),
                    reference=ref_source)  # fmt: skip
    task = asyncio.create_task(daemon.run())
    await _until(lambda: daemon.updates >= 1, task)
    daemon.request_stop()
    async with asyncio.timeout(s.shutdown_timeout_seconds):
        await task
    assert daemon.reservoir.seen == 1500
    np.testing.assert_array_equal(np.sort(daemon.reservoir.data.numpy().ravel()), np.sort(reference.ravel()))
    assert daemon.window.total == 1000  # every input event went to the window, none to the reference
    assert _documents(broker, k.output_topic)


def test_topic_reference_needs_a_reference_source() -> None:
    s = _settings(reference={"source": "topic"})
    broker = MemoryBroker()
    with pytest.raises(ValueError, match="no reference source"):
        Daemon(s, events=MemorySource(broker, ["in"], group_id="g"), sink=MemorySink(broker))
