"""SASL settings pass through to every Kafka client: a real broker with a SASL_PLAINTEXT/PLAIN listener."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from driftcal.config_security import KafkaSecuritySettings
from driftcal.stream.kafka import KafkaSink, KafkaSource, TopicSpec, client_security, ensure_topics
from driftcal.stream.transport import Outgoing, TransportError
from driftcal.testing.kafka_broker import LocalKafka, free_port

pytestmark = pytest.mark.integration

USER, PASSWORD = "driftcal", "s3cret-sasl"


@pytest.fixture(scope="module")
def sasl_bootstrap() -> Iterator[str]:
    port, controller, sasl = free_port(), free_port(), free_port()
    jaas = f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{USER}="{PASSWORD}";'
    overrides = {
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},"
        f"SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
        ),
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
    }
    with LocalKafka(port=port, controller_port=controller, overrides=overrides):
        yield f"127.0.0.1:{sasl}"


def _security(password: str) -> dict:
    settings = KafkaSecuritySettings(
        protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username=USER, sasl_password=password
    )
    return client_security(settings)


def test_admin_producer_and_consumer_authenticate_with_the_configured_password(sasl_bootstrap: str) -> None:
    async def go() -> list[bytes]:
        security = _security(PASSWORD)
        await ensure_topics(sasl_bootstrap, {"sasl-t": TopicSpec()}, timeout_ms=10000, security=security)
        sink = KafkaSink(sasl_bootstrap, request_timeout_ms=10000, security=security)
        await sink.start()
        try:
            await sink.send(Outgoing(topic="sasl-t", value=b"hello", key=b"k"))
        finally:
            await sink.stop()
        source = KafkaSource(sasl_bootstrap, ["sasl-t"], "sasl-g", security=security)
        await source.start()
        values: list[bytes] = []
        try:
            async with asyncio.timeout(30):
                while not values:
                    values += [r.value for r in await source.getmany(0.5, 10)]
        finally:
            await source.stop()
        return values

    assert asyncio.run(go()) == [b"hello"]


def test_a_wrong_password_is_refused_by_the_broker(sasl_bootstrap: str) -> None:
    async def go() -> None:
        sink = KafkaSink(sasl_bootstrap, request_timeout_ms=5000, security=_security("wrong"))
        try:
            await sink.start()
        finally:
            await sink.stop()

    with pytest.raises(TransportError) as err:
        asyncio.run(go())
    assert "wrong" not in str(err.value)  # the password is not echoed
