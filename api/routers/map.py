"""The console's map as GeoJSON: cameras (points, coloured by status) with their view sectors,
and the layers the coverage planner produced (covered area, blind spots, proposed cameras).

Sectors are computed from each camera's configured ``placement`` (position, azimuth,
horizontal field of view, range). Coverage layers are uploaded by engineers
(``PUT /api/v1/map/layers/{name}``, e.g. the output of ``xueliang coverage``) and
stored in the database; features carry ``properties.kind`` = ``coverage`` | ``blind``
| ``candidate`` | ``candidate_view``; ``POST /api/v1/coverage/plan`` stores one directly.
No tile server: the console draws the GeoJSON on SVG.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel
from sqlalchemy import select

from xueliang.api.access import check_centre, sees_centre
from xueliang.api.deps import CameraManager, ClockDep, CurrentUser, ServiceDep, SettingsDep, StoreDep, now_from
from xueliang.api.errors import CENTRE_MANAGER_ERRORS, problem, unprocessable
from xueliang.api.models import MapLayerRow
from xueliang.api.schemas import Feature, FeatureCollection, Geometry, IdPath
from xueliang.config.cameras import GeoPlacement
from xueliang.roles import Role

router = APIRouter(prefix="/api/v1/map", tags=["cameras"])

LayerName = IdPath
LAYER_KINDS = {"coverage", "blind", "candidate", "candidate_view"}
M_PER_DEG = 111_320.0


def sector(p: GeoPlacement, steps: int = 24) -> list[list[float]]:
    """The camera's view sector as a closed lon/lat ring (a circle for a 360° view)."""
    cos_lat = max(math.cos(math.radians(p.lat)), 1e-6)

    def at(bearing_deg: float, dist: float) -> list[float]:
        b = math.radians(bearing_deg)
        return [
            round(p.lon + dist * math.sin(b) / (M_PER_DEG * cos_lat), 7),
            round(p.lat + dist * math.cos(b) / M_PER_DEG, 7),
        ]

    if p.hfov_deg >= 360:
        ring = [at(360 * i / (2 * steps), p.range_m) for i in range(2 * steps)]
    else:
        start = p.azimuth_deg - p.hfov_deg / 2
        ring = [[p.lon, p.lat]] + [at(start + p.hfov_deg * i / steps, p.range_m) for i in range(steps + 1)]
    return [*ring, ring[0]]


class LayerInfo(BaseModel):
    name: str
    centre_id: str
    features: int
    updated_by: str
    updated_at: datetime


@router.get("", response_model=FeatureCollection, responses={401: problem("missing or invalid token")})
def map_features(user: CurrentUser, service: ServiceDep, settings: SettingsDep, store: StoreDep) -> FeatureCollection:
    """Cameras in your subtree with their view sectors, plus the coverage layers of your subtree."""
    features: list[Feature] = []
    centre = None if user.role is Role.admin else user.centre_id
    for cam in service.list_cameras(centre_id=centre):
        try:
            placement = settings.camera(cam.id).placement
        except KeyError:
            placement = None
        if placement is None:
            continue
        props = {
            "id": cam.id,
            "name": cam.name or cam.id,
            "status": cam.status,
            "village": cam.village_id,
            "azimuth_deg": placement.azimuth_deg,
            "hfov_deg": placement.hfov_deg,
            "range_m": placement.range_m,
            "faults": cam.faults,
        }
        features.append(
            Feature(
                geometry=Geometry(type="Polygon", coordinates=[sector(placement)]),
                properties={**props, "kind": "sector"},
            )
        )
        features.append(
            Feature(
                geometry=Geometry(type="Point", coordinates=[placement.lon, placement.lat]),
                properties={**props, "kind": "camera"},
            )
        )
    with store.read() as s:
        layers = list(s.scalars(select(MapLayerRow).order_by(MapLayerRow.name)))
    for layer in layers:
        if not sees_centre(service, user, layer.centre_id):
            continue
        for f in layer.geojson.get("features", []):
            features.append(
                Feature.model_validate({**f, "properties": {**f.get("properties", {}), "layer": layer.name}})
            )
    return FeatureCollection(features=features)


@router.get("/layers", response_model=list[LayerInfo], responses={401: problem("missing or invalid token")})
def list_layers(user: CurrentUser, service: ServiceDep, store: StoreDep) -> list[LayerInfo]:
    with store.read() as s:
        rows = list(s.scalars(select(MapLayerRow).order_by(MapLayerRow.name)))
    return [
        LayerInfo(
            name=r.name,
            centre_id=r.centre_id,
            features=len(r.geojson.get("features", [])),
            updated_by=r.updated_by,
            updated_at=r.updated_at.replace(tzinfo=r.updated_at.tzinfo or UTC),
        )
        for r in rows
        if sees_centre(service, user, r.centre_id)
    ]


@router.put(
    "/layers/{name}",
    response_model=LayerInfo,
    responses={
        **CENTRE_MANAGER_ERRORS,
        422: {"description": "not a FeatureCollection of coverage | blind | candidate features"},
    },
)
def put_layer(
    name: LayerName,
    body: FeatureCollection,
    user: CameraManager,
    service: ServiceDep,
    store: StoreDep,
    clock: ClockDep,
    centre_id: str | None = None,
) -> LayerInfo:
    """Store a coverage layer (e.g. the coverage planner's GeoJSON) for ``centre_id`` (default: yours)."""
    centre = centre_id or user.centre_id
    check_centre(service, user, centre)
    for i, f in enumerate(body.features):
        kind = f.properties.get("kind")
        if kind not in LAYER_KINDS:
            raise unprocessable(
                f"feature {i}: properties.kind must be one of {sorted(LAYER_KINDS)}, got {kind!r}",
                "body",
                "features",
                i,
                "properties",
                "kind",
            )
    return save_layer(store, service, user, name, centre, body.model_dump(mode="json"), now_from(clock))


def save_layer(
    store: Any, service: Any, user: Any, name: str, centre: str, data: dict[str, Any], now: datetime
) -> LayerInfo:
    """Insert or replace a layer (403 if it exists and belongs to a centre outside the user's area)."""
    with store.session() as s:
        row = s.get(MapLayerRow, name)
        if row is None:
            row = MapLayerRow(name=name)
            s.add(row)
        elif not sees_centre(service, user, row.centre_id):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"layer {name} belongs to {row.centre_id}, outside your area"
            )
        row.centre_id, row.geojson, row.updated_by, row.updated_at = centre, data, user.username, now
    return LayerInfo(
        name=name, centre_id=centre, features=len(data.get("features", [])), updated_by=user.username, updated_at=now
    )


@router.delete(
    "/layers/{name}",
    status_code=204,
    response_class=Response,
    responses={401: problem("missing or invalid token"), 403: problem("not allowed"), 404: problem("no such layer")},
)
def delete_layer(name: LayerName, user: CameraManager, service: ServiceDep, store: StoreDep) -> Response:
    with store.session() as s:
        row = s.get(MapLayerRow, name)
        if row is None or not sees_centre(service, user, row.centre_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"layer {name} not found")
        s.delete(row)
    return Response(status_code=204)
