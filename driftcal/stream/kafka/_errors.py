"""Error handling shared by the Kafka source, sink and admin helpers."""

from __future__ import annotations

from aiokafka import errors as ke

#: What a broker that is down or unreachable looks like (aiokafka raises the first two).
_CONNECT_ERRORS = (ke.KafkaError, OSError, TimeoutError)


def _describe(err: BaseException) -> str:
    """One readable line for an exception (aiokafka's messages are sometimes empty or repeat the type)."""
    name = type(err).__name__
    if isinstance(err, ke.KafkaConnectionError):
        return f"no broker reachable ({name})"
    lines = str(err).strip().splitlines()
    text = lines[0].removeprefix(f"{name}: ").removeprefix(name).strip() if lines else ""
    return f"{name}: {text}" if text else name
