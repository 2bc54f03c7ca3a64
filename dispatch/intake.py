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
from xueliang.dispatch.core import ServiceCore
from xueliang.dispatch.models import CameraRow, CameraStatusRow, EventRow, IncidentRow, OccurrenceRow
from xueliang.dispatch.routing import resolve_grid, route
from xueliang.dispatch.views import IngestResult
from xueliang.dispatch.workflow import SYSTEM, InvalidRequest, SlaFlag, State

log = logging.getLogger(__name__)


class IntakeMixin(ServiceCore):
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
        cam = s.get(CameraRow, inc.camera_id)
        r = route(
            self.tree,
            self.settings.dispatch.routing,
            camera_id=inc.camera_id,
            village=cam.village_id if cam else None,
            severity=inc.severity,
            rule_type=inc.rule_type,
        )
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

    def _open_case_for(self, s: Session, inc: Incident) -> IncidentRow | None:
        """The open case this new incident repeats (same camera, rule and zone, latest occurrence
        within the merge window), or None."""
        window = self.settings.dispatch.merge.window_for(inc.rule_type)
        if window <= 0:
            return None
        zone = IncidentRow.zone.is_(None) if inc.zone is None else IncidentRow.zone == inc.zone
        q = (
            select(IncidentRow)
            .where(
                IncidentRow.camera_id == inc.camera_id,
                IncidentRow.rule == inc.rule,
                zone,
                IncidentRow.state.notin_([State.closed.value, State.rejected.value]),
                IncidentRow.last_occurrence_at >= inc.updated_at - timedelta(seconds=window),
            )
            .order_by(IncidentRow.last_occurrence_at.desc(), IncidentRow.id)
            .limit(1)
            .with_for_update()
        )
        return s.scalars(q).first()

    def _merge(
        self, s: Session, case: IncidentRow, inc: Incident, now: datetime
    ) -> tuple[IngestResult, list[EventRow]]:
        """Attach a repeated alarm to its open case: its own occurrence row (evidence, snapshot), the
        case's count and latest evidence, an audit entry; no new case, no new alarm."""
        s.add(self._new_occurrence(case.id, inc, now))
        case.occurrence_count = (case.occurrence_count or 1) + 1
        if case.last_occurrence_at is None or inc.updated_at >= case.last_occurrence_at:
            self._set_case_evidence(case, inc)
        case.started_at = min(case.started_at, inc.started_at)
        state = State(case.state)
        self._audit(
            s,
            case,
            SYSTEM,
            "merge",
            state,
            state,
            now,
            f"occurrence {case.occurrence_count}: {inc.id} ({inc.severity.value}) at {inc.updated_at.isoformat()}",
        )
        events: list[EventRow] = []
        old_severity = case.severity
        if inc.severity.rank > Severity(case.severity).rank:
            events += self._raise_severity(s, case, inc, now)
        payload: dict[str, object] = {"merged": inc.id, "occurrences": case.occurrence_count}
        if case.severity != old_severity:
            payload["severity_from"] = old_severity
        events.append(self._event(s, EventKind.incident_updated, case, now, payload=payload))
        return IngestResult(
            incident_id=inc.id, case_id=case.id, outcome="merged", owner_centre_id=case.owner_centre_id
        ), events

    @staticmethod
    def _new_occurrence(case_id: str, inc: Incident, now: datetime) -> OccurrenceRow:
        occ = OccurrenceRow(case_id=case_id, incident_id=inc.id, received_at=now)
        IntakeMixin._set_occurrence(occ, inc)
        return occ

    @staticmethod
    def _set_occurrence(occ: OccurrenceRow, inc: Incident) -> None:
        occ.revision = inc.revision
        occ.severity = inc.severity.value
        occ.started_at = inc.started_at
        occ.occurred_at = inc.updated_at
        occ.class_names = list(inc.class_names)
        occ.details = dict(inc.details)
        occ.snapshot_url = inc.snapshot_url

    @staticmethod
    def _set_case_evidence(row: IncidentRow, inc: Incident) -> None:
        """The case shows its latest occurrence's evidence; its own ``revision`` stays its first
        incident's (the stale check of that incident's revisions)."""
        revision = row.revision
        IntakeMixin._set_evidence(row, inc)
        row.revision = revision
        row.last_occurrence_at = inc.updated_at

    def _raise_severity(self, s: Session, row: IncidentRow, inc: Incident, now: datetime) -> list[EventRow]:
        """A later revision grades the event higher (a crowd swells, a fire spreads): the case takes
        the new grade, moves up to the centre that owns that grade when it sits above the current
        owner, and its running SLA windows shrink to the new grade's (never grow). Grades are never
        lowered by a revision. Audited; the new owner and the grade's notified centres are told."""
        old_severity, old_owner = row.severity, row.owner_centre_id
        row.severity = inc.severity.value
        cam = s.get(CameraRow, row.camera_id)
        r = route(
            self.tree,
            self.settings.dispatch.routing,
            camera_id=row.camera_id,
            village=cam.village_id if cam else None,
            severity=inc.severity,
            rule_type=row.rule_type,
        )
        moved = r.owner_id != old_owner and self.tree.in_subtree(old_owner, of=r.owner_id)
        if moved:
            row.owner_centre_id = r.owner_id
            row.route_reason = r.reason
        sla, had_sla = self._sla(row.severity), self._sla(old_severity) is not None
        if sla is not None:

            def shrink(
                warn_at: datetime | None, due_at: datetime | None, length_s: float, fresh: bool
            ) -> tuple[datetime | None, datetime]:
                """The window ends no later than ``length_s`` from now; a warning already given stays given."""
                warn, due = now + timedelta(seconds=sla.warn_share * length_s), now + timedelta(seconds=length_s)
                if fresh:
                    return warn, due
                return (min(warn_at, warn) if warn_at else None), (min(due_at, due) if due_at else due)

            if State(row.state).awaits_acceptance and (row.accept_due_at is not None or moved or not had_sla):
                # a new owner (or a case that had no window) gets a full one of the new grade, as after an
                # escalation; otherwise the running window only shrinks
                row.accept_warn_at, row.accept_due_at = shrink(
                    row.accept_warn_at, row.accept_due_at, sla.accept_s, fresh=moved or not had_sla
                )
            if row.close_due_at is not None or not had_sla:
                row.close_warn_at, row.close_due_at = shrink(
                    row.close_warn_at, row.close_due_at, sla.close_s, fresh=not had_sla
                )
                row.close_target_at = min(row.close_target_at or row.close_due_at, row.close_due_at)
            row.next_timer_at = self._next_timer(row)
        owner_note = f"; owner {old_owner} → {row.owner_centre_id}" if moved else ""
        note = f"severity {old_severity} → {row.severity} (revision {inc.revision}){owner_note}"
        state = State(row.state)
        self._audit(s, row, SYSTEM, "raise_severity", state, state, now, note)
        if moved:
            self._notify(s, row, row.owner_centre_id, "owner", now, note)
        for cid in r.notify_ids:
            self._notify(s, row, cid, "notify", now, note)
        if not moved:
            return []
        return [
            self._event(
                s,
                EventKind.incident_rerouted,
                row,
                now,
                payload={"from_centre_id": old_owner, "reason": "severity", "severity_from": old_severity},
            )
        ]

    @staticmethod
    def _set_evidence(row: IncidentRow, inc: Incident) -> None:
        row.revision = inc.revision
        row.updated_at = inc.updated_at
        row.class_names = list(inc.class_names)
        row.track_ids = list(inc.track_ids)
        row.boxes = [b.model_dump(mode="json") for b in inc.boxes]
        row.details = dict(inc.details)
        row.snapshot_url = inc.snapshot_url
        row.source_frame_seq = inc.source_frame_seq

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
                cam = CameraRow(
                    id=health.camera_id,
                    name="",
                    village_id=None,
                    grid_id=grid,
                    source="bus",
                    enabled=True,
                    masked_url="",
                    status=None,
                    status_reason="",
                    faults=[],
                    quality_scores={},
                    created_at=now,
                    updated_at=now,
                )
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
