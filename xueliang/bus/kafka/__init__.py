"""Kafka transport (kafka-python 3.x) behind :class:`xueliang.bus.base.Bus`.

Records are converted at this edge: our ``dict[str, bytes]`` headers become
kafka-python's list of ``(str, bytes)`` tuples and back, keys are UTF-8 camera ids.

Client settings and why (docs/kafka.md has the long form):

* Producers are idempotent with ``acks=all`` (kafka-python 3's defaults, set
  explicitly because ``acks=1`` would silently turn idempotence off), retry without
  limit inside ``delivery_timeout_ms``, and send uncompressed unless asked: frames are
  JPEGs that do not compress.
* Every hop allows records up to :data:`xueliang.contracts.MAX_MESSAGE_BYTES` plus
  room for headers and batch overhead (producer ``max_request_size``, consumer
  ``max_partition_fetch_bytes``); each topic sets its own ``max.message.bytes``.
* Consumers never auto-commit: stages commit after their effects are durable.
  ``close`` leaves the group, so the partitions move at once instead of after the
  session timeout.
* Topics are never auto-created (not by the broker, not by the clients): sending to or
  subscribing to a topic that :meth:`KafkaBus.ensure_topics` did not create raises
  :class:`BusError`.
* A broker that goes away for a while is not an error for ``send`` or ``poll``:
  kafka-python reconnects, records wait in the producer (bounded by the caller through
  :meth:`Producer.pending`) and fail only after ``KafkaBusConfig.delivery_timeout_s``,
  which :meth:`Producer.flush` then reports.

The package, by concern: :mod:`._client` (kafka-python loaded once, shared limits, :class:`Cluster`:
client creation that waits for a broker), :mod:`.security` (SASL/TLS options, authorization refusals),
:mod:`.admin` (topic provisioning and offsets), :mod:`.producer`, :mod:`.consumer`, and :mod:`.bus`
(:class:`KafkaBus`, which puts them together behind :class:`xueliang.bus.base.Bus`).
"""

from __future__ import annotations

from xueliang.bus.kafka._client import MAX_REQUEST_BYTES, REQUEST_TIMEOUT_MS
from xueliang.bus.kafka.bus import KafkaBus
from xueliang.bus.kafka.security import security_options

__all__ = ["MAX_REQUEST_BYTES", "REQUEST_TIMEOUT_MS", "KafkaBus", "security_options"]
