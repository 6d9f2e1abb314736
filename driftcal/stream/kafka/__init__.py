"""The aiokafka implementation of :class:`~driftcal.stream.transport.Source` and ``Sink``.

* :class:`KafkaSource` (:mod:`.source`) consumes with explicit commits (``enable_auto_commit=False``)
  in a consumer group, or, with ``group_id=None``, reads every partition of its topics without a group
  (a reference topic read from the beginning; :meth:`KafkaSource.commit` is then a no-op).
* :class:`KafkaSink` (:mod:`.sink`) produces idempotently with ``acks="all"``.
* :class:`TransactionalKafkaSink` (:mod:`.transactional`) sends messages and commits consumed offsets in
  one transaction (exactly-once publication).
* :func:`ensure_topics` (:mod:`.admin`) creates topics (the compacted coefficient topic, the
  dead-letter topic).
* :func:`client_security` (:mod:`.security`) turns the TLS/SASL settings into client options that every
  client above takes as ``security=``.

Errors: failing to connect and fatal broker answers (authorization, ...) raise
:class:`~driftcal.stream.transport.TransportError`; transient fetch errors are logged and
:meth:`KafkaSource.getmany` returns no records, since aiokafka reconnects by itself.
"""

from driftcal.stream.kafka.admin import TopicSpec, ensure_topics
from driftcal.stream.kafka.security import client_security
from driftcal.stream.kafka.sink import KafkaSink
from driftcal.stream.kafka.source import KafkaSource
from driftcal.stream.kafka.transactional import TransactionalKafkaSink

__all__ = [
    "KafkaSink",
    "KafkaSource",
    "TopicSpec",
    "TransactionalKafkaSink",
    "client_security",
    "ensure_topics",
]
