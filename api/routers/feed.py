"""The live feed per centre: Server-Sent Events of new incidents, state changes, supervision flags,
escalations and camera status changes, filtered to the user's centre subtree.

Events (``event:`` names): ``hello`` (once, ``{"last_event_id": n}``), ``incident``
(``{"kind": "incident.created" | "incident.updated" | "incident.transition" |
"incident.flag" | "incident.escalated" | "incident.rerouted", "incident": {...}, "visible": true}``, or
``visible: false`` when it was escalated or re-routed out of the user's area) and ``camera``
(``{"kind": "camera.status" | "camera.changed", "camera_id": ...}``). Every event
carries ``id:``; reconnecting with ``Last-Event-ID`` (or ``last_event_id``) replays
what was missed. Browsers authenticate with ``?ticket=`` from
``POST /api/v1/auth/feed-ticket`` (``EventSource`` cannot send headers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from xueliang.api import users as users_mod
from xueliang.api.access import check_centre
from xueliang.api.deps import oauth2_scheme, user_from_token
from xueliang.api.errors import problem
from xueliang.api.feed import CLOSED, FeedHub
from xueliang.api.users import UserPublic

router = APIRouter(prefix="/api/v1", tags=["feed"])
log = logging.getLogger(__name__)


def _still_valid(request: Request, user: UserPublic) -> bool:
    """The account behind an open stream is still active, with the same role and centre."""
    now = users_mod.get_user(request.app.state.store, user.username)
    return now is not None and now.active and (now.role, now.centre_id) == (user.role, user.centre_id)


def feed_user(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    ticket: Annotated[str | None, Query(max_length=2048, description="from POST /api/v1/auth/feed-ticket")] = None,
) -> UserPublic:
    if token:
        return user_from_token(request, token)
    return user_from_token(request, ticket, typ="feed")


def feed_centre(
    request: Request,
    user: Annotated[UserPublic, Depends(feed_user)],
    centre_id: Annotated[
        str | None, Query(max_length=64, description="only this centre's subtree (inside yours); default: yours")
    ] = None,
) -> str | None:
    if centre_id is not None:
        check_centre(request.app.state.service, user, centre_id)
    return centre_id


@router.get(
    "/feed",
    response_class=EventSourceResponse,
    responses={
        401: problem("missing or invalid token / ticket"),
        403: problem("centre outside your area"),
        404: problem("unknown centre"),
    },
)
async def live_feed(
    request: Request,
    user: Annotated[UserPublic, Depends(feed_user)],
    centre_id: Annotated[str | None, Depends(feed_centre)],
    last_event_id: Annotated[int | None, Query(ge=0, le=2**62, description="replay events after this id")] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", include_in_schema=False)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events for your centre's subtree (see the router description for the event types)."""
    hub: FeedHub = request.app.state.feed
    after = last_event_id
    if after is None and last_event_id_header and last_event_id_header.isdigit():
        after = int(last_event_id_header)
    sub = hub.subscribe(user, centre_id)
    try:
        if after is not None:
            backlog = await hub.replay(sub, after)
        else:
            sub.after = hub.last_id
            backlog = []
        yield ServerSentEvent(
            event="hello",
            retry=2000,
            raw_data=json.dumps({"last_event_id": sub.after, "user": user.username, "centre_id": user.centre_id}),
        )
        last_sent = sub.after
        for msg in backlog:
            yield ServerSentEvent(event=msg.event, id=str(msg.id), raw_data=msg.data)
        recheck_s = float(getattr(request.app.state, "feed_recheck_s", 5.0))
        checked = time.monotonic()
        while True:
            if time.monotonic() - checked >= recheck_s:
                # the account may have been disabled, deleted or moved since the stream opened: end it
                checked = time.monotonic()
                if not await asyncio.to_thread(_still_valid, request, user):
                    log.info("live feed of %s closed: account disabled, deleted or changed", user.username)
                    return
            try:
                item = await asyncio.wait_for(sub.queue.get(), min(5.0, recheck_s))
            except TimeoutError:
                if await request.is_disconnected():
                    return
                continue
            if item is CLOSED:
                return
            if item.id <= last_sent:  # already sent in the replay
                continue
            last_sent = item.id
            yield ServerSentEvent(event=item.event, id=str(item.id), raw_data=item.data)
    finally:
        hub.unsubscribe(sub)
