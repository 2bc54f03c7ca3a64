"""The Kafka consumer behind :class:`~xueliang.bus.base.Consumer`: a group member that never
auto-commits, converting kafka-python's records (header tuples, byte keys) to :class:`Record`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from xueliang.bus.base import BusError, Consumer, OffsetReset, Record, TopicPartition
from xueliang.bus.kafka._client import (
    MAX_REQUEST_BYTES,
    REQUEST_TIMEOUT_MS,
    Cluster,
    KafkaConsumer,
    KTopicPartition,
    OffsetAndMetadata,
    construct,
    kerr,
)
from xueliang.bus.kafka.security import denial

log = logging.getLogger(__name__)


def _tp(tp: TopicPartition) -> KTopicPartition:
    return KTopicPartition(tp.topic, tp.partition)


def _to_record(rec: Any) -> Record:
    key = rec.key.decode("utf-8", errors="replace") if rec.key is not None else None
    return Record(
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        key=key,
        value=bytes(rec.value) if rec.value is not None else b"",
        headers={k: bytes(v) if v is not None else b"" for k, v in (rec.headers or [])},
        timestamp_ms=int(rec.timestamp),
    )


class KafkaBusConsumer(Consumer):
    def __init__(
        self,
        cluster: Cluster,
        group_id: str,
        topics: tuple[str, ...],
        offset_reset: OffsetReset,
        client_id: str,
        max_record_bytes: int | None,
    ) -> None:
        self._principal = cluster.principal
        self._group_id = group_id
        self._closed = False
        cfg = cluster.config
        # topics given to the constructor (not subscribe()) so their metadata is requested at once
        # and the first join already sees their partitions
        self._consumer: KafkaConsumer = cluster.connect(
            f"consumer {client_id!r} of group {group_id!r}",
            lambda t: construct(
                KafkaConsumer,
                *topics,
                **cluster.options(),
                client_id=client_id,
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset=offset_reset,
                max_partition_fetch_bytes=max_record_bytes or MAX_REQUEST_BYTES,
                fetch_max_bytes=max(16 * 1024 * 1024, max_record_bytes or 0),
                session_timeout_ms=int(cfg.session_timeout_s * 1000),
                heartbeat_interval_ms=int(cfg.heartbeat_interval_s * 1000),
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                allow_auto_create_topics=False,
                reconnect_backoff_max_ms=2000,
                bootstrap_timeout_ms=t,
            ),
        )

    def poll(self, timeout: float = 1.0, max_records: int = 500) -> list[Record]:
        if self._closed:
            raise BusError("consumer is closed")
        try:
            batches = self._consumer.poll(timeout_ms=max(0, int(timeout * 1000)), max_records=max_records)
        except kerr.KafkaError as exc:
            topics = ", ".join(sorted(self._consumer.subscription() or ())) or "?"
            if denied := denial(exc, self._principal, "READ", f"topic(s) {topics} / group {self._group_id!r}"):
                raise denied from exc
            raise BusError(f"poll of group {self._group_id!r} failed: {exc!r}") from exc
        out: list[Record] = []
        for ktp in sorted(batches, key=lambda x: (x.topic, x.partition)):
            out.extend(_to_record(r) for r in batches[ktp])
        return out

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        if self._closed:
            raise BusError("consumer is closed")
        owned = self._consumer.assignment()
        if offsets is None:
            koffsets = None
        else:
            koffsets = {}
            for tp, off in offsets.items():
                ktp = _tp(tp)
                if ktp not in owned:
                    raise BusError(f"cannot commit {tp}: partition is not assigned to this member (rebalanced)")
                koffsets[ktp] = OffsetAndMetadata(int(off), "", -1)
        try:
            self._consumer.commit(koffsets, timeout_ms=REQUEST_TIMEOUT_MS)
        except kerr.KafkaError as exc:
            if denied := denial(exc, self._principal, "READ (commit)", f"group {self._group_id!r}"):
                raise denied from exc
            raise BusError(f"commit of group {self._group_id!r} failed: {exc!r}") from exc

    def committed(self, tp: TopicPartition) -> int | None:
        try:
            off = self._consumer.committed(_tp(tp), timeout_ms=REQUEST_TIMEOUT_MS)
        except kerr.KafkaError as exc:
            raise BusError(f"fetching the committed offset of {tp} failed: {exc!r}") from exc
        return int(off) if off is not None and off >= 0 else None

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(k.topic, k.partition) for k in self._consumer.assignment()}

    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        owned = self._consumer.assignment()
        targets = owned if partitions is None else {_tp(tp) for tp in partitions} & owned
        if targets:
            self._consumer.seek_to_end(*targets)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close(autocommit=False, timeout_ms=REQUEST_TIMEOUT_MS)
        except kerr.KafkaError as exc:
            log.warning(
                "closing consumer of group %s: %r (the broker drops it after the session timeout)", self._group_id, exc
            )
