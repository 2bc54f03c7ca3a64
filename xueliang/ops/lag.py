"""Kafka consumer lag as Prometheus metrics, without a separate exporter.

:class:`ConsumerLagCollector` is a prometheus-client custom collector: on each
scrape it asks the bus (any transport: :class:`~xueliang.bus.memory.MemoryBus` or
:class:`~xueliang.bus.kafka.KafkaBus`) for the end offset of every partition of the
watched topics and for each watched group's committed offsets, and reports

* ``xl_kafka_consumer_lag{group,topic,partition}``: end offset − committed offset
  (a group that never committed counts from offset 0, i.e. the whole retained log);
* ``xl_kafka_consumer_committed_offset{group,topic,partition}``;
* ``xl_kafka_topic_end_offset{topic,partition}`` (its rate is the topic's write rate);
* ``xl_kafka_lag_collect_errors_total{group,topic}`` and
  ``xl_kafka_lag_collect_seconds``: the collector's own health.

Labels are bounded: groups and topics are the configured few, partitions are the
topics' partition count. Results are cached for ``min_interval_s`` so several
Prometheus servers scraping one process do not multiply the admin requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from xueliang.bus.base import Bus, BusError
from xueliang.contracts import Topics
from xueliang.ops.collector import RegisteredCollector

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LagWatch:
    """One consumer group reading one topic."""

    group: str
    topic: str


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    end_offset: int
    committed: int | None

    @property
    def lag(self) -> int:
        return max(0, self.end_offset - (self.committed or 0))


#: The consumer groups of the pipeline's stages and the topics they read.
#: Keep in step with the stages' group ids (see docs/operations.md, "Kafka lag").
PIPELINE_GROUPS: tuple[tuple[str, str], ...] = (
    ("detector", "frames"),
    ("dispatch", "incidents"),
    ("dispatch", "camera_health"),
)


def pipeline_watches(
    topics: Topics | None = None, groups: Iterable[tuple[str, str]] = PIPELINE_GROUPS
) -> list[LagWatch]:
    """The (group, topic) pairs of the standard pipeline (default topic names without ``topics``);
    ``groups`` holds (group id, Topics field name)."""
    topics = topics or Topics()
    return [LagWatch(group, getattr(topics, field)) for group, field in groups]


def measure_lag(bus: Bus, watches: Sequence[LagWatch]) -> tuple[list[PartitionLag], list[tuple[LagWatch, str]]]:
    """Lag of every partition of every watch; failures are returned per watch, never swallowed."""
    rows: list[PartitionLag] = []
    errors: list[tuple[LagWatch, str]] = []
    ends_cache: dict[str, dict[int, int]] = {}
    for w in watches:
        try:
            if w.topic not in ends_cache:
                ends_cache[w.topic] = bus.end_offsets(w.topic)
            ends = ends_cache[w.topic]
            committed = bus.committed_offsets(w.group, w.topic)
        except BusError as exc:
            errors.append((w, str(exc)))
            continue
        for p in sorted(ends):
            rows.append(PartitionLag(w.group, w.topic, p, ends[p], committed.get(p)))
    return rows, errors


class ConsumerLagCollector(RegisteredCollector):
    """Prometheus collector of consumer lag; register it once per process (:meth:`register`)."""

    def __init__(self, bus: Bus, watches: Sequence[LagWatch], min_interval_s: float = 1.0) -> None:
        if not watches:
            raise ValueError("ConsumerLagCollector needs at least one (group, topic) to watch")
        self.bus = bus
        self.watches = list(watches)
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[PartitionLag], float] | None = None
        self._errors: dict[LagWatch, int] = {w: 0 for w in self.watches}

    def _measure(self) -> tuple[list[PartitionLag], float]:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.min_interval_s:
                return self._cached[1], self._cached[2]
            started = time.perf_counter()
            rows, errors = measure_lag(self.bus, self.watches)
            took = time.perf_counter() - started
            for watch, message in errors:
                self._errors[watch] += 1
                log.warning("consumer lag of group %s on %s unavailable: %s", watch.group, watch.topic, message)
            self._cached = (now, rows, took)
            return rows, took

    def collect(self) -> Iterable[Metric]:
        rows, took = self._measure()
        lag = GaugeMetricFamily(
            "xl_kafka_consumer_lag",
            "Records a consumer group has yet to commit, per partition (end offset minus committed offset)",
            labels=["group", "topic", "partition"],
        )
        committed = GaugeMetricFamily(
            "xl_kafka_consumer_committed_offset",
            "The group's committed offset (next record to read)",
            labels=["group", "topic", "partition"],
        )
        end = GaugeMetricFamily(
            "xl_kafka_topic_end_offset",
            "Offset of the next record written to the partition",
            labels=["topic", "partition"],
        )
        seen_end: set[tuple[str, int]] = set()
        for r in rows:
            labels = [r.group, r.topic, str(r.partition)]
            lag.add_metric(labels, r.lag)
            if r.committed is not None:
                committed.add_metric(labels, r.committed)
            if (r.topic, r.partition) not in seen_end:
                seen_end.add((r.topic, r.partition))
                end.add_metric([r.topic, str(r.partition)], r.end_offset)
        errors = CounterMetricFamily(
            "xl_kafka_lag_collect_errors",
            "Lag look-ups that failed (broker or topic unavailable)",
            labels=["group", "topic"],
        )
        for watch, count in self._errors.items():
            errors.add_metric([watch.group, watch.topic], count)
        duration = GaugeMetricFamily("xl_kafka_lag_collect_seconds", "Time the last lag look-up took")
        duration.add_metric([], took)
        yield from (lag, committed, end, errors, duration)
