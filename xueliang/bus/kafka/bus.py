""":class:`KafkaBus`: producers, consumers and topic administration on one Kafka cluster."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from xueliang.bus.base import Bus, BusError, Compression, Consumer, OffsetReset, Producer
from xueliang.bus.kafka._client import Cluster
from xueliang.bus.kafka.admin import TopicAdmin
from xueliang.bus.kafka.consumer import KafkaBusConsumer
from xueliang.bus.kafka.producer import KafkaBusProducer
from xueliang.bus.kafka.security import security_options
from xueliang.config.bus import KafkaBusConfig
from xueliang.contracts import TopicSpec


class KafkaBus(Bus):
    """Producers, consumers and topic administration on one Kafka cluster."""

    def __init__(self, config: KafkaBusConfig) -> None:
        self.config = config
        self.cluster = Cluster(config, security_options(config.security))
        self.principal = self.cluster.principal
        """The principal the broker sees (ACLs are granted to it)."""
        self.admin = TopicAdmin(self.cluster)
        """Topic provisioning and offsets (and the admin API itself, for :mod:`xueliang.bus.acls`)."""
        self._clients: weakref.WeakSet[KafkaBusProducer | KafkaBusConsumer] = weakref.WeakSet()
        self._closed = False

    # ----------------------------------------------------------------- topics
    def list_topics(self) -> list[str]:
        """Names of the cluster's topics (internal ones excluded)."""
        return self.admin.list_topics()

    def topic_exists(self, topic: str) -> bool:
        return self.admin.partitions(topic) is not None

    def topic_max_message_bytes(self, topic: str) -> int:
        """The topic's ``max.message.bytes`` (largest record batch the broker accepts)."""
        return self.admin.topic_max_message_bytes(topic)

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        self.admin.ensure_topics(specs)

    def delete_topics(self, names: Sequence[str]) -> None:
        """Delete topics (tests and operators; the stages never delete). Missing ones are ignored."""
        self.admin.delete_topics(names)

    def end_offsets(self, topic: str) -> dict[int, int]:
        return self.admin.end_offsets(topic)

    def committed_offsets(self, group_id: str, topic: str) -> dict[int, int]:
        return self.admin.committed_offsets(group_id, topic)

    # -------------------------------------------------------------- clients
    def producer(self, client_id: str = "xueliang", *, compression: Compression | None = None) -> Producer:
        if self._closed:
            raise BusError("bus is closed")
        p = KafkaBusProducer(self.cluster, self.admin, client_id, compression)
        self._clients.add(p)
        return p

    def consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        *,
        offset_reset: OffsetReset = "earliest",
        client_id: str = "xueliang",
        max_record_bytes: int | None = None,
    ) -> Consumer:
        if self._closed:
            raise BusError("bus is closed")
        if not topics:
            raise BusError("a consumer needs at least one topic")
        for topic in topics:
            if not self.topic_exists(topic):
                raise BusError(f"topic {topic!r} does not exist (create it with ensure_topics)")
        c = KafkaBusConsumer(self.cluster, group_id, tuple(topics), offset_reset, client_id, max_record_bytes)
        self._clients.add(c)
        return c

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in list(self._clients):
            client.close()
        self.admin.close()
