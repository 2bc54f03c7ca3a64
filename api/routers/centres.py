"""综治中心 centres: the tree below your centre, one centre, its KPIs and its notifications (督办)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.access import check_centre
from xueliang.api.deps import CurrentUser, ServiceDep, StoreDep
from xueliang.api.errors import problem
from xueliang.api.filters import TimeRangeDep
from xueliang.api.schemas import IdPath
from xueliang.api.users import list_users
from xueliang.dispatch.oversight import ChildKpi
from xueliang.dispatch.views import Kpis, NotificationView
from xueliang.roles import Role

router = APIRouter(prefix="/api/v1/centres", tags=["centres"])

CentreId = IdPath
ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("missing or invalid token"),
    403: problem("centre outside your area"),
    404: problem("no such centre"),
}


class CentreRef(BaseModel):
    id: str
    name: str
    tier: str


class CentreNodePublic(BaseModel):
    id: str
    name: str
    tier: str = Field(description="city | county | township | village")
    division_code: str | None
    children: list[CentreNodePublic]
    ancestors: list[CentreRef] = Field(
        default_factory=list, description="the centres above (parent first; names for cases escalated up)"
    )


@router.get("", response_model=CentreNodePublic, responses=ERRORS)
def my_tree(user: CurrentUser, service: ServiceDep) -> CentreNodePublic:
    """Your centre and everything below it (admins: the whole tree)."""
    root = None if user.role is Role.admin else user.centre_id
    if root is not None:
        check_centre(service, user, root)
    tree = CentreNodePublic.model_validate(service.centres(root))
    ups = [service.tree.node(c) for c in service.tree.ancestors(root)] if root is not None else []
    return tree.model_copy(update={"ancestors": [CentreRef(id=n.id, name=n.name, tier=n.tier.value) for n in ups]})


@router.get("/{centre_id}", response_model=CentreNodePublic, responses=ERRORS)
def get_centre(centre_id: CentreId, user: CurrentUser, service: ServiceDep) -> CentreNodePublic:
    check_centre(service, user, centre_id)
    return CentreNodePublic.model_validate(service.centres(centre_id))


@router.get("/{centre_id}/kpis", response_model=Kpis, responses=ERRORS)
def centre_kpis(centre_id: CentreId, user: CurrentUser, service: ServiceDep, period: TimeRangeDep) -> Kpis:
    """Incidents by state/severity/centre/tier, time to accept and close, on-time closure, overdue and
    false-alarm rates, escalations — for incidents owned in the centre's subtree."""
    check_centre(service, user, centre_id)
    return service.kpis(centre_id=centre_id, since=period.since, until=period.until)


@router.get("/{centre_id}/kpis/children", response_model=list[ChildKpi], responses=ERRORS)
def child_kpis(centre_id: CentreId, user: CurrentUser, service: ServiceDep, period: TimeRangeDep) -> list[ChildKpi]:
    """督办 table: each direct child's incidents (those of its grids, including cases it let escalate
    away) with 受理用时 (median time to accept), 超时率, 误报率 and 升级, ranked best first."""
    check_centre(service, user, centre_id)
    return service.child_kpis(centre_id, since=period.since, until=period.until)


class GridWorker(BaseModel):
    username: str
    display_name: str
    centre_id: str = Field(description="the village (grid) the worker belongs to")


@router.get("/{centre_id}/grid-workers", response_model=list[GridWorker], responses=ERRORS)
def grid_workers(centre_id: CentreId, user: CurrentUser, service: ServiceDep, store: StoreDep) -> list[GridWorker]:
    """网格员 of the centre's subtree: the people a case can be dispatched to by user name (分拨对象);
    they see and act on (签收, 退单, 处置, 反馈) exactly the cases dispatched to them."""
    check_centre(service, user, centre_id)
    area = set(service.tree.subtree(centre_id))
    return [
        GridWorker(username=u.username, display_name=u.display_name, centre_id=u.centre_id)
        for u in list_users(store)
        if u.role is Role.grid_worker and u.centre_id in area and u.active
    ]


class ReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=500, description="notification ids"
    )


class ReadAnswer(BaseModel):
    marked: int = Field(description="notifications of this centre that were unread and are now read")


@router.post("/{centre_id}/notifications/read", response_model=ReadAnswer, responses=ERRORS)
def read_notifications(centre_id: CentreId, body: ReadBody, user: CurrentUser, service: ServiceDep) -> ReadAnswer:
    """Mark notifications of this centre read (ids of other centres are ignored)."""
    check_centre(service, user, centre_id)
    return ReadAnswer(marked=service.mark_read(body.ids, centre_id=centre_id))


@router.get("/{centre_id}/notifications", response_model=list[NotificationView], responses=ERRORS)
def centre_notifications(
    centre_id: CentreId,
    user: CurrentUser,
    service: ServiceDep,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationView]:
    """Notifications addressed to this centre: owner, notify, dispatch, escalation, yellow/red SLA flags."""
    check_centre(service, user, centre_id)
    return service.notifications(centre_id, unread_only=unread_only, limit=limit)
