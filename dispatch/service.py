"""The dispatch service: the one API over the store that the dispatcher, the operator API
and the CLI call. Routing, the workflow, supervision (督办) and escalation live here.

Usage::

    store = Store.from_url(settings.store.url); store.migrate()
    svc = DispatchService(store, settings)          # clock defaults to the system clock
    svc.sync_config()                               # centres and cameras from the YAML
    svc.ingest_incident(incident)                   # upsert by the detector's id
    svc.transition(incident.id, Action.accept, Actor("li", Role.operator, "village-a"))
    svc.tick()                                      # SLA flags and escalations due by now

Errors are typed (:mod:`xueliang.dispatch.workflow`): ``IllegalTransition`` and
``StaleRevision`` (HTTP 409), ``Forbidden`` (403), ``NotFound`` (404),
``InvalidRequest`` (422); each carries ``http_status`` and a message naming the
incident, camera or field.

SLA clocks (per severity, ``settings.dispatch.sla``): the accept clock runs while the
owning centre has not accepted (``reported``/``escalated``), from the report (or from
the escalation); the close clock runs from the report until closure. At
``warn_share`` of a window the incident gets a yellow flag; at its end a red flag and
an escalation to the owner's parent centre, which gets a fresh window of the same
length from the breached deadline (not from when the tick ran), and so on up the
tree. Every deadline is a column; :meth:`tick` only compares them with the clock, so
timers survive restarts and fire on schedule after one.
"""

from __future__ import annotations

import base64
import json
import logging
import statistics
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from xueliang.config import Settings
from xueliang.config.cameras import mask_url
from xueliang.config.centres import Tier
from xueliang.config.dispatch import Sla
from xueliang.contracts import CameraHealth, Incident, Severity
from xueliang.dispatch.clock import Clock, system_clock
from xueliang.dispatch.metrics import DispatchMetrics, get_metrics
from xueliang.dispatch.models import (
    AuditRow,
    CameraRow,
    CameraStatusRow,
    CentreRow,
    EscalationRow,
    EventRow,
    IncidentRow,
    NotificationRow,
    SlaFlagRow,
)
from xueliang.dispatch.routing import CentreNode, CentreTree, resolve_grid, route
from xueliang.dispatch.store import Store
from xueliang.dispatch.views import (
    AuditEntry,
    CameraCreate,
    CameraUpdate,
    CameraUptime,
    CameraView,
    DurationStats,
    EscalationView,
    IncidentDetail,
    IncidentFilter,
    IncidentPage,
    IncidentView,
    IngestResult,
    Kpis,
    NotificationView,
    OnlineRate,
    SlaFlagView,
    TickResult,
)
from xueliang.dispatch.workflow import (
    SYSTEM,
    Action,
    Actor,
    Forbidden,
    InvalidRequest,
    NotFound,
    RejectReason,
    Role,
    StaleRevision,
    State,
    allowed_actions,
    next_state,
    role_may,
)

log = logging.getLogger(__name__)

FLAG_RANK = {"none": 0, "yellow": 1, "red": 2}
UNIT_ACTIONS = frozenset({Action.receive, Action.return_, Action.handle, Action.feedback})
"""Actions the centre an incident was dispatched to may take, besides the owner's subtree."""

Listener = Callable[[dict[str, Any]], None]


def _worst(*flags: str) -> str:
    return max(flags, key=FLAG_RANK.__getitem__)


class DispatchService:
    """See the module docstring. Thread-safe: every call runs in its own transaction."""

    def __init__(
        self, store: Store, settings: Settings, clock: Clock | None = None, *, metrics: DispatchMetrics | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or system_clock
        self.metrics = metrics or get_metrics()
        self._tree: CentreTree | None = None
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    # ================================================================ centres
    def sync_config(self) -> dict[str, int]:
        """Upsert centres and cameras from the settings (idempotent). Centres are written
        parents first; cameras from config are marked ``source='config'``."""
        now = self.clock()
        tree = CentreTree.from_config(self.settings.centres)
        cams = 0
        with self.store.session() as s:
            for cid in tree.subtree(tree.root_id):  # pre-order: parents before children
                n = tree.node(cid)
                row = s.get(CentreRow, cid)
                if row is None:
                    s.add(
                        CentreRow(
                            id=cid,
                            parent_id=n.parent_id,
                            name=n.name,
                            tier=n.tier.value,
                            division_code=n.division_code,
                            updated_at=now,
                        )
                    )
                else:
                    row.parent_id, row.name, row.tier, row.division_code = (
                        n.parent_id,
                        n.name,
                        n.tier.value,
                        n.division_code,
                    )
                    row.updated_at = now
                s.flush()
            for cam in self.settings.cameras:
                grid, _ = resolve_grid(tree, cam.id, cam.village)
                row = s.get(CameraRow, cam.id)
                if row is None:
                    row = CameraRow(id=cam.id, created_at=now, status=None, faults=[], quality_scores={})
                    s.add(row)
                row.name, row.village_id, row.grid_id = cam.name, cam.village, grid
                row.source, row.enabled, row.masked_url, row.updated_at = "config", cam.enabled, cam.source.masked, now
                row.status_reason = row.status_reason or ""
                cams += 1
        with self._lock:
            self._tree = None
        return {"centres": len(tree.nodes), "cameras": cams}

    @property
    def tree(self) -> CentreTree:
        """The centre tree as stored (loaded once; :meth:`sync_config` refreshes it)."""
        with self._lock:
            if self._tree is None:
                with self.store.read() as s:
                    rows = list(s.scalars(select(CentreRow)))
                if not rows:
                    raise NotFound("no centres in the database: call sync_config() first")
                self._tree = CentreTree.from_nodes(
                    CentreNode(r.id, r.name, Tier(r.tier), r.parent_id, r.division_code) for r in rows
                )
            return self._tree

    def centres(self, root: str | None = None) -> dict[str, Any]:
        """The centre tree (nested dicts) from ``root`` (default the top)."""
        try:
            return self.tree.as_dict(root)
        except KeyError:
            raise NotFound(f"unknown centre {root!r}") from None

    # ====================================================== authorisation
    def can_see(self, actor: Actor, centre_id: str) -> bool:
        """May ``actor`` see incidents owned by ``centre_id``? (its home centre's subtree; admins see all)."""
        return actor.role is Role.admin or self.tree.in_subtree(centre_id, of=actor.centre_id)

    def check_may(self, actor: Actor, action: Action, row: IncidentRow | IncidentView) -> None:
        """Raise :class:`Forbidden` unless ``actor`` may take ``action`` on the incident."""
        if actor is SYSTEM:
            return
        if not role_may(actor.role, action):
            raise Forbidden(f"role {actor.role.value} may not {action.value} incidents")
        if actor.role is Role.admin:
            return
        if self.tree.in_subtree(row.owner_centre_id, of=actor.centre_id):
            return
        if (
            action in UNIT_ACTIONS
            and row.dispatch_target
            and row.dispatch_target in self.tree
            and self.tree.in_subtree(row.dispatch_target, of=actor.centre_id)
        ):
            return
        raise Forbidden(f"incident {row.id} is owned by {row.owner_centre_id}, outside {actor.centre_id}'s area")

    # ============================================================== ingest
    def ingest_incident(self, incident: Incident) -> IngestResult:
        """Store a detector report: a new case, or an update of the same event's evidence.

        Idempotent: a revision not newer than the stored one changes nothing ("stale"),
        so redelivered bus records are harmless.
        """
        self.tree  # loaded outside the write transaction (one connection at a time on SQLite)
        for attempt in range(3):
            try:
                with self.store.session() as s:
                    result, events = self._ingest(s, incident)
                break
            except (IntegrityError, StaleDataError):
                if attempt == 2:
                    raise
                log.info("incident %s: concurrent write, retrying", incident.id)
        self.metrics.ingested.labels(result.outcome).inc()
        self._emit(events)
        return result

    def _ingest(self, s: Session, inc: Incident) -> tuple[IngestResult, list[EventRow]]:
        for name, limit in (("id", 64), ("camera_id", 64), ("rule", 64), ("rule_type", 32), ("zone", 64)):
            value = getattr(inc, name)
            if value is not None and len(value) > limit:
                raise InvalidRequest(f"incident {inc.id[:80]!r}: {name} longer than {limit} characters")
        now = self.clock()
        row = s.get(IncidentRow, inc.id, with_for_update=True)
        events: list[EventRow] = []
        if row is not None:
            if inc.revision <= row.revision:
                return IngestResult(incident_id=inc.id, outcome="stale", owner_centre_id=row.owner_centre_id), events
            self._set_evidence(row, inc)
            row.started_at = min(row.started_at, inc.started_at)
            old_severity = row.severity
            if inc.severity.rank > Severity(row.severity).rank and State(row.state).is_open:
                events += self._raise_severity(s, row, inc, now)
            events.append(
                self._event(
                    s,
                    "incident.updated",
                    row,
                    now,
                    payload=({"severity_from": old_severity} if row.severity != old_severity else None),
                )
            )
            return IngestResult(incident_id=inc.id, outcome="updated", owner_centre_id=row.owner_centre_id), events
        cam = s.get(CameraRow, inc.camera_id)
        r = route(
            self.tree,
            self.settings.dispatch.routing,
            camera_id=inc.camera_id,
            village=cam.village_id if cam else None,
            severity=inc.severity,
            rule_type=inc.rule_type,
        )
        reported = min(inc.updated_at, now)
        row = IncidentRow(
            id=inc.id,
            camera_id=inc.camera_id,
            rule=inc.rule,
            rule_type=inc.rule_type,
            severity=inc.severity.value,
            zone=inc.zone,
            state=State.reported.value,
            owner_centre_id=r.owner_id,
            grid_centre_id=r.grid_id,
            route_reason=r.reason,
            started_at=inc.started_at,
            reported_at=reported,
            stored_at=now,
            state_changed_at=now,
            escalation_level=0,
            accept_flag="none",
            close_flag="none",
            sla_flag="none",
        )
        self._set_evidence(row, inc)
        sla = self._sla(row.severity)
        if sla is not None:
            row.accept_warn_at = reported + timedelta(seconds=sla.warn_share * sla.accept_s)
            row.accept_due_at = reported + timedelta(seconds=sla.accept_s)
            row.close_warn_at = reported + timedelta(seconds=sla.warn_share * sla.close_s)
            row.close_due_at = row.close_target_at = reported + timedelta(seconds=sla.close_s)
        row.next_timer_at = self._next_timer(row)
        s.add(row)
        s.flush()
        self._audit(s, row, SYSTEM, "report", None, State.reported, now, f"reported by {inc.camera_id}; {r.reason}")
        self._notify(s, row, r.owner_id, "owner", now, "new incident to accept")
        for cid in r.notify_ids:
            self._notify(s, row, cid, "notify", now, f"{inc.severity.value} incident owned by {r.owner_id}")
        events.append(self._event(s, "incident.created", row, now))
        return IngestResult(incident_id=inc.id, outcome="created", owner_centre_id=r.owner_id), events

    def _raise_severity(self, s: Session, row: IncidentRow, inc: Incident, now: datetime) -> list[EventRow]:
        """A later revision grades the event higher (a crowd swells, a fire spreads): the case takes
        the new grade, moves up to the centre that owns that grade when it sits above the current
        owner, and its running SLA windows shrink to the new grade's (never grow). Grades are never
        lowered by a revision. Audited; the new owner and the grade's notified centres are told."""
        old_severity, old_owner = row.severity, row.owner_centre_id
        row.severity = inc.severity.value
        cam = s.get(CameraRow, row.camera_id)
        r = route(
            self.tree,
            self.settings.dispatch.routing,
            camera_id=row.camera_id,
            village=cam.village_id if cam else None,
            severity=inc.severity,
            rule_type=row.rule_type,
        )
        moved = r.owner_id != old_owner and self.tree.in_subtree(old_owner, of=r.owner_id)
        if moved:
            row.owner_centre_id = r.owner_id
            row.route_reason = r.reason
        sla, had_sla = self._sla(row.severity), self._sla(old_severity) is not None
        if sla is not None:

            def shrink(
                warn_at: datetime | None, due_at: datetime | None, length_s: float, fresh: bool
            ) -> tuple[datetime | None, datetime]:
                """The window ends no later than ``length_s`` from now; a warning already given stays given."""
                warn, due = now + timedelta(seconds=sla.warn_share * length_s), now + timedelta(seconds=length_s)
                if fresh:
                    return warn, due
                return (min(warn_at, warn) if warn_at else None), (min(due_at, due) if due_at else due)

            if State(row.state).awaits_acceptance and (row.accept_due_at is not None or moved or not had_sla):
                # a new owner (or a case that had no window) gets a full one of the new grade, as after an
                # escalation; otherwise the running window only shrinks
                row.accept_warn_at, row.accept_due_at = shrink(
                    row.accept_warn_at, row.accept_due_at, sla.accept_s, fresh=moved or not had_sla
                )
            if row.close_due_at is not None or not had_sla:
                row.close_warn_at, row.close_due_at = shrink(
                    row.close_warn_at, row.close_due_at, sla.close_s, fresh=not had_sla
                )
                row.close_target_at = min(row.close_target_at or row.close_due_at, row.close_due_at)
            row.next_timer_at = self._next_timer(row)
        owner_note = f"; owner {old_owner} → {row.owner_centre_id}" if moved else ""
        note = f"severity {old_severity} → {row.severity} (revision {inc.revision}){owner_note}"
        state = State(row.state)
        self._audit(s, row, SYSTEM, "raise_severity", state, state, now, note)
        if moved:
            self._notify(s, row, row.owner_centre_id, "owner", now, note)
        for cid in r.notify_ids:
            self._notify(s, row, cid, "notify", now, note)
        if not moved:
            return []
        return [
            self._event(
                s,
                "incident.rerouted",
                row,
                now,
                payload={"from_centre_id": old_owner, "reason": "severity", "severity_from": old_severity},
            )
        ]

    @staticmethod
    def _set_evidence(row: IncidentRow, inc: Incident) -> None:
        row.revision = inc.revision
        row.updated_at = inc.updated_at
        row.class_names = list(inc.class_names)
        row.track_ids = list(inc.track_ids)
        row.boxes = [b.model_dump(mode="json") for b in inc.boxes]
        row.details = dict(inc.details)
        row.snapshot_url = inc.snapshot_url
        row.source_frame_seq = inc.source_frame_seq

    def ingest_health(self, health: CameraHealth) -> bool:
        """Record a camera's status/diagnosis. Returns True if its status changed.
        Reports older than the stored ones are ignored (redelivery, reordering)."""
        changed = False
        events: list[EventRow] = []
        self.tree
        with self.store.session() as s:
            now = self.clock()
            cam = s.get(CameraRow, health.camera_id)
            if cam is None:  # a camera the registry does not know yet: keep its health anyway
                grid, _ = resolve_grid(self.tree, health.camera_id, None)
                cam = CameraRow(
                    id=health.camera_id,
                    name="",
                    village_id=None,
                    grid_id=grid,
                    source="bus",
                    enabled=True,
                    masked_url="",
                    status=None,
                    status_reason="",
                    faults=[],
                    quality_scores={},
                    created_at=now,
                    updated_at=now,
                )
                s.add(cam)
                s.flush()
            if cam.health_at is None or health.at >= cam.health_at:
                cam.health_at = health.at
                cam.faults = list(health.faults)
                cam.quality_scores = dict(health.scores)
                cam.fps = health.fps
            if cam.status_at is None or health.at > cam.status_at:
                if cam.status != health.status.value:
                    changed = True
                    s.add(
                        CameraStatusRow(
                            camera_id=cam.id, status=health.status.value, at=health.at, reason=health.reason
                        )
                    )
                    events.append(
                        self._event(
                            s,
                            "camera.status",
                            None,
                            now,
                            camera_id=cam.id,
                            centre_id=cam.grid_id,
                            payload={
                                "camera_id": cam.id,
                                "status": health.status.value,
                                "previous": cam.status,
                                "reason": health.reason,
                                "faults": list(health.faults),
                            },
                        )
                    )
                cam.status, cam.status_at, cam.status_reason = health.status.value, health.at, health.reason
                cam.updated_at = now
        self._emit(events)
        return changed

    # =========================================================== workflow
    def transition(
        self,
        incident_id: str,
        action: Action | str,
        actor: Actor,
        note: str = "",
        *,
        target: str | None = None,
        reason: RejectReason | str | None = None,
        expected_version: int | None = None,
    ) -> IncidentView:
        """Take ``action`` on an incident as ``actor``; audited; raises the workflow's typed errors.

        ``target``: for ``dispatch``, a centre id below the owner or a unit's name.
        ``reason``: for ``reject``, ``false_alarm`` or ``duplicate``.
        ``expected_version``: the ``version`` the caller saw; a different one raises StaleRevision.
        """
        try:
            action = Action(action)
        except ValueError:
            raise InvalidRequest(f"unknown action {action!r} (one of {', '.join(a.value for a in Action)})") from None
        self.tree
        try:
            with self.store.session() as s:
                row = s.get(IncidentRow, incident_id, with_for_update=True)
                if row is None:
                    raise NotFound(f"incident {incident_id} not found")
                if expected_version is not None and row.version != expected_version:
                    raise StaleRevision(
                        f"incident {incident_id} changed (version {row.version}, you saw {expected_version}): reload it"
                    )
                self.check_may(actor, action, row)
                now = self.clock()
                after = self._after(s)
                events = self._apply(s, row, action, actor, note, now, target=target, reason=reason)
                s.flush()
                view = self._view(row)
        except StaleDataError:
            raise StaleRevision(f"incident {incident_id} was changed concurrently: reload it") from None
        self._run_after(after)
        self._emit(events)
        return view

    def _apply(
        self,
        s: Session,
        row: IncidentRow,
        action: Action,
        actor: Actor,
        note: str,
        now: datetime,
        *,
        target: str | None,
        reason: RejectReason | str | None,
    ) -> list[EventRow]:
        state = State(row.state)
        new = next_state(row.id, state, action)
        events: list[EventRow] = []
        sev = row.severity
        if action is Action.reject:
            if reason is None:
                raise InvalidRequest(f"incident {row.id}: reject needs a reason (false_alarm or duplicate)")
            try:
                row.reject_reason = RejectReason(reason).value
            except ValueError:
                raise InvalidRequest(
                    f"incident {row.id}: unknown reject reason {reason!r} (false_alarm or duplicate)"
                ) from None
            note = note or row.reject_reason
            self._later(s, self.metrics.rejections.labels(row.reject_reason).inc)
        if action is Action.dispatch:
            if not target:
                raise InvalidRequest(f"incident {row.id}: dispatch needs a target (a centre id or a unit's name)")
            if target in self.tree and not self.tree.in_subtree(target, of=row.owner_centre_id):
                raise InvalidRequest(
                    f"incident {row.id}: cannot dispatch to centre {target}, "
                    f"which is not under the owner {row.owner_centre_id}"
                )
            row.dispatch_target = target
            row.dispatched_at = now
            if target in self.tree:
                self._notify(s, row, target, "dispatch", now, note or f"dispatched by {row.owner_centre_id}")
            note = f"to {target}" + (f": {note}" if note else "")
        if action is Action.return_ and not note.strip():
            raise InvalidRequest(f"incident {row.id}: returning needs a note saying why")
        if action is Action.escalate:
            parent = self.tree.parent(row.owner_centre_id)
            if parent is None:
                raise InvalidRequest(f"incident {row.id}: owner {row.owner_centre_id} is the top centre")
            events += self._escalate(
                s, row, now, reason="manual", actor=actor, due_at=None, window_start=now, note=note
            )
            row.next_timer_at = self._next_timer(row)
            return events
        if action is Action.accept and row.accepted_at is None:  # the first acceptance counts for the KPI
            self._later(
                s, partial(self.metrics.time_to_accept.labels(sev).observe, (now - row.reported_at).total_seconds())
            )
            row.accepted_at = now
        if action is Action.close:
            row.closed_at = now
            on_time = row.close_target_at is None or now <= row.close_target_at
            self._later(
                s, partial(self.metrics.time_to_close.labels(sev).observe, (now - row.reported_at).total_seconds())
            )
            self._later(s, self.metrics.closed.labels(sev, str(on_time).lower()).inc)
        if new is State.rejected:
            row.closed_at = now
        row.state = new.value
        row.state_changed_at = now
        self._settle_clocks(row, new)
        self._audit(s, row, actor, action.value, state, new, now, note)
        events.append(
            self._event(
                s,
                "incident.transition",
                row,
                now,
                payload={"action": action.value, "from": state.value, "actor": actor.name},
            )
        )
        return events

    @staticmethod
    def _settle_clocks(row: IncidentRow, state: State) -> None:
        """Stop the clocks a state no longer runs, and recompute the incident's flag."""
        if not state.awaits_acceptance:
            row.accept_warn_at = row.accept_due_at = None
            row.accept_flag = "none"
        if not state.is_open:
            row.close_warn_at = row.close_due_at = None
            row.close_flag = "none"
        row.sla_flag = _worst(row.accept_flag, row.close_flag)
        row.next_timer_at = DispatchService._next_timer(row)

    # ======================================================= supervision
    def tick(self, now: datetime | None = None, batch: int = 200) -> TickResult:
        """Raise the flags and escalations due by ``now`` (default: the clock). Idempotent;
        call it periodically (the dispatcher does, every ``dispatch.tick_s``)."""
        now = now or self.clock()
        result = TickResult()
        self.tree
        with self.metrics.tick_duration.time():
            for _ in range(1000):  # bounded: each pass moves every incident it saw past `now`
                with self.store.read() as s:
                    ids = list(
                        s.scalars(
                            select(IncidentRow.id)
                            .where(IncidentRow.next_timer_at <= now)
                            .order_by(IncidentRow.next_timer_at)
                            .limit(batch)
                        )
                    )
                if not ids:
                    break
                for incident_id in ids:
                    try:
                        with self.store.session() as s:
                            row = s.get(IncidentRow, incident_id, with_for_update=True)
                            if row is None:
                                continue
                            after = self._after(s)
                            flags, escalations, events = self._run_timers(s, row, now)
                    except StaleDataError:
                        log.info("incident %s changed during the tick; next tick re-evaluates it", incident_id)
                        continue
                    self._run_after(after)
                    result = TickResult(
                        incidents=result.incidents + 1,
                        flags=result.flags + flags,
                        escalations=result.escalations + escalations,
                    )
                    self._emit(events)
                if len(ids) < batch:
                    break
        return result

    def _run_timers(self, s: Session, row: IncidentRow, now: datetime) -> tuple[int, int, list[EventRow]]:
        flags = escalations = 0
        events: list[EventRow] = []
        sla = self._sla(row.severity)
        while row.next_timer_at is not None and row.next_timer_at <= now:
            if not State(row.state).is_open or sla is None:
                row.accept_warn_at = row.accept_due_at = row.close_warn_at = row.close_due_at = None
                row.next_timer_at = None
                break
            pending = [
                (t, i, kind)
                for i, (kind, t) in enumerate(
                    (
                        ("accept_warn", row.accept_warn_at),
                        ("close_warn", row.close_warn_at),
                        ("accept_due", row.accept_due_at),
                        ("close_due", row.close_due_at),
                    )
                )
                if t is not None
            ]
            due, _, kind = min(pending)
            clock_name, level = kind.split("_")  # accept|close, warn|due
            flag_level = "yellow" if level == "warn" else "red"
            if level == "warn":
                if clock_name == "accept":
                    row.accept_warn_at = None
                    row.accept_flag = _worst(row.accept_flag, "yellow")
                else:
                    row.close_warn_at = None
                    row.close_flag = _worst(row.close_flag, "yellow")
            events += self._flag(s, row, clock_name, flag_level, due, now)
            flags += 1
            if level == "due":
                if clock_name == "accept":
                    row.accept_due_at = None
                    row.accept_flag = "red"
                else:
                    row.close_due_at = None
                    row.close_flag = "red"
                    # the escalated owner gets a fresh close window from the breach
                    row.close_warn_at = due + timedelta(seconds=sla.warn_share * sla.close_s)
                    row.close_due_at = due + timedelta(seconds=sla.close_s)
                if self.tree.parent(row.owner_centre_id) is not None:
                    events += self._escalate(
                        s, row, now, reason=f"{clock_name}_sla", actor=SYSTEM, due_at=due, window_start=due, note=""
                    )
                    escalations += 1
                elif clock_name == "close":
                    row.close_warn_at = row.close_due_at = None  # the top centre: red, nowhere higher to go
            row.sla_flag = _worst(row.accept_flag, row.close_flag)
            row.next_timer_at = self._next_timer(row)
        return flags, escalations, events

    def _flag(
        self, s: Session, row: IncidentRow, clock_name: str, level: str, due: datetime, now: datetime
    ) -> list[EventRow]:
        s.add(
            SlaFlagRow(
                incident_id=row.id,
                clock=clock_name,
                level=level,
                window_level=row.escalation_level,
                centre_id=row.owner_centre_id,
                due_at=due,
                at=now,
            )
        )
        kind = "sla_yellow" if level == "yellow" else "sla_red"
        limit = "accept" if clock_name == "accept" else "close"
        self._notify(
            s,
            row,
            row.owner_centre_id,
            kind,
            now,
            f"{'nearly due' if level == 'yellow' else 'overdue'} to {limit} (due {due.isoformat()})",
        )
        counter = self.metrics.warnings if level == "yellow" else self.metrics.overdue
        self._later(s, counter.labels(clock_name, row.severity).inc)
        return [
            self._event(
                s, "incident.flag", row, now, payload={"clock": clock_name, "level": level, "due_at": due.isoformat()}
            )
        ]

    def _escalate(
        self,
        s: Session,
        row: IncidentRow,
        now: datetime,
        *,
        reason: str,
        actor: Actor,
        due_at: datetime | None,
        window_start: datetime,
        note: str,
    ) -> list[EventRow]:
        parent = self.tree.parent(row.owner_centre_id)
        assert parent is not None
        old_state, old_owner = State(row.state), row.owner_centre_id
        row.state = State.escalated.value
        row.state_changed_at = now
        row.escalation_level += 1
        row.owner_centre_id = parent
        sla = self._sla(row.severity)
        if sla is not None:  # the new owner must accept within its own window
            row.accept_warn_at = window_start + timedelta(seconds=sla.warn_share * sla.accept_s)
            row.accept_due_at = window_start + timedelta(seconds=sla.accept_s)
        why = {"accept_sla": "not accepted in time", "close_sla": "not closed in time", "manual": "escalated"}[reason]
        text = f"{why}: {old_owner} → {parent}" + (f" (due {due_at.isoformat()})" if due_at else "")
        text += f"; {note}" if note else ""
        self._audit(s, row, actor, Action.escalate.value, old_state, State.escalated, now, text)
        s.add(
            EscalationRow(
                incident_id=row.id,
                from_centre_id=old_owner,
                to_centre_id=parent,
                level=row.escalation_level,
                reason=reason,
                due_at=due_at,
                at=now,
                actor=actor.name,
            )
        )
        self._notify(s, row, parent, "escalation", now, text)
        self._later(s, self.metrics.escalations.labels(reason, self.tree.node(parent).tier.value).inc)
        return [self._event(s, "incident.escalated", row, now, payload={"from_centre_id": old_owner, "reason": reason})]

    @staticmethod
    def _next_timer(row: IncidentRow) -> datetime | None:
        times = [t for t in (row.accept_warn_at, row.accept_due_at, row.close_warn_at, row.close_due_at) if t]
        return min(times) if times else None

    def _sla(self, severity: str) -> Sla | None:
        return self.settings.dispatch.sla.get(Severity(severity))

    # =========================================================== queries
    def get_incident(self, incident_id: str, viewer: Actor | None = None) -> IncidentDetail:
        with self.store.read() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise NotFound(f"incident {incident_id} not found")
            if viewer is not None and not self.can_see(viewer, row.owner_centre_id):
                raise Forbidden(
                    f"incident {incident_id} is owned by {row.owner_centre_id}, outside {viewer.centre_id}'s area"
                )
            audit = s.scalars(select(AuditRow).where(AuditRow.incident_id == incident_id).order_by(AuditRow.id))
            notes = s.scalars(
                select(NotificationRow).where(NotificationRow.incident_id == incident_id).order_by(NotificationRow.id)
            )
            escs = s.scalars(
                select(EscalationRow).where(EscalationRow.incident_id == incident_id).order_by(EscalationRow.id)
            )
            flags = s.scalars(select(SlaFlagRow).where(SlaFlagRow.incident_id == incident_id).order_by(SlaFlagRow.id))
            return IncidentDetail(
                **self._view(row).model_dump(),
                audit=[AuditEntry.model_validate(a) for a in audit],
                notifications=[NotificationView.model_validate(n) for n in notes],
                escalations=[EscalationView.model_validate(e) for e in escs],
                sla_flags=[SlaFlagView.model_validate(f) for f in flags],
            )

    def audit_trail(self, incident_id: str) -> list[AuditEntry]:
        return self.get_incident(incident_id).audit

    def list_incidents(
        self,
        filters: IncidentFilter | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
        viewer: Actor | None = None,
    ) -> IncidentPage:
        """Newest first (by report time, then id); keyset pagination through ``cursor``."""
        f = filters or IncidentFilter()
        if not 1 <= limit <= 500:
            raise InvalidRequest(f"limit must be 1..500, got {limit}")
        q = select(IncidentRow)
        centre = f.centre_id
        if viewer is not None and viewer.role is not Role.admin:
            if centre is None:
                centre = viewer.centre_id
            elif not self.can_see(viewer, centre):
                raise Forbidden(f"centre {centre} is outside {viewer.centre_id}'s area")
        if centre is not None:
            if centre not in self.tree:
                raise NotFound(f"unknown centre {centre!r}")
            q = q.where(IncidentRow.owner_centre_id.in_(self.tree.subtree(centre)))
        for column, values in (
            (IncidentRow.state, f.states),
            (IncidentRow.severity, f.severities),
            (IncidentRow.rule, f.rules),
            (IncidentRow.rule_type, f.rule_types),
            (IncidentRow.camera_id, f.camera_ids),
            (IncidentRow.sla_flag, f.sla_flags),
        ):
            if values:
                q = q.where(column.in_([str(v) for v in values]))
        if f.open_only:
            q = q.where(IncidentRow.state.notin_([State.closed.value, State.rejected.value]))
        if f.since is not None:
            q = q.where(IncidentRow.reported_at >= f.since)
        if f.until is not None:
            q = q.where(IncidentRow.reported_at < f.until)
        if cursor:
            at, cid = _decode_cursor(cursor)
            q = q.where(or_(IncidentRow.reported_at < at, and_(IncidentRow.reported_at == at, IncidentRow.id < cid)))
        q = q.order_by(IncidentRow.reported_at.desc(), IncidentRow.id.desc()).limit(limit + 1)
        with self.store.read() as s:
            rows = list(s.scalars(q))
        more = len(rows) > limit
        rows = rows[:limit]
        return IncidentPage(
            items=[self._view(r) for r in rows],
            next_cursor=_encode_cursor(rows[-1].reported_at, rows[-1].id) if more else None,
        )

    def notifications(self, centre_id: str, *, unread_only: bool = False, limit: int = 100) -> list[NotificationView]:
        q = select(NotificationRow).where(NotificationRow.centre_id == centre_id)
        if unread_only:
            q = q.where(NotificationRow.read_at.is_(None))
        with self.store.read() as s:
            return [
                NotificationView.model_validate(n)
                for n in s.scalars(q.order_by(NotificationRow.id.desc()).limit(limit))
            ]

    def mark_read(self, notification_ids: Iterable[int]) -> int:
        with self.store.session() as s:
            rows = list(
                s.scalars(
                    select(NotificationRow).where(
                        NotificationRow.id.in_(list(notification_ids)), NotificationRow.read_at.is_(None)
                    )
                )
            )
            for n in rows:
                n.read_at = self.clock()
            return len(rows)

    def _view(self, row: IncidentRow) -> IncidentView:
        view = IncidentView.model_validate(row)
        return view.model_copy(update={"allowed_actions": allowed_actions(State(row.state))})

    # =========================================================== cameras
    def list_cameras(self, *, centre_id: str | None = None, status: str | None = None) -> list[CameraView]:
        q = select(CameraRow).order_by(CameraRow.id)
        if centre_id is not None:
            q = q.where(CameraRow.grid_id.in_(self.tree.subtree(centre_id)))
        if status is not None:
            q = q.where(CameraRow.status == status)
        with self.store.read() as s:
            return [CameraView.model_validate(c) for c in s.scalars(q)]

    def get_camera(self, camera_id: str) -> CameraView:
        with self.store.read() as s:
            row = s.get(CameraRow, camera_id)
            if row is None:
                raise NotFound(f"camera {camera_id} not found")
            return CameraView.model_validate(row)

    def _camera_grid(self, camera_id: str, village: str | None) -> str:
        if village is not None:
            if village not in self.tree:
                raise InvalidRequest(f"camera {camera_id}: village {village!r} is not a centre")
            if self.tree.node(village).tier is not Tier.village:
                raise InvalidRequest(
                    f"camera {camera_id}: {village!r} is a {self.tree.node(village).tier.value} centre, not a village"
                )
        grid, why = resolve_grid(self.tree, camera_id, village)
        if grid is None:
            raise InvalidRequest(why + ": give `village`")
        return grid

    def create_camera(self, data: CameraCreate) -> CameraView:
        grid = self._camera_grid(data.id, data.village)
        now = self.clock()
        with self.store.session() as s:
            if s.get(CameraRow, data.id) is not None:
                raise InvalidRequest(f"camera {data.id} already exists")
            row = CameraRow(
                id=data.id,
                name=data.name,
                village_id=data.village,
                grid_id=grid,
                source="api",
                enabled=data.enabled,
                masked_url=mask_url(data.url or ""),
                status=None,
                status_reason="",
                faults=[],
                quality_scores={},
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            ev = self._event(
                s,
                "camera.changed",
                None,
                now,
                camera_id=row.id,
                centre_id=grid,
                payload={"camera_id": row.id, "change": "created"},
            )
            view = CameraView.model_validate(row)
        self._emit([ev])
        return view

    def update_camera(self, camera_id: str, data: CameraUpdate) -> CameraView:
        now = self.clock()
        self.tree
        with self.store.session() as s:
            row = s.get(CameraRow, camera_id)
            if row is None:
                raise NotFound(f"camera {camera_id} not found")
            if "village" in data.model_fields_set:
                row.grid_id = self._camera_grid(camera_id, data.village)
                row.village_id = data.village
            if data.name is not None:
                row.name = data.name
            if data.url is not None:
                row.masked_url = mask_url(data.url)
            if data.enabled is not None:
                row.enabled = data.enabled
            row.updated_at = now
            ev = self._event(
                s,
                "camera.changed",
                None,
                now,
                camera_id=row.id,
                centre_id=row.grid_id,
                payload={"camera_id": row.id, "change": "updated"},
            )
            view = CameraView.model_validate(row)
        self._emit([ev])
        return view

    def delete_camera(self, camera_id: str) -> None:
        now = self.clock()
        with self.store.session() as s:
            row = s.get(CameraRow, camera_id)
            if row is None:
                raise NotFound(f"camera {camera_id} not found")
            s.execute(delete(CameraStatusRow).where(CameraStatusRow.camera_id == camera_id))
            s.delete(row)
            ev = self._event(
                s,
                "camera.changed",
                None,
                now,
                camera_id=camera_id,
                centre_id=row.grid_id,
                payload={"camera_id": camera_id, "change": "deleted"},
            )
        self._emit([ev])

    def online_rate(
        self, since: datetime, until: datetime | None = None, *, centre_id: str | None = None
    ) -> OnlineRate:
        """在线率 / 完好率 over ``[since, until)`` from the status history: time online (or degraded)
        over time with a known status, per camera and over all cameras."""
        until = until or self.clock()
        if until <= since:
            raise InvalidRequest(f"empty window: since {since.isoformat()} is not before until {until.isoformat()}")
        cams = self.list_cameras(centre_id=centre_id)
        ids = [c.id for c in cams]
        with self.store.read() as s:
            hist = list(
                s.execute(
                    select(CameraStatusRow.camera_id, CameraStatusRow.status, CameraStatusRow.at)
                    .where(CameraStatusRow.camera_id.in_(ids), CameraStatusRow.at < until)
                    .order_by(CameraStatusRow.camera_id, CameraStatusRow.at)
                )
            )
        per: dict[str, list[tuple[str, datetime]]] = {i: [] for i in ids}
        for cid, status, at in hist:
            per[cid].append((status, at))
        out: list[CameraUptime] = []
        tot = Tally[str]()
        for cid in ids:
            acc = Tally[str]()
            changes = per[cid]
            for i, (status, at) in enumerate(changes):
                end = changes[i + 1][1] if i + 1 < len(changes) else until
                start = max(at, since)
                if end > start:
                    acc[status] += (end - start).total_seconds()
            known = sum(acc.values())
            tot.update(acc)
            out.append(
                CameraUptime(
                    camera_id=cid,
                    known_s=known,
                    online_s=acc["online"],
                    degraded_s=acc["degraded"],
                    offline_s=acc["offline"],
                    online_rate=(acc["online"] + acc["degraded"]) / known if known else None,
                    intact_rate=acc["online"] / known if known else None,
                )
            )
        known = sum(tot.values())
        return OnlineRate(
            since=since,
            until=until,
            cameras=out,
            online_rate=(tot["online"] + tot["degraded"]) / known if known else None,
            intact_rate=tot["online"] / known if known else None,
        )

    # =============================================================== KPIs
    def kpis(
        self, *, centre_id: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> Kpis:
        """Workflow KPIs of the incidents reported in ``[since, until)`` owned in ``centre_id``'s subtree."""
        q = select(
            IncidentRow.id,
            IncidentRow.owner_centre_id,
            IncidentRow.severity,
            IncidentRow.state,
            IncidentRow.reported_at,
            IncidentRow.accepted_at,
            IncidentRow.closed_at,
            IncidentRow.close_target_at,
            IncidentRow.reject_reason,
        )
        if centre_id is not None:
            q = q.where(IncidentRow.owner_centre_id.in_(self.tree.subtree(centre_id)))
        if since is not None:
            q = q.where(IncidentRow.reported_at >= since)
        if until is not None:
            q = q.where(IncidentRow.reported_at < until)
        with self.store.read() as s:
            rows = list(s.execute(q))
            ids = [r[0] for r in rows]
            red: set[str] = set()
            esc: list[str] = []
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                red.update(
                    s.scalars(
                        select(SlaFlagRow.incident_id).where(
                            SlaFlagRow.incident_id.in_(chunk), SlaFlagRow.level == "red"
                        )
                    )
                )
                esc += list(s.scalars(select(EscalationRow.reason).where(EscalationRow.incident_id.in_(chunk))))
        tier = lambda cid: self.tree.node(cid).tier.value if cid in self.tree else "unknown"  # noqa: E731
        accept_s = [(r[5] - r[4]).total_seconds() for r in rows if r[5] is not None]
        closed = [r for r in rows if r[3] == State.closed.value and r[6] is not None]
        close_s = [(r[6] - r[4]).total_seconds() for r in closed]
        on_time = sum(1 for r in closed if r[7] is None or r[6] <= r[7])
        closed_tiers = Tally(tier(r[1]) for r in closed)
        total = len(rows)
        return Kpis(
            total=total,
            by_state=dict(Tally(r[3] for r in rows)),
            by_severity=dict(Tally(r[2] for r in rows)),
            by_centre=dict(Tally(r[1] for r in rows)),
            by_tier=dict(Tally(tier(r[1]) for r in rows)),
            time_to_accept=_stats(accept_s),
            time_to_close=_stats(close_s),
            closed=len(closed),
            on_time_closure_rate=on_time / len(closed) if closed else None,
            overdue_rate=len(red) / total if total else None,
            resolved_share_by_tier={t: n / len(closed) for t, n in closed_tiers.items()},
            escalations=len(esc),
            escalations_by_reason=dict(Tally(esc)),
            rejected=sum(1 for r in rows if r[3] == State.rejected.value),
            false_alarm_rate=sum(1 for r in rows if r[8] == RejectReason.false_alarm.value) / total if total else None,
        )

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

    def _audit(
        self,
        s: Session,
        row: IncidentRow,
        actor: Actor,
        action: str,
        from_state: State | None,
        to_state: State,
        now: datetime,
        note: str,
    ) -> None:
        s.add(
            AuditRow(
                incident_id=row.id,
                at=now,
                actor=actor.name,
                role="system" if actor is SYSTEM else actor.role.value,
                centre_id=actor.centre_id or None,
                action=action,
                from_state=from_state.value if from_state else None,
                to_state=to_state.value,
                note=note,
            )
        )

    @staticmethod
    def _after(s: Session) -> list[Callable[[], object]]:
        """Actions to run once the session's transaction has committed (metrics: never count a rollback)."""
        return s.info.setdefault("xl_after_commit", [])  # type: ignore[no-any-return]

    def _later(self, s: Session, fn: Callable[[], object]) -> None:
        self._after(s).append(fn)

    @staticmethod
    def _run_after(fns: list[Callable[[], object]]) -> None:
        for fn in fns:
            fn()

    def _notify(self, s: Session, row: IncidentRow, centre_id: str, kind: str, now: datetime, note: str) -> None:
        s.add(NotificationRow(incident_id=row.id, centre_id=centre_id, kind=kind, at=now, note=note))


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


def _stats(values: list[float]) -> DurationStats:
    if not values:
        return DurationStats(count=0, mean_s=None, p50_s=None, p90_s=None)
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return DurationStats(count=len(values), mean_s=statistics.fmean(values), p50_s=statistics.median(values), p90_s=p90)


def _encode_cursor(at: datetime, incident_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), incident_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, incident_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(incident_id)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"malformed cursor {cursor!r}") from exc
