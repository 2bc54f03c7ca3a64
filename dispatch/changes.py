"""The change feed: every committed change to an incident or a camera is a row in the ``events``
table (other processes tail it: :meth:`Store.events_after`) and, once committed, is handed to
this process's listeners (:meth:`ChangeFeed.subscribe`), both as typed :class:`ChangeEvent` values.

An incident event's ``payload`` carries the incident's summary after the change
(``incident_id``, ``state``, ``owner_centre_id``, ``severity``, ``sla_flag``, ``revision``,
``camera_id``) and what the kind adds: ``action``/``from``/``actor`` (transition),
``clock``/``level``/``due_at`` (flag), ``from_centre_id``/``reason`` (escalated, rerouted),
``severity_from`` (updated, rerouted). A camera event's payload names the camera and the change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from xueliang.dispatch.models import EventRow, IncidentRow

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    """What a change-feed event reports (the ``events.kind`` column)."""

    incident_created = "incident.created"
    incident_updated = "incident.updated"  # newer evidence from the detector
    incident_transition = "incident.transition"  # a workflow action
    incident_flag = "incident.flag"  # a yellow/red SLA flag
    incident_escalated = "incident.escalated"  # moved up to the parent centre
    incident_rerouted = "incident.rerouted"  # a raised grade moved it to another owner
    incident_urged = "incident.urged"  # a centre above urged the owner (督办)
    camera_status = "camera.status"  # online/degraded/offline changed
    camera_changed = "camera.changed"  # created, updated or deleted through the API


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One committed change, as listeners and tailers of the ``events`` table see it."""

    id: int
    at: datetime
    kind: EventKind
    incident_id: str | None
    camera_id: str | None
    centre_id: str | None  # the incident's owner after the change, or the camera's grid
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: EventRow) -> ChangeEvent:
        return cls(
            id=row.id,
            at=row.at,
            kind=EventKind(row.kind),
            incident_id=row.incident_id,
            camera_id=row.camera_id,
            centre_id=row.centre_id,
            payload=dict(row.payload or {}),
        )

    @property
    def previous_centre_id(self) -> str | None:
        """The owner before an escalation or a re-route (None for other kinds)."""
        value = self.payload.get("from_centre_id")
        return str(value) if value is not None else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "kind": self.kind.value,
            "incident_id": self.incident_id,
            "camera_id": self.camera_id,
            "centre_id": self.centre_id,
            "payload": self.payload,
        }


Listener = Callable[[ChangeEvent], None]


class ChangeFeed:
    """The change-feed part of :class:`~xueliang.dispatch.service.DispatchService`."""

    _listeners: list[Listener]
    _lock: threading.Lock

    # ========================================================== live feed
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` (a :class:`ChangeEvent`) after each committed change in *this* process; returns an
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
        for row in events:
            ev = ChangeEvent.from_row(row)
            for listener in listeners:
                try:
                    listener(ev)
                except Exception:  # a broken listener must not undo a committed change
                    log.exception("dispatch event listener %r failed on event %s", listener, ev.id)

    def _event(
        self,
        s: Session,
        kind: EventKind,
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
            kind=kind.value,
            incident_id=row.id if row is not None else None,
            camera_id=camera_id,
            centre_id=centre_id,
            payload=body,
        )
        s.add(ev)
        s.flush()
        return ev
