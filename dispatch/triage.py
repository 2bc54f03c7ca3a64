"""The alert wall's query: triage order, server-side paging and counts, search, history and export.

The wall must never cut an urgent case, so ordering is done by the database over the whole
filtered set, not by the browser over a page of the newest incidents. Open incidents are
ordered SLA-first::

    0 red flag (overdue)  1 escalated to the viewer's own centre  2 yellow flag  3 the rest
    then severity (critical first), then age (oldest report first), then id

History (closed and rejected incidents) is newest closure first. Counts of the urgent classes
are computed over the whole scope (open or history) *without* the user's filters, so a filter
can never hide that a red case exists.

Usage::

    q = WallQuery(scope="open", severities=[Severity.critical], search="村口")
    page = wall_page(service, q, viewer=actor, page=1, page_size=50)
    rows = wall_rows(service, q, viewer=actor, limit=10_000)   # CSV export: same order, no paging
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, and_, case, false, func, literal, or_, select

from xueliang.contracts import Severity
from xueliang.dispatch.conditions import filter_conditions
from xueliang.dispatch.models import CameraRow, EscalationRow, IncidentRow
from xueliang.dispatch.views import IncidentFilterFields, IncidentView
from xueliang.dispatch.workflow import Actor, InvalidRequest, Role, State, allowed_actions

CLOSED_STATES = (State.closed.value, State.rejected.value)
SEVERITY_RANK = {"critical": 0, "major": 1, "serious": 2, "general": 3}
Scope = Literal["open", "closed", "away"]
Urgency = Literal["red", "escalated_to_me", "yellow", "normal"]


class WallQuery(IncidentFilterFields):
    """What the wall shows (all filters optional, combined with AND)."""

    scope: Scope = Field(
        "open",
        description="open: not closed or rejected; closed: history; away: open cases escalated away from "
        "the viewer's area (read-only)",
    )
    escalated_to_me: bool = Field(False, description="only incidents escalated to the viewer's own centre")
    search: str | None = Field(None, max_length=100, description="id, camera id or name, rule, zone, target")


class WallCounts(BaseModel):
    """Counts over the whole scope, before the user's filters (urgent work is never hidden)."""

    scope_total: int
    red: int
    yellow: int
    escalated_to_me: int
    critical: int
    unaccepted: int = Field(description="reported or escalated: waiting for 受理")


class WallItem(IncidentView):
    urgency: Urgency = Field(description="why it sorts where it does: red, escalated_to_me, yellow, normal")


class WallPage(BaseModel):
    items: list[WallItem]
    total: int = Field(description="incidents matching the filters")
    page: int
    page_size: int
    pages: int
    counts: WallCounts


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


class _Scope:
    """The viewer's visible owners and 'my centre' for the escalated-to-me rank."""

    def __init__(self, service: Any, query: WallQuery, viewer: Actor | None) -> None:
        centre = service.list_root(viewer, query.centre_id)
        self.owners: list[str] | None = None if centre is None else sorted(service.tree.subtree(centre))
        self.me: str | None = None if viewer is None or viewer.role is Role.admin else viewer.centre_id
        # 网格员: their wall is the cases dispatched to them, wherever they are owned
        self.assignee: str | None = viewer.name if viewer is not None and viewer.role is Role.grid_worker else None

    def escalated_to_me(self) -> ColumnElement[bool]:
        base = IncidentRow.state == State.escalated.value
        return and_(base, IncidentRow.owner_centre_id == self.me) if self.me is not None else base


def _base(scope: _Scope, query: WallQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if scope.assignee is not None:
        if query.scope == "away":
            return [false()]
        states = (
            IncidentRow.state.notin_(CLOSED_STATES) if query.scope == "open" else IncidentRow.state.in_(CLOSED_STATES)
        )
        return [IncidentRow.dispatch_target == scope.assignee, states]
    if query.scope == "away":  # escalated from inside the area to a centre outside it
        if scope.owners is None:
            return [false()]
        escalated = select(EscalationRow.incident_id).where(EscalationRow.from_centre_id.in_(scope.owners))
        return [
            IncidentRow.id.in_(escalated),
            IncidentRow.owner_centre_id.notin_(scope.owners),
            IncidentRow.state.notin_(CLOSED_STATES),
        ]
    if scope.owners is not None:
        where.append(IncidentRow.owner_centre_id.in_(scope.owners))
    if query.scope == "open":
        where.append(IncidentRow.state.notin_(CLOSED_STATES))
    else:
        where.append(IncidentRow.state.in_(CLOSED_STATES))
    return where


def _filters(scope: _Scope, query: WallQuery) -> list[ColumnElement[bool]]:
    where = filter_conditions(query)
    if query.escalated_to_me:
        where.append(scope.escalated_to_me())
    text = (query.search or "").strip()
    if text:
        pattern = _like(text)
        named = select(CameraRow.id).where(func.lower(CameraRow.name).like(pattern, escape="\\"))
        where.append(
            or_(
                func.lower(IncidentRow.id).like(pattern, escape="\\"),
                func.lower(IncidentRow.camera_id).like(pattern, escape="\\"),
                IncidentRow.camera_id.in_(named),
                func.lower(IncidentRow.rule).like(pattern, escape="\\"),
                func.lower(func.coalesce(IncidentRow.zone, "")).like(pattern, escape="\\"),
                func.lower(func.coalesce(IncidentRow.dispatch_target, "")).like(pattern, escape="\\"),
            )
        )
    return where


def _urgency(scope: _Scope) -> ColumnElement[int]:
    return case(
        (IncidentRow.sla_flag == "red", 0),
        (scope.escalated_to_me(), 1),
        (IncidentRow.sla_flag == "yellow", 2),
        else_=3,
    )


def _ordered(scope: _Scope, query: WallQuery, where: list[ColumnElement[bool]]) -> Select[IncidentRow, int]:
    urgency = _urgency(scope)
    q = select(IncidentRow, urgency.label("urgency")).where(*where)
    if query.scope == "closed":
        return q.order_by(IncidentRow.closed_at.desc(), IncidentRow.id.desc())
    severity = case(*((IncidentRow.severity == k, v) for k, v in SEVERITY_RANK.items()), else_=9)
    return q.order_by(urgency, severity, IncidentRow.reported_at, IncidentRow.id)


URGENCY_NAMES: tuple[Urgency, ...] = ("red", "escalated_to_me", "yellow", "normal")


def _item(row: IncidentRow, rank: int, query: WallQuery) -> WallItem:
    urgency: Urgency = "normal" if query.scope == "closed" else URGENCY_NAMES[rank]
    view = IncidentView.model_validate(row)
    return WallItem(
        **view.model_dump(exclude={"allowed_actions"}),
        allowed_actions=allowed_actions(State(row.state)),
        urgency=urgency,
    )


def wall_page(
    service: Any, query: WallQuery, *, viewer: Actor | None = None, page: int = 1, page_size: int = 50
) -> WallPage:
    """One page of the wall in triage order, the filtered total and the scope's urgent counts."""
    if page < 1 or not 1 <= page_size <= 200:
        raise InvalidRequest(f"page must be >= 1 and page_size 1..200, got {page}, {page_size}")
    scope = _Scope(service, query, viewer)
    base = _base(scope, query)
    where = base + _filters(scope, query)
    one = literal(1)
    counts_q = select(
        func.count(),
        func.coalesce(func.sum(case((IncidentRow.sla_flag == "red", one), else_=0)), 0),
        func.coalesce(func.sum(case((IncidentRow.sla_flag == "yellow", one), else_=0)), 0),
        func.coalesce(func.sum(case((scope.escalated_to_me(), one), else_=0)), 0),
        func.coalesce(func.sum(case((IncidentRow.severity == Severity.critical.value, one), else_=0)), 0),
        func.coalesce(
            func.sum(case((IncidentRow.state.in_([State.reported.value, State.escalated.value]), one), else_=0)),
            0,
        ),
    ).where(*base)
    with service.store.read() as s:
        c = s.execute(counts_q).one()
        total = int(s.scalar(select(func.count()).select_from(IncidentRow).where(*where)) or 0)
        rows = list(s.execute(_ordered(scope, query, where).offset((page - 1) * page_size).limit(page_size)))
        items = [_item(r[0], int(r[1]), query) for r in rows]
    return WallPage(
        items=items,
        total=total,
        page=page,
        page_size=page_size,
        pages=max(1, -(-total // page_size)),
        counts=WallCounts(
            scope_total=int(c[0]),
            red=int(c[1]),
            yellow=int(c[2]),
            escalated_to_me=int(c[3]),
            critical=int(c[4]),
            unaccepted=int(c[5]),
        ),
    )


def wall_rows(service: Any, query: WallQuery, *, viewer: Actor | None = None, limit: int = 10_000) -> list[WallItem]:
    """Every incident matching the query in wall order (for the CSV export), at most ``limit``."""
    scope = _Scope(service, query, viewer)
    where = _base(scope, query) + _filters(scope, query)
    with service.store.read() as s:
        rows = list(s.execute(_ordered(scope, query, where).limit(limit)))
        return [_item(r[0], int(r[1]), query) for r in rows]
