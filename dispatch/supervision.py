"""Supervision (督办): the periodic tick that raises yellow/red SLA flags and escalates overdue
cases up the centre tree, from the deadlines stored on each incident.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from xueliang.dispatch.changes import EventKind
from xueliang.dispatch.core import ServiceCore, _worst
from xueliang.dispatch.models import EscalationRow, EventRow, IncidentRow, SlaFlagRow
from xueliang.dispatch.views import TickResult
from xueliang.dispatch.workflow import SYSTEM, Action, Actor, SlaFlag, State

log = logging.getLogger(__name__)


class SupervisionMixin(ServiceCore):
    """The supervision part of :class:`~xueliang.dispatch.service.DispatchService`."""

    # ======================================================= supervision
    def tick(self, now: datetime | None = None, batch: int = 200) -> TickResult:
        """Raise the flags and escalations due by ``now`` (default: the clock). Idempotent;
        call it periodically (the dispatcher does, every ``dispatch.tick_s``)."""
        now = now or self.clock()
        result = TickResult()
        self._load_tree()
        with self.metrics.tick_duration.time():
            for _ in range(1000):  # bounded: each pass moves every incident it saw past `now`
                with self.store.read() as s:
                    ids = list(
                        s.scalars(
                            select(IncidentRow.id)
                            .where(IncidentRow.next_timer_at <= now)
                            .order_by(IncidentRow.next_timer_at)
                            .limit(batch)
                        )
                    )
                if not ids:
                    break
                for incident_id in ids:
                    try:
                        with self.store.session() as s:
                            row = s.get(IncidentRow, incident_id, with_for_update=True)
                            if row is None:
                                continue
                            after = self._after(s)
                            flags, escalations, events = self._run_timers(s, row, now)
                    except StaleDataError:
                        log.info("incident %s changed during the tick; next tick re-evaluates it", incident_id)
                        continue
                    self._run_after(after)
                    result = TickResult(
                        incidents=result.incidents + 1,
                        flags=result.flags + flags,
                        escalations=result.escalations + escalations,
                    )
                    self._emit(events)
                if len(ids) < batch:
                    break
        return result

    def _run_timers(self, s: Session, row: IncidentRow, now: datetime) -> tuple[int, int, list[EventRow]]:
        flags = escalations = 0
        events: list[EventRow] = []
        sla = self._sla(row.severity)
        while row.next_timer_at is not None and row.next_timer_at <= now:
            if not State(row.state).is_open or sla is None:
                row.accept_warn_at = row.accept_due_at = row.close_warn_at = row.close_due_at = None
                row.next_timer_at = None
                break
            pending = [
                (t, i, kind)
                for i, (kind, t) in enumerate(
                    (
                        ("accept_warn", row.accept_warn_at),
                        ("close_warn", row.close_warn_at),
                        ("accept_due", row.accept_due_at),
                        ("close_due", row.close_due_at),
                    )
                )
                if t is not None
            ]
            due, _, kind = min(pending)
            clock_name, level = kind.split("_")  # accept|close, warn|due
            flag_level = SlaFlag.yellow if level == "warn" else SlaFlag.red
            if level == "warn":
                if clock_name == "accept":
                    row.accept_warn_at = None
                    row.accept_flag = _worst(row.accept_flag, SlaFlag.yellow)
                else:
                    row.close_warn_at = None
                    row.close_flag = _worst(row.close_flag, SlaFlag.yellow)
            events += self._flag(s, row, clock_name, flag_level, due, now)
            flags += 1
            if level == "due":
                if clock_name == "accept":
                    row.accept_due_at = None
                    row.accept_flag = SlaFlag.red.value
                else:
                    row.close_due_at = None
                    row.close_flag = SlaFlag.red.value
                    # the escalated owner gets a fresh close window from the breach
                    row.close_warn_at = due + timedelta(seconds=sla.warn_share * sla.close_s)
                    row.close_due_at = due + timedelta(seconds=sla.close_s)
                if self.tree.parent(row.owner_centre_id) is not None:
                    events += self._escalate(
                        s, row, now, reason=f"{clock_name}_sla", actor=SYSTEM, due_at=due, window_start=due, note=""
                    )
                    escalations += 1
                elif clock_name == "close":
                    row.close_warn_at = row.close_due_at = None  # the top centre: red, nowhere higher to go
            row.sla_flag = _worst(row.accept_flag, row.close_flag)
            row.next_timer_at = self._next_timer(row)
        return flags, escalations, events

    def _flag(
        self, s: Session, row: IncidentRow, clock_name: str, level: SlaFlag, due: datetime, now: datetime
    ) -> list[EventRow]:
        s.add(
            SlaFlagRow(
                incident_id=row.id,
                clock=clock_name,
                level=level.value,
                window_level=row.escalation_level,
                centre_id=row.owner_centre_id,
                due_at=due,
                at=now,
            )
        )
        kind = "sla_yellow" if level is SlaFlag.yellow else "sla_red"
        limit = "accept" if clock_name == "accept" else "close"
        self._notify(
            s,
            row,
            row.owner_centre_id,
            kind,
            now,
            f"{'nearly due' if level is SlaFlag.yellow else 'overdue'} to {limit} (due {due.isoformat()})",
        )
        counter = self.metrics.warnings if level is SlaFlag.yellow else self.metrics.overdue
        self._later(s, counter.labels(clock_name, row.severity).inc)
        return [
            self._event(
                s,
                EventKind.incident_flag,
                row,
                now,
                payload={"clock": clock_name, "level": level.value, "due_at": due.isoformat()},
            )
        ]

    def _escalate(
        self,
        s: Session,
        row: IncidentRow,
        now: datetime,
        *,
        reason: str,
        actor: Actor,
        due_at: datetime | None,
        window_start: datetime,
        note: str,
    ) -> list[EventRow]:
        parent = self.tree.parent(row.owner_centre_id)
        assert parent is not None
        old_state, old_owner = State(row.state), row.owner_centre_id
        row.state = State.escalated.value
        row.state_changed_at = now
        row.escalation_level += 1
        row.owner_centre_id = parent
        sla = self._sla(row.severity)
        if sla is not None:  # the new owner must accept within its own window
            row.accept_warn_at = window_start + timedelta(seconds=sla.warn_share * sla.accept_s)
            row.accept_due_at = window_start + timedelta(seconds=sla.accept_s)
        why = {"accept_sla": "not accepted in time", "close_sla": "not closed in time", "manual": "escalated"}[reason]
        text = f"{why}: {old_owner} → {parent}" + (f" (due {due_at.isoformat()})" if due_at else "")
        text += f"; {note}" if note else ""
        self._audit(s, row, actor, Action.escalate.value, old_state, State.escalated, now, text)
        s.add(
            EscalationRow(
                incident_id=row.id,
                from_centre_id=old_owner,
                to_centre_id=parent,
                level=row.escalation_level,
                reason=reason,
                due_at=due_at,
                at=now,
                actor=actor.name,
            )
        )
        self._notify(s, row, parent, "escalation", now, text)
        self._later(s, self.metrics.escalations.labels(reason, self.tree.node(parent).tier.value).inc)
        return [
            self._event(
                s, EventKind.incident_escalated, row, now, payload={"from_centre_id": old_owner, "reason": reason}
            )
        ]
