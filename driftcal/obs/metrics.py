"""Prometheus metrics of the calibration daemon, on a registry of their own.

Every family is created by :class:`Metrics` on its own :class:`~prometheus_client.CollectorRegistry`
(a new one per instance unless one is passed), so tests and several daemons in one process never
clash. Names follow Prometheus conventions (base units, ``_total`` on counters); labels are bounded:
``detector``/``module`` come from the configuration, ``reason`` and ``outcome`` are short strings whose
number of distinct values is capped (values past the cap are counted as ``other``), and nothing is ever
labelled per cell or per event. :data:`METRIC_NAMES` lists every exposed family name.

Extras beyond the core contract: ``driftcal_noise_floor`` (critic distance between two disjoint halves
of the reference), ``driftcal_rmse_to_truth`` (only set by the simulated demo, which knows the truth)
and ``driftcal_queue_batches`` (ingest queue depth).

>>> m = Metrics()
>>> m.consumed("events", 3)
>>> m.set_coefficients("calo", "0", [0.9, 1.0, float("nan"), 1.1])
3
>>> b"driftcal_events_consumed_total" in m.exposition()
True
>>> m.value("driftcal_coefficient_max", detector="calo", module="0")
1.1
"""

from __future__ import annotations

import copy
import logging
import math
import re
import threading
import time
from collections.abc import Iterable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from driftcal import __version__

log = logging.getLogger(__name__)

#: Buckets of ``driftcal_update_duration_seconds``: 10 ms .. 2 min.
UPDATE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Values of the ``kind`` label of ``driftcal_reservoir_events``.
RESERVOIR_KINDS = ("reference", "window")
#: Most distinct ``reason`` (``outcome``) values kept; further ones are counted as ``other``.
MAX_REASONS = 32
MAX_OUTCOMES = 8
OVERFLOW_LABEL = "other"

#: Every family name as exposed (counters with ``_total``, the histogram under its base name).
METRIC_NAMES: tuple[str, ...] = (
    "driftcal_wasserstein_distance",
    "driftcal_alarm_threshold",
    "driftcal_drift_alarm",
    "driftcal_events_consumed_total",
    "driftcal_messages_rejected_total",
    "driftcal_updates_total",
    "driftcal_coefficients_published_total",
    "driftcal_update_duration_seconds",
    "driftcal_coefficient_min",
    "driftcal_coefficient_mean",
    "driftcal_coefficient_max",
    "driftcal_reservoir_events",
    "driftcal_consumer_lag_messages",
    "driftcal_last_publish_timestamp_seconds",
    "driftcal_build_info",
    "driftcal_noise_floor",
    "driftcal_rmse_to_truth",
    "driftcal_queue_batches",
)

_DM = ("detector", "module")
_LABEL_CHARS = re.compile(r"[^a-z0-9_]+")


def _short_label(value: object, limit: int = 40) -> str:
    """Lower-case ``[a-z0-9_]`` form of a free-form label value, at most ``limit`` characters.

    >>> _short_label("Bad Header!")
    'bad_header'
    """
    text = _LABEL_CHARS.sub("_", str(value).strip().lower()).strip("_")[:limit]
    return text or "unknown"


class _WithoutCreated(Collector):
    """View of a registry without the ``*_created`` series of counters and histograms.

    prometheus-client exposes those as extra gauge families in the text format; they double the
    series count and nobody reads them, so :meth:`Metrics.exposition` leaves them out.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        for metric in self.registry.collect():
            if metric.type in ("counter", "histogram", "summary"):
                created = metric.name + "_created"
                metric = copy.copy(metric)
                metric.samples = [s for s in metric.samples if s.name != created]
            yield metric


class _CappedLabel:
    """Keeps at most ``cap`` distinct values of one label; later newcomers map to ``other``."""

    def __init__(self, name: str, cap: int) -> None:
        self.name, self.cap = name, cap
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        label = _short_label(value)
        with self._lock:
            if label in self._seen:
                return label
            if len(self._seen) < self.cap:
                self._seen.add(label)
                return label
        log.warning(
            "metrics: more than %d distinct %s values; counting %r as %r",
            self.cap,
            self.name,
            label,
            OVERFLOW_LABEL,
        )
        return OVERFLOW_LABEL


class Metrics:
    """All driftcal metric families plus the small typed setters the daemon calls.

    ``registry`` defaults to a fresh :class:`~prometheus_client.CollectorRegistry` (not the global one).
    Label values are converted with ``str``; ``reason`` and ``outcome`` are normalised to short
    ``[a-z0-9_]`` strings and capped (:data:`MAX_REASONS`, :data:`MAX_OUTCOMES`).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.wasserstein_distance = Gauge(
            "driftcal_wasserstein_distance",
            "Critic W1 estimate between the transformed reference and the current window.",
            _DM,
            registry=r,
        )
        self.alarm_threshold = Gauge(
            "driftcal_alarm_threshold", "Distance above which a drift alarm is raised.", _DM, registry=r
        )
        self.drift_alarm = Gauge(
            "driftcal_drift_alarm",
            "1 while the distance exceeds the alarm threshold, else 0.",
            _DM,
            registry=r,
        )
        self.noise_floor = Gauge(
            "driftcal_noise_floor",
            "Critic distance between two disjoint halves of the reference (finite-sample floor).",
            _DM,
            registry=r,
        )
        self.rmse_to_truth = Gauge(
            "driftcal_rmse_to_truth",
            "RMSE of the coefficients against the true ones (simulated demo only).",
            _DM,
            registry=r,
        )
        self.events_consumed = Counter(
            "driftcal_events_consumed", "Events decoded from the input topics.", ("topic",), registry=r
        )
        self.messages_rejected = Counter(
            "driftcal_messages_rejected", "Input messages rejected, by reason.", ("reason",), registry=r
        )
        self.updates = Counter(
            "driftcal_updates", "Calibration updates attempted, by outcome.", (*_DM, "outcome"), registry=r
        )
        self.coefficients_published = Counter(
            "driftcal_coefficients_published", "Coefficient sets published.", _DM, registry=r
        )
        self.update_duration = Histogram(
            "driftcal_update_duration_seconds",
            "Wall time of one calibration update.",
            buckets=UPDATE_BUCKETS,
            registry=r,
        )
        self.coefficient_min = Gauge(
            "driftcal_coefficient_min", "Smallest finite calibration coefficient.", _DM, registry=r
        )
        self.coefficient_mean = Gauge(
            "driftcal_coefficient_mean", "Mean of the finite calibration coefficients.", _DM, registry=r
        )
        self.coefficient_max = Gauge(
            "driftcal_coefficient_max", "Largest finite calibration coefficient.", _DM, registry=r
        )
        self.reservoir_events = Gauge(
            "driftcal_reservoir_events", "Events held in the reservoirs.", ("kind",), registry=r
        )
        self.consumer_lag = Gauge(
            "driftcal_consumer_lag_messages",
            "Messages between the committed offset and the end of the partition.",
            ("topic", "partition"),
            registry=r,
        )
        self.last_publish = Gauge(
            "driftcal_last_publish_timestamp_seconds",
            "Unix time of the last coefficient publication.",
            _DM,
            registry=r,
        )
        self.build = Gauge(
            "driftcal_build_info",
            "Always 1; labels carry the version and device.",
            ("version", "device"),
            registry=r,
        )
        self.queue_batches = Gauge(
            "driftcal_queue_batches", "Batches waiting in the ingest queue.", registry=r
        )
        self._reason = _CappedLabel("reason", MAX_REASONS)
        self._outcome = _CappedLabel("outcome", MAX_OUTCOMES)
        self._build_lock = threading.Lock()

    # -- counters ---------------------------------------------------------------------------------
    def consumed(self, topic: str, n: int = 1) -> None:
        """Count ``n`` events decoded from ``topic``."""
        if n < 0:
            raise ValueError(f"consumed: n must be >= 0, got {n}")
        self.events_consumed.labels(topic=str(topic)).inc(n)

    def rejected(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rejected messages under a short ``reason`` (capped set)."""
        self.messages_rejected.labels(reason=self._reason(reason)).inc(n)

    def update(self, detector: str, module: str, outcome: str = "ok", seconds: float | None = None) -> None:
        """Count one update (``ok``/``error``/``skipped``/...) and observe its duration if given."""
        self.updates.labels(detector=str(detector), module=str(module), outcome=self._outcome(outcome)).inc()
        if seconds is not None and math.isfinite(seconds) and seconds >= 0:
            self.update_duration.observe(seconds)

    def published(self, detector: str, module: str, when_s: float | None = None) -> None:
        """Count a publication and record its Unix time (``time.time()`` when ``when_s`` is None)."""
        labels = {"detector": str(detector), "module": str(module)}
        self.coefficients_published.labels(**labels).inc()
        self.last_publish.labels(**labels).set(time.time() if when_s is None else float(when_s))

    # -- gauges -----------------------------------------------------------------------------------
    def set_distance(
        self, detector: str, module: str, distance: float, threshold: float, alarm: bool
    ) -> None:
        """Record the critic distance, the alarm threshold and whether the alarm is raised."""
        labels = {"detector": str(detector), "module": str(module)}
        self.wasserstein_distance.labels(**labels).set(float(distance))
        self.alarm_threshold.labels(**labels).set(float(threshold))
        self.drift_alarm.labels(**labels).set(1.0 if alarm else 0.0)

    def set_noise_floor(self, detector: str, module: str, distance: float) -> None:
        """Record the critic distance between two disjoint halves of the reference."""
        self.noise_floor.labels(detector=str(detector), module=str(module)).set(float(distance))

    def set_rmse(self, detector: str, module: str, rmse: float) -> None:
        """Record the RMSE to the true coefficients (simulated demo only)."""
        self.rmse_to_truth.labels(detector=str(detector), module=str(module)).set(float(rmse))

    def set_coefficients(self, detector: str, module: str, values: Iterable[float]) -> int:
        """Set min/mean/max over the finite ``values``; returns how many were finite (NaN gauges if 0).

        ``values`` is any (nested) sequence of floats or array-like on the CPU.

        >>> Metrics().set_coefficients("calo", "1", [[1.0, 2.0], [float("inf"), 3.0]])
        3
        """
        if not hasattr(values, "__len__") and not hasattr(values, "__array__"):
            values = list(values)  # a generator or other one-shot iterable
        arr = np.asarray(values, dtype=np.float64).ravel()
        finite = arr[np.isfinite(arr)]
        labels = {"detector": str(detector), "module": str(module)}
        if finite.size:
            lo, mean, hi = float(finite.min()), float(finite.mean()), float(finite.max())
        else:
            lo = mean = hi = math.nan
        self.coefficient_min.labels(**labels).set(lo)
        self.coefficient_mean.labels(**labels).set(mean)
        self.coefficient_max.labels(**labels).set(hi)
        return int(finite.size)

    def set_reservoir(self, kind: str, n: int) -> None:
        """Record how many events the ``reference`` or ``window`` reservoir holds."""
        if kind not in RESERVOIR_KINDS:
            raise ValueError(f"set_reservoir: kind must be one of {RESERVOIR_KINDS}, got {kind!r}")
        self.reservoir_events.labels(kind=kind).set(n)

    def set_lag(self, topic: str, partition: int, n: int) -> None:
        """Record the consumer lag (messages) of one topic partition."""
        self.consumer_lag.labels(topic=str(topic), partition=str(partition)).set(n)

    def set_queue(self, n: int) -> None:
        """Record the ingest queue depth in batches."""
        self.queue_batches.set(n)

    def build_info(self, device: str) -> None:
        """Set ``driftcal_build_info{version, device}`` to 1 (replacing an earlier device)."""
        with self._build_lock:
            self.build.clear()
            self.build.labels(version=__version__, device=str(device)).set(1)

    # -- reading ----------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (``CONTENT_TYPE_LATEST``), without ``_created``."""
        return generate_latest(_WithoutCreated(self.registry))

    def value(self, name: str, **labels: str) -> float | None:
        """Current value of one sample (exposed name, e.g. ``..._total``), or None if absent."""
        return self.registry.get_sample_value(name, {k: str(v) for k, v in labels.items()})
