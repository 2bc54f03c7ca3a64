"""The bus interface every stage talks to, and the semantics both transports honour.

Semantics the code relies on (asserted by ``tests/test_bus_contract.py`` against
the embedded and the Kafka transport alike):

* A record's partition is chosen by its key (camera id) unless given explicitly;
  records with the same key keep their order.
* Consumers in one group share a topic's partitions: each partition is read by at
  most one member at a time; members joining or leaving rebalance the partitions.
* Different groups each read every record.
* Offsets are committed explicitly (:meth:`Consumer.commit`) after the records'
  effects are durable. A record not committed is delivered again to whichever
  member owns its partition next (at-least-once); downstream writes are idempotent.
* A new group starts at the earliest or latest offset, as asked.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from xueliang.contracts import TopicSpec

OffsetReset = Literal["earliest", "latest"]
Compression = Literal["gzip", "lz4", "zstd", "snappy"]
"""Producer batch compression: none for JPEG frames (incompressible), lz4/zstd for JSON topics."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


class BusError(RuntimeError):
    """The transport failed (broker unreachable, message too large, ...)."""


class BusAccessDenied(BusError):
    """The broker refused this principal an operation on a resource (no ACL grants it).

    Not fixed by retrying at once: the message names the principal, the operation and the
    topic or group, so an operator can grant the ACL (``python -m xueliang.bus.acls``)."""

    def __init__(self, principal: str, operation: str, resource: str, detail: str = "") -> None:
        self.principal, self.operation, self.resource = principal, operation, resource
        super().__init__(
            f"Kafka denied {principal} {operation} on {resource}{f' ({detail})' if detail else ''}: "
            f"grant it an ACL (python -m xueliang.bus.acls; docs/kafka.md) or run the stage as a principal that has one"
        )


class Producer(abc.ABC):
    @abc.abstractmethod
    def send(
        self,
        topic: str,
        value: bytes,
        key: str | None = None,
        headers: dict[str, bytes] | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue a record; raises :class:`BusError` if it can never be delivered (too large...)."""

    @abc.abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Block until every queued record is acknowledged (acks=all); raise BusError on failure."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def pending(self) -> int:
        """Records queued but not yet acknowledged."""
        return 0


class Consumer(abc.ABC):
    @abc.abstractmethod
    def poll(self, timeout: float = 1.0, max_records: int = 500) -> list[Record]:
        """Return the next records of the partitions this member owns (possibly none)."""

    @abc.abstractmethod
    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (next offset to read per partition) or, if None, the positions
        after every record returned so far."""

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]: ...

    @abc.abstractmethod
    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the group (its partitions move to the other members). Uncommitted records are redelivered."""

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` (None if never committed)."""
        return None


class Bus(abc.ABC):
    """Factory for producers and consumers on one transport."""

    @abc.abstractmethod
    def producer(self, client_id: str = "xueliang", *, compression: Compression | None = None) -> Producer: ...

    @abc.abstractmethod
    def consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        *,
        offset_reset: OffsetReset = "earliest",
        client_id: str = "xueliang",
        max_record_bytes: int | None = None,
    ) -> Consumer: ...

    @abc.abstractmethod
    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet (idempotent)."""

    @abc.abstractmethod
    def end_offsets(self, topic: str) -> dict[int, int]:
        """Next offset to be written, per partition."""

    @abc.abstractmethod
    def committed_offsets(self, group_id: str, topic: str) -> dict[int, int]:
        """The group's committed offsets per partition (missing = never committed)."""

    def close(self) -> None:  # pragma: no cover - default no-op
        return None


def lag(bus: Bus, group_id: str, topic: str) -> dict[int, int]:
    """Consumer lag per partition (end offset minus committed offset)."""
    ends = bus.end_offsets(topic)
    committed = bus.committed_offsets(group_id, topic)
    return {p: end - committed.get(p, 0) for p, end in ends.items()}
