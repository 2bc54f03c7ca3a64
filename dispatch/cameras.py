"""The camera registry: CRUD (each change on the change feed) and the on-line rate from the status history."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from xueliang.config.cameras import mask_url
from xueliang.config.centres import Tier
from xueliang.dispatch.changes import EventKind
from xueliang.dispatch.core import ServiceCore
from xueliang.dispatch.models import CameraRow, CameraStatusRow, EventRow
from xueliang.dispatch.routing import resolve_grid
from xueliang.dispatch.views import CameraCreate, CameraUpdate, CameraUptime, CameraView, OnlineRate
from xueliang.dispatch.workflow import InvalidRequest, NotFound


class CamerasMixin(ServiceCore):
    """The camera part of :class:`~xueliang.dispatch.service.DispatchService`."""

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

    def _camera_changed(self, s: Session, camera_id: str, grid: str | None, now: datetime, change: str) -> EventRow:
        """The change-feed event of a camera created, updated or deleted through the API."""
        return self._event(
            s,
            EventKind.camera_changed,
            None,
            now,
            camera_id=camera_id,
            centre_id=grid,
            payload={"camera_id": camera_id, "change": change},
        )

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
            row = self._new_camera(
                data.id,
                grid,
                now,
                name=data.name,
                village_id=data.village,
                source="api",
                enabled=data.enabled,
                masked_url=mask_url(data.url or ""),
            )
            s.add(row)
            s.flush()
            ev = self._camera_changed(s, row.id, grid, now, "created")
            view = CameraView.model_validate(row)
        self._emit([ev])
        return view

    def update_camera(self, camera_id: str, data: CameraUpdate) -> CameraView:
        now = self.clock()
        self._load_tree()
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
            ev = self._camera_changed(s, row.id, row.grid_id, now, "updated")
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
            ev = self._camera_changed(s, camera_id, row.grid_id, now, "deleted")
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
        tot: defaultdict[str, float] = defaultdict(float)
        for cid in ids:
            acc: defaultdict[str, float] = defaultdict(float)
            changes = per[cid]
            for i, (status, at) in enumerate(changes):
                end = changes[i + 1][1] if i + 1 < len(changes) else until
                start = max(at, since)
                if end > start:
                    acc[status] += (end - start).total_seconds()
            known = sum(acc.values())
            for status, seconds in acc.items():
                tot[status] += seconds
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
