"""Event storage for the daemon: a uniform reference reservoir and a ring-buffer window of recent events.

Both are bounded by an event count *and* a byte budget, hold their events in one preallocated tensor on
the compute device when it fits there (so engine steps sample from device memory, with no per-step
host↔device copy; the only copy is one per incoming batch), and fall back to host memory otherwise.

- :class:`Reservoir`: Vitter's Algorithm R over the reference stream. After ``n`` offered events
  every one of them is held with probability ``capacity / n``, whatever the batch sizes were.
- :class:`Window`: the most recent ``capacity`` events of the current stream.

>>> import numpy as np
>>> r = Reservoir((2,), max_events=3, seed=0)
>>> r.add(np.arange(20, dtype=np.float32).reshape(10, 2))
>>> r.size, r.seen, tuple(r.data.shape)
(3, 10, (3, 2))
>>> w = Window((1,), max_events=4)
>>> w.add(np.arange(6, dtype=np.float32).reshape(6, 1))
>>> sorted(w.data.flatten().tolist()), w.total
([2.0, 3.0, 4.0, 5.0], 6)
"""

from __future__ import annotations

import ast
import logging
import math
from collections.abc import Sequence

import numpy as np
import torch

from driftcal.calib.device import resolve_device

log = logging.getLogger(__name__)

_ITEM = 4  # float32


def capacity_for(event_shape: Sequence[int], max_events: int, max_bytes: int) -> int:
    """Events that fit both bounds; raises ``ValueError`` when not even one does."""
    per_event = _ITEM * math.prod(event_shape)
    capacity = min(int(max_events), int(max_bytes) // per_event)
    if capacity < 1:
        raise ValueError(f"a byte budget of {max_bytes} holds no event of {per_event} bytes")
    return capacity


def _allocate(capacity: int, event_shape: Sequence[int], device: str | torch.device) -> torch.Tensor:
    dev = resolve_device(device) if isinstance(device, str) else device
    try:
        return torch.empty((capacity, *event_shape), dtype=torch.float32, device=dev)
    except torch.OutOfMemoryError:
        log.warning("%d events do not fit on %s; keeping them in host memory", capacity, dev)
        return torch.empty((capacity, *event_shape), dtype=torch.float32)


class _Store:
    def __init__(
        self, event_shape: Sequence[int], *, max_events: int, max_bytes: int, device: str | torch.device
    ) -> None:
        self.event_shape = tuple(int(d) for d in event_shape)
        self.capacity = capacity_for(self.event_shape, max_events, max_bytes)
        self.buffer = _allocate(self.capacity, self.event_shape, device)
        self.size = 0

    @property
    def device(self) -> torch.device:
        return self.buffer.device

    @property
    def data(self) -> torch.Tensor:
        """The stored events ``(size, *event_shape)`` (a view, on :attr:`device`)."""
        return self.buffer[: self.size]

    @property
    def nbytes(self) -> int:
        return self.buffer.numel() * _ITEM

    def _check(self, events: np.ndarray) -> np.ndarray:
        events = np.asarray(events, dtype=np.float32)
        if events.shape[1:] != self.event_shape:
            raise ValueError(f"events of shape {events.shape[1:]} do not match {self.event_shape}")
        return events

    def _write(self, slots: np.ndarray, events: np.ndarray) -> None:
        if slots.size:
            # decoded batches are read-only views of the message bytes; torch wants writable memory
            host = events if events.flags.writeable else events.copy()
            src = torch.from_numpy(np.ascontiguousarray(host)).to(self.device, non_blocking=True)
            self.buffer.index_copy_(0, torch.from_numpy(slots).to(self.device), src)


class Reservoir(_Store):
    """Uniform sample (Algorithm R) of every event offered, bounded by events and bytes.

    Parameters
    ----------
    event_shape : shape of one event (cells or planes).
    max_events, max_bytes : bounds; the capacity is whichever is smaller.
    device : where the events live (``auto`` → CUDA when present).
    seed : of the replacement draws.
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        *,
        max_events: int = 50_000,
        max_bytes: int = 1 << 30,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(event_shape, max_events=max_events, max_bytes=max_bytes, device=device)
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    @property
    def full(self) -> bool:
        return self.size == self.capacity

    def add(self, events: np.ndarray) -> None:
        """Offer a batch ``(n, *event_shape)``; each event replaces a random one with probability cap/seen."""
        events = self._check(events)
        n = events.shape[0]
        index = self.seen + np.arange(n)  # 0-based position of each event in the stream
        slots = np.where(index < self.capacity, index, self.rng.integers(0, index + 1))
        keep = slots < self.capacity
        slots, chosen = slots[keep], np.flatnonzero(keep)
        # a slot drawn twice in one batch holds the later event, as in the sequential algorithm
        _, last = np.unique(slots[::-1], return_index=True)
        pick = len(slots) - 1 - last
        self._write(slots[pick], events[chosen[pick]])
        self.seen += n
        self.size = min(self.capacity, self.seen)

    def state(self) -> dict:
        """Contents and sampling state, as host tensors and plain values (for a checkpoint)."""
        rng = self.rng.bit_generator.state
        return {"data": self.data.cpu().clone(), "seen": self.seen, "rng": repr(rng)}

    def restore(self, state: dict) -> None:
        """Put back what :meth:`state` saved (events beyond the capacity are dropped)."""
        data = state["data"][: self.capacity]
        self.buffer[: len(data)] = data.to(self.device)
        self.size = len(data)
        self.seen = max(int(state["seen"]), self.size)
        self.rng.bit_generator.state = ast.literal_eval(state["rng"])


class Window(_Store):
    """Ring buffer of the most recent events (order inside the buffer is not meaningful)."""

    def __init__(
        self,
        event_shape: Sequence[int],
        *,
        max_events: int = 20_000,
        max_bytes: int = 512 << 20,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(event_shape, max_events=max_events, max_bytes=max_bytes, device=device)
        self.total = 0  # events ever added

    def add(self, events: np.ndarray) -> None:
        """Append a batch; the oldest events are overwritten."""
        events = self._check(events)
        n = events.shape[0]
        kept = events[-self.capacity :]
        slots = (self.total + n - kept.shape[0] + np.arange(kept.shape[0])) % self.capacity
        self._write(slots, kept)
        self.total += n
        self.size = min(self.capacity, self.size + n)

    def ordered(self) -> torch.Tensor:
        """The stored events from oldest to newest."""
        if self.size < self.capacity:
            return self.data
        head = self.total % self.capacity
        return torch.cat([self.buffer[head:], self.buffer[:head]])

    def state(self) -> dict:
        return {"data": self.ordered().cpu().clone(), "total": self.total}

    def restore(self, state: dict) -> None:
        """Put back what :meth:`state` saved (the newest events when the capacity is smaller now)."""
        data = state["data"][-self.capacity :]
        total = int(state["total"])
        slots = (total - len(data) + np.arange(len(data))) % self.capacity
        self._write(slots, data.numpy())
        self.total, self.size = total, len(data)
