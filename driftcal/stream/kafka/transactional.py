""":class:`TransactionalKafkaSink`: coefficient documents and consumed offsets in one Kafka transaction.

aiokafka has no KIP-447, so ``send_offsets_to_transaction`` carries no group generation: the
``transactional_id`` must be static per unit of ownership (the daemon uses ``driftcal-<detector>-<module>``),
so that a restarted or replacing instance fences the old one. Offsets are sent once per transaction, for
all partitions together (aiokafka #1098: offsets sent one by one on the same producer hit a ``KeyError``).
Consumers of the output read with ``isolation_level="read_committed"``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition as KafkaTP

from driftcal.stream.kafka._errors import _describe
from driftcal.stream.kafka.sink import KafkaSink
from driftcal.stream.transport import Outgoing, TopicPartition, TransportError

log = logging.getLogger(__name__)


class TransactionalKafkaSink(KafkaSink):
    """A :class:`KafkaSink` whose :meth:`send_and_commit` is atomic: messages and offsets, or nothing."""

    transactional = True

    def __init__(self, bootstrap: str, *, transactional_id: str, group_id: str, **options: Any) -> None:
        super().__init__(bootstrap, **options)
        self._options["transactional_id"] = transactional_id
        self.transactional_id = transactional_id
        self.group_id = group_id

    async def send_all(self, messages: Sequence[Outgoing]) -> None:
        """Every send of a transactional producer is a transaction (with no offsets)."""
        await self.send_and_commit(messages, {})

    async def send_and_commit(
        self, messages: Sequence[Outgoing], offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Send ``messages`` and commit ``offsets`` for :attr:`group_id` in one transaction.

        After any failure the producer is closed and a new one is made on the next call: re-initializing
        the same ``transactional_id`` makes the coordinator finish or abort the transaction left open, so
        the outcome of a failed call is unknown until the output is read back (see the daemon).
        """
        if self._producer is None:
            await self.start()  # raises TransportError while the broker is unreachable
        producer = self._require()
        try:
            async with asyncio.timeout(self._timeout_s):
                await producer.begin_transaction()
                futures = [
                    await producer.send(m.topic, m.value, key=m.key, headers=list(m.headers) or None)
                    for m in messages
                ]
                if offsets:
                    await producer.send_offsets_to_transaction(
                        {KafkaTP(t, p): int(o) for (t, p), o in offsets.items()}, self.group_id
                    )
                await producer.commit_transaction()
                for future in futures:
                    await future
        except Exception as err:  # aiokafka raises AssertionError on a wedged state machine, too
            await self._discard()
            reason = f"not committed within {self._timeout_s:g} s" if isinstance(err, TimeoutError) else None
            raise TransportError(
                f"transaction {self.transactional_id} at {self.bootstrap} failed: {reason or _describe(err)}"
            ) from err

    async def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await asyncio.wait_for(producer.stop(), self._timeout_s)
        except Exception as err:  # a producer whose broker is gone may not stop cleanly
            log.warning("closing the transactional producer: %s", _describe(err))
