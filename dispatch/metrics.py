"""Prometheus metrics of the dispatch stage.

Two kinds:

* Event metrics, observed by the process that performs the change (the dispatcher for
  ingest, SLA flags and escalations; the API process for operator actions):
  ``xl_dispatch_time_to_accept_seconds``, ``xl_dispatch_time_to_close_seconds`` (histograms by
  severity), ``xl_dispatch_closed_total{severity,on_time}``, ``xl_dispatch_overdue_total{clock,severity}``,
  ``xl_dispatch_escalations_total{reason,to_tier}``, ``xl_dispatch_rejections_total{reason}``,
  ``xl_dispatch_incidents_ingested_total{outcome}``, ``xl_dispatch_messages_total{topic,outcome}``,
  ``xl_dispatch_dead_letters_total{reason}`` (``contract``: breaks its contract; ``invalid``: refused by the workflow; ``database``: refused by the database; ``error``: anything else),
  ``xl_dispatch_tick_duration_seconds``.
* State metrics read from the database at scrape time by :class:`StoreCollector`, so
  they agree across processes: ``xl_dispatch_incidents{centre,tier,severity,state}``,
  ``xl_dispatch_incidents_flagged{centre,flag}``, ``xl_dispatch_false_alarm_ratio``,
  ``xl_dispatch_escalated_incidents_ratio``, ``xl_dispatch_cameras{status}``.

Label values are bounded: centres, tiers, severities, states, reasons; never ids of incidents.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

DURATION_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 86400, 3 * 86400)


class DispatchMetrics:
    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        kw: dict[str, Any] = {"registry": registry}
        self.time_to_accept = Histogram(
            "xl_dispatch_time_to_accept_seconds", "Report to acceptance", ["severity"], buckets=DURATION_BUCKETS, **kw
        )
        self.time_to_close = Histogram(
            "xl_dispatch_time_to_close_seconds", "Report to closure", ["severity"], buckets=DURATION_BUCKETS, **kw
        )
        self.closed = Counter("xl_dispatch_closed_total", "Incidents closed", ["severity", "on_time"], **kw)
        self.overdue = Counter("xl_dispatch_overdue_total", "SLA breaches (red flags)", ["clock", "severity"], **kw)
        self.warnings = Counter("xl_dispatch_sla_warnings_total", "Yellow flags", ["clock", "severity"], **kw)
        self.escalations = Counter(
            "xl_dispatch_escalations_total", "Escalations to a parent centre", ["reason", "to_tier"], **kw
        )
        self.rejections = Counter("xl_dispatch_rejections_total", "Incidents rejected", ["reason"], **kw)
        self.ingested = Counter("xl_dispatch_incidents_ingested_total", "Incident reports stored", ["outcome"], **kw)
        self.messages = Counter("xl_dispatch_messages_total", "Bus records consumed", ["topic", "outcome"], **kw)
        self.dead_letters = Counter(
            "xl_dispatch_dead_letters_total", "Records sent to the dead-letter topic", ["reason"], **kw
        )
        self.tick_duration = Histogram("xl_dispatch_tick_duration_seconds", "SLA tick duration", **kw)


_BY_REGISTRY: dict[int, DispatchMetrics] = {}


def get_metrics(registry: CollectorRegistry | None = None) -> DispatchMetrics:
    """The metrics bound to ``registry`` (default: the global one), created once per registry."""
    reg = registry if registry is not None else REGISTRY
    if id(reg) not in _BY_REGISTRY:
        _BY_REGISTRY[id(reg)] = DispatchMetrics(reg)
    return _BY_REGISTRY[id(reg)]


class StoreCollector(Collector):
    """Incident and camera state read from the database on each scrape."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families, empty: what registration (and the metrics catalogue) reads, without a query."""
        return self._families({}, [], [], 0, 0, 0, [])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from xueliang.dispatch.models import CameraRow, CentreRow, IncidentRow
        from xueliang.dispatch.workflow import SlaFlag

        with self.store.read() as s:
            tiers = dict(s.execute(select(CentreRow.id, CentreRow.tier)).all())
            counts = s.execute(
                select(IncidentRow.owner_centre_id, IncidentRow.severity, IncidentRow.state, func.count()).group_by(
                    IncidentRow.owner_centre_id, IncidentRow.severity, IncidentRow.state
                )
            ).all()
            flags = s.execute(
                select(IncidentRow.owner_centre_id, IncidentRow.sla_flag, func.count())
                .where(IncidentRow.sla_flag != SlaFlag.none.value)
                .group_by(IncidentRow.owner_centre_id, IncidentRow.sla_flag)
            ).all()
            total = s.scalar(select(func.count()).select_from(IncidentRow)) or 0
            false_alarms = (
                s.scalar(
                    select(func.count()).select_from(IncidentRow).where(IncidentRow.reject_reason == "false_alarm")
                )
                or 0
            )
            escalated = (
                s.scalar(select(func.count()).select_from(IncidentRow).where(IncidentRow.escalation_level > 0)) or 0
            )
            cams = s.execute(select(CameraRow.status, func.count()).group_by(CameraRow.status)).all()
        return self._families(tiers, counts, flags, total, false_alarms, escalated, cams)

    @staticmethod
    def _families(
        tiers: dict[str, str],
        counts: Sequence[Any],
        flags: Sequence[Any],
        total: int,
        false_alarms: int,
        escalated: int,
        cams: Sequence[Any],
    ) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "xl_dispatch_incidents",
            "Incidents by owner centre, tier, severity and state",
            labels=["centre", "tier", "severity", "state"],
        )
        for centre, severity, state, n in counts:
            g.add_metric([centre, tiers.get(centre, ""), severity, state], n)
        yield g
        f = GaugeMetricFamily(
            "xl_dispatch_incidents_flagged", "Open incidents with a supervision flag", labels=["centre", "flag"]
        )
        for centre, flag, n in flags:
            f.add_metric([centre, flag], n)
        yield f
        yield GaugeMetricFamily(
            "xl_dispatch_false_alarm_ratio",
            "Rejected as false alarm / incidents",
            value=false_alarms / total if total else 0.0,
        )
        yield GaugeMetricFamily(
            "xl_dispatch_escalated_incidents_ratio",
            "Incidents escalated at least once / incidents",
            value=escalated / total if total else 0.0,
        )
        c = GaugeMetricFamily("xl_dispatch_cameras", "Cameras by status", labels=["status"])
        for status, n in cams:
            c.add_metric([status or "unknown"], n)
        yield c


def register_store_collector(store: Any, registry: CollectorRegistry | None = None) -> StoreCollector:
    collector = StoreCollector(store)
    (registry if registry is not None else REGISTRY).register(collector)
    return collector
