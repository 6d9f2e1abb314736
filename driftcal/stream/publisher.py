"""When to publish a coefficient document, and what goes in it.

:class:`PublishPolicy` publishes the first result, then whenever the coefficients moved by more than
``min_change`` (largest absolute change of any coefficient since the last publication), whenever the
status changes, and at least every ``heartbeat_s`` seconds. Sequence numbers rise by one per
publication of a ``detector/module`` key, so a consumer can spot gaps and duplicates.

>>> import numpy as np
>>> policy = PublishPolicy(min_change=0.01, heartbeat_s=60)
>>> policy.due(np.ones(3), "tracking", now=0.0)
'first'
>>> policy.mark(np.ones(3), "tracking", now=0.0)
1
>>> policy.due(np.ones(3) * 1.005, "tracking", now=1.0) is None
True
>>> policy.due(np.ones(3) * 1.02, "tracking", now=2.0), policy.due(np.ones(3), "alarm", now=3.0)
('change', 'status')
>>> policy.due(np.ones(3), "tracking", now=61.0)
'heartbeat'
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from driftcal.coefficients import CoefficientDocument, Distance
from driftcal.stream.codec import EventBatch
from driftcal.stream.transport import Outgoing


class PublishPolicy:
    """Decides when a document is due and counts sequence numbers."""

    def __init__(self, *, min_change: float, heartbeat_s: float, sequence: int = 0) -> None:
        self.min_change = float(min_change)
        self.heartbeat_s = float(heartbeat_s)
        self.sequence = int(sequence)  # of the last publication (0: none yet)
        self.last: np.ndarray | None = None
        self.last_status: str | None = None
        self.last_time: float | None = None

    def due(self, coefficients: np.ndarray, status: str, *, now: float) -> str | None:
        """Why a publication is due now (``first``, ``status``, ``change``, ``heartbeat``), or None."""
        if self.last is None or self.last_time is None:
            return "first"
        if status != self.last_status:
            return "status"
        if float(np.max(np.abs(np.asarray(coefficients) - self.last))) > self.min_change:
            return "change"
        if now - self.last_time >= self.heartbeat_s:
            return "heartbeat"
        return None

    def mark(self, coefficients: np.ndarray, status: str, *, now: float) -> int:
        """Record a publication; returns its sequence number."""
        self.sequence += 1
        self.last = np.array(coefficients, dtype=np.float64, copy=True)
        self.last_status = status
        self.last_time = now
        return self.sequence


class WindowIOV:
    """The interval of validity of the window: event numbers, times and run of the events it holds.

    >>> iov = WindowIOV(capacity=10)
    >>> for first in (0, 6, 12):
    ...     batch = EventBatch(detector="d", module="0", first_event=first, run=7, first_time=float(first),
    ...                        last_time=first + 5.0, energy=np.zeros((6, 1), np.float32))
    ...     iov.add(batch, 6)
    >>> iov.as_dict()
    {'first_event': 6, 'last_event': 17, 'first_time': 6.0, 'last_time': 17.0, 'run': 7}
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.entries: deque[dict[str, Any]] = deque()

    def add(self, batch: EventBatch, n: int) -> None:
        """The last ``n`` events of ``batch`` entered the window."""
        end = batch.first_event + batch.n_events
        self.entries.append(
            dict(first_event=end - n, last_event=end - 1, n=n, first_time=batch.first_time,
                 last_time=batch.last_time, run=batch.run)
        )  # fmt: skip
        total = sum(e["n"] for e in self.entries)
        while len(self.entries) > 1 and total - self.entries[0]["n"] >= self.capacity:
            total -= self.entries.popleft()["n"]

    def as_dict(self) -> dict[str, Any]:
        """``first_event``, ``last_event``, ``first_time``, ``last_time``, ``run`` (None when mixed)."""
        if not self.entries:
            return {}
        times = [e[k] for e in self.entries for k in ("first_time", "last_time") if e[k] is not None]
        runs = {e["run"] for e in self.entries if e["run"] is not None}
        return {
            "first_event": self.entries[0]["first_event"],
            "last_event": self.entries[-1]["last_event"],
            "first_time": min(times) if times else None,
            "last_time": max(times) if times else None,
            "run": runs.pop() if len(runs) == 1 else None,
        }


def coefficient_message(
    coefficients: np.ndarray,
    *,
    topic: str,
    model: str,
    detector: str,
    module: str,
    sequence: int,
    status: str,
    distance_before: float | None,
    distance_after: float | None,
    iov: dict,
    instance: str,
    metrics: dict[str, float] | None = None,
) -> tuple[CoefficientDocument, Outgoing]:
    """The document (schema ``driftcal.coefficients/1``) and its Kafka message keyed ``detector/module``.

    Non-finite ``metrics`` values are left out: ``to_json`` would write them as ``null``, which the
    document's schema (``dict[str, float]``) rejects on reading.
    """
    if metrics is not None:
        metrics = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
    doc = CoefficientDocument.from_array(
        coefficients,
        model=model,  # type: ignore[arg-type]
        method="adversarial",
        detector=detector,
        module=module,
        sequence=sequence,
        status=status,  # type: ignore[arg-type]
        distance=Distance(before=distance_before, after=distance_after),
        iov=iov,
        instance=instance,
        metrics=metrics,
    )
    return doc, Outgoing(topic=topic, value=doc.to_json().encode(), key=doc.key.encode())
