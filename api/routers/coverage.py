"""补点扩面 coverage planning job (engineers and admins): runs the coverage planner
(:func:`xueliang.coverage.api.plan_coverage`) on GeoJSON input and, if asked, stores its
blind spots and proposed cameras as a map layer the console draws.

The job runs synchronously in a worker thread with a bounded solver time. File paths
(``dem_path``, ``out_dir``) are not accepted from API clients.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.access import check_centre
from xueliang.api.deps import CameraManager, ClockDep, ServiceDep, SettingsDep, StoreDep, now_from
from xueliang.api.errors import problem, unprocessable
from xueliang.api.routers.map import LayerInfo, save_layer
from xueliang.config import Settings
from xueliang.config._base import Identifier
from xueliang.roles import Role

router = APIRouter(prefix="/api/v1/coverage", tags=["coverage"])

MAX_FEATURES = 5000
MAX_TIME_LIMIT_S = 60.0
FeatureCollectionIn = Annotated[dict[str, Any], Field(description="GeoJSON FeatureCollection (WGS84)")]


class CoveragePlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    demand: FeatureCollectionIn = Field(
        description="places to see: points/lines/polygons with `category` (and `village`)"
    )
    candidates: FeatureCollectionIn = Field(description="candidate poles: `cost`, `capacity`, `height`")
    cameras: FeatureCollectionIn | None = Field(
        None, description="existing cameras (`azimuth`, `hfov`, `range`, `height`); default: your configured cameras"
    )
    buildings: FeatureCollectionIn | None = Field(None, description="footprints with `height` (m)")
    options: dict[str, Any] = Field(description="planner options: exactly one of `k`, `budget`, `target_share`, ...")
    layer: Identifier | None = Field(None, description="also store blind spots and proposed cameras as this map layer")
    centre_id: str | None = Field(None, max_length=64, description="the layer's centre (default: yours)")


class CoveragePlanStatus(BaseModel):
    """What the solver proved about the plan, in words and numbers."""

    status: Literal["optimal", "feasible"] = Field(description="`optimal` only when the bound proves it (zero gap)")
    status_text: str = Field(description="`optimal`, or `within X %` of the upper bound (X rounded up)")
    gap: float = Field(ge=0, description="(upper bound - covered weight) / upper bound")
    upper_bound: float = Field(description="upper bound on the weight new cameras can cover")
    bound_kind: str = Field(description="which bound: lp, lagrangian, mip, best-singles, total, cost-mip, ...")
    k_requested: int | None = Field(description="cameras asked for (null for a budget or target share)")
    k_used: int = Field(ge=0, description="cameras in the plan")
    everything_coverable_covered: bool = Field(description="the plan covers all weight any candidate sees")
    k_text: str = Field(description="e.g. `k requested 300, 75 used: everything coverable covered`")


class CoveragePlanResult(BaseModel):
    plan: CoveragePlanStatus
    report: dict[str, Any] = Field(description="coverage before/after, by category and village, solver bound and gap")
    recommended: dict[str, Any] = Field(description="FeatureCollection of proposed cameras and their views")
    blind_spots: dict[str, Any] = Field(description="FeatureCollection of remaining blind spots, worst first")
    layer: LayerInfo | None = None


def configured_cameras(settings: Settings, service: Any, centre_id: str | None) -> dict[str, Any]:
    """The configured cameras with a map placement, in the planner's GeoJSON format."""
    visible = {c.id for c in service.list_cameras(centre_id=centre_id)}
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [c.placement.lon, c.placement.lat]},
            "properties": {
                "id": c.id,
                "height": c.placement.height_m,
                "azimuth": c.placement.azimuth_deg,
                "hfov": c.placement.hfov_deg,
                "range": c.placement.range_m,
            },
        }
        for c in settings.cameras
        if c.placement is not None and c.id in visible
    ]
    return {"type": "FeatureCollection", "features": feats}


def _check_size(name: str, fc: dict[str, Any] | None) -> None:
    if fc is None:
        return
    feats = fc.get("features")
    if fc.get("type") != "FeatureCollection" or not isinstance(feats, list):
        raise unprocessable(f"{name}: expected a GeoJSON FeatureCollection", "body", name)
    if len(feats) > MAX_FEATURES:
        raise unprocessable(f"{name}: {len(feats)} features, more than {MAX_FEATURES}", "body", name)


def layer_features(recommended: dict[str, Any], blind: dict[str, Any]) -> dict[str, Any]:
    """Planner output → map-layer features (kind: candidate, candidate_view, blind)."""
    kinds = {"camera": "candidate", "view": "candidate_view"}
    feats = []
    for f in recommended.get("features", []):
        kind = kinds.get(f.get("properties", {}).get("kind"))
        if kind is not None:
            feats.append({**f, "properties": {**f["properties"], "kind": kind}})
    feats += [{**f, "properties": {**f.get("properties", {}), "kind": "blind"}} for f in blind.get("features", [])]
    return {"type": "FeatureCollection", "features": feats}


@router.post(
    "/plan",
    response_model=CoveragePlanResult,
    responses={
        401: problem("missing or invalid token"),
        403: problem("engineers and admins only, for a centre in their subtree"),
        404: problem("unknown centre"),
        422: {"description": "invalid input or an unreachable goal (the planner's message)"},
        503: problem("the coverage extra (scipy, shapely, pyproj) is not installed"),
    },
)
def plan(
    body: CoveragePlanBody,
    user: CameraManager,
    service: ServiceDep,
    settings: SettingsDep,
    store: StoreDep,
    clock: ClockDep,
) -> CoveragePlanResult:
    """Plan new cameras (maximal covering / budget / set cover) and report the blind spots."""
    try:
        from xueliang.coverage.api import PlanRequest, plan_coverage
        from xueliang.coverage.errors import CoverageInputError, InfeasibleError
        from xueliang.coverage.planner import PlanOptions
    except ImportError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"coverage planning unavailable: {exc}") from None
    centre = body.centre_id or user.centre_id
    check_centre(service, user, centre)
    for name in ("demand", "candidates", "cameras", "buildings"):
        _check_size(name, getattr(body, name))
    try:
        options = PlanOptions.model_validate(body.options)
    except ValueError as exc:
        raise unprocessable(f"options: {exc}", "body", "options") from None
    options = options.model_copy(update={"time_limit_s": min(options.time_limit_s, MAX_TIME_LIMIT_S)})
    cameras = (
        body.cameras
        if body.cameras is not None
        else configured_cameras(
            settings, service, None if user.role is Role.admin and body.centre_id is None else centre
        )
    )
    request = PlanRequest(
        demand=body.demand,
        candidates=body.candidates,
        cameras=cameras or None,
        buildings=body.buildings,
        options=options,
    )
    try:
        result = plan_coverage(request)
    except (CoverageInputError, InfeasibleError) as exc:
        raise unprocessable(str(exc), "body", kind=type(exc).__name__) from None
    info = None
    if body.layer:
        now: datetime = now_from(clock)
        info = save_layer(
            store, service, user, body.layer, centre, layer_features(result.recommended, result.blind_spots), now
        )
    p = result.report["plan"]
    summary = CoveragePlanStatus(
        upper_bound=p["objective"]["upper_bound"], **{f: p[f] for f in CoveragePlanStatus.model_fields if f in p}
    )
    return CoveragePlanResult(
        plan=summary, report=result.report, recommended=result.recommended, blind_spots=result.blind_spots, layer=info
    )
