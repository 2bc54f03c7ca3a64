"""Embedded in-process transport: the bus a newcomer's ``xueliang demo`` runs on.

It keeps Kafka's semantics that the stages rely on (see :mod:`xueliang.bus.base`):
keyed partitioning with per-key order, consumer groups that split partitions and
rebalance when members come and go, explicit commits and redelivery of what was
not committed. It lives in one process and forgets everything when that ends.

Retention, as on a broker: a partition drops its oldest records once they are older than the
topic's ``retention_ms`` or once it holds more than ``max_partition_bytes`` of values (memory is
the disk here: a 5 fps camera adds ≈ 1.2 GB of frames an hour). Offsets keep counting; a consumer
whose position fell behind the oldest record continues from it (``earliest``) or from the end
(``latest``), as Kafka's ``auto.offset.reset`` does on an out-of-range offset.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from xueliang.bus.base import (
    Bus,
    BusError,
    Compression,
    Consumer,
    OffsetReset,
    Producer,
    Record,
    TopicPartition,
)
from xueliang.contracts import TopicSpec


def murmur2(data: bytes) -> int:
    """32-bit MurmurHash2 as Kafka's default partitioner computes it (``Utils.murmur2``)."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    tail = length & ~3
    for i in range(0, tail, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    extra = length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def partition_for(key: str | None, partitions: int, counter: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (murmur2 of its UTF-8
    bytes), so a camera lands on the same partition on both transports; keyless
    records go round-robin."""
    if key is None:
        return counter % partitions
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class _Log:
    """One partition: records from offset ``base`` on, trimmed from the front by retention."""

    __slots__ = ("base", "bytes", "records")

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.base = 0
        self.bytes = 0

    @property
    def end(self) -> int:
        return self.base + len(self.records)

    def append(self, topic: str, partition: int, key: str | None, value: bytes, headers: dict[str, bytes]) -> None:
        self.records.append(Record(topic, partition, self.end, key, value, headers, int(time.time() * 1000)))
        self.bytes += len(value)

    def read(self, pos: int, n: int) -> list[Record]:
        i = pos - self.base
        return self.records[i : i + n]

    def trim(self, retention_ms: int, max_bytes: int | None) -> None:
        drop, keep = 0, len(self.records) - 1  # the newest record always stays (a broker's active segment)
        if retention_ms >= 0:
            oldest = int(time.time() * 1000) - retention_ms
            while drop < keep and self.records[drop].timestamp_ms < oldest:
                self.bytes -= len(self.records[drop].value)
                drop += 1
        if max_bytes is not None:
            while self.bytes > max_bytes and drop < keep:
                self.bytes -= len(self.records[drop].value)
                drop += 1
        if drop:
            del self.records[:drop]
            self.base += drop


@dataclass
class _Topic:
    spec: TopicSpec
    logs: list[_Log]


@dataclass
class _Group:
    members: list[str] = field(default_factory=list)
    generation: int = 0
    committed: dict[TopicPartition, int] = field(default_factory=dict)


class MemoryBus(Bus):
    #: per partition, like Kafka's ``retention.bytes``: 64 MiB ≈ 15 minutes of one 576p camera at 1 fps
    DEFAULT_MAX_PARTITION_BYTES = 64 * 1024 * 1024

    def __init__(
        self, default_partitions: int = 3, *, max_partition_bytes: int | None = DEFAULT_MAX_PARTITION_BYTES
    ) -> None:
        self.max_partition_bytes = max_partition_bytes
        self._lock = threading.Condition()
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._subscriptions: dict[str, tuple[str, tuple[str, ...]]] = {}  # member -> (group, topics)
        self._default_partitions = default_partitions
        self._counter = 0
        self._member_seq = 0

    # ----------------------------------------------------------------- topics
    def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        with self._lock:
            for spec in specs:
                topic = self._topics.get(spec.name)
                if topic is None:
                    self._topics[spec.name] = _Topic(spec, [_Log() for _ in range(spec.partitions)])
                elif spec.partitions > len(topic.logs):
                    # like Kafka: partitions can be added (never removed); members rebalance onto them
                    topic.logs.extend(_Log() for _ in range(spec.partitions - len(topic.logs)))
                    for group in self._groups.values():
                        group.generation += 1
                    self._lock.notify_all()

    def _topic(self, name: str) -> _Topic:
        try:
            return self._topics[name]
        except KeyError:
            raise BusError(f"topic {name!r} does not exist (create it with ensure_topics)") from None

    def end_offsets(self, topic: str) -> dict[int, int]:
        with self._lock:
            return {p: log.end for p, log in enumerate(self._topic(topic).logs)}

    def committed_offsets(self, group_id: str, topic: str) -> dict[int, int]:
        with self._lock:
            group = self._groups.get(group_id)
            if group is None:
                return {}
            return {tp.partition: off for tp, off in group.committed.items() if tp.topic == topic}

    # -------------------------------------------------------------- producing
    def _append(
        self, topic: str, value: bytes, key: str | None, headers: dict[str, bytes] | None, partition: int | None
    ) -> None:
        with self._lock:
            t = self._topic(topic)
            if len(value) > t.spec.max_message_bytes:
                raise BusError(f"record of {len(value)} bytes exceeds {topic}'s limit of {t.spec.max_message_bytes}")
            n = len(t.logs)
            p = partition if partition is not None else partition_for(key, n, self._counter)
            if not 0 <= p < n:
                raise BusError(f"partition {p} out of range for {topic} ({n} partitions)")
            self._counter += 1
            log = t.logs[p]
            log.append(topic, p, key, bytes(value), dict(headers or {}))
            # compacted topics keep the latest record per key on a broker; here they keep everything (small)
            if not t.spec.compacted:
                log.trim(t.spec.retention_ms, self.max_partition_bytes)
            self._lock.notify_all()

    def producer(self, client_id: str = "xueliang", *, compression: Compression | None = None) -> Producer:
        return _MemoryProducer(self)

    # -------------------------------------------------------------- consuming
    def consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        *,
        offset_reset: OffsetReset = "earliest",
        client_id: str = "xueliang",
        max_record_bytes: int | None = None,
    ) -> Consumer:
        with self._lock:
            for t in topics:
                self._topic(t)
            self._member_seq += 1
            member = f"{client_id}-{self._member_seq}"
            self._groups.setdefault(group_id, _Group())
        return _MemoryConsumer(self, group_id, member, tuple(topics), offset_reset)

    def _join(self, group_id: str, member: str, topics: tuple[str, ...]) -> None:
        """Like a Kafka member, a consumer joins its group (and gets partitions) at its first poll."""
        with self._lock:
            self._subscriptions[member] = (group_id, topics)
            group = self._groups[group_id]
            group.members.append(member)
            group.generation += 1
            self._lock.notify_all()

    def _assignment(self, group_id: str, member: str) -> set[TopicPartition]:
        """Round-robin assignment of every subscribed partition over the group's members."""
        group = self._groups[group_id]
        members = sorted(group.members)
        topics = sorted({t for m in members for t in self._subscriptions[m][1]})
        owned: set[TopicPartition] = set()
        i = 0
        for t in topics:
            subscribers = [m for m in members if t in self._subscriptions[m][1]]
            for p in range(len(self._topics[t].logs)):
                if subscribers[i % len(subscribers)] == member:
                    owned.add(TopicPartition(t, p))
                i += 1
        return owned

    def _leave(self, group_id: str, member: str) -> None:
        with self._lock:
            group = self._groups[group_id]
            if member in group.members:
                group.members.remove(member)
                group.generation += 1
            self._subscriptions.pop(member, None)
            self._lock.notify_all()


class _MemoryProducer(Producer):
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self._closed = False

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
        self._bus._append(topic, value, key, headers, partition)

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        self._closed = True


class _MemoryConsumer(Consumer):
    def __init__(
        self, bus: MemoryBus, group_id: str, member: str, topics: tuple[str, ...], offset_reset: OffsetReset
    ) -> None:
        self._bus = bus
        self._group_id = group_id
        self._member = member
        self._topics = topics
        self._reset = offset_reset
        self._generation = -1
        self._owned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._joined = False
        self._closed = False

    def _sync(self) -> None:
        """Pick up a rebalance: positions of newly owned partitions restart at the committed offset."""
        if not self._joined:
            return  # owns nothing before its first poll, as on Kafka
        group = self._bus._groups[self._group_id]
        if group.generation == self._generation:
            return
        self._generation = group.generation
        owned = self._bus._assignment(self._group_id, self._member)
        positions: dict[TopicPartition, int] = {}
        for tp in owned:
            log = self._bus._topics[tp.topic].logs[tp.partition]
            if tp in group.committed:
                positions[tp] = group.committed[tp]
            elif self._reset == "earliest":
                positions[tp] = log.base
            else:
                positions[tp] = log.end
        self._owned, self._positions = owned, positions

    def poll(self, timeout: float = 1.0, max_records: int = 500) -> list[Record]:
        if self._closed:
            raise BusError("consumer is closed")
        if not self._joined:
            self._bus._join(self._group_id, self._member, self._topics)
            self._joined = True
        deadline = time.monotonic() + timeout
        with self._bus._lock:
            while True:
                self._sync()
                out: list[Record] = []
                for tp in sorted(self._owned, key=lambda x: (x.topic, x.partition)):
                    log = self._bus._topics[tp.topic].logs[tp.partition]
                    pos = self._positions[tp]
                    if pos < log.base:  # retention removed it: out of range, reset like auto.offset.reset
                        pos = log.base if self._reset == "earliest" else log.end
                    take = log.read(pos, max_records - len(out))
                    out.extend(take)
                    self._positions[tp] = pos + len(take)
                    if len(out) >= max_records:
                        break
                if out:
                    return out
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._bus._lock.wait(remaining)

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        if self._closed:
            raise BusError("consumer is closed")
        with self._bus._lock:
            self._sync()
            group = self._bus._groups[self._group_id]
            todo = offsets if offsets is not None else dict(self._positions)
            for tp, off in todo.items():
                if tp not in self._owned:
                    raise BusError(f"cannot commit {tp}: partition is not assigned to this member (rebalanced)")
                group.committed[tp] = off

    def committed(self, tp: TopicPartition) -> int | None:
        with self._bus._lock:
            return self._bus._groups[self._group_id].committed.get(tp)

    def assignment(self) -> set[TopicPartition]:
        with self._bus._lock:
            self._sync()
            return set(self._owned)

    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        with self._bus._lock:
            self._sync()
            for tp in partitions if partitions is not None else list(self._owned):
                if tp in self._owned:
                    self._positions[tp] = self._bus._topics[tp.topic].logs[tp.partition].end

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus._leave(self._group_id, self._member)
