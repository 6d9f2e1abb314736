"""A DAQ-like producer: send the events of an array as event batches at a given rate.

Batches are encoded with :func:`~driftcal.stream.codec.encode`: dense, or CSR when most readings
are zero (zero-suppressed calorimeters), and split so that no message exceeds ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from driftcal.stream.codec import EventBatch, encode
from driftcal.stream.transport import Outgoing, Sink

log = logging.getLogger(__name__)


def to_batch(
    events: np.ndarray, *, detector: str, module: str, first_event: int, layout: str = "auto",
    run: int | None = None, now: float | None = None,
) -> EventBatch:  # fmt: skip
    """Wrap ``events`` (``(n, *cells)`` energies or ``(n, P)`` hits with ``layout='hits'``) in a batch."""
    events = np.ascontiguousarray(events, dtype=np.float32)
    stamp = time.time() if now is None else now
    common = dict(detector=detector, module=module, first_event=first_event, run=run, first_time=stamp,
                  last_time=stamp)  # fmt: skip
    if layout == "hits":
        return EventBatch(hits=events, **common)
    if layout == "auto":
        layout = "csr" if events.ndim > 2 and np.count_nonzero(events) < 0.3 * events.size else "dense"
    if layout == "dense":
        return EventBatch(energy=events, **common)
    flat = events.reshape(len(events), -1)
    rows, cells = np.nonzero(flat)
    offsets = np.zeros(len(events) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(events)), out=offsets[1:])
    return EventBatch(offsets=offsets, cell=cells.astype(np.int32), energy=flat[rows, cells], **common)


async def replay(
    events: np.ndarray, sink: Sink, topic: str, *, detector: str, module: str = "0", batch_size: int = 500,
    rate: float | None = None, layout: str = "auto", first_event: int = 0, run: int | None = None,
    max_bytes: int = 900_000,
) -> int:  # fmt: skip
    """Send ``events`` to ``topic`` in batches, at ``rate`` events/s (None: as fast as possible)."""
    per_event = max(1, events[0].nbytes if len(events) else 1)
    size = max(1, min(batch_size, max_bytes // per_event)) if layout != "csr" else batch_size
    if size < batch_size and layout == "dense":
        log.warning("batch size lowered to %d events to keep messages under %d bytes", size, max_bytes)
    key = f"{detector}/{module}".encode()
    start, sent = time.monotonic(), 0
    while sent < len(events):
        chunk = events[sent : sent + size]
        blob = encode(to_batch(chunk, detector=detector, module=module, first_event=first_event + sent,
                               layout=layout, run=run))  # fmt: skip
        if len(blob) > max_bytes and len(chunk) > 1:
            size = max(1, size // 2)
            continue
        await sink.send(Outgoing(topic, blob, key=key))
        sent += len(chunk)
        if rate:
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)
    return sent
