"""Accounts (admins only, within their own subtree)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status

from xueliang.api import users as users_mod
from xueliang.api.access import manages_centre
from xueliang.api.deps import AdminUser, ServiceDep, StoreDep
from xueliang.api.errors import problem
from xueliang.api.users import UserCreate, UserError, UserPublic, UserUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"])

Username = Annotated[str, Path(min_length=3, max_length=64, pattern=users_mod.USERNAME_RE.pattern)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("missing or invalid token"),
    403: problem("admins only, within their subtree"),
    404: problem("no such user"),
}

if TYPE_CHECKING:
    from xueliang.dispatch.service import DispatchService


@router.get("", response_model=list[UserPublic], responses=ERRORS)
def list_users(admin: AdminUser, store: StoreDep, service: ServiceDep) -> list[UserPublic]:
    return [u for u in users_mod.list_users(store) if manages_centre(service, admin, u.centre_id)]


def _check_managed(service: DispatchService, admin: Any, centre_id: str) -> None:
    """404 for an unknown centre, 403 for one outside the admin's own subtree."""
    if centre_id not in service.tree:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown centre {centre_id!r}")
    if not manages_centre(service, admin, centre_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"centre {centre_id} is outside {admin.centre_id}'s area")


@router.post(
    "",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses={**ERRORS, 409: problem("user exists")},
)
def create_user(body: UserCreate, admin: AdminUser, store: StoreDep, service: ServiceDep) -> UserPublic:
    _check_managed(service, admin, body.centre_id)
    try:
        return users_mod.create_user(
            store, body.username, body.password, body.role, body.centre_id, display_name=body.display_name
        )
    except UserError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT if "exists" in str(exc) else 422, str(exc)) from None


def _visible_user(store: Any, service: DispatchService, admin: Any, username: str) -> UserPublic:
    user = users_mod.get_user(store, username)
    if user is None or not manages_centre(service, admin, user.centre_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {username} not found")
    return user


@router.get("/{username}", response_model=UserPublic, responses=ERRORS)
def get_user(username: Username, admin: AdminUser, store: StoreDep, service: ServiceDep) -> UserPublic:
    return _visible_user(store, service, admin, username)


@router.patch("/{username}", response_model=UserPublic, responses=ERRORS)
def update_user(
    username: Username, body: UserUpdate, admin: AdminUser, store: StoreDep, service: ServiceDep
) -> UserPublic:
    _visible_user(store, service, admin, username)
    if body.centre_id is not None:
        _check_managed(service, admin, body.centre_id)
    updated = users_mod.update_user(store, username, body)
    if updated is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {username} not found")
    return updated


@router.delete(
    "/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**ERRORS, 409: problem("cannot delete yourself")},
)
def delete_user(username: Username, admin: AdminUser, store: StoreDep, service: ServiceDep) -> Response:
    _visible_user(store, service, admin, username)
    if username == admin.username:
        raise HTTPException(status.HTTP_409_CONFLICT, "you cannot delete your own account")
    users_mod.delete_user(store, username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
