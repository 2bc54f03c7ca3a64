"""Merging (事件归并): a repeated alarm of an open case (same camera, rule and zone, within the merge
window) becomes an occurrence of that case instead of a new case."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from xueliang.contracts import Incident, Severity
from xueliang.dispatch.changes import EventKind
from xueliang.dispatch.models import EventRow, IncidentRow, OccurrenceRow
from xueliang.dispatch.regrade import RegradeMixin
from xueliang.dispatch.views import IngestResult
from xueliang.dispatch.workflow import SYSTEM, State


class MergingMixin(RegradeMixin):
    """The merging part of :class:`~xueliang.dispatch.service.DispatchService`."""

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
        MergingMixin._set_occurrence(occ, inc)
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
        RegradeMixin._set_evidence(row, inc)
        row.revision = revision
        row.last_occurrence_at = inc.updated_at
