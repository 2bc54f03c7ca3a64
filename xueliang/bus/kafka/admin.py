"""Topic provisioning and offset queries through one lazily created admin client.

Topics are never auto-created (not by the broker, not by the clients): :meth:`TopicAdmin.ensure_topics`
creates them with the project's partitions, retention and size limit, grows their partitions when the
configuration asks for more, and accepts topics that exist already where a stage may not create any.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from xueliang.bus.base import BusAccessDenied, BusError
from xueliang.bus.kafka._client import (
    REQUEST_TIMEOUT_MS,
    Cluster,
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    KTopicPartition,
    OffsetAndMetadata,
    OffsetSpec,
    construct,
    kerr,
)
from xueliang.bus.kafka.security import denial
from xueliang.contracts import TopicSpec

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class TopicAdmin:
    """The cluster's admin API for one bus: created on first use, recreated after a retriable failure."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _client(self) -> KafkaAdminClient:
        with self._lock:
            if self._closed:
                raise BusError("bus is closed")
            if self._admin is None:
                self._admin = self.cluster.connect(
                    "admin client",
                    lambda t: construct(
                        KafkaAdminClient,
                        **self.cluster.options(),
                        client_id="xueliang-admin",
                        request_timeout_ms=REQUEST_TIMEOUT_MS,
                        bootstrap_timeout_ms=t,
                    ),
                )
            return self._admin

    def call(self, what: str, fn: Callable[[KafkaAdminClient], _T]) -> _T:
        """Run ``fn`` on the admin client; retriable failures (a broker restarting) are retried
        with a fresh admin client for up to ``client_timeout_s``."""
        timeout_s = self.cluster.config.client_timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            admin = self._client()
            try:
                with self._lock:
                    return fn(admin)
            except kerr.RetriableError as exc:
                if time.monotonic() >= deadline:
                    raise BusError(f"Kafka {what} failed for {timeout_s:g}s: {exc!r}") from exc
                log.warning("Kafka %s failed (%r); retrying with a new admin client", what, exc)
                with self._lock:
                    if self._admin is admin:
                        self._admin = None
                admin.close()
                time.sleep(0.5)
            except kerr.KafkaError as exc:
                if denied := denial(exc, self.cluster.principal, what, "the admin API"):
                    raise denied from exc
                raise BusError(f"Kafka {what} failed: {exc!r}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._admin is not None:
                self._admin.close()
                self._admin = None

    # ----------------------------------------------------------------- topics
    def partitions(self, topic: str) -> list[int] | None:
        """Partition ids of ``topic`` (None if it does not exist)."""

        def describe(admin: KafkaAdminClient) -> list[dict[str, Any]]:
            return admin.describe_topics([topic])

        for t in self.call(f"describe topic {topic!r}", describe):
            if t.get("name") != topic:
                continue
            code = t.get("error_code", 0)
            if code == kerr.UnknownTopicOrPartitionError.errno:
                return None
            if code == kerr.TopicAuthorizationFailedError.errno:
                raise BusAccessDenied(self.cluster.principal, "DESCRIBE", f"topic {topic!r}")
            if code:
                raise BusError(f"describing topic {topic!r}: {kerr.for_code(code).__name__}")
            return sorted(p["partition_index"] for p in t.get("partitions") or [])
        return None

    def list_topics(self) -> list[str]:
        """Names of the cluster's topics (internal ones excluded)."""
        return sorted(t for t in self.call("list topics", lambda a: a.list_topics()) if not t.startswith("__"))

    def topic_max_message_bytes(self, topic: str) -> int:
        """The topic's ``max.message.bytes`` (largest record batch the broker accepts)."""
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, ["max.message.bytes"])
        result = self.call(
            f"describe config of topic {topic!r}", lambda a: a.describe_configs([resource], config_filter="all")
        )
        try:
            return int(result["topic"][topic]["max.message.bytes"]["value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BusError(f"topic {topic!r}: no max.message.bytes in its config ({result!r})") from exc

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet; grow the partitions of those that do, where asked."""
        if not specs:
            return
        for spec in self._create(specs):
            self._match_partitions(spec)
        names = [spec.name for spec in specs]
        self.call("wait for topic metadata", lambda a: a.wait_for_topics(names, timeout_ms=REQUEST_TIMEOUT_MS))

    def _create(self, specs: Sequence[TopicSpec]) -> list[TopicSpec]:
        """Create ``specs``' topics; the specs of those that existed already."""
        request: dict[str, dict[str, Any]] = {}
        for spec in specs:
            configs = {
                "retention.ms": str(spec.retention_ms),
                "max.message.bytes": str(spec.max_message_bytes),
                "cleanup.policy": "compact" if spec.compacted else "delete",
            }
            request[spec.name] = {"num_partitions": spec.partitions, "replication_factor": -1, "configs": configs}

        def create(admin: KafkaAdminClient) -> dict[str, Any]:
            return admin.create_topics(
                request,
                timeout_ms=REQUEST_TIMEOUT_MS,
                raise_errors=False,
            )

        result = self.call("create topics", create)
        existing: list[TopicSpec] = []
        by_name = {spec.name: spec for spec in specs}
        for topic in result["topics"]:
            code = topic.get("error_code", 0)
            name = topic["name"]
            if code == 0:
                log.info("created topic %s (%d partitions)", name, by_name[name].partitions)
            elif code == kerr.TopicAlreadyExistsError.errno:
                existing.append(by_name[name])
            elif code in (kerr.TopicAuthorizationFailedError.errno, kerr.ClusterAuthorizationFailedError.errno):
                # a stage's principal may not create topics (the operator's `xueliang topics` does):
                # fine if the topic is there and visible to it
                if self.partitions(name) is None:
                    raise BusAccessDenied(
                        self.cluster.principal, "CREATE", f"topic {name!r}", "and it does not exist yet"
                    )
                existing.append(by_name[name])
            else:
                message = topic.get("error_message") or kerr.for_code(code).__name__
                raise BusError(f"cannot create topic {name!r}: {message}")
        return existing

    def _match_partitions(self, spec: TopicSpec) -> None:
        """Add partitions to an existing topic that has fewer than ``spec`` asks for (Kafka cannot remove any)."""
        parts = self.partitions(spec.name) or []
        if len(parts) < spec.partitions:
            log.warning(
                "topic %s has %d partitions, config asks for %d: adding partitions "
                "(keys move to other partitions from now on)",
                spec.name,
                len(parts),
                spec.partitions,
            )
            try:
                self.call(
                    f"add partitions to {spec.name!r}", lambda a: a.create_partitions({spec.name: spec.partitions})
                )
            except BusAccessDenied as exc:  # an operator's job where stages run with least privilege
                log.warning(
                    "%s may not add partitions to %s (it has %d, the configuration asks for %d): "
                    "the operator must (%s)",
                    self.cluster.principal,
                    spec.name,
                    len(parts),
                    spec.partitions,
                    exc,
                )
        elif len(parts) > spec.partitions:
            log.warning(
                "topic %s has %d partitions, more than the %d configured (Kafka cannot remove partitions); keeping %d",
                spec.name,
                len(parts),
                spec.partitions,
                len(parts),
            )

    def delete_topics(self, names: Sequence[str]) -> None:
        """Delete topics (tests and operators; the stages never delete). Missing ones are ignored."""
        if not names:
            return

        def delete(admin: KafkaAdminClient) -> Any:
            return admin.delete_topics(list(names), timeout_ms=REQUEST_TIMEOUT_MS, raise_errors=False)

        result = self.call("delete topics", delete)
        for topic in result["topics"]:
            code = topic.get("error_code", 0)
            if code not in (0, kerr.UnknownTopicOrPartitionError.errno):
                raise BusError(f"cannot delete topic {topic.get('name')!r}: {kerr.for_code(code).__name__}")

    # ---------------------------------------------------------------- offsets
    def end_offsets(self, topic: str) -> dict[int, int]:
        parts = self.partitions(topic)
        if parts is None:
            raise BusError(f"topic {topic!r} does not exist (create it with ensure_topics)")
        specs = {KTopicPartition(topic, p): OffsetSpec.LATEST for p in parts}
        result = self.call(f"list end offsets of {topic!r}", lambda a: a.list_partition_offsets(specs))
        return {tp.partition: int(o.offset) for tp, o in result.items()}

    def committed_offsets(self, group_id: str, topic: str) -> dict[int, int]:
        def fetch(admin: KafkaAdminClient) -> dict[str, dict[KTopicPartition, OffsetAndMetadata]]:
            return admin.list_group_offsets({group_id: None})

        try:
            result = self.call(f"fetch committed offsets of group {group_id!r}", fetch)
        except BusError as exc:
            if isinstance(exc.__cause__, kerr.GroupIdNotFoundError):
                return {}
            raise
        return {
            tp.partition: int(om.offset)
            for tp, om in result.get(group_id, {}).items()
            if tp.topic == topic and om.offset is not None and om.offset >= 0
        }
