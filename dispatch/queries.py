"""Queries: incident detail and lists (keyset pagination), notifications, and the workflow KPIs."""

from __future__ import annotations

import base64
import json
import statistics
from collections import Counter as Tally
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from xueliang.dispatch.conditions import filter_conditions, reported_between
from xueliang.dispatch.core import ServiceCore, _chunks
from xueliang.dispatch.models import AuditRow, EscalationRow, IncidentRow, NotificationRow, OccurrenceRow, SlaFlagRow
from xueliang.dispatch.views import (
    AuditEntry,
    DurationStats,
    EscalationView,
    IncidentDetail,
    IncidentFilter,
    IncidentPage,
    Kpis,
    NotificationView,
    OccurrenceView,
    SlaFlagView,
)
from xueliang.dispatch.workflow import Actor, Forbidden, InvalidRequest, NotFound, RejectReason, Role, State

MAX_OCCURRENCES_SHOWN = 200
"""A case's detail lists its latest occurrences up to this many (the count is ``occurrence_count``)."""


class QueriesMixin(ServiceCore):
    """The query and KPI part of :class:`~xueliang.dispatch.service.DispatchService`."""

    # =========================================================== queries
    def get_incident(self, incident_id: str, viewer: Actor | None = None) -> IncidentDetail:
        with self.store.read() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise NotFound(f"incident {incident_id} not found")
            if (
                viewer is not None
                and not self.can_see(viewer, row.owner_centre_id)
                and not self._escalated_from(s, incident_id, viewer.centre_id)  # read-only sight, no actions
                and not (viewer.role is Role.grid_worker and row.dispatch_target == viewer.name)
            ):
                raise Forbidden(
                    f"incident {incident_id} is owned by {row.owner_centre_id}, outside {viewer.centre_id}'s area"
                )
            audit = s.scalars(select(AuditRow).where(AuditRow.incident_id == incident_id).order_by(AuditRow.id))
            notes = s.scalars(
                select(NotificationRow).where(NotificationRow.incident_id == incident_id).order_by(NotificationRow.id)
            )
            escs = s.scalars(
                select(EscalationRow).where(EscalationRow.incident_id == incident_id).order_by(EscalationRow.id)
            )
            flags = s.scalars(select(SlaFlagRow).where(SlaFlagRow.incident_id == incident_id).order_by(SlaFlagRow.id))
            occurrences = s.scalars(
                select(OccurrenceRow)
                .where(OccurrenceRow.case_id == incident_id)
                .order_by(OccurrenceRow.occurred_at.desc(), OccurrenceRow.id.desc())
                .limit(MAX_OCCURRENCES_SHOWN)
            )
            return IncidentDetail(
                **self._view(row).model_dump(),
                audit=[AuditEntry.model_validate(a) for a in audit],
                notifications=[NotificationView.model_validate(n) for n in notes],
                escalations=[EscalationView.model_validate(e) for e in escs],
                sla_flags=[SlaFlagView.model_validate(f) for f in flags],
                occurrences=[OccurrenceView.model_validate(o) for o in occurrences],
            )

    def _escalated_from(self, s: Any, incident_id: str, centre_id: str) -> bool:
        """Was the case escalated away from ``centre_id``'s subtree? (its lower centre may still read it)"""
        sources = s.scalars(select(EscalationRow.from_centre_id).where(EscalationRow.incident_id == incident_id))
        return any(src in self.tree and self.tree.in_subtree(src, of=centre_id) for src in sources)

    def case_of(self, incident_id: str) -> str:
        """The case a detector incident belongs to: itself, or the case it was merged into (事件归并)."""
        with self.store.read() as s:
            case = s.scalar(select(OccurrenceRow.case_id).where(OccurrenceRow.incident_id == incident_id))
        return case or incident_id

    def audit_trail(self, incident_id: str) -> list[AuditEntry]:
        return self.get_incident(incident_id).audit

    def list_incidents(
        self,
        filters: IncidentFilter | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
        viewer: Actor | None = None,
    ) -> IncidentPage:
        """Newest first (by report time, then id); keyset pagination through ``cursor``."""
        f = filters or IncidentFilter()
        if not 1 <= limit <= 500:
            raise InvalidRequest(f"limit must be 1..500, got {limit}")
        q = select(IncidentRow)
        centre = self.list_root(viewer, f.centre_id)
        if centre is not None:
            q = q.where(IncidentRow.owner_centre_id.in_(self.tree.subtree(centre)))
        q = q.where(*filter_conditions(f))
        if f.rules:
            q = q.where(IncidentRow.rule.in_(f.rules))
        if f.open_only:
            q = q.where(IncidentRow.state.notin_([State.closed.value, State.rejected.value]))
        if cursor:
            at, cid = _decode_cursor(cursor)
            q = q.where(or_(IncidentRow.reported_at < at, and_(IncidentRow.reported_at == at, IncidentRow.id < cid)))
        q = q.order_by(IncidentRow.reported_at.desc(), IncidentRow.id.desc()).limit(limit + 1)
        with self.store.read() as s:
            rows = list(s.scalars(q))
        more = len(rows) > limit
        rows = rows[:limit]
        return IncidentPage(
            items=[self._view(r) for r in rows],
            next_cursor=_encode_cursor(rows[-1].reported_at, rows[-1].id) if more else None,
        )

    def notifications(self, centre_id: str, *, unread_only: bool = False, limit: int = 100) -> list[NotificationView]:
        q = select(NotificationRow).where(NotificationRow.centre_id == centre_id)
        if unread_only:
            q = q.where(NotificationRow.read_at.is_(None))
        with self.store.read() as s:
            return [
                NotificationView.model_validate(n)
                for n in s.scalars(q.order_by(NotificationRow.id.desc()).limit(limit))
            ]

    def mark_read(self, notification_ids: Iterable[int], *, centre_id: str | None = None) -> int:
        """Mark unread notifications read (only those addressed to ``centre_id`` when given)."""
        q = select(NotificationRow).where(
            NotificationRow.id.in_(list(notification_ids)), NotificationRow.read_at.is_(None)
        )
        if centre_id is not None:
            q = q.where(NotificationRow.centre_id == centre_id)
        with self.store.session() as s:
            rows = list(s.scalars(q))
            for n in rows:
                n.read_at = self.clock()
            return len(rows)

    # =============================================================== KPIs
    def kpis(
        self, *, centre_id: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> Kpis:
        """Workflow KPIs of the incidents reported in ``[since, until)`` owned in ``centre_id``'s subtree."""
        q = select(
            IncidentRow.id,
            IncidentRow.owner_centre_id,
            IncidentRow.severity,
            IncidentRow.state,
            IncidentRow.reported_at,
            IncidentRow.accepted_at,
            IncidentRow.closed_at,
            IncidentRow.close_target_at,
            IncidentRow.reject_reason,
        )
        if centre_id is not None:
            q = q.where(IncidentRow.owner_centre_id.in_(self.tree.subtree(centre_id)))
        q = q.where(*reported_between(since, until))
        with self.store.read() as s:
            rows = list(s.execute(q))
            ids = [r[0] for r in rows]
            red = self._red_flagged(s, ids)
            esc: list[str] = []
            for chunk in _chunks(ids):
                esc += list(s.scalars(select(EscalationRow.reason).where(EscalationRow.incident_id.in_(chunk))))
        tier = lambda cid: self.tree.node(cid).tier.value if cid in self.tree else "unknown"  # noqa: E731
        accept_s = [(r[5] - r[4]).total_seconds() for r in rows if r[5] is not None]
        closed = [r for r in rows if r[3] == State.closed.value and r[6] is not None]
        close_s = [(r[6] - r[4]).total_seconds() for r in closed if r[6] is not None]
        on_time = sum(1 for r in closed if r[7] is None or (r[6] is not None and r[6] <= r[7]))
        closed_tiers = Tally(tier(r[1]) for r in closed)
        total = len(rows)
        return Kpis(
            total=total,
            by_state=dict(Tally(r[3] for r in rows)),
            by_severity=dict(Tally(r[2] for r in rows)),
            by_centre=dict(Tally(r[1] for r in rows)),
            by_tier=dict(Tally(tier(r[1]) for r in rows)),
            time_to_accept=_stats(accept_s),
            time_to_close=_stats(close_s),
            closed=len(closed),
            on_time_closure_rate=on_time / len(closed) if closed else None,
            overdue_rate=len(red) / total if total else None,
            resolved_share_by_tier={t: n / len(closed) for t, n in closed_tiers.items()},
            escalations=len(esc),
            escalations_by_reason=dict(Tally(esc)),
            rejected=sum(1 for r in rows if r[3] == State.rejected.value),
            false_alarm_rate=sum(1 for r in rows if r[8] == RejectReason.false_alarm.value) / total if total else None,
        )


def _stats(values: list[float]) -> DurationStats:
    if not values:
        return DurationStats(count=0, mean_s=None, p50_s=None, p90_s=None)
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return DurationStats(count=len(values), mean_s=statistics.fmean(values), p50_s=statistics.median(values), p90_s=p90)


def _encode_cursor(at: datetime, incident_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), incident_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, incident_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(incident_id)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"malformed cursor {cursor!r}") from exc
