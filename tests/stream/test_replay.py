"""to_batch (dense, CSR, hits) and replay (ordering, message size bound, rate)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from driftcal.stream.codec import DetectorSpec, decode, encode
from driftcal.stream.memory import MemoryBroker, MemorySink
from driftcal.stream.replay import replay, to_batch

CELLS = (2, 4, 4)
SPEC = DetectorSpec(cells=CELLS)


def _energies(n: int, seed: int = 0, occupancy: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = rng.gamma(2.0, 1.0, (n, *CELLS)).astype(np.float32)
    return events * (rng.random(events.shape) < occupancy)


@pytest.mark.parametrize("layout", ["dense", "csr", "auto"])
def test_to_batch_round_trips_through_the_codec(layout: str) -> None:
    events = _energies(6, occupancy=0.15)
    batch = to_batch(events, detector="calo", module="2", first_event=40, layout=layout, run=9, now=12.5)
    assert batch.layout == ("csr" if layout == "auto" else layout)  # sparse events: auto → CSR
    out = decode(encode(batch), SPEC)
    assert out.layout == batch.layout and out.n_events == 6
    assert (out.detector, out.module, out.first_event, out.run) == ("calo", "2", 40, 9)
    assert out.first_time == out.last_time == 12.5
    np.testing.assert_array_equal(out.dense(CELLS), events)


def test_to_batch_auto_is_dense_for_occupied_events_and_csr_handles_empty_events() -> None:
    assert to_batch(_energies(3), detector="d", module="0", first_event=0).layout == "dense"
    events = _energies(4, occupancy=0.3)
    events[1] = 0.0  # an event without any reading
    batch = to_batch(events, detector="d", module="0", first_event=0, layout="csr")
    assert batch.offsets is not None and batch.offsets[1] == batch.offsets[2]
    np.testing.assert_array_equal(decode(encode(batch), SPEC).dense(CELLS), events)


def test_to_batch_hits_and_float64_input() -> None:
    hits = np.random.default_rng(1).normal(size=(5, 4))  # float64
    batch = to_batch(hits, detector="trk", module="0", first_event=3, layout="hits")
    out = decode(encode(batch), DetectorSpec(planes=4))
    assert out.layout == "hits" and out.hits is not None and out.hits.dtype == np.float32
    np.testing.assert_array_equal(out.hits, hits.astype(np.float32))


async def _replayed(events: np.ndarray, **kwargs: object) -> tuple[int, list, float]:
    broker = MemoryBroker()
    start = time.monotonic()
    sent = await replay(events, MemorySink(broker), "ev", detector="calo", **kwargs)  # type: ignore[arg-type]
    return sent, broker.messages("ev"), time.monotonic() - start


@pytest.mark.asyncio
async def test_replay_sends_every_event_in_order_with_consecutive_first_events() -> None:
    events = _energies(1234)
    sent, records, _ = await _replayed(events, module="1", batch_size=100, first_event=1000, run=5)
    assert sent == 1234 and len(records) == 13
    batches = [decode(r.value, SPEC) for r in records]
    assert [b.first_event for b in batches] == list(range(1000, 2234, 100))
    assert all(r.key == b"calo/1" for r in records) and all(b.run == 5 for b in batches)
    np.testing.assert_array_equal(np.concatenate([b.dense(CELLS) for b in batches]), events)


@pytest.mark.asyncio
@pytest.mark.parametrize("layout", ["dense", "csr", "auto"])
async def test_replay_splits_batches_to_stay_under_max_bytes(layout: str) -> None:
    events = _energies(600, seed=2, occupancy=0.2 if layout != "dense" else 1.0)
    max_bytes = 6_000  # 128 bytes per dense event: far fewer than batch_size=500 fit
    sent, records, _ = await _replayed(events, batch_size=500, layout=layout, max_bytes=max_bytes)
    assert sent == 600 and len(records) > 1
    assert max(len(r.value) for r in records) <= max_bytes
    batches = [decode(r.value, SPEC) for r in records]
    firsts = [b.first_event for b in batches]
    assert firsts == [0, *np.cumsum([b.n_events for b in batches])[:-1].tolist()]
    np.testing.assert_array_equal(np.concatenate([b.dense(CELLS) for b in batches]), events)


@pytest.mark.asyncio
async def test_replay_respects_the_rate() -> None:
    events = _energies(200)
    sent, records, elapsed = await _replayed(events, batch_size=20, rate=1000.0)
    assert sent == 200 and len(records) == 10
    assert 0.15 <= elapsed < 2.0  # 200 events at 1000/s: about 0.2 s
    _, _, fast = await _replayed(events, batch_size=20)
    assert fast < 0.15


@pytest.mark.asyncio
async def test_replay_of_nothing_sends_nothing() -> None:
    sent, records, _ = await _replayed(np.zeros((0, *CELLS), np.float32))
    assert sent == 0 and records == []
