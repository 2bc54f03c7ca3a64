"""Oversight (督办) by the centres above: the per-child KPI table and ranking, urging an owner
(催办: notified and audited, the state unchanged), and read-only sight of cases escalated away.

* :meth:`OversightMixin.child_kpis`: for each direct child of a centre, the incidents of its
  grids (the villages under it) reported in a window — including those it let escalate away,
  so a township that let a fire go red is charged with it — with time to accept, overdue,
  false-alarm and escalation rates, ranked best first.
* :meth:`OversightMixin.urge`: a supervisor above the owner urges it: a notification of kind
  ``urge`` to the owner, an audit entry ``urge`` (state unchanged), a change event
  ``incident.urged`` that the owner's console turns into an urgent alert.

Cases escalated away stay readable to the lower centre (``get_incident``; the wall's
``scope=away``), never actionable: actions still need the owner's area.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from xueliang.dispatch.changes import EventKind
from xueliang.dispatch.conditions import reported_between
from xueliang.dispatch.core import ServiceCore, _chunks
from xueliang.dispatch.models import EscalationRow, IncidentRow
from xueliang.dispatch.views import IncidentView
from xueliang.dispatch.workflow import (
    Actor,
    Forbidden,
    InvalidRequest,
    NotFound,
    RejectReason,
    Role,
    State,
    WorkflowError,
)


class NothingToUrge(WorkflowError):
    """The case is closed or rejected (HTTP 409)."""

    http_status = 409


class ChildKpi(BaseModel):
    centre_id: str
    name: str
    tier: str
    total: int = Field(description="incidents of the child's grids reported in the window")
    open: int
    unaccepted: int = Field(description="open and not yet accepted (reported or escalated)")
    accept_p50_s: float | None = Field(description="median time to accept (受理用时)")
    overdue_rate: float | None = Field(description="share that ever went red (超时率)")
    false_alarm_rate: float | None = Field(description="share rejected as false alarm (误报率)")
    escalations: int = Field(description="escalations away from the child's subtree (升级)")
    escalation_rate: float | None
    rank: int = Field(description="1 = best: fewest overdue, then fewest escalations, then fastest accept")


class OversightMixin(ServiceCore):
    """The oversight part of :class:`~xueliang.dispatch.service.DispatchService`."""

    def child_kpis(
        self, centre_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[ChildKpi]:
        """KPIs of each direct child of ``centre_id`` over its grids' incidents, ranked."""
        if centre_id not in self.tree:
            raise NotFound(f"unknown centre {centre_id!r}")
        children = [self.tree.node(c) for c in self.tree.children[centre_id]]
        if not children:
            return []
        owner_of: dict[str, str] = {}
        for child in children:
            for cid in self.tree.subtree(child.id):
                owner_of[cid] = child.id
        q = select(
            IncidentRow.id,
            IncidentRow.grid_centre_id,
            IncidentRow.state,
            IncidentRow.reported_at,
            IncidentRow.accepted_at,
            IncidentRow.reject_reason,
        ).where(IncidentRow.grid_centre_id.in_(list(owner_of)), *reported_between(since, until))
        with self.store.read() as s:
            rows = list(s.execute(q))
            ids = [r[0] for r in rows]
            red = self._red_flagged(s, ids)
            escalated: set[tuple[str, str]] = set()
            for chunk in _chunks(ids):
                for iid, src in s.execute(
                    select(EscalationRow.incident_id, EscalationRow.from_centre_id).where(
                        EscalationRow.incident_id.in_(chunk)
                    )
                ):
                    child_id = owner_of.get(src)
                    if child_id is not None:  # escalated from inside the child: away from it
                        escalated.add((child_id, iid))
        per: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            per[owner_of[r[1]]].append(r)
        out: list[ChildKpi] = []
        for child in children:
            mine = per.get(child.id, [])
            total = len(mine)
            accept = [(r[4] - r[3]).total_seconds() for r in mine if r[4] is not None]
            esc = sum(1 for r in mine if (child.id, r[0]) in escalated)
            out.append(
                ChildKpi(
                    centre_id=child.id,
                    name=child.name,
                    tier=child.tier.value,
                    total=total,
                    open=sum(1 for r in mine if State(r[2]).is_open),
                    unaccepted=sum(1 for r in mine if r[2] in (State.reported.value, State.escalated.value)),
                    accept_p50_s=statistics.median(accept) if accept else None,
                    overdue_rate=sum(1 for r in mine if r[0] in red) / total if total else None,
                    false_alarm_rate=sum(1 for r in mine if r[5] == RejectReason.false_alarm.value) / total
                    if total
                    else None,
                    escalations=esc,
                    escalation_rate=esc / total if total else None,
                    rank=0,
                )
            )
        order = sorted(
            out,
            key=lambda k: (
                k.overdue_rate or 0.0,
                k.escalation_rate or 0.0,
                k.accept_p50_s if k.accept_p50_s is not None else 0.0,
                k.centre_id,
            ),
        )
        ranks = {k.centre_id: i + 1 for i, k in enumerate(order)}
        return sorted((k.model_copy(update={"rank": ranks[k.centre_id]}) for k in out), key=lambda k: k.rank)

    def urge(self, incident_id: str, actor: Actor, note: str) -> IncidentView:
        """督办/催办: a supervisor (or admin) whose area contains the owner, but who is not the owner
        itself, urges the owner of an open case. Notifies the owner, audits, emits ``incident.urged``."""
        note = note.strip()
        if not note:
            raise InvalidRequest(f"incident {incident_id}: urging needs a note (what is expected, by when)")
        if len(note) > 500:
            raise InvalidRequest(f"incident {incident_id}: the note is longer than 500 characters")
        with self._incident_for_update(incident_id, retry="try again") as (s, row):
            if actor.role not in (Role.supervisor, Role.admin):
                raise Forbidden(f"role {actor.role.value} may not urge (督办)")
            if actor.role is not Role.admin:
                if not self.tree.in_subtree(row.owner_centre_id, of=actor.centre_id):
                    raise Forbidden(
                        f"incident {incident_id} is owned by {row.owner_centre_id}, outside {actor.centre_id}'s area"
                    )
                if row.owner_centre_id == actor.centre_id:
                    raise Forbidden(f"incident {incident_id} is your own centre's: act on it instead of urging")
            state = State(row.state)
            if not state.is_open:
                raise NothingToUrge(f"incident {incident_id} is {state.value}: nothing to urge")
            now = self.clock()
            by = f"{actor.name} @ {actor.centre_id}"
            self._audit(s, row, actor, "urge", state, state, now, note)
            self._notify(s, row, row.owner_centre_id, "urge", now, f"{by}: {note}")
            events = [
                self._event(
                    s,
                    EventKind.incident_urged,
                    row,
                    now,
                    payload={"by": actor.name, "by_centre_id": actor.centre_id, "note": note},
                )
            ]
            s.flush()
            view = self._view(row)
        self._emit(events)
        return view
