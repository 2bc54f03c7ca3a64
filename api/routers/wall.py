"""告警墙 the alert wall: triage-ordered pages with urgent counts, CSV export of the same view,
and bulk 受理 / 退回 on many incidents at once.

``GET /api/v1/wall`` orders open incidents SLA-first (red, escalated to your centre, yellow,
then severity and age; :mod:`xueliang.dispatch.triage`) over the whole filtered set and pages
it on the server, so an urgent case is never cut by a page size. ``scope=closed`` is the history.
``GET /api/v1/wall/export.csv`` streams the same rows as CSV (UTF-8 with BOM for spreadsheet
programs). ``POST /api/v1/incidents/bulk`` applies accept or reject to up to 200 incidents,
each checked and audited like a single action; the answer reports every item.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.access import actor_of, permitted_actions
from xueliang.api.deps import CurrentUser, ServiceDep
from xueliang.api.errors import problem
from xueliang.api.filters import IncidentFiltersDep
from xueliang.api.routers.incidents import IncidentId
from xueliang.api.schemas import IncidentPublic
from xueliang.config._base import Identifier
from xueliang.dispatch.triage import Scope, WallCounts, WallItem, WallQuery, wall_page, wall_rows
from xueliang.dispatch.workflow import Action, RejectReason, WorkflowError

router = APIRouter(prefix="/api/v1", tags=["wall"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("missing or invalid token"),
    403: problem("centre outside your area"),
    404: problem("no such centre"),
}
EXPORT_LIMIT = 10_000


class WallItemPublic(WallItem):
    permitted_actions: list[Action] = Field(default_factory=list, description="what this user may do now")


class WallPagePublic(BaseModel):
    items: list[WallItemPublic]
    total: int = Field(description="incidents matching the filters")
    page: int
    page_size: int
    pages: int
    counts: WallCounts


def wall_query(
    filters: IncidentFiltersDep,
    scope: Annotated[Scope, Query(description="open (default) or closed: history of closed and rejected")] = "open",
    rule_type: Annotated[list[str] | None, Query(max_length=32)] = None,
    camera_id: Annotated[list[str] | None, Query(max_length=64)] = None,
    escalated_to_me: Annotated[bool, Query(description="only incidents escalated to your own centre")] = False,
    q: Annotated[str | None, Query(max_length=100, description="search id, camera, rule, zone, target")] = None,
) -> WallQuery:
    """The wall's filters (the page and the CSV export take the same ones)."""
    return WallQuery(
        **filters.fields(),
        scope=scope,
        rule_types=rule_type,
        camera_ids=camera_id,
        escalated_to_me=escalated_to_me,
        search=q,
    )


WallQueryDep = Annotated[WallQuery, Depends(wall_query)]


@router.get("/wall", response_model=WallPagePublic, responses=ERRORS)
def wall(
    user: CurrentUser,
    service: ServiceDep,
    query: WallQueryDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WallPagePublic:
    """Open incidents in triage order (red, escalated to you, yellow, then severity, then oldest first)
    or the history (`scope=closed`, newest closure first), paged; `counts` cover the whole scope
    before filters, so a filter never hides that urgent work exists."""
    result = wall_page(service, query, viewer=actor_of(user), page=page, page_size=page_size)
    return WallPagePublic(
        items=[
            WallItemPublic(**i.model_dump(), permitted_actions=permitted_actions(service, user, i))
            for i in result.items
        ],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
        pages=result.pages,
        counts=result.counts,
    )


CSV_COLUMNS = (
    "id",
    "camera_id",
    "camera_name",
    "rule",
    "rule_type",
    "severity",
    "state",
    "urgency",
    "sla_flag",
    "escalation_level",
    "owner_centre_id",
    "grid_centre_id",
    "zone",
    "reported_at",
    "accepted_at",
    "dispatched_at",
    "closed_at",
    "dispatch_target",
    "reject_reason",
)


@router.get(
    "/wall/export.csv",
    responses={**ERRORS, 200: {"content": {"text/csv": {}}, "description": "the wall's rows as CSV"}},
    response_class=Response,
)
def wall_export(user: CurrentUser, service: ServiceDep, query: WallQueryDep) -> Response:
    """The wall's filtered rows in the same order, every page (at most 10,000 rows), as CSV."""
    rows = wall_rows(service, query, viewer=actor_of(user), limit=EXPORT_LIMIT)
    names = {c.id: c.name for c in service.list_cameras()}
    buf = io.StringIO()
    buf.write("\ufeff")  # spreadsheet programs read UTF-8 (Chinese names) only with a BOM
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(CSV_COLUMNS)
    for r in rows:
        d = r.model_dump(mode="json")
        d["camera_name"] = names.get(r.camera_id, "")
        out.writerow(["" if d.get(c) is None else d[c] for c in CSV_COLUMNS])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="xueliang-{query.scope}-{stamp}.csv"'},
    )


# ------------------------------------------------------------------ bulk actions
class BulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1)


class BulkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "reject"] = Field(description="受理 or 退回 (reject needs a reason)")
    reason: RejectReason | None = Field(None, description="for reject: false_alarm or duplicate")
    note: str = Field("", max_length=2000)
    items: list[BulkItem] = Field(min_length=1, max_length=200)


class BulkResult(BaseModel):
    id: str
    ok: bool
    status: int = Field(description="the HTTP status a single action would have answered")
    detail: str = ""
    incident: IncidentPublic | None = None


class BulkAnswer(BaseModel):
    done: int
    failed: int
    results: list[BulkResult]


@router.post(
    "/incidents/bulk",
    response_model=BulkAnswer,
    responses={401: problem("missing or invalid token"), 422: {"description": "invalid body"}},
)
def bulk_action(body: BulkBody, user: CurrentUser, service: ServiceDep) -> BulkAnswer:
    """Accept or reject many incidents: each one is authorised, checked against its state and
    `expected_version` and audited exactly like the single action; failures do not stop the rest."""
    from xueliang.api.errors import unprocessable

    if body.action == "reject" and body.reason is None:
        raise unprocessable("reject needs a reason (false_alarm or duplicate)", "body", "reason")
    if body.action == "accept" and body.reason is not None:
        raise unprocessable("accept takes no reason", "body", "reason")
    if len({i.id for i in body.items}) != len(body.items):
        raise unprocessable("an incident is listed twice", "body", "items")
    action = Action(body.action)
    actor = actor_of(user)
    results: list[BulkResult] = []
    for item in body.items:
        try:
            view = service.transition(
                item.id, action, actor, body.note, reason=body.reason, expected_version=item.expected_version
            )
        except WorkflowError as exc:
            results.append(BulkResult(id=item.id, ok=False, status=exc.http_status, detail=str(exc)))
            continue
        incident = IncidentPublic(**view.model_dump(), permitted_actions=permitted_actions(service, user, view))
        results.append(BulkResult(id=item.id, ok=True, status=200, incident=incident))
    done = sum(1 for r in results if r.ok)
    return BulkAnswer(done=done, failed=len(results) - done, results=results)


# ------------------------------------------------------------------ 督办 urge
class UrgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=500, pattern=r"\S", description="what is expected, by when")


@router.post(
    "/incidents/{incident_id}/urge",
    response_model=IncidentPublic,
    responses={
        401: problem("missing or invalid token"),
        403: problem("not a supervisor above the owner"),
        404: problem("no such incident"),
        409: problem("the case is closed"),
        422: {"description": "invalid body"},
    },
)
def urge(incident_id: IncidentId, body: UrgeBody, user: CurrentUser, service: ServiceDep) -> IncidentPublic:
    """督办 (urge): a supervisor above the owning centre presses it to act. The owner is notified
    (kind `urge`) and its console alerts; audited as `urge`; the case's state does not change."""
    view = service.urge(incident_id, actor_of(user), body.note)
    return IncidentPublic(**view.model_dump(), permitted_actions=permitted_actions(service, user, view))
