"""Reservoir (Algorithm R, bounded by events and bytes) and Window (ring buffer of the latest events)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from driftcal.stream.reservoir import Reservoir, Window, capacity_for

BATCH_SIZES = (1, 7, 50, 3, 13, 26, 2, 31, 9, 58)


def _values(store: Reservoir | Window) -> np.ndarray:
    return store.data.cpu().numpy().reshape(store.size)


def _stream(reservoir: Reservoir, n: int, sizes: tuple[int, ...] = BATCH_SIZES) -> None:
    """Offer the integers 0..n-1 as events of shape (1,), in batches of the cycled ``sizes``."""
    start = 0
    for size in itertools.cycle(sizes):
        if start >= n:
            break
        stop = min(n, start + size)
        reservoir.add(np.arange(start, stop, dtype=np.float32).reshape(-1, 1))
        start = stop


# -- capacity ------------------------------------------------------------------------------------------


def test_capacity_is_the_smaller_of_the_two_bounds() -> None:
    per_event = 4 * 2 * 4 * 4  # float32 (2, 4, 4)
    assert capacity_for((2, 4, 4), 100, 1 << 30) == 100  # the event bound wins
    assert capacity_for((2, 4, 4), 100, 10 * per_event) == 10  # the byte bound wins
    assert capacity_for((2, 4, 4), 100, 10 * per_event + per_event - 1) == 10  # rounds down
    assert capacity_for((2, 4, 4), 1, per_event) == 1
    r = Reservoir((2, 4, 4), max_events=1000, max_bytes=7 * per_event)
    w = Window((2, 4, 4), max_events=1000, max_bytes=5 * per_event)
    assert (r.capacity, w.capacity) == (7, 5)
    assert r.nbytes == 7 * per_event and w.nbytes == 5 * per_event


def test_capacity_raises_when_not_even_one_event_fits() -> None:
    with pytest.raises(ValueError, match="holds no event"):
        capacity_for((2, 4, 4), 100, 127)
    with pytest.raises(ValueError):
        Reservoir((2, 4, 4), max_events=100, max_bytes=100)
    with pytest.raises(ValueError):
        Window((3,), max_events=100, max_bytes=11)
    with pytest.raises(ValueError):
        capacity_for((3,), 0, 1 << 20)


# -- reservoir -------------------------------------------------------------------------------------------


def test_reservoir_fills_first_then_keeps_capacity() -> None:
    r = Reservoir((1,), max_events=20, seed=3)
    r.add(np.arange(5, dtype=np.float32).reshape(5, 1))
    assert (r.size, r.seen, r.full) == (5, 5, False)
    assert sorted(_values(r).tolist()) == [0, 1, 2, 3, 4]
    r.add(np.arange(5, 20, dtype=np.float32).reshape(15, 1))
    assert (r.size, r.seen, r.full) == (20, 20, True)
    assert sorted(_values(r).tolist()) == list(range(20))  # nothing is replaced before the reservoir is full
    r.add(np.arange(20, 1000, dtype=np.float32).reshape(-1, 1))
    assert (r.size, r.seen) == (20, 1000)


def test_reservoir_rejects_events_of_the_wrong_shape() -> None:
    r = Reservoir((2, 2), max_events=4)
    with pytest.raises(ValueError, match="do not match"):
        r.add(np.ones((3, 4), np.float32))


def test_reservoir_inclusion_is_uniform_whatever_the_batch_sizes() -> None:
    """Over many seeds every item 0..N-1 is held with frequency k/N (Algorithm R)."""
    n, k, seeds = 200, 20, 400
    counts = np.zeros(n)
    for seed in range(seeds):
        r = Reservoir((1,), max_events=k, seed=seed)
        _stream(r, n)
        held = _values(r).astype(int)
        assert r.size == k and r.seen == n and len(set(held.tolist())) == k
        counts[held] += 1
    p = k / n
    expected, var = seeds * p, seeds * p * (1 - p)  # 40 and 36 per item
    # chi-square over 200 items (≈ 199 degrees of freedom): mean ≈ 199, sd ≈ 20; 310 is p ≈ 1e-6
    chi2 = float(np.sum((counts - expected) ** 2) / var)
    assert chi2 < 310, chi2
    assert np.max(np.abs(counts - expected)) < 5.5 * np.sqrt(var), counts  # no single item far off
    # the first and the last halves of the stream are held equally often (sd of each ≈ 0.001)
    freq = counts / seeds
    assert freq[: n // 2].mean() == pytest.approx(p, abs=0.01)
    assert freq[n // 2 :].mean() == pytest.approx(p, abs=0.01)
    # and so is every block of 20 consecutive items (sd of a block mean ≈ 0.003)
    assert np.all(np.abs(freq.reshape(10, 20).mean(axis=1) - p) < 0.02), freq.reshape(10, 20).mean(axis=1)


@pytest.mark.parametrize("biased", ["first-k", "last-k"])
def test_the_uniformity_checks_reject_biased_samples(biased: str) -> None:
    """The bounds of the uniformity test fail for 'keep the first k' and 'keep the last k'."""
    n, k, seeds = 200, 20, 400
    held = np.arange(k) if biased == "first-k" else np.arange(n - k, n)
    counts = np.zeros(n)
    counts[held] += seeds
    p = k / n
    chi2 = float(np.sum((counts - seeds * p) ** 2) / (seeds * p * (1 - p)))
    assert chi2 > 310
    freq = counts / seeds
    assert abs(freq[: n // 2].mean() - p) > 0.01 and abs(freq[n // 2 :].mean() - p) > 0.01


def test_reservoir_one_large_batch_has_no_duplicates_and_only_offered_values() -> None:
    """Many slots are drawn twice in one batch; each slot still holds exactly one offered event."""
    for seed in range(20):
        r = Reservoir((1,), max_events=5, seed=seed)
        r.add(np.arange(3, dtype=np.float32).reshape(3, 1))
        r.add(np.arange(3, 10_000, dtype=np.float32).reshape(-1, 1))
        held = _values(r)
        assert (r.size, r.seen) == (5, 10_000)
        assert len(set(held.tolist())) == 5
        assert np.all((held >= 0) & (held < 10_000)) and np.all(held == np.round(held))


def test_reservoir_matches_sequential_algorithm_r_with_the_same_draws() -> None:
    """A slot drawn twice within a batch holds the later event, as when the events come one by one.

    This replays the implementation's draws (one ``rng.integers(0, index + 1)`` per batch) through a
    plain sequential Algorithm R; if the draw pattern changes, update the replica here.
    """
    k = 6
    for seed in range(10):
        r = Reservoir((1,), max_events=k, seed=seed)
        rng = np.random.default_rng(seed)
        slots: list[float] = []
        seen = 0
        for size in (4, 1, 30, 200, 7, 500):
            batch = np.arange(seen, seen + size, dtype=np.float32)
            r.add(batch.reshape(-1, 1))
            index = seen + np.arange(size)
            draws = rng.integers(0, index + 1)
            for i, j, value in zip(index, draws, batch, strict=True):
                if i < k:
                    slots.append(float(value))
                elif j < k:
                    slots[j] = float(value)  # sequential: a later event overwrites an earlier one
            seen += size
        assert _values(r).tolist() == slots


def test_reservoir_accepts_read_only_and_non_float32_input_without_warnings() -> None:
    blob = np.arange(40, dtype=np.float32).tobytes()
    readonly = np.frombuffer(blob, dtype=np.float32).reshape(20, 2)
    assert not readonly.flags.writeable
    r = Reservoir((2,), max_events=8, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r.add(readonly[:5])
        r.add(readonly[5:])
        r.add(np.ones((3, 2), dtype=np.float64))
    assert r.size == 8 and r.data.dtype == torch.float32


def test_reservoir_and_window_ignore_empty_batches() -> None:
    r = Reservoir((2,), max_events=3)
    w = Window((2,), max_events=3)
    r.add(np.zeros((0, 2), np.float32))
    w.add(np.zeros((0, 2), np.float32))
    assert (r.size, r.seen, w.size, w.total) == (0, 0, 0, 0)


# -- window --------------------------------------------------------------------------------------------


def test_window_keeps_the_last_capacity_events() -> None:
    w = Window((1,), max_events=10)
    offered: list[float] = []
    for size in (3, 4, 1, 6, 2, 9, 1):
        batch = np.arange(len(offered), len(offered) + size, dtype=np.float32)
        w.add(batch.reshape(-1, 1))
        offered += batch.tolist()
        assert w.total == len(offered)
        assert w.size == min(10, len(offered))
        assert sorted(_values(w).tolist()) == offered[-10:]


def test_window_batch_larger_than_capacity() -> None:
    w = Window((2,), max_events=4)
    w.add(np.full((2, 2), -1, np.float32))
    w.add(np.arange(22, dtype=np.float32).reshape(11, 2))  # 11 events > capacity 4
    assert (w.size, w.total) == (4, 13)
    assert sorted(w.data[:, 0].tolist()) == [14.0, 16.0, 18.0, 20.0]
    assert torch.equal(w.data[:, 1], w.data[:, 0] + 1)  # events are stored whole
    w.add(np.arange(100, 140, dtype=np.float32).reshape(20, 2))
    assert (w.size, w.total) == (4, 33)
    assert sorted(w.data[:, 0].tolist()) == [132.0, 134.0, 136.0, 138.0]


def test_window_accepts_read_only_input_without_warnings() -> None:
    blob = np.arange(24, dtype=np.float32).tobytes()
    readonly = np.frombuffer(blob, dtype=np.float32).reshape(12, 2)
    w = Window((2,), max_events=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w.add(readonly[:3])
        w.add(readonly[3:])  # larger than the capacity
        w.add(readonly[:2])
    assert sorted(w.data[:, 0].tolist()) == [0.0, 2.0, 18.0, 20.0, 22.0]


def test_window_rejects_events_of_the_wrong_shape() -> None:
    w = Window((2, 2), max_events=4)
    with pytest.raises(ValueError, match="do not match"):
        w.add(np.ones((3, 2, 3), np.float32))


# -- device and views ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Reservoir, Window])
def test_data_is_a_cpu_view_of_the_right_shape(cls: type[Reservoir] | type[Window]) -> None:
    store = cls((2, 4, 4), max_events=10, device="cpu")
    assert store.device == torch.device("cpu") and store.buffer.device.type == "cpu"
    assert tuple(store.data.shape) == (0, 2, 4, 4)
    events = np.random.default_rng(0).random((6, 2, 4, 4)).astype(np.float32)
    store.add(events)
    data = store.data
    assert tuple(data.shape) == (6, 2, 4, 4) and data.dtype == torch.float32
    assert data.untyped_storage().data_ptr() == store.buffer.untyped_storage().data_ptr()  # a view
    assert data.data_ptr() == store.buffer.data_ptr()
    np.testing.assert_array_equal(np.sort(data.numpy().ravel()), np.sort(events.ravel()))


def test_a_torch_device_object_is_accepted() -> None:
    r = Reservoir((3,), max_events=4, device=torch.device("cpu"))
    r.add(np.ones((2, 3), np.float32))
    assert r.device.type == "cpu" and tuple(r.data.shape) == (2, 3)
