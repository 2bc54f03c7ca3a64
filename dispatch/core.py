"""What every part of the dispatch service shares: the store, settings, clock and metrics, the
centre tree (synced from the config), authorisation, SLA windows, and the audit, notification
and after-commit helpers that run inside a write transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from xueliang.config import Settings
from xueliang.config.centres import Tier
from xueliang.config.dispatch import Sla
from xueliang.contracts import Severity
from xueliang.dispatch.changes import ChangeFeed, Listener
from xueliang.dispatch.clock import Clock, system_clock
from xueliang.dispatch.metrics import DispatchMetrics, get_metrics
from xueliang.dispatch.models import AuditRow, CameraRow, CentreRow, IncidentRow, NotificationRow, SlaFlagRow
from xueliang.dispatch.routing import CentreNode, CentreTree, Route, resolve_grid, route
from xueliang.dispatch.store import Store
from xueliang.dispatch.views import IncidentView
from xueliang.dispatch.workflow import (
    SYSTEM,
    Action,
    Actor,
    Forbidden,
    NotFound,
    Role,
    SlaFlag,
    StaleRevision,
    State,
    allowed_actions,
    role_may,
)

FLAG_RANK = {f.value: f.rank for f in SlaFlag}
UNIT_ACTIONS = frozenset({Action.receive, Action.return_, Action.handle, Action.feedback})
"""Actions the centre an incident was dispatched to may take, besides the owner's subtree."""


def _chunks(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    """``ids`` in slices a database's IN (...) takes."""
    return (ids[i : i + size] for i in range(0, len(ids), size))


def _worst(*flags: str) -> str:
    return SlaFlag.worst(*flags).value


class ServiceCore(ChangeFeed):
    """State and helpers shared by the dispatch service's parts (see :mod:`xueliang.dispatch.service`)."""

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
                cam_row = s.get(CameraRow, cam.id)
                if cam_row is None:
                    cam_row = CameraRow(id=cam.id, created_at=now, status=None, faults=[], quality_scores={})
                    s.add(cam_row)
                cam_row.name, cam_row.village_id, cam_row.grid_id = cam.name, cam.village, grid
                cam_row.source, cam_row.enabled = "config", cam.enabled
                cam_row.masked_url, cam_row.updated_at = cam.source.masked, now
                cam_row.status_reason = cam_row.status_reason or ""
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

    def _route(self, s: Session, camera_id: str, severity: Severity, rule_type: str) -> Route:
        """Who owns (and who is told of) an incident of this camera, grade and rule type."""
        cam = s.get(CameraRow, camera_id)
        return route(
            self.tree,
            self.settings.dispatch.routing,
            camera_id=camera_id,
            village=cam.village_id if cam else None,
            severity=severity,
            rule_type=rule_type,
        )

    @staticmethod
    def _new_camera(camera_id: str, grid: str | None, now: datetime, **fields: Any) -> CameraRow:
        """A camera row with no status yet; ``fields``: name, village_id, source, enabled, masked_url."""
        values: dict[str, Any] = {"name": "", "village_id": None, "source": "bus", "enabled": True, "masked_url": ""}
        values.update(fields)
        return CameraRow(
            id=camera_id,
            grid_id=grid,
            status=None,
            status_reason="",
            faults=[],
            quality_scores={},
            created_at=now,
            updated_at=now,
            **values,
        )

    @staticmethod
    def _red_flagged(s: Session, ids: list[str]) -> set[str]:
        """Which of the incidents ``ids`` were ever flagged red (overdue)."""
        red: set[str] = set()
        for chunk in _chunks(ids):
            red.update(
                s.scalars(
                    select(SlaFlagRow.incident_id).where(
                        SlaFlagRow.incident_id.in_(chunk), SlaFlagRow.level == SlaFlag.red.value
                    )
                )
            )
        return red

    def _load_tree(self) -> CentreTree:
        """Load the centre tree now, outside the write transaction that follows (SQLite serves one
        connection at a time)."""
        return self.tree

    @contextmanager
    def _incident_for_update(self, incident_id: str, *, retry: str) -> Iterator[tuple[Session, IncidentRow]]:
        """A write transaction holding the incident's row locked (NotFound if there is none). A concurrent
        change found at commit raises StaleRevision ("... was changed concurrently: <retry>")."""
        self._load_tree()
        try:
            with self.store.session() as s:
                row = s.get(IncidentRow, incident_id, with_for_update=True)
                if row is None:
                    raise NotFound(f"incident {incident_id} not found")
                yield s, row
        except StaleDataError:
            raise StaleRevision(f"incident {incident_id} was changed concurrently: {retry}") from None

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

    def list_root(self, viewer: Actor | None, centre_id: str | None) -> str | None:
        """The centre whose subtree a viewer's incident list covers: ``centre_id`` if the viewer may see it
        (Forbidden otherwise), by default the viewer's own centre; None (everything) for an admin or no
        viewer without ``centre_id``. NotFound for an unknown centre."""
        centre = centre_id
        if viewer is not None and viewer.role is not Role.admin:
            if centre is None:
                centre = viewer.centre_id
            elif not self.can_see(viewer, centre):
                raise Forbidden(f"centre {centre} is outside {viewer.centre_id}'s area")
        if centre is not None and centre not in self.tree:
            raise NotFound(f"unknown centre {centre!r}")
        return centre

    def check_may(self, actor: Actor, action: Action, row: IncidentRow | IncidentView) -> None:
        """Raise :class:`Forbidden` unless ``actor`` may take ``action`` on the incident."""
        if actor is SYSTEM:
            return
        if not role_may(actor.role, action):
            raise Forbidden(f"role {actor.role.value} may not {action.value} incidents")
        if actor.role is Role.grid_worker:  # 网格员: only the cases dispatched to them, by name
            if row.dispatch_target == actor.name:
                return
            raise Forbidden(f"incident {row.id} is not dispatched to {actor.name}")
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

    @staticmethod
    def _next_timer(row: IncidentRow) -> datetime | None:
        times = [t for t in (row.accept_warn_at, row.accept_due_at, row.close_warn_at, row.close_due_at) if t]
        return min(times) if times else None

    def _sla(self, severity: str) -> Sla | None:
        return self.settings.dispatch.sla.get(Severity(severity))

    def _view(self, row: IncidentRow) -> IncidentView:
        view = IncidentView.model_validate(row)
        return view.model_copy(update={"allowed_actions": allowed_actions(State(row.state))})

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
        return s.info.setdefault("xl_after_commit", [])

    def _later(self, s: Session, fn: Callable[[], object]) -> None:
        self._after(s).append(fn)

    @staticmethod
    def _run_after(fns: list[Callable[[], object]]) -> None:
        for fn in fns:
            fn()

    def _notify(self, s: Session, row: IncidentRow, centre_id: str, kind: str, now: datetime, note: str) -> None:
        s.add(NotificationRow(incident_id=row.id, centre_id=centre_id, kind=kind, at=now, note=note))
