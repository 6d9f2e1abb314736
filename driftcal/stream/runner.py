"""Wiring for ``driftcal run``: Kafka transports, the metrics/health server, signals, the daemon.

FastStream-style layering: this module owns the broker objects and the process concerns (signals,
the HTTP endpoint, logging); :class:`~driftcal.stream.daemon.Daemon` only sees the
:class:`~driftcal.stream.transport.Source`/``Sink`` interface.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from driftcal.coefficients import CoefficientDocument
from driftcal.config import Settings
from driftcal.errors import InputError
from driftcal.obs.health import Health
from driftcal.obs.metrics import Metrics
from driftcal.obs.server import ObsServer
from driftcal.stream.daemon import Daemon
from driftcal.stream.kafka import (
    KafkaSink,
    KafkaSource,
    TopicSpec,
    TransactionalKafkaSink,
    client_security,
    ensure_topics,
)
from driftcal.stream.transport import TransportError

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_stop_handlers(stop: Callable[[], None]) -> None:
    """Call ``stop`` on SIGTERM/SIGINT (on the running loop)."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop)


async def stop_within(run: Awaitable[None], stop_requested: asyncio.Event, timeout_s: float) -> bool:
    """Await ``run``; once a stop is requested allow it ``timeout_s`` more. False if it had to be cut."""
    task = asyncio.ensure_future(run)
    waiter = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not task.done():
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            log.error("shutdown took longer than %.0fs; exiting without a clean stop", timeout_s)
            task.cancel()
            return False
    task.result()
    return True


async def output_topics(settings: Settings, security: Mapping[str, Any]) -> None:
    """Create the output (compacted, keyed by detector/module) and dead-letter topics if missing.

    ``security``: TLS/SASL client options (:func:`~driftcal.stream.kafka.client_security`), here and below.
    """
    k = settings.kafka
    specs = {
        k.output_topic: TopicSpec(config={"cleanup.policy": "compact"}),
        k.dlq_topic: TopicSpec(config={"retention.ms": str(14 * 24 * 3600 * 1000)}),
    }
    try:
        await ensure_topics(k.bootstrap, specs, timeout_ms=k.request_timeout_ms, security=security)
    except TransportError as exc:  # the producer can still auto-create them; say so and go on
        log.warning("could not create topics %s: %s", ", ".join(specs), exc)


async def last_sequence(settings: Settings, security: Mapping[str, Any]) -> int | None:
    """The highest committed sequence number of this module's documents on the output topic.

    0 when there is none; None when the topic cannot be read to its end (the broker is unreachable).
    """
    k, det = settings.kafka, settings.detector
    key = f"{det.name}/{det.module}".encode()
    source = KafkaSource(
        k.bootstrap, [k.output_topic], None, isolation_level="read_committed",
        request_timeout_ms=k.request_timeout_ms, security=security,
    )  # fmt: skip
    best = 0
    try:
        await source.start()
        deadline = asyncio.get_running_loop().time() + k.request_timeout_ms / 1000
        while any(lag > 0 for lag in (await _lags(source)).values()):
            if asyncio.get_running_loop().time() > deadline:
                log.warning("reading %s to its end took too long", k.output_topic)
                return None
            for record in await source.getmany(1.0, 500):
                if record.key == key:
                    try:
                        best = max(best, CoefficientDocument.from_json(record.value).sequence)
                    except InputError:
                        log.warning("unreadable document at %s", record.source)
    except TransportError as exc:
        log.warning("could not read the last sequence from %s: %s", k.output_topic, exc)
        return None
    finally:
        await source.stop()
    return best


async def _lags(source: KafkaSource) -> dict:
    ends = await source.end_offsets()
    lags = source.lag()
    return {tp: lags.get(tp, end) for tp, end in ends.items()}


def kafka_daemon(settings: Settings, metrics: Metrics, health: Health, security: Mapping[str, Any]) -> Daemon:
    """A daemon on Kafka transports built from ``settings.kafka``."""
    k = settings.kafka
    common = dict(client_id=k.client_id, request_timeout_ms=k.request_timeout_ms, security=security)
    owner: list[Daemon] = []

    async def on_revoke(partitions: set) -> None:
        if owner:
            await owner[0].on_revoke(partitions)

    events = KafkaSource(
        k.bootstrap, [k.input_topic], k.group_id, max_poll_records=k.max_poll_records,
        session_timeout_ms=k.session_timeout_ms, group_instance_id=k.group_instance_id, on_revoke=on_revoke,
        **common,
    )  # fmt: skip
    reference = None
    if settings.reference.source == "topic":
        reference = KafkaSource(k.bootstrap, [k.reference_topic], None, max_poll_records=k.max_poll_records,
                                **common)  # fmt: skip
    dlq = KafkaSink(k.bootstrap, max_request_size=4 << 20, **common)
    sink: KafkaSink = dlq
    if k.transactions:
        det = settings.detector
        sink = TransactionalKafkaSink(
            k.bootstrap, transactional_id=k.transactional_id or f"driftcal-{det.name}-{det.module}",
            group_id=k.group_id, max_request_size=4 << 20, **common,
        )  # fmt: skip
    daemon = Daemon(
        settings, events=events, reference=reference, sink=sink, dlq=dlq, metrics=metrics, health=health
    )
    owner.append(daemon)
    return daemon


async def serve(settings: Settings, security: Mapping[str, Any] | None = None) -> bool:
    """Run the daemon until SIGTERM/SIGINT; True after a clean stop within the shutdown timeout.

    ``security``: the client options of ``settings.kafka.security`` if already built (the secret and TLS
    files are read once); built here otherwise.
    """
    security = client_security(settings.kafka.security) if security is None else security
    metrics, health = Metrics(), Health()
    server = None
    if settings.metrics.enabled:
        server = ObsServer(metrics, health, host=settings.metrics.host, port=settings.metrics.port)
        port = server.start()
        log.info("metrics and health on http://%s:%d/metrics", settings.metrics.host, port)
    try:
        await output_topics(settings, security)
        daemon = kafka_daemon(settings, metrics, health, security)
        daemon.sequence_floor = await last_sequence(settings, security) or 0
        if settings.kafka.transactions:
            daemon.sequence_reader = lambda: last_sequence(settings, security)
        install_stop_handlers(daemon.request_stop)
        return await stop_within(daemon.run(), daemon.stop_event, settings.shutdown_timeout_seconds)
    finally:
        if server is not None:
            server.stop()
