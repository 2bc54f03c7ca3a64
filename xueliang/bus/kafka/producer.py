"""The Kafka producer behind :class:`~xueliang.bus.base.Producer`: idempotent, ``acks=all``, records
checked against the topic's size limit before they are queued, delivery failures reported by ``flush``."""

from __future__ import annotations

import logging
import threading

from xueliang.bus.base import BusAccessDenied, BusError, Compression, Producer
from xueliang.bus.kafka._client import (
    MAX_REQUEST_BYTES,
    REQUEST_TIMEOUT_MS,
    Cluster,
    DefaultRecordBatchBuilder,
    KafkaProducer,
    construct,
    kerr,
)
from xueliang.bus.kafka.admin import TopicAdmin
from xueliang.bus.kafka.security import denial

log = logging.getLogger(__name__)


class KafkaBusProducer(Producer):
    def __init__(self, cluster: Cluster, admin: TopicAdmin, client_id: str, compression: Compression | None) -> None:
        self._cluster = cluster
        self._admin = admin
        self._client_id = client_id
        self._compression = compression
        self._lock = threading.Lock()
        self._pending = 0
        # delivery failures since the last flush: a count and the first few reasons (bounded, as a
        # caller that never flushes, like the frame publisher, must not grow this without limit)
        self._failed = 0
        self._errors: list[str] = []
        self._denied: BusAccessDenied | None = None
        self._limits: dict[str, int] = {}  # topic -> max.message.bytes, for the topics sent to so far
        self._closed = False
        self._producer = self._create()

    def _create(self) -> KafkaProducer:
        config = self._cluster.config
        delivery_ms = int(config.delivery_timeout_s * 1000)
        # kafka-python requires delivery_timeout_ms >= linger_ms + request_timeout_ms
        linger_ms = config.linger_ms
        request_ms = max(500, min(REQUEST_TIMEOUT_MS, delivery_ms - linger_ms - 1))
        return self._cluster.connect(
            f"producer {self._client_id!r}",
            lambda t: construct(
                KafkaProducer,
                **self._cluster.options(),
                client_id=self._client_id,
                acks="all",
                enable_idempotence=True,
                compression_type=self._compression,
                max_request_size=MAX_REQUEST_BYTES,
                linger_ms=linger_ms,
                # below every topic's max.message.bytes, so only a single oversize record can overflow
                batch_size=256 * 1024,
                delivery_timeout_ms=max(delivery_ms, linger_ms + request_ms),
                request_timeout_ms=request_ms,
                max_block_ms=REQUEST_TIMEOUT_MS,
                allow_auto_create_topics=False,
                reconnect_backoff_max_ms=2000,
                bootstrap_timeout_ms=t,
            ),
        )

    def _recover_if_fatal(self) -> None:
        """kafka-python's idempotent producer refuses every later record after a fatal error
        (e.g. a batch the broker rejected as too large): replace it with a fresh one."""
        tm = getattr(self._producer, "_transaction_manager", None)
        if tm is not None and tm.has_fatal_error():
            log.error("producer %s hit a fatal error (%r); creating a new one", self._client_id, tm.last_error)
            self._producer.close(timeout=1)
            self._producer = self._create()

    def _limit(self, topic: str) -> int:
        """The topic's size limit; fails fast on a topic that does not exist (instead of
        waiting max_block_ms for its metadata)."""
        limit = self._limits.get(topic)
        if limit is None:
            if self._admin.partitions(topic) is None:
                raise BusError(f"topic {topic!r} does not exist (create it with ensure_topics)")
            limit = self._limits[topic] = self._admin.topic_max_message_bytes(topic)
        return limit

    def _done(self, topic: str, failure: Exception | None) -> None:
        with self._lock:
            self._pending -= 1
            if failure is None:
                return
            self._failed += 1
            failed = self._failed
            if self._denied is None and (
                denied := denial(failure, self._cluster.principal, "WRITE", f"topic {topic!r}")
            ):
                self._denied = denied
            if len(self._errors) < 5:
                self._errors.append(f"{topic}: {failure!r}")
        if failed & (failed - 1) == 0:  # 1st, 2nd, 4th, 8th... failure: visible without flooding the log
            log.warning(
                "producer %s: %d record(s) not delivered since the last flush, latest to %s: %r",
                self._client_id,
                failed,
                topic,
                failure,
            )

    def send(
        self,
        topic: str,
        value: bytes,
        key: str | None = None,
        headers: dict[str, bytes] | None = None,
        partition: int | None = None,
    ) -> None:
        if self._closed:
            raise BusError("producer is closed")
        limit = self._limit(topic)
        kkey = key.encode() if key is not None else None
        kvalue = bytes(value)
        kheaders = [(k, bytes(v)) for k, v in (headers or {}).items()]
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(kkey, kvalue, kheaders)
        if size > min(limit, MAX_REQUEST_BYTES):
            raise BusError(
                f"record of {len(kvalue)} bytes ({size} with key, headers and batch overhead) "
                f"exceeds {topic}'s limit of {min(limit, MAX_REQUEST_BYTES)} bytes"
            )
        self._recover_if_fatal()
        with self._lock:  # counted before sending: the acknowledgement may arrive before send() returns
            self._pending += 1
        try:
            future = self._producer.send(topic, value=kvalue, key=kkey, headers=kheaders, partition=partition)
        except (AssertionError, ValueError, TypeError, kerr.KafkaError) as exc:
            with self._lock:
                self._pending -= 1
            # kafka-python asserts on a partition out of range; KafkaTimeoutError when it cannot get
            # the topic's metadata within max_block_ms (first send to a topic while the broker is away)
            if denied := denial(exc, self._cluster.principal, "WRITE", f"topic {topic!r}"):
                raise denied from exc
            raise BusError(f"cannot send to {topic} (partition={partition}): {exc!r}") from exc
        future.add_callback(lambda _md: self._done(topic, None))
        future.add_errback(lambda exc: self._done(topic, exc))

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def flush(self, timeout: float | None = None) -> None:
        try:
            self._producer.flush(timeout=timeout)
        except kerr.KafkaTimeoutError as exc:
            raise BusError(f"flush timed out after {timeout}s with {self.pending()} records unacknowledged") from exc
        with self._lock:
            failed, errors, denied = self._failed, self._errors, self._denied
            self._failed, self._errors, self._denied = 0, [], None
        if denied is not None:
            raise denied
        if failed:
            raise BusError(f"{failed} record(s) were not delivered since the last flush; first: {errors[0]}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._producer.close(timeout=10)
