"""The change feed: every committed change to an incident or a camera is a row in the ``events``
table (other processes tail it: :meth:`Store.events_after`) and, once committed, is handed to
this process's listeners (:meth:`ChangeFeed.subscribe`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from xueliang.dispatch.models import EventRow, IncidentRow

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]


class ChangeFeed:
    """The change-feed part of :class:`~xueliang.dispatch.service.DispatchService`."""

    _listeners: list[Listener]
    _lock: threading.Lock

    # ========================================================== live feed
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event_dict)`` after each committed change in *this* process; returns an
        unsubscribe function. Other processes tail the ``events`` table (:meth:`Store.events_after`)."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, events: list[EventRow]) -> None:
        if not events:
            return
        with self._lock:
            listeners = list(self._listeners)
        for ev in events:
            data = event_dict(ev)
            for listener in listeners:
                try:
                    listener(data)
                except Exception:  # a broken listener must not undo a committed change
                    log.exception("dispatch event listener %r failed on event %s", listener, data["id"])

    def _event(
        self,
        s: Session,
        kind: str,
        row: IncidentRow | None,
        now: datetime,
        *,
        camera_id: str | None = None,
        centre_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> EventRow:
        body: dict[str, Any] = {}
        if row is not None:
            body = {
                "incident_id": row.id,
                "state": row.state,
                "owner_centre_id": row.owner_centre_id,
                "severity": row.severity,
                "sla_flag": row.sla_flag,
                "revision": row.revision,
                "camera_id": row.camera_id,
            }
            camera_id, centre_id = row.camera_id, row.owner_centre_id
        body.update(payload or {})
        ev = EventRow(
            at=now,
            kind=kind,
            incident_id=row.id if row is not None else None,
            camera_id=camera_id,
            centre_id=centre_id,
            payload=body,
        )
        s.add(ev)
        s.flush()
        return ev


def event_dict(ev: EventRow) -> dict[str, Any]:
    return {
        "id": ev.id,
        "at": ev.at.isoformat(),
        "kind": ev.kind,
        "incident_id": ev.incident_id,
        "camera_id": ev.camera_id,
        "centre_id": ev.centre_id,
        "payload": ev.payload,
    }
