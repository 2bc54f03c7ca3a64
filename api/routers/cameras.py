"""摄像机 cameras: list, detail, CRUD (engineers and admins), status and video-quality diagnosis
(视频质量诊断), online rate (在线率/完好率) over a window, zones and rules from the configuration."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from xueliang.api.access import check_centre, sees_centre
from xueliang.api.deps import CameraManager, ClockDep, CurrentUser, ServiceDep, SettingsDep, now_from
from xueliang.api.errors import problem
from xueliang.api.schemas import CameraGeometry, CameraPublic, IdPath, RulePublic
from xueliang.api.users import UserPublic
from xueliang.config import Settings
from xueliang.dispatch.views import CameraCreate, CameraUpdate, CameraView, OnlineRate
from xueliang.errors import NotFound
from xueliang.roles import Role

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])

CameraId = IdPath
ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("missing or invalid token"),
    404: problem("no such camera in your centre's subtree"),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: problem("only engineers and admins manage cameras, within their subtree"),
    422: {"description": "invalid camera (unknown village, duplicate id, ...)"},
}

if TYPE_CHECKING:
    from xueliang.dispatch.service import DispatchService


def _public(settings: Settings, view: CameraView) -> CameraPublic:
    try:
        cfg = settings.camera(view.id)
    except KeyError:
        return CameraPublic(**view.model_dump(), placement=None, configured=False)
    labels = {x.name: x.label for x in (*cfg.zones, *cfg.lines, *cfg.rules) if x.label}
    return CameraPublic(**view.model_dump(), placement=cfg.placement, configured=True, labels=labels)


def _visible_camera(service: DispatchService, user: UserPublic, camera_id: str) -> CameraView:
    try:
        view = service.get_camera(camera_id)
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id} not found") from None
    if not sees_centre(service, user, view.grid_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id} not found")
    return view


def _scope(service: DispatchService, user: UserPublic, centre_id: str | None) -> str | None:
    if centre_id is not None:
        check_centre(service, user, centre_id)
        return centre_id
    return None if user.role is Role.admin else user.centre_id


@router.get("", response_model=list[CameraPublic], responses=ERRORS)
def list_cameras(
    user: CurrentUser,
    service: ServiceDep,
    settings: SettingsDep,
    centre_id: Annotated[str | None, Query(max_length=64, description="grid subtree (default: yours)")] = None,
    status_: Annotated[Literal["online", "degraded", "offline"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[CameraPublic]:
    views = service.list_cameras(centre_id=_scope(service, user, centre_id), status=status_)
    return [_public(settings, v) for v in views[:limit]]


@router.get("/online-rate", response_model=OnlineRate, responses=ERRORS)
def online_rate(
    user: CurrentUser,
    service: ServiceDep,
    clock: ClockDep,
    window_s: Annotated[int, Query(ge=60, le=366 * 86400, description="window ending now, seconds")] = 86400,
    centre_id: Annotated[str | None, Query(max_length=64)] = None,
) -> OnlineRate:
    """在线率 (online or degraded) and 完好率 (online, usable picture) over the window, per camera and overall."""
    now = now_from(clock)
    return service.online_rate(now - timedelta(seconds=window_s), now, centre_id=_scope(service, user, centre_id))


class CameraTrend(BaseModel):
    camera_id: str
    intact_rate: list[float | None] = Field(description="完好率 per bucket, oldest first (None: status unknown)")
    online_rate: list[float | None] = Field(description="在线率 per bucket, oldest first")


class TrendPublic(BaseModel):
    since: datetime
    bucket_s: int
    cameras: list[CameraTrend]


@router.get("/trend", response_model=TrendPublic, responses=ERRORS)
def trend(
    user: CurrentUser,
    service: ServiceDep,
    clock: ClockDep,
    hours: Annotated[int, Query(ge=1, le=168, description="buckets of one hour, ending now")] = 24,
    centre_id: Annotated[str | None, Query(max_length=64)] = None,
) -> TrendPublic:
    """Camera health over time: 在线率 and 完好率 of each camera per hour, oldest first (for a sparkline)."""
    now = now_from(clock)
    scope = _scope(service, user, centre_id)
    start = now - timedelta(hours=hours)
    per: dict[str, CameraTrend] = {}
    for h in range(hours):
        rate = service.online_rate(start + timedelta(hours=h), start + timedelta(hours=h + 1), centre_id=scope)
        for c in rate.cameras:
            t = per.setdefault(c.camera_id, CameraTrend(camera_id=c.camera_id, intact_rate=[], online_rate=[]))
            t.intact_rate.append(c.intact_rate)
            t.online_rate.append(c.online_rate)
    return TrendPublic(since=start, bucket_s=3600, cameras=list(per.values()))


@router.get("/{camera_id}", response_model=CameraPublic, responses=ERRORS)
def get_camera(camera_id: CameraId, user: CurrentUser, service: ServiceDep, settings: SettingsDep) -> CameraPublic:
    return _public(settings, _visible_camera(service, user, camera_id))


@router.get("/{camera_id}/zones", response_model=CameraGeometry, responses=ERRORS)
def camera_zones(camera_id: CameraId, user: CurrentUser, service: ServiceDep, settings: SettingsDep) -> CameraGeometry:
    """Zones and lines (image pixel coordinates) from the camera's configuration."""
    _visible_camera(service, user, camera_id)
    try:
        cfg = settings.camera(camera_id)
    except KeyError:
        return CameraGeometry(camera_id=camera_id, zones=[], lines=[])
    return CameraGeometry(camera_id=camera_id, zones=cfg.zones, lines=cfg.lines)


@router.get("/{camera_id}/rules", response_model=list[RulePublic], responses=ERRORS)
def camera_rules(
    camera_id: CameraId, user: CurrentUser, service: ServiceDep, settings: SettingsDep
) -> list[RulePublic]:
    _visible_camera(service, user, camera_id)
    try:
        cfg = settings.camera(camera_id)
    except KeyError:
        return []
    return [
        RulePublic(
            name=r.name,
            type=r.type,
            enabled=r.enabled,
            severity=r.effective_severity.value,
            zone=getattr(r, "zone", None),
            line=getattr(r, "line", None),
            classes=list(r.classes),
            settings=r.model_dump(mode="json", exclude={"default_severity"}),
        )
        for r in cfg.rules
    ]


def _check_village(service: DispatchService, user: UserPublic, village: str | None) -> None:
    if village is not None and village in service.tree and not sees_centre(service, user, village):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"village {village} is outside {user.centre_id}'s area")


@router.post("", response_model=CameraPublic, status_code=status.HTTP_201_CREATED, responses=WRITE_ERRORS)
def create_camera(body: CameraCreate, user: CameraManager, service: ServiceDep, settings: SettingsDep) -> CameraPublic:
    """Register a camera (its village, or derived from a GB/T 28181 id); URLs are stored with credentials masked."""
    _check_village(service, user, body.village)
    if body.village is None and user.role is not Role.admin:
        # a GB/T 28181 id routes by its division code: make sure it lands inside the user's area
        from xueliang.dispatch.routing import resolve_grid

        grid, _ = resolve_grid(service.tree, body.id, None)
        if grid is not None and not sees_centre(service, user, grid):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"camera {body.id} belongs to {grid}, outside your area")
    return _public(settings, service.create_camera(body))


@router.patch("/{camera_id}", response_model=CameraPublic, responses=WRITE_ERRORS)
def update_camera(
    camera_id: CameraId, body: CameraUpdate, user: CameraManager, service: ServiceDep, settings: SettingsDep
) -> CameraPublic:
    _visible_camera(service, user, camera_id)
    if "village" in body.model_fields_set:
        _check_village(service, user, body.village)
    return _public(settings, service.update_camera(camera_id, body))


@router.delete("/{camera_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=WRITE_ERRORS)
def delete_camera(camera_id: CameraId, user: CameraManager, service: ServiceDep) -> Response:
    _visible_camera(service, user, camera_id)
    service.delete_camera(camera_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
