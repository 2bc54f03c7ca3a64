"""kafka-python, loaded once (quietly, with a join race fixed), the limits every client shares, and
:class:`Cluster`: where the brokers are, who we are to them, and client creation that waits for them."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
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

from xueliang.bus.base import BusError
from xueliang.config.bus import KafkaBusConfig
from xueliang.contracts import MAX_MESSAGE_BYTES

__all__ = [
    "MAX_REQUEST_BYTES",
    "REQUEST_TIMEOUT_MS",
    "Cluster",
    "ConfigResource",
    "ConfigResourceType",
    "DefaultRecordBatchBuilder",
    "KTopicPartition",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaProducer",
    "OffsetAndMetadata",
    "OffsetSpec",
    "construct",
    "kerr",
]

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


def construct(cls: type[_T], *args: Any, **kwargs: Any) -> _T:
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


class Cluster:
    """One Kafka cluster as this process reaches it: the bootstrap servers, the client security
    options (:func:`xueliang.bus.kafka.security.security_options`) and the principal the broker sees."""

    def __init__(self, config: KafkaBusConfig, security: dict[str, Any]) -> None:
        self.config = config
        self.servers = list(config.bootstrap_servers)
        self.security = security
        user = security.get("sasl_plain_username")
        self.principal = f"User:{user}" if user else "User:ANONYMOUS"
        """The principal the broker sees (ACLs are granted to it)."""

    def options(self) -> dict[str, Any]:
        """The options every client takes: where the brokers are and how to authenticate."""
        return {"bootstrap_servers": self.servers, **self.security}

    def connect(self, what: str, make: Callable[[int], _T]) -> _T:
        """Create a client with ``make(bootstrap_timeout_ms)``, retrying while no broker answers,
        for at most ``client_timeout_s``."""
        deadline = time.monotonic() + self.config.client_timeout_s
        attempt = 0
        while True:
            attempt += 1
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            try:
                return make(max(1000, remaining_ms))
            except _UNREACHABLE as exc:
                if time.monotonic() >= deadline:
                    raise self._unreachable(what, attempt, exc) from exc
                log.warning(
                    "Kafka at %s not reachable yet (creating %s): %r; retrying", ",".join(self.servers), what, exc
                )
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            except kerr.KafkaError as exc:
                raise BusError(f"cannot create {what} for Kafka at {','.join(self.servers)}: {exc!r}") from exc
            except (ValueError, RuntimeError) as exc:  # bad settings, e.g. a codec whose library is missing
                raise BusError(f"cannot create {what}: {exc}") from exc

    def _unreachable(self, what: str, attempts: int, exc: BaseException) -> BusError:
        refused = (
            f" (or it refused {self.principal}'s SCRAM credentials or the TLS handshake: "
            "check XL_KAFKA_USERNAME, XL_KAFKA_PASSWORD and the CA file)"
            if self.security
            else ""
        )
        return BusError(
            f"no Kafka broker answered at {','.join(self.servers)} within "
            f"{self.config.client_timeout_s:g}s (creating {what}, {attempts} attempts){refused}: {exc!r}"
        )
