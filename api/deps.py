"""Dependencies every router uses, as ``Annotated`` aliases.

``SettingsDep``, ``StoreDep``, ``ServiceDep`` and ``ClockDep`` read what
:func:`xueliang.api.app.create_app` put on ``app.state``; tests override them with
``app.dependency_overrides`` like any FastAPI dependency. ``CurrentUser`` is the
authenticated user (401 without a valid bearer token); ``require_roles`` builds a
dependency that also checks the role (403).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer

from xueliang.api import users as users_mod
from xueliang.api.security import TokenError, decode_token
from xueliang.api.users import Role, UserPublic
from xueliang.config import Settings
from xueliang.dispatch.clock import Clock
from xueliang.dispatch.service import DispatchService
from xueliang.dispatch.store import Store

TOKEN_URL = "/api/v1/auth/token"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def now_from(clock: Any) -> datetime:
    """The time of an injectable clock: an object with ``now()``, a callable, or None (wall clock)."""
    if clock is None:
        return datetime.now(UTC)
    value = clock.now() if hasattr(clock, "now") else clock()
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_service(request: Request) -> DispatchService:
    return request.app.state.service


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ServiceDep = Annotated[DispatchService, Depends(get_service)]
ClockDep = Annotated[Clock, Depends(get_clock)]


def user_from_token(request: Request, token: str | None, *, typ: str = "access") -> UserPublic:
    """The active user a token of kind ``typ`` (``access``, or ``feed`` for live-feed tickets) names; 401 otherwise."""
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated", headers=UNAUTHORIZED)
    try:
        claims = decode_token(request.app.state.jwt_secret, token, now=now_from(request.app.state.clock), typ=typ)
    except TokenError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers=UNAUTHORIZED) from None
    user = users_mod.get_user(request.app.state.store, claims.username)
    if user is None or not user.active:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "user unknown or disabled", headers=UNAUTHORIZED)
    return user


def get_current_user(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> UserPublic:
    return user_from_token(request, token)


CurrentUser = Annotated[UserPublic, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[UserPublic], UserPublic]:
    allowed = set(roles)

    def dependency(user: CurrentUser) -> UserPublic:
        if user.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {user.role.value!r} may not do this (needs one of {sorted(r.value for r in allowed)})",
            )
        return user

    return dependency


AdminUser = Annotated[UserPublic, Depends(require_roles(Role.admin))]
CameraManager = Annotated[UserPublic, Depends(require_roles(Role.engineer, Role.admin))]
