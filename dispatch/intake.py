"""Intake: detector reports become cases (routed, SLA windows set, owner notified), update the
same event's evidence, or — 事件归并 — attach to an open case of the same camera, rule and zone
as another occurrence (its own evidence and snapshot kept, the case's count and latest snapshot
updated, audited, no new alarm); camera health reports update the camera's status history.

Merging: a detector incident whose id the store has never seen, from the camera, rule and zone of
an open case whose latest occurrence is at most ``dispatch.merge.window_s`` older (per rule type
in ``dispatch.merge.by_rule_type``; 0 turns it off), becomes an occurrence of that case. Every
detector incident, the case's first included, has a row in ``incident_occurrences``, so a later
revision of a merged incident finds its case, and nothing the detector sent is lost.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from xueliang.contracts import CameraHealth, Incident, Severity
from xueliang.dispatch.changes import EventKind
from xueliang.dispatch.merging import MergingMixin
from xueliang.dispatch.models import CameraRow, CameraStatusRow, EventRow, IncidentRow, OccurrenceRow
from xueliang.dispatch.routing import resolve_grid
from xueliang.dispatch.views import IngestResult
from xueliang.dispatch.workflow import SYSTEM, InvalidRequest, SlaFlag, State

log = logging.getLogger(__name__)


class IntakeMixin(MergingMixin):
    """The intake part of :class:`~xueliang.dispatch.service.DispatchService`."""

    # ============================================================== ingest
    def ingest_incident(self, incident: Incident) -> IngestResult:
        """Store a detector report: a new case, or an update of the same event's evidence.

        Idempotent: a revision not newer than the stored one changes nothing ("stale"),
        so redelivered bus records are harmless.
        """
        self._load_tree()
        for attempt in range(3):
            try:
                with self.store.session() as s:
                    result, events = self._ingest(s, incident)
                break
            except (IntegrityError, StaleDataError):
                if attempt == 2:
                    raise
                log.info("incident %s: concurrent write, retrying", incident.id)
        self.metrics.ingested.labels(result.outcome).inc()
        self._emit(events)
        return result

    def _ingest(self, s: Session, inc: Incident) -> tuple[IngestResult, list[EventRow]]:
        for name, limit in (("id", 64), ("camera_id", 64), ("rule", 64), ("rule_type", 32), ("zone", 64)):
            value = getattr(inc, name)
            if value is not None and len(value) > limit:
                raise InvalidRequest(f"incident {inc.id[:80]!r}: {name} longer than {limit} characters")
        now = self.clock()
        row = s.get(IncidentRow, inc.id, with_for_update=True)
        events: list[EventRow] = []
        if row is not None:  # a newer revision of the case's own first incident
            if inc.revision <= row.revision:
                return IngestResult(incident_id=inc.id, outcome="stale", owner_centre_id=row.owner_centre_id), events
            occ = s.scalar(select(OccurrenceRow).where(OccurrenceRow.incident_id == inc.id))
            if occ is not None:
                self._set_occurrence(occ, inc)
            if row.last_occurrence_at is None or inc.updated_at >= row.last_occurrence_at:
                self._set_evidence(row, inc)
                row.last_occurrence_at = inc.updated_at
            else:  # a later occurrence's evidence stays on the case
                row.revision = inc.revision
            return self._updated(s, row, inc, now, events)
        occ = s.scalar(select(OccurrenceRow).where(OccurrenceRow.incident_id == inc.id).with_for_update())
        if occ is not None:  # a newer revision of an occurrence merged into a case
            case = s.get(IncidentRow, occ.case_id, with_for_update=True)
            assert case is not None  # the foreign key cascades
            if inc.revision <= occ.revision:
                return IngestResult(
                    incident_id=inc.id, case_id=case.id, outcome="stale", owner_centre_id=case.owner_centre_id
                ), events
            self._set_occurrence(occ, inc)
            if case.last_occurrence_at is None or inc.updated_at >= case.last_occurrence_at:
                self._set_case_evidence(case, inc)
            return self._updated(s, case, inc, now, events)
        case = self._open_case_for(s, inc)
        if case is not None:
            return self._merge(s, case, inc, now)
        return self._new_case(s, inc, now)

    def _new_case(self, s: Session, inc: Incident, now: datetime) -> tuple[IngestResult, list[EventRow]]:
        """A new case: routed, its SLA windows set, audited, its owner and the grade's centres notified."""
        events: list[EventRow] = []
        r = self._route(s, inc.camera_id, inc.severity, inc.rule_type)
        reported = min(inc.updated_at, now)
        row = IncidentRow(
            id=inc.id,
            camera_id=inc.camera_id,
            rule=inc.rule,
            rule_type=inc.rule_type,
            severity=inc.severity.value,
            zone=inc.zone,
            state=State.reported.value,
            owner_centre_id=r.owner_id,
            grid_centre_id=r.grid_id,
            route_reason=r.reason,
            started_at=inc.started_at,
            reported_at=reported,
            stored_at=now,
            state_changed_at=now,
            escalation_level=0,
            accept_flag=SlaFlag.none.value,
            close_flag=SlaFlag.none.value,
            sla_flag=SlaFlag.none.value,
        )
        self._set_evidence(row, inc)
        row.occurrence_count = 1
        row.last_occurrence_at = inc.updated_at
        sla = self._sla(row.severity)
        if sla is not None:
            row.accept_warn_at = reported + timedelta(seconds=sla.warn_share * sla.accept_s)
            row.accept_due_at = reported + timedelta(seconds=sla.accept_s)
            row.close_warn_at = reported + timedelta(seconds=sla.warn_share * sla.close_s)
            row.close_due_at = row.close_target_at = reported + timedelta(seconds=sla.close_s)
        row.next_timer_at = self._next_timer(row)
        s.add(row)
        s.flush()
        s.add(self._new_occurrence(row.id, inc, now))
        self._audit(s, row, SYSTEM, "report", None, State.reported, now, f"reported by {inc.camera_id}; {r.reason}")
        self._notify(s, row, r.owner_id, "owner", now, "new incident to accept")
        for cid in r.notify_ids:
            self._notify(s, row, cid, "notify", now, f"{inc.severity.value} incident owned by {r.owner_id}")
        events.append(self._event(s, EventKind.incident_created, row, now))
        return IngestResult(incident_id=inc.id, case_id=inc.id, outcome="created", owner_centre_id=r.owner_id), events

    def _updated(
        self, s: Session, row: IncidentRow, inc: Incident, now: datetime, events: list[EventRow]
    ) -> tuple[IngestResult, list[EventRow]]:
        """The rest of a newer revision: the earliest start, a raised grade, the change event."""
        row.started_at = min(row.started_at, inc.started_at)
        old_severity = row.severity
        if inc.severity.rank > Severity(row.severity).rank and State(row.state).is_open:
            events += self._raise_severity(s, row, inc, now)
        events.append(
            self._event(
                s,
                EventKind.incident_updated,
                row,
                now,
                payload=({"severity_from": old_severity} if row.severity != old_severity else None),
            )
        )
        return IngestResult(
            incident_id=inc.id, case_id=row.id, outcome="updated", owner_centre_id=row.owner_centre_id
        ), events

    def ingest_health(self, health: CameraHealth) -> bool:
        """Record a camera's status/diagnosis. Returns True if its status changed.
        Reports older than the stored ones are ignored (redelivery, reordering)."""
        changed = False
        events: list[EventRow] = []
        self._load_tree()
        with self.store.session() as s:
            now = self.clock()
            cam = s.get(CameraRow, health.camera_id)
            if cam is None:  # a camera the registry does not know yet: keep its health anyway
                grid, _ = resolve_grid(self.tree, health.camera_id, None)
                cam = self._new_camera(health.camera_id, grid, now)
                s.add(cam)
                s.flush()
            if cam.health_at is None or health.at >= cam.health_at:
                cam.health_at = health.at
                cam.faults = list(health.faults)
                cam.quality_scores = dict(health.scores)
                cam.fps = health.fps
            if cam.status_at is None or health.at > cam.status_at:
                if cam.status != health.status.value:
                    changed = True
                    s.add(
                        CameraStatusRow(
                            camera_id=cam.id, status=health.status.value, at=health.at, reason=health.reason
                        )
                    )
                    events.append(
                        self._event(
                            s,
                            EventKind.camera_status,
                            None,
                            now,
                            camera_id=cam.id,
                            centre_id=cam.grid_id,
                            payload={
                                "camera_id": cam.id,
                                "status": health.status.value,
                                "previous": cam.status,
                                "reason": health.reason,
                                "faults": list(health.faults),
                            },
                        )
                    )
                cam.status, cam.status_at, cam.status_reason = health.status.value, health.at, health.reason
                cam.updated_at = now
        self._emit(events)
        return changed
