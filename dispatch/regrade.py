"""What a newer report changes on a case: its evidence, and a raised grade (re-routed up when the
grade's owner sits above, SLA windows shrunk to the grade's)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from xueliang.contracts import Incident
from xueliang.dispatch.changes import EventKind
from xueliang.dispatch.core import ServiceCore
from xueliang.dispatch.models import EventRow, IncidentRow
from xueliang.dispatch.workflow import SYSTEM, State


class RegradeMixin(ServiceCore):
    """The evidence and grade part of :class:`~xueliang.dispatch.service.DispatchService`."""

    def _raise_severity(self, s: Session, row: IncidentRow, inc: Incident, now: datetime) -> list[EventRow]:
        """A later revision grades the event higher (a crowd swells, a fire spreads): the case takes
        the new grade, moves up to the centre that owns that grade when it sits above the current
        owner, and its running SLA windows shrink to the new grade's (never grow). Grades are never
        lowered by a revision. Audited; the new owner and the grade's notified centres are told."""
        old_severity, old_owner = row.severity, row.owner_centre_id
        row.severity = inc.severity.value
        r = self._route(s, row.camera_id, inc.severity, row.rule_type)
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
