"""From the authenticated user to the dispatch service's authorisation: the actor, what it may
see (its home centre's subtree; admins everything) and which actions it may take now."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import HTTPException, status

from xueliang.api.users import UserPublic
from xueliang.dispatch.views import IncidentView
from xueliang.dispatch.workflow import Action
from xueliang.errors import Forbidden
from xueliang.roles import Actor, Role

if TYPE_CHECKING:
    from xueliang.dispatch.service import DispatchService


def actor_of(user: UserPublic) -> Actor:
    return Actor(name=user.username, role=Role(user.role), centre_id=user.centre_id)


def sees_centre(service: DispatchService, user: UserPublic, centre_id: str | None) -> bool:
    if centre_id is None:
        return user.role is Role.admin
    return user.role is Role.admin or service.tree.in_subtree(centre_id, of=user.centre_id)


def manages_centre(service: DispatchService, user: UserPublic, centre_id: str) -> bool:
    """Whether ``user`` may manage accounts of ``centre_id``: inside its own subtree, for every role.
    (Admins *see* every incident, but an admin of a township manages only that township's accounts.)"""
    return centre_id in service.tree and service.tree.in_subtree(centre_id, of=user.centre_id)


def permitted_actions(service: DispatchService, user: UserPublic, view: IncidentView) -> list[Action]:
    """Actions legal in the incident's state that this user's role and centre allow (asks the service)."""
    out: list[Action] = []
    actor = actor_of(user)
    for action in view.allowed_actions:
        try:
            service.check_may(actor, action, view)
        except Forbidden:
            continue
        out.append(action)
    return out


def check_centre(service: DispatchService, user: UserPublic, centre_id: str) -> None:
    """403 unless ``centre_id`` is in the user's subtree; 404 if no such centre."""
    if centre_id not in service.tree:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown centre {centre_id!r}")
    if not sees_centre(service, user, centre_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"centre {centre_id} is outside {user.centre_id}'s area")
