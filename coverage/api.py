"""The pure function behind the API's coverage job endpoint.

``plan_coverage(PlanRequest) -> PlanResult``: GeoJSON FeatureCollections in (WGS84, or a projected
CRS named by a ``crs`` member), the report and GeoJSON layers out. No files are written unless
``out_dir`` is given; the DEM, being a raster, is passed by path. Bad input raises
:class:`~xueliang.coverage.errors.CoverageInputError` (an API should answer 422 with its message);
an unreachable goal raises :class:`~xueliang.coverage.errors.InfeasibleError` (422 as well).

Example::

    from xueliang.coverage.api import PlanRequest, plan_coverage
    result = plan_coverage(PlanRequest(demand=fc_demand, candidates=fc_poles, cameras=fc_cams,
                                       options={"k": 10}))
    result.report["after"]["share"], result.recommended["features"]
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from xueliang.coverage.planner import PlanOptions, run_plan


class PlanRequest(BaseModel):
    """Inputs of one planning job."""

    model_config = ConfigDict(extra="forbid")

    demand: dict[str, Any] = Field(
        description="FeatureCollection: points/lines/polygons with 'category' (and 'village')"
    )
    candidates: dict[str, Any] = Field(description="FeatureCollection of candidate sites: 'cost', 'capacity', 'height'")
    cameras: dict[str, Any] | None = Field(None, description="existing cameras: 'azimuth', 'hfov', 'range', 'height'")
    buildings: dict[str, Any] | None = Field(None, description="building footprints with 'height' (m)")
    dem_path: str | None = Field(None, description="DEM GeoTIFF (or .npz) readable by the server")
    options: PlanOptions
    out_dir: str | None = Field(None, description="also write GeoJSON, report.json and map.png here")


class PlanResult(BaseModel):
    """The plan: the JSON report, the recommended cameras (points and view polygons) and blind spots."""

    report: dict[str, Any]
    recommended: dict[str, Any]
    blind_spots: dict[str, Any]
    files: dict[str, str] = Field(default_factory=dict)


def plan_coverage(request: PlanRequest) -> PlanResult:
    outcome = run_plan(
        request.demand,
        request.candidates,
        request.options,
        cameras=request.cameras,
        buildings=request.buildings,
        dem=request.dem_path,
    )
    files: dict[str, str] = {}
    if request.out_dir:
        from xueliang.coverage.output import write_outputs

        files = {k: str(v) for k, v in write_outputs(outcome, request.out_dir).items()}
    return PlanResult(
        report=outcome.report, recommended=outcome.recommended, blind_spots=outcome.blind_geojson, files=files
    )
