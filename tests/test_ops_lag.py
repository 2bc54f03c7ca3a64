"""Consumer-lag and fleet collectors: real bus offsets in, Prometheus exposition out."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from xueliang.bus.base import Bus, BusError, TopicPartition
from xueliang.bus.memory import MemoryBus
from xueliang.contracts import Topics, TopicSpec
from xueliang.ops.lag import ConsumerLagCollector, LagWatch, measure_lag, pipeline_watches


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = generate_latest(registry).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def fill(bus: Bus, topic: str, partitions: int, per_partition: list[int]) -> None:
    bus.ensure_topics([TopicSpec(topic, partitions, retention_ms=60_000)])
    p = bus.producer()
    for part, n in enumerate(per_partition):
        for i in range(n):
            p.send(topic, f"{part}-{i}".encode(), key=None, partition=part)
    p.flush()


def lag_of(reg: CollectorRegistry, group: str, topic: str) -> dict[int, float]:
    return {
        int(dict(k)["partition"]): v
        for k, v in samples(reg, "xl_kafka_consumer_lag").items()
        if dict(k)["group"] == group and dict(k)["topic"] == topic
    }


def test_lag_follows_commits_on_the_memory_bus() -> None:
    bus = MemoryBus()
    fill(bus, "t.frames", 3, [5, 2, 0])
    reg = CollectorRegistry()
    ConsumerLagCollector(bus, [LagWatch("g", "t.frames")], min_interval_s=0).register(reg)
    # a group that never committed lags by the whole log
    assert lag_of(reg, "g", "t.frames") == {0: 5, 1: 2, 2: 0}
    assert samples(reg, "xl_kafka_consumer_committed_offset") == {}

    c = bus.consumer("g", ["t.frames"])
    got = []
    while len(got) < 7:
        got += c.poll(timeout=0.5)
    c.commit({TopicPartition("t.frames", 0): 3, TopicPartition("t.frames", 1): 2})
    assert lag_of(reg, "g", "t.frames") == {0: 2, 1: 0, 2: 0}
    committed = samples(reg, "xl_kafka_consumer_committed_offset")
    assert committed[(("group", "g"), ("partition", "0"), ("topic", "t.frames"))] == 3
    ends = samples(reg, "xl_kafka_topic_end_offset")
    assert ends[(("partition", "0"), ("topic", "t.frames"))] == 5
    c.commit()  # everything returned so far
    assert sum(lag_of(reg, "g", "t.frames").values()) == 0
    c.close()


def test_min_interval_caches_between_scrapes() -> None:
    bus = MemoryBus()
    fill(bus, "t", 1, [1])
    reg = CollectorRegistry()
    ConsumerLagCollector(bus, [LagWatch("g", "t")], min_interval_s=3600).register(reg)
    assert lag_of(reg, "g", "t") == {0: 1}
    fill(bus, "t", 1, [4])
    assert lag_of(reg, "g", "t") == {0: 1}  # cached


def test_missing_topic_is_counted_not_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    bus = MemoryBus()
    fill(bus, "present", 1, [2])
    reg = CollectorRegistry()
    ConsumerLagCollector(bus, [LagWatch("g", "absent"), LagWatch("g", "present")], min_interval_s=0).register(reg)
    assert lag_of(reg, "g", "present") == {0: 2}
    errors = samples(reg, "xl_kafka_lag_collect_errors_total")
    assert errors[(("group", "g"), ("topic", "absent"))] >= 1
    assert errors[(("group", "g"), ("topic", "present"))] == 0
    assert "absent" in caplog.text
    rows, errs = measure_lag(bus, [LagWatch("g", "absent")])
    assert rows == [] and "does not exist" in errs[0][1]


def test_no_watches_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ConsumerLagCollector(MemoryBus(), [])


def test_pipeline_watches_match_the_stages_groups() -> None:
    from xueliang.detector import worker as detector_worker

    watches = pipeline_watches(Topics())
    groups = {(w.group, w.topic) for w in watches}
    assert (detector_worker.GROUP, Topics().frames) in groups
    dispatch = pytest.importorskip("xueliang.dispatch.worker")
    dispatch_groups = {v for k, v in vars(dispatch).items() if k.endswith("GROUP") and isinstance(v, str)}
    assert dispatch_groups, "dispatch worker exposes no *GROUP constant"
    assert dispatch_groups <= {g for g, _ in groups}


def test_lag_on_the_real_kafka_broker(kafka_bootstrap: str) -> None:
    import uuid

    from xueliang.bus.kafka import KafkaBus
    from xueliang.config import KafkaBusConfig

    bus = KafkaBus(KafkaBusConfig(type="kafka", bootstrap_servers=[kafka_bootstrap]))
    topic, group = f"ops-lag-{uuid.uuid4().hex[:8]}", f"ops-{uuid.uuid4().hex[:8]}"
    try:
        fill(bus, topic, 2, [4, 3])
        reg = CollectorRegistry()
        ConsumerLagCollector(bus, [LagWatch(group, topic)], min_interval_s=0).register(reg)
        assert lag_of(reg, group, topic) == {0: 4, 1: 3}
        c = bus.consumer(group, [topic])
        seen = 0
        for _ in range(60):
            seen += len(c.poll(timeout=0.5))
            if seen >= 7:
                break
        c.commit()
        assert lag_of(reg, group, topic) == {0: 0, 1: 0}
        c.close()
    finally:
        bus.close()


def test_lag_errors_from_a_failing_bus_are_reported() -> None:
    class Broken(MemoryBus):
        def end_offsets(self, topic: str) -> dict[int, int]:
            raise BusError("broker unreachable")

    reg = CollectorRegistry()
    ConsumerLagCollector(Broken(), [LagWatch("g", "t")], min_interval_s=0).register(reg)
    assert samples(reg, "xl_kafka_lag_collect_errors_total") == {(("group", "g"), ("topic", "t")): 1.0}
    assert samples(reg, "xl_kafka_consumer_lag") == {}


def test_metrics_server_serves_ops_collectors() -> None:
    import urllib.request

    from tests.prometheus_server import free_port
    from xueliang.config import parse_config
    from xueliang.contracts import topic_specs
    from xueliang.ops.exporter import start_metrics_server

    settings = parse_config("""
centres: {id: c, name: c, tier: county, children: [{id: t, name: t, tier: township, children: [
  {id: v, name: v, tier: village}]}]}
cameras: [{id: cam1, village: v, source: {type: file, path: /dev/null}}]
""")
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(settings.bus.topics))
    reg = CollectorRegistry()
    port = free_port()
    installed, server = start_metrics_server(settings, bus, port=port, addr="127.0.0.1", registry=reg)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        installed.uninstall()
    assert 'xl_fleet_camera_info{camera="cam1",county="c",source="file",township="t",village="v"} 1.0' in text
    assert 'xl_kafka_consumer_lag{group="detector",partition="0",topic="xl.frames"} 0.0' in text
    with pytest.raises(ValueError, match="metrics port"):
        start_metrics_server(settings, bus, registry=CollectorRegistry())
