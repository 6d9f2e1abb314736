"""Shared fixtures: ``kafka_bootstrap``, a Kafka broker for the whole session (integration tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from driftcal.testing import kafka_broker


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka broker: ``$DRIFTCAL_KAFKA_BOOTSTRAP``, testcontainers, or a local broker.

    Fails (never skips) when no broker can be had: an integration test that silently skips proves nothing.
    """
    try:
        with kafka_broker.kafka_bootstrap() as bootstrap:
            yield bootstrap
    except kafka_broker.BrokerError as exc:
        pytest.fail(f"no Kafka broker for the integration tests: {exc}", pytrace=False)
