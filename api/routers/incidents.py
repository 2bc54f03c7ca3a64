"""事件 incidents: list with typed filters and cursor pagination, detail with the audit trail,
and one POST endpoint per workflow action.

Reads of an incident outside the user's subtree answer 404 (its existence is not
revealed); actions on it answer 403. Illegal transitions and stale versions answer 409
with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from xueliang.api.access import actor_of, permitted_actions
from xueliang.api.deps import CurrentUser, ServiceDep
from xueliang.api.errors import problem
from xueliang.api.filters import IncidentFiltersDep
from xueliang.api.schemas import (
    ACTION_BODIES,
    ACTION_SUMMARIES,
    ActionBody,
    IdPath,
    IncidentDetailPublic,
    IncidentPagePublic,
    IncidentPublic,
)
from xueliang.api.users import UserPublic
from xueliang.dispatch.views import IncidentFilter
from xueliang.dispatch.workflow import Action, Forbidden, NotFound

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

IncidentId = IdPath
ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("missing or invalid token"),
    404: problem("no such incident, or not in your centre's subtree"),
}
ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("missing or invalid token"),
    403: problem("your role or centre may not take this action on this incident"),
    404: problem("no such incident"),
    409: problem("illegal in the incident's current state, or it changed since `expected_version`"),
    422: {"description": "invalid body (e.g. reject without a reason)"},
}

if TYPE_CHECKING:
    from xueliang.dispatch.service import DispatchService


def public(service: DispatchService, user: UserPublic, view: Any, model: type = IncidentPublic) -> Any:
    return model(**view.model_dump(), permitted_actions=permitted_actions(service, user, view))


def visible_incident(service: DispatchService, user: UserPublic, incident_id: str) -> Any:
    """The incident's detail if the user may see it, else 404 (never 403: existence is not revealed)."""
    try:
        return service.get_incident(incident_id, viewer=actor_of(user))
    except (NotFound, Forbidden):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id} not found") from None


@router.get("", response_model=IncidentPagePublic, responses={**ERRORS, 403: problem("centre outside your area")})
def list_incidents(
    user: CurrentUser,
    service: ServiceDep,
    filters: IncidentFiltersDep,
    rule: Annotated[list[str] | None, Query(description="rule names")] = None,
    rule_type: Annotated[list[str] | None, Query(description="intrusion, loitering, crowding, fire_smoke, ...")] = None,
    camera_id: Annotated[list[str] | None, Query()] = None,
    open_only: Annotated[bool, Query(description="only incidents not closed or rejected")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")] = None,
) -> IncidentPagePublic:
    """Newest first. Only incidents owned in your centre's subtree (admins: all)."""
    query = IncidentFilter(
        **filters.fields(), rules=rule, rule_types=rule_type, camera_ids=camera_id, open_only=open_only
    )
    page = service.list_incidents(query, limit=limit, cursor=cursor, viewer=actor_of(user))
    return IncidentPagePublic(items=[public(service, user, v) for v in page.items], next_cursor=page.next_cursor)


@router.get("/{incident_id}", response_model=IncidentDetailPublic, responses=ERRORS)
def get_incident(incident_id: IncidentId, user: CurrentUser, service: ServiceDep) -> IncidentDetailPublic:
    """The incident with its evidence (snapshot URL, boxes), audit trail, notifications, escalations and SLA flags."""
    detail = visible_incident(service, user, incident_id)
    return public(service, user, detail, IncidentDetailPublic)


def _make_action_endpoint(action: Action, body_model: type[ActionBody]) -> Any:
    def endpoint(
        incident_id: IncidentId,
        body: ActionBody,  # the real class is set below
        user: CurrentUser,
        service: ServiceDep,
    ) -> IncidentPublic:
        view = service.transition(
            incident_id,
            action,
            actor_of(user),
            body.note,
            target=getattr(body, "target", None),
            reason=getattr(body, "reason", None),
            expected_version=body.expected_version,
        )
        return public(service, user, view)

    endpoint.__annotations__["body"] = body_model  # a class, not the string this module's annotations would be
    endpoint.__name__ = f"incident_{action.name}"
    endpoint.__doc__ = (
        f"{ACTION_SUMMARIES[action]}. Audited with your name, role, centre and the note. "
        "Allowed only when legal in the current state and your role and centre may."
    )
    return endpoint


for _action in Action:
    router.add_api_route(
        f"/{{incident_id}}/{_action.value}",
        _make_action_endpoint(_action, ACTION_BODIES.get(_action, ActionBody)),
        methods=["POST"],
        response_model=IncidentPublic,
        responses=ACTION_ERRORS,
        summary=ACTION_SUMMARIES[_action],
        name=f"incident_{_action.name}",
    )
