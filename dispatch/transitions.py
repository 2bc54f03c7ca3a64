"""Transitions: an actor's workflow action on an incident (受理 → 分拨 → 处置 → 办结), checked,
applied and audited.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy.orm import Session

from xueliang.dispatch.changes import EventKind
from xueliang.dispatch.core import ServiceCore, _worst
from xueliang.dispatch.models import EventRow, IncidentRow
from xueliang.dispatch.supervision import SupervisionMixin
from xueliang.dispatch.views import IncidentView
from xueliang.dispatch.workflow import (
    Action,
    Actor,
    InvalidRequest,
    RejectReason,
    SlaFlag,
    StaleRevision,
    State,
    next_state,
)


class TransitionsMixin(SupervisionMixin):
    """The workflow part of :class:`~xueliang.dispatch.service.DispatchService` (a manual escalation
    is supervision's escalation, hence the base)."""

    # =========================================================== workflow
    def transition(
        self,
        incident_id: str,
        action: Action | str,
        actor: Actor,
        note: str = "",
        *,
        target: str | None = None,
        reason: RejectReason | str | None = None,
        expected_version: int | None = None,
    ) -> IncidentView:
        """Take ``action`` on an incident as ``actor``; audited; raises the workflow's typed errors.

        ``target``: for ``dispatch``, a centre id below the owner or a unit's name.
        ``reason``: for ``reject``, ``false_alarm`` or ``duplicate``.
        ``expected_version``: the ``version`` the caller saw; a different one raises StaleRevision.
        """
        try:
            action = Action(action)
        except ValueError:
            raise InvalidRequest(f"unknown action {action!r} (one of {', '.join(a.value for a in Action)})") from None
        with self._incident_for_update(incident_id, retry="reload it") as (s, row):
            # permission first: an actor outside the incident's area must not learn its version (409 vs 403)
            self.check_may(actor, action, row)
            if expected_version is not None and row.version != expected_version:
                raise StaleRevision(
                    f"incident {incident_id} changed (version {row.version}, you saw {expected_version}): reload it"
                )
            now = self.clock()
            after = self._after(s)
            events = self._apply(s, row, action, actor, note, now, target=target, reason=reason)
            s.flush()
            view = self._view(row)
        self._run_after(after)
        self._emit(events)
        return view

    def _apply(
        self,
        s: Session,
        row: IncidentRow,
        action: Action,
        actor: Actor,
        note: str,
        now: datetime,
        *,
        target: str | None,
        reason: RejectReason | str | None,
    ) -> list[EventRow]:
        state = State(row.state)
        new = next_state(row.id, state, action)
        events: list[EventRow] = []
        sev = row.severity
        if action is Action.reject:
            if reason is None:
                raise InvalidRequest(f"incident {row.id}: reject needs a reason (false_alarm or duplicate)")
            try:
                row.reject_reason = RejectReason(reason).value
            except ValueError:
                raise InvalidRequest(
                    f"incident {row.id}: unknown reject reason {reason!r} (false_alarm or duplicate)"
                ) from None
            note = note or row.reject_reason
            self._later(s, self.metrics.rejections.labels(row.reject_reason).inc)
        if action is Action.dispatch:
            if not target:
                raise InvalidRequest(f"incident {row.id}: dispatch needs a target (a centre id or a unit's name)")
            if target in self.tree and not self.tree.in_subtree(target, of=row.owner_centre_id):
                raise InvalidRequest(
                    f"incident {row.id}: cannot dispatch to centre {target}, "
                    f"which is not under the owner {row.owner_centre_id}"
                )
            row.dispatch_target = target
            row.dispatched_at = now
            if target in self.tree:
                self._notify(s, row, target, "dispatch", now, note or f"dispatched by {row.owner_centre_id}")
            note = f"to {target}" + (f": {note}" if note else "")
        if action is Action.return_ and not note.strip():
            raise InvalidRequest(f"incident {row.id}: returning needs a note saying why")
        if action is Action.escalate:
            parent = self.tree.parent(row.owner_centre_id)
            if parent is None:
                raise InvalidRequest(f"incident {row.id}: owner {row.owner_centre_id} is the top centre")
            events += self._escalate(
                s, row, now, reason="manual", actor=actor, due_at=None, window_start=now, note=note
            )
            row.next_timer_at = self._next_timer(row)
            return events
        if action is Action.accept and row.accepted_at is None:  # the first acceptance counts for the KPI
            self._later(
                s, partial(self.metrics.time_to_accept.labels(sev).observe, (now - row.reported_at).total_seconds())
            )
            row.accepted_at = now
        if action is Action.close:
            row.closed_at = now
            on_time = row.close_target_at is None or now <= row.close_target_at
            self._later(
                s, partial(self.metrics.time_to_close.labels(sev).observe, (now - row.reported_at).total_seconds())
            )
            self._later(s, self.metrics.closed.labels(sev, str(on_time).lower()).inc)
        if new is State.rejected:
            row.closed_at = now
        row.state = new.value
        row.state_changed_at = now
        self._settle_clocks(row, new)
        self._audit(s, row, actor, action.value, state, new, now, note)
        events.append(
            self._event(
                s,
                EventKind.incident_transition,
                row,
                now,
                payload={"action": action.value, "from": state.value, "actor": actor.name},
            )
        )
        return events

    @staticmethod
    def _settle_clocks(row: IncidentRow, state: State) -> None:
        """Stop the clocks a state no longer runs, and recompute the incident's flag."""
        if not state.awaits_acceptance:
            row.accept_warn_at = row.accept_due_at = None
            row.accept_flag = SlaFlag.none.value
        if not state.is_open:
            row.close_warn_at = row.close_due_at = None
            row.close_flag = SlaFlag.none.value
        row.sla_flag = _worst(row.accept_flag, row.close_flag)
        row.next_timer_at = ServiceCore._next_timer(row)
