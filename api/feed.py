"""The live feed hub: tails the dispatch change log and fans it out to SSE subscribers.

One background task per app reads ``events`` rows with ``id > last`` (the dispatch
store's change feed, so changes made by another process — the dispatcher — arrive
too). It wakes on the in-process service's notifications at once and otherwise
polls every ``poll_s`` (0.1 s). For each incident event it loads the incident once and
sends it to every subscriber whose centre subtree owns it; a subscriber who could
see the incident's previous owner (it was escalated away) gets a removal instead.
A slow subscriber's queue is bounded: when it is full the hub ends that stream
(counted in ``xl_api_feed_dropped_total``) and the client reconnects with
``Last-Event-ID``, replaying what it missed from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xueliang.api.access import permitted_actions, sees_centre
from xueliang.api.metrics import FEED_CLIENTS, FEED_DROPPED, FEED_EVENTS
from xueliang.api.users import UserPublic
from xueliang.dispatch.changes import ChangeEvent, EventKind
from xueliang.dispatch.views import IncidentDetail
from xueliang.errors import NotFound
from xueliang.roles import Role

if TYPE_CHECKING:
    from xueliang.dispatch.service import DispatchService

log = logging.getLogger("xueliang.api.feed")

QUEUE_SIZE = 512
CLOSED = object()


@dataclass(frozen=True, slots=True)
class FeedMessage:
    id: int
    event: str  # SSE event name: incident | camera
    data: str  # JSON


@dataclass(frozen=True)
class _Prepared:
    """One change event, with what every subscriber's filter needs."""

    id: int
    kind: EventKind
    at: str
    centre_id: str | None
    previous_centre_id: str | None
    incident: IncidentDetail | None
    incident_id: str | None
    camera_id: str | None
    payload: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    user: UserPublic
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    after: int = 0  # skip live events at or below this id (already replayed)
    centre_id: str | None = None  # narrow the feed to this centre's subtree (inside the user's)


class FeedHub:
    def __init__(self, service: DispatchService, *, poll_s: float = 0.1, batch: int = 500) -> None:
        self.service = service
        self.store = service.store
        self.poll_s = poll_s
        self.batch = batch
        self.last_id = 0
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.last_id = await asyncio.to_thread(self.store.last_event_id)
        self._unsubscribe = self.service.subscribe(self._on_local_event)
        self._task = asyncio.create_task(self._run(), name="xl-feed-hub")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.close_streams()

    def close_streams(self) -> None:
        """End every open stream (server shutdown: an SSE response never completes by itself)."""
        for sub in list(self._subs):
            self._offer(sub, CLOSED, force=True)

    def _on_local_event(self, _event: ChangeEvent) -> None:
        """Called by the service (any thread) after a commit in this process: read the log now."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    # ------------------------------------------------------------------ subscribers
    def subscribe(self, user: UserPublic, centre_id: str | None = None) -> Subscription:
        sub = Subscription(user, centre_id=centre_id)
        self._subs.add(sub)
        FEED_CLIENTS.set(len(self._subs))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        FEED_CLIENTS.set(len(self._subs))

    async def replay(self, sub: Subscription, after: int, limit: int = 1000) -> list[FeedMessage]:
        """Events after ``after`` for a reconnecting client (from the database), filtered for it."""
        rows = await asyncio.to_thread(self.store.events_after, after, limit)
        prepared = await asyncio.to_thread(self._prepare, rows)
        out = [m for p in prepared if (m := self._message_for(sub, p)) is not None]
        sub.after = max([after, *(p.id for p in prepared)])
        return out

    # ------------------------------------------------------------------ the tail loop
    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            try:
                rows = await asyncio.to_thread(self.store.events_after, self.last_id, self.batch)
                prepared = await asyncio.to_thread(self._prepare, rows) if rows and self._subs else None
            except Exception:  # the database may be briefly unavailable: log, back off, re-read the batch
                log.exception("live feed: reading the event log failed; retrying")
                await asyncio.sleep(max(self.poll_s, 1.0))
                continue
            if rows:
                self.last_id = rows[-1].id
                for row in rows:
                    FEED_EVENTS.labels(row.kind).inc()
                for p in prepared or ():
                    self._fan_out(p)
                if len(rows) == self.batch:
                    continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    def _prepare(self, rows: list[ChangeEvent]) -> list[_Prepared]:
        """Load each incident once per batch (its latest view) — shared by all subscribers."""
        views: dict[str, IncidentDetail | None] = {}
        for row in rows:
            if row.incident_id and row.incident_id not in views:
                try:
                    detail = self.service.get_incident(row.incident_id)
                    views[row.incident_id] = detail
                except NotFound:
                    views[row.incident_id] = None
        out = []
        for row in rows:
            out.append(
                _Prepared(
                    id=row.id,
                    kind=row.kind,
                    at=row.at.isoformat(),
                    centre_id=row.centre_id,
                    previous_centre_id=row.previous_centre_id,
                    incident=views.get(row.incident_id) if row.incident_id else None,
                    incident_id=row.incident_id,
                    camera_id=row.camera_id,
                    payload=dict(row.payload),
                )
            )
        return out

    def _sees(self, sub: Subscription, centre_id: str | None) -> bool:
        if not sees_centre(self.service, sub.user, centre_id):
            return False
        return sub.centre_id is None or (
            centre_id is not None and self.service.tree.in_subtree(centre_id, of=sub.centre_id)
        )

    def _message_for(self, sub: Subscription, p: _Prepared) -> FeedMessage | None:
        user = sub.user
        if p.incident_id is not None:
            inc = p.incident
            owner = inc.owner_centre_id if inc is not None else p.centre_id
            assigned = inc is not None and user.role is Role.grid_worker and inc.dispatch_target == user.username
            if self._sees(sub, owner) or assigned:
                body: dict[str, Any] = {
                    "kind": p.kind,
                    "at": p.at,
                    "incident_id": p.incident_id,
                    "visible": True,
                    "change": p.payload,
                    "incident": None,
                }
                if inc is not None:
                    view = inc.model_dump(
                        mode="json", exclude={"audit", "notifications", "escalations", "sla_flags", "occurrences"}
                    )
                    view["permitted_actions"] = [a.value for a in permitted_actions(self.service, user, inc)]
                    body["incident"] = view
                return FeedMessage(p.id, "incident", json.dumps(body, ensure_ascii=False))
            if p.previous_centre_id is not None and self._sees(sub, p.previous_centre_id):
                # escalated out of this user's area: tell the wall to drop it
                body = {
                    "kind": p.kind,
                    "at": p.at,
                    "incident_id": p.incident_id,
                    "visible": False,
                    "incident": None,
                    "change": {"from_centre_id": p.previous_centre_id, "owner_centre_id": owner},
                }
                return FeedMessage(p.id, "incident", json.dumps(body, ensure_ascii=False))
            return None
        if p.camera_id is not None and self._sees(sub, p.centre_id):
            body = {"kind": p.kind, "at": p.at, "camera_id": p.camera_id, "change": p.payload}
            return FeedMessage(p.id, "camera", json.dumps(body, ensure_ascii=False))
        return None

    def _fan_out(self, p: _Prepared) -> None:
        for sub in list(self._subs):
            if p.id <= sub.after:
                continue
            msg = self._message_for(sub, p)
            if msg is not None:
                self._offer(sub, msg)

    def _offer(self, sub: Subscription, item: Any, force: bool = False) -> None:
        try:
            sub.queue.put_nowait(item)
        except asyncio.QueueFull:
            # too slow: end its stream; the client reconnects with Last-Event-ID and replays
            if not force:
                FEED_DROPPED.inc()
                self.unsubscribe(sub)
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.queue.put_nowait(CLOSED)
