"""补点扩面 coverage planning job (engineers and admins): runs the coverage planner
(:func:`xueliang.coverage.api.plan_coverage`) on GeoJSON input and, if asked, stores its
blind spots and proposed cameras as a map layer the console draws.

The job runs synchronously in a worker thread with a bounded solver time. File paths
(``dem_path``, ``out_dir``) are not accepted from API clients.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.access import check_centre
from xueliang.api.deps import CameraManager, ClockDep, ServiceDep, SettingsDep, StoreDep, now_from
from xueliang.api.errors import CENTRE_MANAGER_ERRORS, problem, unprocessable
from xueliang.api.routers.map import LayerInfo, save_layer
from xueliang.config import Settings
from xueliang.config._base import Identifier
from xueliang.roles import Role

router = APIRouter(prefix="/api/v1/coverage", tags=["coverage"])
log = logging.getLogger(__name__)

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
        **CENTRE_MANAGER_ERRORS,
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
    request, centre = _prepare(body, user, service, settings)
    return _finish(_solve(request), body, user, service, store, clock, centre)


def _prepare(body: CoveragePlanBody, user: Any, service: Any, settings: Settings) -> tuple[Any, str]:
    """Checks and the planner request (4xx/503 raised here, before any job starts)."""
    try:
        from xueliang.coverage.api import PlanRequest
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
    return request, centre


def _solve(request: Any, progress: Any = None) -> Any:
    """Run the planner; its input errors and an unreachable goal become 422."""
    from xueliang.coverage.errors import CoverageInputError, InfeasibleError
    from xueliang.coverage.planner import run_plan

    try:
        return run_plan(
            request.demand,
            request.candidates,
            request.options,
            cameras=request.cameras,
            buildings=request.buildings,
            progress=progress,
        )
    except (CoverageInputError, InfeasibleError) as exc:
        raise unprocessable(str(exc), "body", kind=type(exc).__name__) from None


def _finish(
    outcome: Any, body: CoveragePlanBody, user: Any, service: Any, store: Any, clock: Any, centre: str
) -> CoveragePlanResult:
    info = None
    if body.layer:
        now: datetime = now_from(clock)
        info = save_layer(
            store, service, user, body.layer, centre, layer_features(outcome.recommended, outcome.blind_geojson), now
        )
    p = outcome.report["plan"]
    summary = CoveragePlanStatus(
        upper_bound=p["objective"]["upper_bound"], **{f: p[f] for f in CoveragePlanStatus.model_fields if f in p}
    )
    return CoveragePlanResult(
        plan=summary,
        report=outcome.report,
        recommended=outcome.recommended,
        blind_spots=outcome.blind_geojson,
        layer=info,
    )


# ------------------------------------------------------------------ plans as jobs, with progress
MAX_RUNNING_JOBS = 2
KEPT_JOBS = 20


class PlanJob(BaseModel):
    id: str
    state: Literal["running", "done", "failed"]
    stage: str = Field(description="the planner's current stage (demand, candidate visibility, optimising: ...)")
    fraction: float = Field(ge=0, le=1)
    started_at: datetime
    result: CoveragePlanResult | None = None
    error: Any = Field(None, description="the 422 detail (validation shape) or a message when it failed")


class _Jobs:
    """Plans running in threads, kept in memory per API process (the latest 20), readable by their owner."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, tuple[str, PlanJob]] = {}

    def running(self) -> int:
        return sum(1 for _, j in self.jobs.values() if j.state == "running")

    def update(self, job_id: str, **fields: Any) -> None:
        with self.lock:
            owner, job = self.jobs[job_id]
            self.jobs[job_id] = (owner, job.model_copy(update=fields))


def _jobs(request: Request) -> _Jobs:
    state = request.app.state
    if not hasattr(state, "coverage_jobs"):
        state.coverage_jobs = _Jobs()
    jobs: _Jobs = state.coverage_jobs
    return jobs


@router.post(
    "/jobs",
    response_model=PlanJob,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **CENTRE_MANAGER_ERRORS,
        422: {"description": "invalid input (checked before the job starts)"},
        429: problem("two plans are running already"),
        503: problem("the coverage extra is not installed"),
    },
)
def start_job(
    body: CoveragePlanBody,
    request: Request,
    user: CameraManager,
    service: ServiceDep,
    settings: SettingsDep,
    store: StoreDep,
    clock: ClockDep,
) -> PlanJob:
    """Start a plan in the background: poll `GET /api/v1/coverage/jobs/{id}` for its stage, progress and
    result (the same as `POST /plan` answers)."""
    plan_request, centre = _prepare(body, user, service, settings)
    jobs = _jobs(request)
    job = PlanJob(id=uuid.uuid4().hex[:16], state="running", stage="queued", fraction=0.0, started_at=now_from(clock))
    with jobs.lock:
        if jobs.running() >= MAX_RUNNING_JOBS:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "two coverage plans are running; try again shortly")
        jobs.jobs[job.id] = (user.username, job)
        for old in [k for k, (_, j) in jobs.jobs.items() if j.state != "running"][:-KEPT_JOBS]:
            del jobs.jobs[old]

    def run() -> None:
        try:
            outcome = _solve(plan_request, lambda stage, f: jobs.update(job.id, stage=stage, fraction=min(1.0, f)))
            result = _finish(outcome, body, user, service, store, clock, centre)
            jobs.update(job.id, state="done", stage="done", fraction=1.0, result=result)
        except RequestValidationError as exc:
            jobs.update(job.id, state="failed", stage="failed", error=jsonable_encoder(exc.errors()))
        except Exception as exc:  # reported to the client through the job, and logged
            log.exception("coverage job %s failed", job.id)
            jobs.update(job.id, state="failed", stage="failed", error=str(exc))

    threading.Thread(target=run, name=f"coverage-job-{job.id}", daemon=True).start()
    return job


@router.get(
    "/jobs/{job_id}",
    response_model=PlanJob,
    responses={401: problem("missing or invalid token"), 404: problem("no such job (or not yours)")},
)
def get_job(job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], request: Request, user: CameraManager) -> PlanJob:
    with _jobs(request).lock:
        entry = _jobs(request).jobs.get(job_id)
    if entry is None or (entry[0] != user.username and user.role is not Role.admin):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no coverage job {job_id}")
    return entry[1]
