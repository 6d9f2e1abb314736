""":class:`KafkaSink`: messages to Kafka through an idempotent :class:`aiokafka.AIOKafkaProducer`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka import errors as ke

from driftcal.stream.kafka._errors import _CONNECT_ERRORS, _describe
from driftcal.stream.transport import Outgoing, Sink, TransportError

log = logging.getLogger(__name__)


class KafkaSink(Sink):
    """Messages through an idempotent :class:`aiokafka.AIOKafkaProducer` (``acks="all"``).

    aiokafka retries a batch for as long as the partition leader is unreachable, so a send that is not
    acknowledged within ``send_timeout_s`` (default: ``request_timeout_ms``) raises
    :class:`TransportError`; the message may still be delivered later (at-least-once on a resend).
    ``security`` holds TLS/SASL client options (:func:`~driftcal.stream.kafka.security.client_security`).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "driftcal",
        linger_ms: int = 5,
        request_timeout_ms: int = 30000,
        max_request_size: int = 1048576,
        send_timeout_s: float | None = None,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self._timeout_s = send_timeout_s or request_timeout_ms / 1000
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "request_timeout_ms": request_timeout_ms,
            "max_request_size": max_request_size,
            **(security or {}),
        }
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect (:class:`TransportError` when the broker cannot be reached)."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(**self._options)
        try:
            await asyncio.wait_for(producer.start(), self._timeout_s * 2)
        except _CONNECT_ERRORS as err:
            await producer.stop()
            reason = "timed out" if isinstance(err, TimeoutError) else _describe(err)
            raise TransportError(f"cannot produce to Kafka at {self.bootstrap}: {reason}") from err
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        """Flush (for at most ``send_timeout_s``: then pending messages are dropped) and disconnect."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await asyncio.wait_for(producer.flush(), self._timeout_s)
        except TimeoutError:
            log.warning("Kafka at %s: dropping messages not acknowledged at stop", self.bootstrap)
            with contextlib.suppress(Exception):  # else producer.stop() waits for the broker forever
                await producer._sender.close()  # waits for in-flight requests, which then re-enqueue
        await producer.stop()

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise TransportError("KafkaSink is not started")
        return self._producer

    async def send(self, message: Outgoing) -> None:
        """Send one message and wait for the acknowledgement of all in-sync replicas."""
        await self.send_all([message])

    async def send_all(self, messages: Sequence[Outgoing]) -> None:
        """Queue all messages in order, then wait until every one is acknowledged."""
        producer = self._require()
        futures: list[asyncio.Future[Any]] = []
        error: BaseException | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                for m in messages:
                    headers = list(m.headers) or None
                    futures.append(await producer.send(m.topic, m.value, key=m.key, headers=headers))
                if futures:
                    await asyncio.wait(futures)  # unlike gather, never cancels the delivery futures
        except TimeoutError:
            error = TimeoutError(f"not acknowledged within {self._timeout_s:g} s")
        except (ke.KafkaError, OSError, ke.IllegalOperation) as err:
            error = err
        for future in futures:  # retrieve every outcome (no "exception never retrieved")
            if not future.done():
                future.add_done_callback(_ignore_outcome)
            elif not future.cancelled() and (exc := future.exception()) is not None:
                error = error or exc
        if error is not None:
            raise TransportError(
                f"sending to Kafka at {self.bootstrap} failed: {_describe(error)}"
            ) from error


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
