"""deploy/kafka/kafka.sh and the Kafka transport's behaviour around an absent or restarting broker.

The restart test runs its own broker (own ports, own data directory under tmp_path)
so the shared development/CI broker is never stopped under other tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from xueliang.bus import BusError, Producer, TopicPartition
from xueliang.bus.kafka import KafkaBus
from xueliang.config.bus import KafkaBusConfig
from xueliang.contracts import TopicSpec

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_client_creation_gives_up_with_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    bus = KafkaBus(KafkaBusConfig(bootstrap_servers=[f"127.0.0.1:{port}"], client_timeout_s=1.5))
    threads_before = {t.ident for t in threading.enumerate()}
    started = time.monotonic()
    with pytest.raises(BusError, match=rf"no Kafka broker answered at 127\.0\.0\.1:{port} within 1\.5s"):
        bus.producer(client_id="ingest-test")
    assert time.monotonic() - started < 15
    with pytest.raises(BusError, match="no Kafka broker answered"):
        bus.consumer("detectors", ["xl.frames"])
    bus.close()
    time.sleep(0.5)
    # the failed clients' network threads were shut down, not left reconnecting
    leftover = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    assert leftover == []


class Broker:
    """A private broker driven through kafka.sh."""

    def __init__(self, data: Path) -> None:
        self.port, self.controller_port = free_port(), free_port()
        self.env = os.environ | {
            "XL_KAFKA_PORT": str(self.port),
            "XL_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "XL_KAFKA_DATA": str(data),
            "XL_KAFKA_HEAP": "384m",
            "XL_KAFKA_START_TIMEOUT": "120",
        }
        self.data = data

    def run(self, command: str, **env: str) -> subprocess.CompletedProcess[str]:
        # run from another directory: the script must not depend on the cwd
        return subprocess.run(
            [str(KAFKA_SH), command],
            check=False,
            env=self.env | env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=240,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def private_broker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Broker]:
    # kafka_bootstrap: only where the broker's jars were fetched (scripts/test.sh) is this runnable
    broker = Broker(tmp_path / "kafka")
    yield broker
    broker.run("stop")


@pytest.mark.slow
def test_kafka_sh_fails_clearly_when_the_jvm_cannot_start(private_broker: Broker) -> None:
    result = private_broker.run("start", XL_KAFKA_HEAP="1k")
    assert result.returncode == 1
    assert "exited during start-up" in result.stderr
    assert "heap" in result.stderr.lower()  # the tail of the JVM's output says why


@pytest.mark.slow
def test_broker_restart_loses_nothing(private_broker: Broker) -> None:
    broker = private_broker
    assert broker.run("status").returncode == 3
    started = time.monotonic()
    result = broker.run("start")
    assert result.returncode == 0, result.stdout + result.stderr
    cold_start_s = time.monotonic() - started
    again = broker.run("start")
    assert again.returncode == 0 and "already running" in again.stdout
    assert broker.run("status").returncode == 0

    bus = KafkaBus(
        KafkaBusConfig(
            bootstrap_servers=[broker.bootstrap], session_timeout_s=6.0, heartbeat_interval_s=0.5, client_timeout_s=60.0
        )
    )
    try:
        topic, group = f"restart.{uuid.uuid4().hex[:8]}", "restart-group"
        bus.ensure_topics([TopicSpec(topic, 2, retention_ms=3_600_000)])
        producer = bus.producer(client_id="restart-producer")
        consumer = bus.consumer(group, [topic], client_id="restart-consumer")
        for i in range(6):
            producer.send(topic, f"before-{i}".encode(), key=f"cam-{i % 3}")
        producer.flush(timeout=30)
        # a producer whose records may wait only 2 s
        impatient_bus = KafkaBus(KafkaBusConfig(bootstrap_servers=[broker.bootstrap], delivery_timeout_s=2.0))
        impatient = impatient_bus.producer(client_id="impatient")
        impatient.send(topic, b"delivered", key="cam-9")
        impatient.flush(timeout=30)
        seen: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(seen) < 7 and time.monotonic() < deadline:
            seen += [r.value for r in consumer.poll(0.5)]
        assert sorted(seen) == sorted([b"delivered"] + [f"before-{i}".encode() for i in range(6)])
        consumer.commit()

        stopped = broker.run("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert broker.run("status").returncode == 3
        assert broker.run("stop").returncode == 0  # idempotent

        # the broker is away: sending queues, polling returns nothing, neither raises
        for i in range(5):
            producer.send(topic, f"during-{i}".encode(), key=f"cam-{i % 3}")
        assert producer.pending() > 0
        assert consumer.poll(0.5) == []
        for _ in range(3):
            impatient.send(topic, b"lost", key="cam-9")
        time.sleep(2.5)
        with pytest.raises(BusError, match=r"3 record\(s\) were not delivered"):
            impatient.flush(timeout=10)
        impatient.flush(timeout=10)  # the failures were reported once
        impatient.close()
        impatient_bus.close()

        # a client created while the broker is away waits for it (up to client_timeout_s)
        late: dict[str, object] = {}

        def create_late_producer() -> None:
            try:
                late["producer"] = bus.producer(client_id="late-producer")
            except BusError as exc:
                late["error"] = exc

        creator = threading.Thread(target=create_late_producer)
        creator.start()

        restarted = time.monotonic()
        result = broker.run("start")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "formatting" not in result.stdout  # the same cluster, not a new one
        warm_start_s = time.monotonic() - restarted

        creator.join(timeout=90)
        assert "producer" in late, late
        late_producer = late["producer"]
        assert isinstance(late_producer, Producer)
        late_producer.send(topic, b"late", key="cam-0")
        late_producer.flush(timeout=30)
        late_producer.close()
        producer.flush(timeout=90)  # delivered after the reconnect
        flushed_s = time.monotonic() - restarted
        assert producer.pending() == 0
        after: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(after) < 6 and time.monotonic() < deadline:
            after += [r.value for r in consumer.poll(0.5)]
        # exactly the new records: the committed offsets survived the restart
        assert sorted(after) == sorted([b"late"] + [f"during-{i}".encode() for i in range(5)])
        consumer.commit()
        assert sum(bus.end_offsets(topic).values()) == 13  # 6 + "delivered" + 5 + "late"; no "lost"
        assert bus.committed_offsets(group, topic) == bus.end_offsets(topic)
        assert consumer.committed(TopicPartition(topic, 0)) == bus.end_offsets(topic)[0]
        print(
            f"private broker: first start {cold_start_s:.1f}s, restart {warm_start_s:.1f}s, "
            f"flushed {flushed_s:.1f}s and consumed {time.monotonic() - restarted:.1f}s after the restart began"
        )
        producer.close()
        consumer.close()
    finally:
        bus.close()

    # the data directory was formatted for these ports; other ports are refused with the reason
    moved = broker.run("start", XL_KAFKA_PORT=str(free_port()), XL_KAFKA_CONTROLLER_PORT=str(free_port()))
    assert moved.returncode == 1 and "formatted for ports" in moved.stderr
