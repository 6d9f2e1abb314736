"""Liveness and readiness from the daemon's own progress, never from client internals.

An aiokafka consumer can hang without raising, so the daemon reports what it actually did: ``beat()``
once per main-loop iteration, ``progress()`` whenever a fetch or commit succeeded. From these:

- **alive** (``/healthz``): the last beat (or start, before the first beat) is at most ``stuck_after_s``
  old;
- **ready** (``/readyz``): alive, the reference reservoir is filled, and the broker is reachable, i.e.
  the last progress is at most ``broker_timeout_s`` old, or the transport declared itself reachable with
  ``set_broker_ok(True)`` (in-memory transports).

Times come from an injectable ``clock`` (default :func:`time.monotonic`).

>>> now = [0.0]
>>> h = Health(clock=lambda: now[0])
>>> h.healthz()[0], h.readyz()[0]
(True, False)
>>> h.set_reference_ready(True); h.progress()
>>> h.readyz()[0]
True
>>> now[0] = 61.0
>>> h.healthz()[1]["status"]
'stuck'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def _ago(now: float, then: float | None) -> float | None:
    return None if then is None else round(max(0.0, now - then), 3)


class Health:
    """Thread-safe record of the daemon's progress, read by the HTTP probes.

    ``set_broker_ok(True)`` marks the broker reachable regardless of progress; ``False`` marks it
    unreachable until the next :meth:`progress` (which proves the opposite); ``None`` (the default)
    leaves it to the age of the last progress.
    """

    def __init__(
        self,
        stuck_after_s: float = 60.0,
        broker_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if stuck_after_s <= 0 or broker_timeout_s <= 0:
            raise ValueError("Health: stuck_after_s and broker_timeout_s must be > 0")
        self.stuck_after_s = float(stuck_after_s)
        self.broker_timeout_s = float(broker_timeout_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_beat: float | None = None
        self._last_progress: float | None = None
        self._beats = 0
        self._reference_ready = False
        self._broker_ok: bool | None = None

    # -- written by the daemon --------------------------------------------------------------------
    def beat(self) -> None:
        """The main loop completed an iteration."""
        now = self._clock()
        with self._lock:
            self._last_beat = now
            self._beats += 1

    def progress(self) -> None:
        """A fetch or commit succeeded: the broker is reachable (clears an explicit ``False``)."""
        now = self._clock()
        with self._lock:
            self._last_progress = now
            if self._broker_ok is False:
                self._broker_ok = None

    def set_reference_ready(self, ready: bool) -> None:
        """Whether the reference reservoir is filled."""
        with self._lock:
            self._reference_ready = bool(ready)

    def set_broker_ok(self, ok: bool | None) -> None:
        """Declare the broker reachable (True), unreachable (False) or judged by progress (None)."""
        with self._lock:
            self._broker_ok = None if ok is None else bool(ok)

    # -- read by the probes -----------------------------------------------------------------------
    def _alive(self, now: float) -> tuple[bool, float | None]:
        since = _ago(now, self._last_beat)
        ref = self._last_beat if self._last_beat is not None else self._started
        return now - ref <= self.stuck_after_s, since

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        """``(alive, body)``; body has ``status`` (ok|stuck), ``seconds_since_beat`` and ``beats``."""
        now = self._clock()
        with self._lock:
            alive, since = self._alive(now)
            body = {
                "status": "ok" if alive else "stuck",
                "alive": alive,
                "seconds_since_beat": since,
                "seconds_since_start": _ago(now, self._started),
                "stuck_after_s": self.stuck_after_s,
                "beats": self._beats,
            }
        return alive, body

    def readyz(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, body)``; body has ``status`` (ready|not_ready), the individual ``checks`` and ages."""
        now = self._clock()
        with self._lock:
            alive, since_beat = self._alive(now)
            since_progress = _ago(now, self._last_progress)
            if self._broker_ok is not None:
                broker = self._broker_ok
            else:
                broker = since_progress is not None and since_progress <= self.broker_timeout_s
            checks = {"alive": alive, "reference_ready": self._reference_ready, "broker_reachable": broker}
            ready = all(checks.values())
            body = {
                "status": "ready" if ready else "not_ready",
                "ready": ready,
                "checks": checks,
                "failing": [name for name, ok in checks.items() if not ok],
                "seconds_since_beat": since_beat,
                "seconds_since_progress": since_progress,
                "broker_ok_declared": self._broker_ok,
                "stuck_after_s": self.stuck_after_s,
                "broker_timeout_s": self.broker_timeout_s,
            }
        return ready, body
