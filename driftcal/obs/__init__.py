"""Observability of the daemon: Prometheus metrics, health/readiness probes over HTTP, logging setup.

Nothing here imports Kafka or torch.

>>> from driftcal.obs import Health, Metrics, ObsServer
>>> "driftcal_wasserstein_distance" in METRIC_NAMES
True
"""

from driftcal.obs.health import Health
from driftcal.obs.logging import JsonFormatter, setup_logging, teardown_logging
from driftcal.obs.metrics import METRIC_NAMES, RESERVOIR_KINDS, UPDATE_BUCKETS, Metrics
from driftcal.obs.server import DEFAULT_PORT, ObsServer

__all__ = [
    "DEFAULT_PORT",
    "METRIC_NAMES",
    "RESERVOIR_KINDS",
    "UPDATE_BUCKETS",
    "Health",
    "JsonFormatter",
    "Metrics",
    "ObsServer",
    "setup_logging",
    "teardown_logging",
]
