"""Topic creation: :class:`TopicSpec` and :func:`ensure_topics`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import errors as ke
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from driftcal.stream.kafka._errors import _CONNECT_ERRORS, _describe
from driftcal.stream.transport import TransportError


@dataclass(frozen=True)
class TopicSpec:
    """How to create a topic: ``config`` holds topic-level settings (``cleanup.policy=compact``)."""

    partitions: int = 1
    replication: int = 1
    config: dict[str, str] = field(default_factory=dict)


async def ensure_topics(
    bootstrap: str,
    specs: Mapping[str, TopicSpec],
    *,
    timeout_ms: int = 30000,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Create the topics of ``specs`` that do not exist yet and wait until every partition has a leader.

    Existing topics are left as they are (their configuration is not compared with ``specs``).
    ``security`` holds TLS/SASL client options (:func:`~driftcal.stream.kafka.security.client_security`).
    """
    if not specs:
        return
    timeout_s = timeout_ms / 1000
    options = dict(security or {})
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, **options)
    try:
        async with asyncio.timeout(timeout_s * 2):
            await admin.start()
            new = [
                NewTopic(n, s.partitions, s.replication, topic_configs=dict(s.config))
                for n, s in specs.items()
            ]
            response = await admin.create_topics(new, timeout_ms=timeout_ms)
            failures = []
            for topic, code, *rest in response.topic_errors:
                if code and not issubclass(error := ke.for_code(code), ke.TopicAlreadyExistsError):
                    failures.append(
                        f"{topic}: {error.__name__} {rest[0] if rest and rest[0] else ''}".strip()
                    )
            if failures:
                raise TransportError(f"creating topics at Kafka {bootstrap} failed: {'; '.join(failures)}")
            while not all(  # a freshly created partition has no leader for a moment
                not t["error_code"] and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
                for t in await admin.describe_topics(list(specs))
            ):
                await asyncio.sleep(0.1)
    except _CONNECT_ERRORS as err:
        reason = f"timed out after {timeout_s * 2:g} s" if isinstance(err, TimeoutError) else _describe(err)
        raise TransportError(f"cannot create topics at Kafka {bootstrap}: {reason}") from err
    finally:
        await admin.close()
