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
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

with warnings.catch_warnings():
    # kafka-python 3.0 loads its protocol schemas with deprecated importlib.resources calls
    # (about 200 DeprecationWarnings on import)
    warnings.filterwarnings("ignore", message="(read|open)_text is deprecated", category=DeprecationWarning)
    import kafka.errors as kerr
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetSpec
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.record.default_records import DefaultRecordBatchBuilder
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KTopicPartition

from xueliang.bus.base import (
    Bus,
    BusAccessDenied,
    BusError,
    Compression,
    Consumer,
    OffsetReset,
    Producer,
    Record,
    TopicPartition,
)
from xueliang.config.bus import KafkaBusConfig, KafkaSecurityConfig
from xueliang.contracts import MAX_MESSAGE_BYTES, TopicSpec

log = logging.getLogger(__name__)

#: Largest request a producer sends / partition fetch a consumer asks for: one
#: MAX_MESSAGE_BYTES record plus its key, headers and record-batch overhead.
MAX_REQUEST_BYTES = MAX_MESSAGE_BYTES + 64 * 1024
#: Bound on blocking calls against the broker (commit, offsets, admin).
REQUEST_TIMEOUT_MS = 30_000

_T = TypeVar("_T")

# Errors that mean "no broker answered (yet)": client creation retries them.
_UNREACHABLE = (kerr.KafkaTimeoutError, kerr.KafkaConnectionError, kerr.NodeNotReadyError, kerr.MetadataEmptyBrokerList)


def _patch_kafka_python_join_race() -> None:
    """Work around a kafka-python 3.0.12 race that leaves a consumer without partitions forever.

    ``BaseCoordinator.join_group_async`` loops ``while self.need_rejoin()`` and keeps
    an unfinished JoinGroup/SyncGroup task across ``poll`` calls when ``poll`` times
    out. If the reason to rejoin goes away while that task is in flight (the leader's
    own assignment refreshes the metadata snapshot that triggered the rejoin), the
    next ``poll`` skips the loop, the finished task's assignment is never applied,
    heartbeats stay disabled and the broker drops the member. Seen in about one in
    three runs of tests/test_bus_contract.py with 0.1 s polls. The fix: a join in
    flight still needs rejoining, so the loop awaits and applies it.
    """
    from kafka.coordinator.consumer import ConsumerCoordinator

    if getattr(ConsumerCoordinator, "_xl_join_race_patched", False):
        return
    original = ConsumerCoordinator.need_rejoin

    def need_rejoin(self: Any) -> bool:
        if getattr(self, "_join_task", None) is not None:
            return True
        return bool(original(self))

    ConsumerCoordinator.need_rejoin = need_rejoin
    ConsumerCoordinator._xl_join_race_patched = True


_patch_kafka_python_join_race()


_DENIED = (
    kerr.TopicAuthorizationFailedError,
    kerr.GroupAuthorizationFailedError,
    kerr.ClusterAuthorizationFailedError,
)


def security_options(security: KafkaSecurityConfig) -> dict[str, Any]:
    """kafka-python client options for ``security`` (credentials resolved from the environment)."""
    sec = security.resolved()
    if sec.protocol == "PLAINTEXT":
        return {}
    opts: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.protocol.startswith("SASL"):
        if not sec.username or not sec.password:
            raise BusError(
                f"bus.security.protocol is {sec.protocol}: set the stage's SCRAM user and password "
                "(XL_KAFKA_USERNAME and XL_KAFKA_PASSWORD, or bus.security.username/password)"
            )
        opts.update(
            sasl_mechanism=sec.sasl_mechanism, sasl_plain_username=sec.username, sasl_plain_password=sec.password
        )
    if sec.protocol.endswith("SSL"):
        if sec.ca_file:
            opts["ssl_cafile"] = sec.ca_file
        opts["ssl_check_hostname"] = sec.check_hostname
    return opts


def _denial(exc: BaseException, principal: str, operation: str, resource: str) -> BusAccessDenied | None:
    """A :class:`BusAccessDenied` if ``exc`` (or its cause) is the broker's authorization refusal."""
    seen = exc
    for _ in range(3):
        if isinstance(seen, BusAccessDenied):
            return seen
        if isinstance(seen, _DENIED):
            if isinstance(seen, kerr.GroupAuthorizationFailedError):
                what = resource if resource.startswith("group") else f"{resource} (its consumer group)"
            elif isinstance(seen, kerr.ClusterAuthorizationFailedError):
                what = f"the cluster ({resource})"
            else:
                what = resource
            return BusAccessDenied(principal, operation, what, type(seen).__name__)
        if seen.__cause__ is None:
            break
        seen = seen.__cause__
    return None


def _construct(cls: type[_T], *args: Any, **kwargs: Any) -> _T:
    """``cls(*args, **kwargs)``, closing the half-built client when its constructor fails:
    KafkaConsumer and KafkaAdminClient start their network thread before they bootstrap, and
    a failed bootstrap would otherwise leave that thread reconnecting forever."""
    obj = cls.__new__(cls)
    try:
        obj.__init__(*args, **kwargs)  # type: ignore[misc]  # deliberate: construct in two steps (see above)
    except BaseException:
        client = getattr(obj, "_client", None)
        if client is not None:
            try:
                client.close()
            except (kerr.KafkaError, OSError) as exc:  # keep the constructor's error; say what else failed
                log.warning("closing a %s whose creation failed: %r", cls.__name__, exc)
        raise
    return obj


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


class KafkaBus(Bus):
    """Producers, consumers and topic administration on one Kafka cluster."""

    def __init__(self, config: KafkaBusConfig) -> None:
        self.config = config
        self._servers = list(config.bootstrap_servers)
        self._security = security_options(config.security)
        user = self._security.get("sasl_plain_username")
        self.principal = f"User:{user}" if user else "User:ANONYMOUS"
        """The principal the broker sees (ACLs are granted to it)."""
        self._admin: KafkaAdminClient | None = None
        self._admin_lock = threading.Lock()
        self._clients: weakref.WeakSet[_KafkaProducer | _KafkaConsumer] = weakref.WeakSet()
        self._closed = False

    # ------------------------------------------------------------ connecting
    def _connect(self, what: str, make: Callable[[int], _T]) -> _T:
        """Create a client, retrying while no broker answers, for at most ``client_timeout_s``."""
        deadline = time.monotonic() + self.config.client_timeout_s
        attempt = 0
        while True:
            attempt += 1
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            try:
                return make(max(1000, remaining_ms))
            except _UNREACHABLE as exc:
                if time.monotonic() >= deadline:
                    refused = (
                        f" (or it refused {self.principal}'s SCRAM credentials or the TLS handshake: "
                        "check XL_KAFKA_USERNAME, XL_KAFKA_PASSWORD and the CA file)"
                        if self._security
                        else ""
                    )
                    raise BusError(
                        f"no Kafka broker answered at {','.join(self._servers)} within "
                        f"{self.config.client_timeout_s:g}s (creating {what}, {attempt} attempts){refused}: {exc!r}"
                    ) from exc
                log.warning(
                    "Kafka at %s not reachable yet (creating %s): %r; retrying", ",".join(self._servers), what, exc
                )
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            except kerr.KafkaError as exc:
                raise BusError(f"cannot create {what} for Kafka at {','.join(self._servers)}: {exc!r}") from exc
            except (ValueError, RuntimeError) as exc:  # bad settings, e.g. a codec whose library is missing
                raise BusError(f"cannot create {what}: {exc}") from exc

    def _admin_client(self) -> KafkaAdminClient:
        with self._admin_lock:
            if self._closed:
                raise BusError("bus is closed")
            if self._admin is None:
                self._admin = self._connect(
                    "admin client",
                    lambda t: _construct(
                        KafkaAdminClient,
                        bootstrap_servers=self._servers,
                        **self._security,
                        client_id="xueliang-admin",
                        request_timeout_ms=REQUEST_TIMEOUT_MS,
                        bootstrap_timeout_ms=t,
                    ),
                )
            return self._admin

    def _admin_call(self, what: str, fn: Callable[[KafkaAdminClient], _T]) -> _T:
        """Run ``fn`` on the admin client; retriable failures (a broker restarting) are retried
        with a fresh admin client for up to ``client_timeout_s``."""
        deadline = time.monotonic() + self.config.client_timeout_s
        while True:
            admin = self._admin_client()
            try:
                with self._admin_lock:
                    return fn(admin)
            except kerr.RetriableError as exc:
                if time.monotonic() >= deadline:
                    raise BusError(f"Kafka {what} failed for {self.config.client_timeout_s:g}s: {exc!r}") from exc
                log.warning("Kafka %s failed (%r); retrying with a new admin client", what, exc)
                with self._admin_lock:
                    if self._admin is admin:
                        self._admin = None
                admin.close()
                time.sleep(0.5)
            except kerr.KafkaError as exc:
                if denied := _denial(exc, self.principal, what, "the admin API"):
                    raise denied from exc
                raise BusError(f"Kafka {what} failed: {exc!r}") from exc

    # ----------------------------------------------------------------- topics
    def _partitions(self, topic: str) -> list[int] | None:
        """Partition ids of ``topic`` (None if it does not exist)."""

        def describe(admin: KafkaAdminClient) -> list[dict[str, Any]]:
            return admin.describe_topics([topic])

        for t in self._admin_call(f"describe topic {topic!r}", describe):
            if t.get("name") != topic:
                continue
            code = t.get("error_code", 0)
            if code == kerr.UnknownTopicOrPartitionError.errno:
                return None
            if code == kerr.TopicAuthorizationFailedError.errno:
                raise BusAccessDenied(self.principal, "DESCRIBE", f"topic {topic!r}")
            if code:
                raise BusError(f"describing topic {topic!r}: {kerr.for_code(code).__name__}")
            return sorted(p["partition_index"] for p in t.get("partitions") or [])
        return None

    def list_topics(self) -> list[str]:
        """Names of the cluster's topics (internal ones excluded)."""
        return sorted(t for t in self._admin_call("list topics", lambda a: a.list_topics()) if not t.startswith("__"))

    def topic_exists(self, topic: str) -> bool:
        return self._partitions(topic) is not None

    def topic_max_message_bytes(self, topic: str) -> int:
        """The topic's ``max.message.bytes`` (largest record batch the broker accepts)."""
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, ["max.message.bytes"])
        result = self._admin_call(
            f"describe config of topic {topic!r}", lambda a: a.describe_configs([resource], config_filter="all")
        )
        try:
            return int(result["topic"][topic]["max.message.bytes"]["value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BusError(f"topic {topic!r}: no max.message.bytes in its config ({result!r})") from exc

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        if not specs:
            return
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

        result = self._admin_call("create topics", create)
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
                if self._partitions(name) is None:
                    raise BusAccessDenied(self.principal, "CREATE", f"topic {name!r}", "and it does not exist yet")
                existing.append(by_name[name])
            else:
                message = topic.get("error_message") or kerr.for_code(code).__name__
                raise BusError(f"cannot create topic {name!r}: {message}")
        for spec in existing:
            parts = self._partitions(spec.name) or []
            if len(parts) < spec.partitions:
                log.warning(
                    "topic %s has %d partitions, config asks for %d: adding partitions "
                    "(keys move to other partitions from now on)",
                    spec.name,
                    len(parts),
                    spec.partitions,
                )

                def grow(admin: KafkaAdminClient, s: TopicSpec = spec) -> Any:
                    return admin.create_partitions({s.name: s.partitions})

                try:
                    self._admin_call(f"add partitions to {spec.name!r}", grow)
                except BusAccessDenied as exc:  # an operator's job where stages run with least privilege
                    log.warning(
                        "%s may not add partitions to %s (it has %d, the configuration asks for %d): "
                        "the operator must (%s)",
                        self.principal,
                        spec.name,
                        len(parts),
                        spec.partitions,
                        exc,
                    )
            elif len(parts) > spec.partitions:
                log.warning(
                    "topic %s has %d partitions, more than the %d configured (Kafka cannot remove "
                    "partitions); keeping %d",
                    spec.name,
                    len(parts),
                    spec.partitions,
                    len(parts),
                )
        names = [spec.name for spec in specs]
        self._admin_call("wait for topic metadata", lambda a: a.wait_for_topics(names, timeout_ms=REQUEST_TIMEOUT_MS))

    def delete_topics(self, names: Sequence[str]) -> None:
        """Delete topics (tests and operators; the stages never delete). Missing ones are ignored."""
        if not names:
            return

        def delete(admin: KafkaAdminClient) -> Any:
            return admin.delete_topics(list(names), timeout_ms=REQUEST_TIMEOUT_MS, raise_errors=False)

        result = self._admin_call("delete topics", delete)
        for topic in result["topics"]:
            code = topic.get("error_code", 0)
            if code not in (0, kerr.UnknownTopicOrPartitionError.errno):
                raise BusError(f"cannot delete topic {topic.get('name')!r}: {kerr.for_code(code).__name__}")

    def end_offsets(self, topic: str) -> dict[int, int]:
        parts = self._partitions(topic)
        if parts is None:
            raise BusError(f"topic {topic!r} does not exist (create it with ensure_topics)")
        specs = {KTopicPartition(topic, p): OffsetSpec.LATEST for p in parts}
        result = self._admin_call(f"list end offsets of {topic!r}", lambda a: a.list_partition_offsets(specs))
        return {tp.partition: int(o.offset) for tp, o in result.items()}

    def committed_offsets(self, group_id: str, topic: str) -> dict[int, int]:
        def fetch(admin: KafkaAdminClient) -> dict[str, dict[KTopicPartition, OffsetAndMetadata]]:
            return admin.list_group_offsets({group_id: None})

        try:
            result = self._admin_call(f"fetch committed offsets of group {group_id!r}", fetch)
        except BusError as exc:
            if isinstance(exc.__cause__, kerr.GroupIdNotFoundError):
                return {}
            raise
        return {
            tp.partition: int(om.offset)
            for tp, om in result.get(group_id, {}).items()
            if tp.topic == topic and om.offset is not None and om.offset >= 0
        }

    # -------------------------------------------------------------- clients
    def producer(self, client_id: str = "xueliang", *, compression: Compression | None = None) -> Producer:
        if self._closed:
            raise BusError("bus is closed")
        p = _KafkaProducer(self, client_id, compression)
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
        c = _KafkaConsumer(self, group_id, tuple(topics), offset_reset, client_id, max_record_bytes)
        self._clients.add(c)
        return c

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in list(self._clients):
            client.close()
        with self._admin_lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None


class _KafkaProducer(Producer):
    def __init__(self, bus: KafkaBus, client_id: str, compression: Compression | None) -> None:
        self._bus = bus
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
        bus = self._bus
        delivery_ms = int(bus.config.delivery_timeout_s * 1000)
        # kafka-python requires delivery_timeout_ms >= linger_ms + request_timeout_ms
        linger_ms = bus.config.linger_ms
        request_ms = max(500, min(REQUEST_TIMEOUT_MS, delivery_ms - linger_ms - 1))
        return bus._connect(
            f"producer {self._client_id!r}",
            lambda t: _construct(
                KafkaProducer,
                bootstrap_servers=bus._servers,
                **bus._security,
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
            if not self._bus.topic_exists(topic):
                raise BusError(f"topic {topic!r} does not exist (create it with ensure_topics)")
            limit = self._limits[topic] = self._bus.topic_max_message_bytes(topic)
        return limit

    def _done(self, topic: str, failure: Exception | None) -> None:
        with self._lock:
            self._pending -= 1
            if failure is None:
                return
            self._failed += 1
            failed = self._failed
            if self._denied is None and (denied := _denial(failure, self._bus.principal, "WRITE", f"topic {topic!r}")):
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
            if denied := _denial(exc, self._bus.principal, "WRITE", f"topic {topic!r}"):
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


class _KafkaConsumer(Consumer):
    def __init__(
        self,
        bus: KafkaBus,
        group_id: str,
        topics: tuple[str, ...],
        offset_reset: OffsetReset,
        client_id: str,
        max_record_bytes: int | None,
    ) -> None:
        self._bus = bus
        self._group_id = group_id
        self._closed = False
        cfg = bus.config
        # topics given to the constructor (not subscribe()) so their metadata is requested at once
        # and the first join already sees their partitions
        self._consumer: KafkaConsumer = bus._connect(
            f"consumer {client_id!r} of group {group_id!r}",
            lambda t: _construct(
                KafkaConsumer,
                *topics,
                bootstrap_servers=bus._servers,
                **bus._security,
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
            if denied := _denial(exc, self._bus.principal, "READ", f"topic(s) {topics} / group {self._group_id!r}"):
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
            if denied := _denial(exc, self._bus.principal, "READ (commit)", f"group {self._group_id!r}"):
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
