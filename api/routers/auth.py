"""Login (OAuth2 password flow → JWT), who-am-I, and short-lived live-feed tickets."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from xueliang.api import users as users_mod
from xueliang.api.deps import UNAUTHORIZED, ClockDep, CurrentUser, SettingsDep, StoreDep, now_from
from xueliang.api.errors import problem
from xueliang.api.metrics import LOGINS
from xueliang.api.security import LoginThrottle, create_token
from xueliang.api.users import UserPublic

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
log = logging.getLogger(__name__)

FEED_TICKET_TTL_S = 60


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserPublic


class FeedTicket(BaseModel):
    ticket: str
    expires_in: int


@router.post(
    "/token",
    response_model=Token,
    responses={
        401: problem("wrong user name or password"),
        429: problem(
            "too many failed attempts for this user name from this address; retry after `Retry-After` seconds"
        ),
    },
)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Token:
    """OAuth2 password flow: form fields ``username`` and ``password``; returns a bearer JWT.
    Five failed attempts for a user name from one client address within five minutes lock that name out
    for that address until the window passes (429); other addresses are not affected."""
    throttle: LoginThrottle = request.app.state.login_throttle
    now = now_from(clock)
    # per (user name, client address): a guesser locks out itself, not the operator on duty elsewhere
    client = request.client.host if request.client is not None else "unknown"
    key = f"{form.username}\x00{client}"
    wait = throttle.retry_after(key, now.timestamp())
    if wait > 0:
        LOGINS.labels("throttled").inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins for {form.username!r} from {client}; retry in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    user = users_mod.authenticate(store, form.username, form.password)
    if user is not None and form.password in request.app.state.refused_passwords:
        log.warning(
            "login of %r with the demo password refused: this API serves a public interface "
            "(change it with PATCH /api/v1/users/{name}, or serve the demo on 127.0.0.1 only)",
            form.username,
        )
        user = None
    if user is None:
        throttle.failed(key, now.timestamp())
        LOGINS.labels("rejected").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password", headers=UNAUTHORIZED)
    throttle.succeeded(key)
    LOGINS.labels("ok").inc()
    ttl = settings.api.token_ttl_s
    token = create_token(
        request.app.state.jwt_secret, user.username, user.role.value, user.centre_id, now=now_from(clock), ttl_s=ttl
    )
    return Token(access_token=token, expires_in=ttl, user=user)


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    return user


@router.post("/feed-ticket", response_model=FeedTicket)
def feed_ticket(request: Request, user: CurrentUser, clock: ClockDep) -> FeedTicket:
    """A token valid for 60 s to open the live feed from a browser ``EventSource``, which cannot send
    an ``Authorization`` header (``GET /api/v1/feed?ticket=...``); keeps long-lived tokens out of URLs."""
    token = create_token(
        request.app.state.jwt_secret,
        user.username,
        user.role.value,
        user.centre_id,
        now=now_from(clock),
        ttl_s=FEED_TICKET_TTL_S,
        typ="feed",
    )
    return FeedTicket(ticket=token, expires_in=FEED_TICKET_TTL_S)
