"""One contract suite for both bus transports: the embedded MemoryBus and the real Kafka broker.

Every test runs unchanged against ``memory`` and ``kafka`` (the broker that
``deploy/kafka/kafka.sh start`` runs; ``XL_KAFKA_BOOTSTRAP`` names it). The tests
assert the semantics listed in :mod:`xueliang.bus.base` that the stages rely on.
Topic and group names carry a random suffix so tests never see each other's records.

Kafka assigns partitions when a member polls, not when it is created, so the tests
always poll until the assignment they wait for is in place (the embedded bus
rebalances at once, and passes the same waits immediately).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import pytest

from xueliang.bus import Bus, BusError, Consumer, Record, TopicPartition, lag
from xueliang.bus.memory import MemoryBus, partition_for
from xueliang.contracts import MAX_MESSAGE_BYTES, TopicSpec

HOUR_MS = 3600 * 1000
WAIT_S = 30.0  # upper bound for any wait on the broker; normally a second or two


@pytest.fixture(params=["memory", "kafka"])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        b: Bus = MemoryBus()
    else:
        from xueliang.bus.kafka import KafkaBus
        from xueliang.config.bus import KafkaBusConfig

        bootstrap = request.getfixturevalue("kafka_bootstrap")
        # short heartbeats: members notice a rebalance within a quarter second
        b = KafkaBus(
            KafkaBusConfig(
                bootstrap_servers=[bootstrap], session_timeout_s=3.0, heartbeat_interval_s=0.25, client_timeout_s=20.0
            )
        )
    yield b
    if request.param == "kafka":
        # keep the development broker small: hundreds of leftover partitions slow its restarts
        b.delete_topics([t for t in b.list_topics() if t.startswith(TEST_PREFIX)])  # type: ignore[attr-defined]
    b.close()


TEST_PREFIX = f"test.bus-contract.{uuid.uuid4().hex[:6]}."


def unique(kind: str) -> str:
    return f"{TEST_PREFIX}{kind}.{uuid.uuid4().hex[:12]}"


def make_topic(bus: Bus, partitions: int = 3, max_message_bytes: int = 1024 * 1024) -> str:
    name = unique("topic")
    bus.ensure_topics([TopicSpec(name, partitions, retention_ms=HOUR_MS, max_message_bytes=max_message_bytes)])
    return name


def all_partitions(topic: str, n: int) -> set[TopicPartition]:
    return {TopicPartition(topic, p) for p in range(n)}


class Reader:
    """A consumer plus every record it has returned so far."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.records: list[Record] = []

    def poll(self, timeout: float = 0.1) -> list[Record]:
        got = self.consumer.poll(timeout)
        self.records.extend(got)
        return got

    def ids(self) -> list[tuple[int, int]]:
        return [(r.partition, r.offset) for r in self.records]


def poll_until(readers: Sequence[Reader], done: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            state = [(sorted(tp.partition for tp in r.consumer.assignment()), len(r.records)) for r in readers]
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; (assignment, records) = {state}")
        for r in readers:
            r.poll(0.1)


def settle(readers: Sequence[Reader], seconds: float = 0.5) -> None:
    """Keep polling a little: Kafka resolves reset/seek positions on the next fetches."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for r in readers:
            r.poll(0.05)


def produce(bus: Bus, topic: str, items: Sequence[tuple[str | None, bytes]], **kw: object) -> None:
    p = bus.producer()
    try:
        for key, value in items:
            p.send(topic, value, key=key, **kw)  # type: ignore[arg-type]
        p.flush(timeout=WAIT_S)
        assert p.pending() == 0
    finally:
        p.close()


def read_all(bus: Bus, topic: str, n: int, group: str | None = None) -> list[Record]:
    r = Reader(bus.consumer(group or unique("group"), [topic]))
    try:
        poll_until([r], lambda: len(r.records) >= n, f"{n} records of {topic}")
        settle([r], 0.2)
        return r.records
    finally:
        r.consumer.close()


# ------------------------------------------------------------------ producing
def test_per_key_order_and_kafka_compatible_partitioning(bus: Bus) -> None:
    topic = make_topic(bus, partitions=3)
    keys = [f"cam-{i}" for i in range(6)] + ["村口-摄像头"]
    rng = random.Random(7)
    items = []
    seq = dict.fromkeys(keys, 0)
    for _ in range(140):
        k = rng.choice(keys)
        items.append((k, f"{k}:{seq[k]}".encode()))
        seq[k] += 1
    produce(bus, topic, items)

    records = read_all(bus, topic, len(items))
    assert len(records) == len(items)
    for k in keys:
        mine = [r for r in records if r.key == k]
        assert [int(r.value.split(b":")[1]) for r in mine] == list(range(seq[k])), f"order of {k}"
        # one partition per key, the one Kafka's default (murmur2) partitioner picks
        assert {r.partition for r in mine} == {partition_for(k, 3, 0)}, k


def test_explicit_partition(bus: Bus) -> None:
    topic = make_topic(bus, partitions=3)
    produce(bus, topic, [("cam-a", b"to-2")], partition=2)
    produce(bus, topic, [("cam-a", b"to-0")], partition=0)
    records = read_all(bus, topic, 2)
    assert {(r.value, r.partition) for r in records} == {(b"to-2", 2), (b"to-0", 0)}
    assert bus.end_offsets(topic) == {0: 1, 1: 0, 2: 1}

    p = bus.producer()
    try:
        with pytest.raises(BusError):
            p.send(topic, b"x", key="cam-a", partition=3)
            p.flush(timeout=WAIT_S)
    finally:
        p.close()


def test_headers_and_binary_values_round_trip(bus: Bus) -> None:
    topic = make_topic(bus, partitions=1, max_message_bytes=MAX_MESSAGE_BYTES)
    big = random.Random(3).randbytes(2 * 1024 * 1024)  # a large JPEG-sized frame
    headers = {"schema": b"xl.frame/1", "bin": bytes([0, 255, 128, 10]), "empty": b"", "名": "值".encode()}
    values = [b"", bytes(range(256)), big]
    before_ms = int(time.time() * 1000)
    produce(bus, topic, [("摄像头-01", v) for v in values], headers=headers)

    records = read_all(bus, topic, 3)
    assert [r.value for r in records] == values
    for i, r in enumerate(records):
        assert r.key == "摄像头-01"
        assert r.headers == headers
        assert r.offset == i and r.partition == 0 and r.topic == topic
        assert before_ms - 5000 <= r.timestamp_ms <= int(time.time() * 1000) + 5000


def test_compressed_producer_round_trips(bus: Bus) -> None:
    topic = make_topic(bus, partitions=1)
    p = bus.producer(client_id="incidents", compression="gzip")
    try:
        p.send(topic, b'{"camera_id": "cam-1"}' * 50, key="cam-1", headers={"schema": b"xl.incident/1"})
        p.flush(timeout=WAIT_S)
    finally:
        p.close()
    [record] = read_all(bus, topic, 1)
    assert record.value == b'{"camera_id": "cam-1"}' * 50 and record.headers == {"schema": b"xl.incident/1"}


def test_oversize_record_raises_and_producer_keeps_working(bus: Bus) -> None:
    small = make_topic(bus, partitions=1, max_message_bytes=100_000)
    frames = make_topic(bus, partitions=1, max_message_bytes=MAX_MESSAGE_BYTES)
    p = bus.producer()
    try:
        with pytest.raises(BusError, match="exceeds"):
            p.send(small, b"x" * 200_000, key="cam")
        with pytest.raises(BusError, match="exceeds"):
            p.send(frames, b"x" * (MAX_MESSAGE_BYTES + 1), key="cam")
        p.send(small, b"fits", key="cam")
        p.send(frames, b"y" * 1_000_000, key="cam")
        p.flush(timeout=WAIT_S)
    finally:
        p.close()
    assert [r.value for r in read_all(bus, small, 1)] == [b"fits"]
    assert bus.end_offsets(frames) == {0: 1}


def test_unknown_topic_raises(bus: Bus) -> None:
    missing = unique("missing")
    p = bus.producer()
    try:
        with pytest.raises(BusError, match="does not exist"):
            p.send(missing, b"x", key="cam")
    finally:
        p.close()
    with pytest.raises(BusError, match="does not exist"):
        bus.consumer(unique("group"), [missing])
    with pytest.raises(BusError, match="does not exist"):
        bus.end_offsets(missing)


def test_ensure_topics_is_idempotent(bus: Bus) -> None:
    name = unique("topic")
    spec = TopicSpec(name, 4, retention_ms=HOUR_MS, max_message_bytes=MAX_MESSAGE_BYTES)
    compacted = TopicSpec(unique("registry"), 1, retention_ms=-1, compacted=True)
    bus.ensure_topics([spec, compacted])
    produce(bus, name, [("cam", b"kept")])
    bus.ensure_topics([spec, compacted])
    bus.ensure_topics([spec])
    assert bus.end_offsets(name) == {0: 0, 1: 0, 2: 0, 3: 0} | {partition_for("cam", 4, 0): 1}
    assert bus.end_offsets(compacted.name) == {0: 0}

    # partitions can be added, never removed; records stay where they are
    bus.ensure_topics([TopicSpec(name, 6, retention_ms=HOUR_MS, max_message_bytes=MAX_MESSAGE_BYTES)])
    grown = bus.end_offsets(name)
    assert sorted(grown) == list(range(6)) and sum(grown.values()) == 1
    bus.ensure_topics([TopicSpec(name, 2, retention_ms=HOUR_MS, max_message_bytes=MAX_MESSAGE_BYTES)])
    assert bus.end_offsets(name) == grown


# ------------------------------------------------------------------ consuming
def test_every_group_receives_everything(bus: Bus) -> None:
    topic = make_topic(bus, partitions=3)
    items = [(f"cam-{i % 5}", f"m{i}".encode()) for i in range(30)]
    produce(bus, topic, items)
    a, b = Reader(bus.consumer(unique("ga"), [topic])), Reader(bus.consumer(unique("gb"), [topic]))
    try:
        poll_until([a, b], lambda: len(a.records) >= 30 and len(b.records) >= 30, "both groups")
        settle([a, b], 0.2)
        assert sorted(r.value for r in a.records) == sorted(v for _, v in items)
        assert sorted(r.value for r in b.records) == sorted(v for _, v in items)
    finally:
        a.consumer.close()
        b.consumer.close()


def test_one_consumer_reads_several_topics(bus: Bus) -> None:
    t1, t2 = make_topic(bus, partitions=2), make_topic(bus, partitions=1)
    produce(bus, t1, [("cam-1", b"one")])
    produce(bus, t2, [("cam-1", b"two")])
    r = Reader(bus.consumer(unique("group"), [t1, t2]))
    try:
        poll_until([r], lambda: len(r.records) >= 2, "records of two topics")
        assert {(x.topic, x.value) for x in r.records} == {(t1, b"one"), (t2, b"two")}
        assert r.consumer.assignment() == all_partitions(t1, 2) | all_partitions(t2, 1)
    finally:
        r.consumer.close()


def test_members_split_partitions_and_take_over_when_one_leaves(bus: Bus) -> None:
    topic = make_topic(bus, partitions=4)
    group = unique("group")
    everything = all_partitions(topic, 4)
    c1 = Reader(bus.consumer(group, [topic], client_id="member-1"))
    c2 = Reader(bus.consumer(group, [topic], client_id="member-2"))
    try:

        def split() -> bool:
            a1, a2 = c1.consumer.assignment(), c2.consumer.assignment()
            return bool(a1) and bool(a2) and not (a1 & a2) and (a1 | a2) == everything

        poll_until([c1, c2], split, "the two members to split the partitions")
        owned1, owned2 = c1.consumer.assignment(), c2.consumer.assignment()

        items = [(f"cam-{i % 8}", f"a{i}".encode()) for i in range(40)]
        produce(bus, topic, items)
        poll_until([c1, c2], lambda: len(c1.records) + len(c2.records) >= 40, "40 records over two members")
        settle([c1, c2], 0.3)
        assert not set(c1.ids()) & set(c2.ids()), "a record went to both members"
        assert sorted(r.value for r in c1.records + c2.records) == sorted(v for _, v in items)
        assert {TopicPartition(topic, r.partition) for r in c1.records} <= owned1
        assert {TopicPartition(topic, r.partition) for r in c2.records} <= owned2
        c1.consumer.commit()
        c2.consumer.commit()
        assert sum(bus.committed_offsets(group, topic).values()) == 40
        assert sum(lag(bus, group, topic).values()) == 0

        c2.consumer.close()
        poll_until([c1], lambda: c1.consumer.assignment() == everything, "member 1 to take over")
        c1.records.clear()
        more = [(f"cam-{i % 8}", f"b{i}".encode()) for i in range(20)]
        produce(bus, topic, more)
        poll_until([c1], lambda: len(c1.records) >= 20, "the records after the take-over")
        settle([c1], 0.3)
        # exactly the new records: member 2's committed partitions resume after its commit
        assert sorted(r.value for r in c1.records) == sorted(v for _, v in more)
    finally:
        c1.consumer.close()
        c2.consumer.close()


def test_new_member_resumes_after_committed_offset(bus: Bus) -> None:
    topic = make_topic(bus, partitions=1)
    group = unique("group")
    tp = TopicPartition(topic, 0)
    produce(bus, topic, [("cam", f"r{i}".encode()) for i in range(10)])

    first = Reader(bus.consumer(group, [topic]))
    poll_until([first], lambda: len(first.records) >= 10, "10 records")
    assert first.consumer.committed(tp) is None
    first.consumer.commit({tp: 6})  # records 0..5 are done
    assert first.consumer.committed(tp) == 6
    first.consumer.close()
    assert bus.committed_offsets(group, topic) == {0: 6}
    assert lag(bus, group, topic) == {0: 4}

    second = Reader(bus.consumer(group, [topic]))
    try:
        poll_until([second], lambda: len(second.records) >= 4, "the 4 uncommitted records")
        settle([second], 0.3)
        assert [r.offset for r in second.records] == [6, 7, 8, 9]
        second.consumer.commit()
        assert bus.committed_offsets(group, topic) == {0: 10}
        assert lag(bus, group, topic) == {0: 0}
    finally:
        second.consumer.close()


def test_uncommitted_records_are_redelivered_to_the_next_owner(bus: Bus) -> None:
    topic = make_topic(bus, partitions=2)
    group = unique("group")
    items = [(None, f"p{i % 2}-{i}".encode()) for i in range(10)]
    p = bus.producer()
    try:
        for i, (key, value) in enumerate(items):
            p.send(topic, value, key=key, partition=i % 2)
        p.flush(timeout=WAIT_S)
    finally:
        p.close()

    first = Reader(bus.consumer(group, [topic]))
    poll_until([first], lambda: len(first.records) >= 10, "10 records")
    first.consumer.commit({TopicPartition(topic, 0): 5})  # only partition 0 is done
    first.consumer.close()

    second = Reader(bus.consumer(group, [topic]))
    try:
        poll_until([second], lambda: len(second.records) >= 5, "the redelivered records")
        settle([second], 0.3)
        assert sorted(r.value for r in second.records) == sorted(v for _, v in items if v.startswith(b"p1"))
    finally:
        second.consumer.close()


def test_offsets_and_lag_of_a_new_group(bus: Bus) -> None:
    topic = make_topic(bus, partitions=3)
    p = bus.producer()
    try:
        for i in range(9):
            p.send(topic, b"v", key="cam", partition=i % 3 if i < 6 else 0)
        p.flush(timeout=WAIT_S)
    finally:
        p.close()
    assert bus.end_offsets(topic) == {0: 5, 1: 2, 2: 2}
    group = unique("group")
    assert bus.committed_offsets(group, topic) == {}
    assert lag(bus, group, topic) == {0: 5, 1: 2, 2: 2}


def test_latest_reset_and_seek_to_end_skip_old_records(bus: Bus) -> None:
    topic = make_topic(bus, partitions=2)
    produce(bus, topic, [(f"cam-{i}", b"old") for i in range(6)])
    latest = Reader(bus.consumer(unique("group"), [topic], offset_reset="latest"))
    seeker = Reader(bus.consumer(unique("group"), [topic], offset_reset="earliest"))
    try:
        poll_until(
            [latest, seeker],
            lambda: (
                latest.consumer.assignment() == all_partitions(topic, 2)
                and seeker.consumer.assignment() == all_partitions(topic, 2)
            ),
            "assignments",
        )
        settle([latest, seeker])
        seeker.consumer.seek_to_end()
        seeker.records.clear()
        settle([latest, seeker])
        seeker.records.clear()
        assert latest.records == []

        produce(bus, topic, [(f"cam-{i}", b"new") for i in range(4)])
        poll_until([latest, seeker], lambda: len(latest.records) >= 4 and len(seeker.records) >= 4, "new records")
        settle([latest, seeker], 0.2)
        assert [r.value for r in latest.records] == [b"new"] * 4
        assert [r.value for r in seeker.records] == [b"new"] * 4
    finally:
        latest.consumer.close()
        seeker.consumer.close()


def test_a_consumer_owns_nothing_until_it_polls(bus: Bus) -> None:
    # Kafka assigns partitions while a member polls: seek_to_end or commit right after creating
    # a consumer act on nothing. The embedded bus behaves the same, so it cannot hide that.
    topic = make_topic(bus, partitions=2)
    produce(bus, topic, [("cam-1", b"old")])
    r = Reader(bus.consumer(unique("group"), [topic]))
    try:
        assert r.consumer.assignment() == set()
        r.consumer.seek_to_end()  # no effect: nothing assigned yet
        with pytest.raises(BusError, match="not assigned"):
            r.consumer.commit({TopicPartition(topic, 0): 1})
        poll_until([r], lambda: len(r.records) >= 1, "the old record")
        assert r.consumer.assignment() == all_partitions(topic, 2)
        assert [x.value for x in r.records] == [b"old"]
    finally:
        r.consumer.close()


def test_commit_of_a_partition_not_owned_raises(bus: Bus) -> None:
    topic, other = make_topic(bus, partitions=1), make_topic(bus, partitions=1)
    r = Reader(bus.consumer(unique("group"), [topic]))
    try:
        poll_until([r], lambda: bool(r.consumer.assignment()), "an assignment")
        with pytest.raises(BusError, match="not assigned"):
            r.consumer.commit({TopicPartition(other, 0): 1})
    finally:
        r.consumer.close()


def test_closed_clients_raise(bus: Bus) -> None:
    topic = make_topic(bus, partitions=1)
    p = bus.producer()
    p.close()
    with pytest.raises(BusError, match="closed"):
        p.send(topic, b"x", key="cam")
    c = bus.consumer(unique("group"), [topic])
    c.close()
    c.close()  # idempotent
    with pytest.raises(BusError, match="closed"):
        c.poll(0.1)
    with pytest.raises(BusError, match="closed"):
        c.commit()


# ------------------------------------------------------------ embedded retention (memory is its disk)
def test_memory_bus_retention_drops_oldest_and_resets_lagging_consumers() -> None:
    """The embedded bus keeps at most ``max_partition_bytes`` per partition and nothing older than the
    topic's retention; offsets keep counting, and a consumer whose position was dropped continues from
    the oldest kept record (earliest) or the end (latest), like Kafka's out-of-range reset."""
    bus = MemoryBus(max_partition_bytes=10_000)
    bus.ensure_topics([TopicSpec("frames", 1, retention_ms=3_600_000), TopicSpec("old", 1, retention_ms=0)])
    lagging = bus.consumer("slow", ["frames"], offset_reset="earliest")
    assert lagging.poll(timeout=0.05) == []  # joined at offset 0
    producer = bus.producer()
    for i in range(30):
        producer.send("frames", bytes([i]) * 1_000, key="cam")
    tp = TopicPartition("frames", 0)
    assert bus.end_offsets("frames") == {0: 30}
    got = lagging.poll(timeout=0.1)
    assert [r.offset for r in got] == list(range(20, 30))  # 10 kB kept: the newest ten records
    assert all(r.value == bytes([r.offset]) * 1_000 for r in got)
    late = bus.consumer("late", ["frames"], offset_reset="latest")
    assert late.poll(timeout=0.05) == []
    producer.send("frames", b"x" * 1_000, key="cam")
    assert [r.offset for r in late.poll(timeout=0.1)] == [30]
    assert lag(bus, "slow", "frames") == {0: 31}  # nothing committed yet: lag from offset 0
    lagging.commit()
    assert lag(bus, "slow", "frames")[0] == 1 and lagging.committed(tp) == 30
    time.sleep(0.01)
    producer.send("old", b"a", key="k")
    time.sleep(0.01)
    producer.send("old", b"b", key="k")  # retention 0 ms: the older record is gone at once
    reader = bus.consumer("r", ["old"], offset_reset="earliest")
    assert [(r.offset, r.value) for r in reader.poll(timeout=0.1)] == [(1, b"b")]
