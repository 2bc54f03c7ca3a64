"""The planning pipeline: inputs -> what is seen today -> blind spots -> the next cameras -> report.

:func:`run_plan` is the one entry point used by the CLI (:mod:`xueliang.coverage.cli`) and the
API function :func:`xueliang.coverage.api.plan_coverage`.

Demand weights: a demand feature of category ``c`` stands for ``weight(c) * multiplier`` per
sample, where a point is one sample, a line one sample every ``spacing`` metres and a polygon
one sample per ``spacing x spacing`` cell (so a 1 km main road weighs 40 samples at 25 m).
``multiplier`` is the feature's optional ``weight`` property (default 1).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.spatial import cKDTree

from xueliang.coverage.errors import CoverageInputError
from xueliang.coverage.geo import (
    ALL_TYPES,
    Layer,
    LocalFrame,
    load_geojson,
    read_layer,
    sample_geometry,
)
from xueliang.coverage.model import CoverageSolution, MaxCoverage
from xueliang.coverage.report import build_report
from xueliang.coverage.terrain import DEM, STANDARD_REFRACTION_CC
from xueliang.coverage.visibility import (
    Buildings,
    Scene,
    camera_coverage,
    candidate_coverage,
)

DEFAULT_CATEGORY_WEIGHTS: dict[str, float] = {
    "village_entrance": 10.0,
    "school": 10.0,
    "crossroads": 8.0,
    "market": 8.0,
    "bridge": 6.0,
    "square": 4.0,
    "riverbank": 2.0,
    "main_road": 1.0,
    "road": 0.5,
}

Progress = Callable[[str, float], None]


class PlanOptions(BaseModel):
    """How to plan. Give ``k`` (cameras), ``budget`` (cost units) or ``target_share`` (set cover)."""

    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(None, ge=1, le=10_000, description="number of new cameras (MCLP)")
    budget: float | None = Field(None, gt=0, description="budget in the candidates' cost units")
    target_share: float | None = Field(None, gt=0, le=1, description="cheapest plan reaching this share of weight")
    category_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_CATEGORY_WEIGHTS))
    unknown_category_weight: float | None = Field(
        None, ge=0, description="weight for categories missing from the table; None = reject them"
    )
    headings: int = Field(12, ge=1, le=72, description="discretised headings per candidate site")
    hfov_deg: float = Field(60.0, gt=0, le=360, description="default horizontal field of view of new cameras")
    range_m: float = Field(120.0, gt=0, le=5000, description="default useful range of new cameras")
    camera_height_m: float = Field(6.0, ge=0, le=200, description="default mount height above ground")
    target_height_m: float = Field(1.5, ge=0, le=10, description="height of what must be seen (a face: 1.5 m)")
    spacing_m: float = Field(25.0, gt=0, le=1000, description="sampling step along lines and inside polygons")
    curvature: bool = Field(False, description="earth curvature and standard refraction in line of sight")
    dem_resolution_m: float = Field(30.0, gt=0, description="grid when a geographic DEM is warped to metres")
    cluster_distance_m: float = Field(60.0, gt=0, description="uncovered samples closer than this join one blind spot")
    blind_spot_max_extent_m: float = Field(300.0, gt=0, description="longer blind spots (roads) are cut into pieces")
    time_limit_s: float = Field(10.0, gt=0, le=3600)
    curve_max_k: int = Field(30, ge=1, le=1000, description="marginal-gain curve up to this k")

    @model_validator(mode="after")
    def _one_goal(self) -> PlanOptions:
        if sum(v is not None for v in (self.k, self.budget, self.target_share)) != 1:
            raise ValueError("give exactly one of k, budget, target_share")
        if any(w < 0 or not math.isfinite(w) for w in self.category_weights.values()):
            raise ValueError("category weights must be finite and >= 0")
        return self


@dataclass(frozen=True)
class Demand:
    xy: np.ndarray
    weight: np.ndarray
    category: np.ndarray
    village: np.ndarray
    feature: np.ndarray  # index of the source feature per sample
    feature_ids: list[str]
    feature_props: list[dict[str, Any]]


@dataclass(frozen=True)
class Cameras:
    ids: list[str]
    xy: np.ndarray
    height: np.ndarray
    azimuth: np.ndarray
    hfov: np.ndarray
    range: np.ndarray
    tilt: np.ndarray
    vfov: np.ndarray


@dataclass(frozen=True)
class Sites:
    ids: list[str]
    xy: np.ndarray
    height: np.ndarray
    cost: np.ndarray
    capacity: np.ndarray
    hfov: np.ndarray
    range: np.ndarray


@dataclass
class PlanOutcome:
    frame: LocalFrame
    demand: Demand
    existing: Cameras
    sites: Sites
    site_of: np.ndarray
    heading_of: np.ndarray
    covered_before: np.ndarray
    solution: CoverageSolution
    blind_spots: list[dict[str, Any]]
    report: dict[str, Any]
    recommended: dict[str, Any]
    blind_geojson: dict[str, Any]
    scene: Scene
    buildings_local: list[Any] = field(default_factory=list)
    blind_local: list[Any] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _num(
    props: dict[str, Any],
    key: str,
    default: float | None,
    source: str,
    fid: str,
    lo: float = -math.inf,
    hi: float = math.inf,
) -> float:
    v = props.get(key, default)
    if v is None:
        if default is None:
            raise CoverageInputError(f"missing property {key!r}", source=source, feature=fid)
        v = default
    try:
        f = float(v)
    except (TypeError, ValueError) as exc:
        raise CoverageInputError(f"property {key!r} must be a number, got {v!r}", source=source, feature=fid) from exc
    if not (lo <= f <= hi) or not math.isfinite(f):
        raise CoverageInputError(f"property {key!r}={f} out of range [{lo}, {hi}]", source=source, feature=fid)
    return f


def build_demand(layer: Layer, opts: PlanOptions) -> Demand:
    if len(layer) == 0:
        raise CoverageInputError("no demand features", source=layer.source)
    xs, ws, cats, vils, feats = [], [], [], [], []
    for i, (g, p, fid) in enumerate(zip(layer.geoms, layer.props, layer.ids, strict=False)):
        cat = p.get("category")
        if not isinstance(cat, str) or not cat:
            raise CoverageInputError("missing property 'category'", source=layer.source, feature=fid)
        if cat in opts.category_weights:
            cw = opts.category_weights[cat]
        elif opts.unknown_category_weight is not None:
            cw = opts.unknown_category_weight
        else:
            raise CoverageInputError(
                f"category {cat!r} not in the weight table ({', '.join(sorted(opts.category_weights))})",
                source=layer.source,
                feature=fid,
            )
        mult = _num(p, "weight", 1.0, layer.source, fid, 0.0)
        pts = sample_geometry(g, opts.spacing_m)
        xs.append(pts)
        ws.append(np.full(len(pts), cw * mult))
        cats += [cat] * len(pts)
        vils += [str(p.get("village") or "unassigned")] * len(pts)
        feats.append(np.full(len(pts), i))
    return Demand(
        np.vstack(xs), np.concatenate(ws), np.array(cats), np.array(vils), np.concatenate(feats), layer.ids, layer.props
    )


def build_cameras(layer: Layer | None, opts: PlanOptions) -> Cameras:
    if layer is None or len(layer) == 0:
        z = np.zeros(0)
        return Cameras([], np.zeros((0, 2)), z, z, z, z, z, z)
    src = layer.source
    rows = []
    for g, p, fid in zip(layer.geoms, layer.props, layer.ids, strict=False):
        rows.append(
            (
                g.x,
                g.y,
                _num(p, "height", opts.camera_height_m, src, fid, 0, 500),
                _num(
                    p,
                    "azimuth",
                    0.0 if _num(p, "hfov", opts.hfov_deg, src, fid, 0.1, 360) >= 360 else None,
                    src,
                    fid,
                    -360,
                    720,
                ),
                _num(p, "hfov", opts.hfov_deg, src, fid, 0.1, 360),
                _num(p, "range", opts.range_m, src, fid, 0.1, 20000),
                _num(p, "tilt", math.nan, src, fid, -90, 90) if p.get("tilt") is not None else math.nan,
                _num(p, "vfov", math.nan, src, fid, 0.1, 180) if p.get("vfov") is not None else math.nan,
            )
        )
    a = np.array(rows, dtype=np.float64)
    ids = [str(p.get("id", fid)) for p, fid in zip(layer.props, layer.ids, strict=False)]
    return Cameras(ids, a[:, :2], a[:, 2], a[:, 3] % 360, a[:, 4], a[:, 5], a[:, 6], a[:, 7])


def build_sites(layer: Layer, opts: PlanOptions) -> Sites:
    if len(layer) == 0:
        raise CoverageInputError("no candidate sites", source=layer.source)
    src = layer.source
    rows = []
    for g, p, fid in zip(layer.geoms, layer.props, layer.ids, strict=False):
        pt = g if g.geom_type == "Point" else g.representative_point()
        rows.append(
            (
                pt.x,
                pt.y,
                _num(p, "height", opts.camera_height_m, src, fid, 0, 500),
                _num(p, "cost", 1.0, src, fid, 1e-9),
                _num(p, "capacity", 1, src, fid, 1, 64),
                _num(p, "hfov", opts.hfov_deg, src, fid, 0.1, 360),
                _num(p, "range", opts.range_m, src, fid, 0.1, 20000),
            )
        )
    a = np.array(rows, dtype=np.float64)
    ids = [str(p.get("id", fid)) for p, fid in zip(layer.props, layer.ids, strict=False)]
    return Sites(ids, a[:, :2], a[:, 2], a[:, 3], a[:, 4].astype(np.int64), a[:, 5], a[:, 6])


def load_dem(dem: str | Path | DEM | None, frame: LocalFrame, opts: PlanOptions) -> DEM | None:
    if dem is None:
        return None
    if not isinstance(dem, DEM):
        p = Path(dem)
        if not p.exists():
            raise CoverageInputError("file not found", source=str(p))
        dem = DEM.from_npz(p) if p.suffix == ".npz" else DEM.from_geotiff(p)
    if dem.crs is None:
        return dem  # already in the local frame
    return dem.to_crs(frame.crs, opts.dem_resolution_m)


def run_plan(
    demand: str | Path | dict[str, Any],
    candidates: str | Path | dict[str, Any],
    options: PlanOptions,
    *,
    cameras: str | Path | dict[str, Any] | None = None,
    buildings: str | Path | dict[str, Any] | None = None,
    dem: str | Path | DEM | None = None,
    progress: Progress | None = None,
) -> PlanOutcome:
    """Plan new cameras. Raises :class:`CoverageInputError` on bad input, :class:`InfeasibleError`
    when the goal cannot be met."""
    from xueliang.coverage.errors import InfeasibleError
    from xueliang.coverage.metrics import PLAN_SECONDS, PLANS

    step = progress or (lambda stage, frac: None)
    t0 = time.perf_counter()
    try:
        step("reading inputs", 0.0)
        inputs = _read_inputs(demand, candidates, options, cameras, buildings, dem)
        outcome = _plan(inputs, options, step, t0)
    except CoverageInputError:
        PLANS.labels("bad_input").inc()
        raise
    except InfeasibleError:
        PLANS.labels("infeasible").inc()
        raise
    PLANS.labels("ok").inc()
    for stage in ("inputs", "visibility", "optimise", "total"):
        PLAN_SECONDS.labels(stage).observe(outcome.timings.get(stage, 0.0))
    return outcome


@dataclass(frozen=True)
class _Inputs:
    """The inputs in the local frame: demand samples, existing cameras, candidate sites and the scene."""

    frame: LocalFrame
    demand: Demand
    existing: Cameras
    sites: Sites
    scene: Scene
    buildings: Layer | None


def _read_inputs(
    demand: str | Path | dict[str, Any],
    candidates: str | Path | dict[str, Any],
    options: PlanOptions,
    cameras: str | Path | dict[str, Any] | None,
    buildings: str | Path | dict[str, Any] | None,
    dem: str | Path | DEM | None,
) -> _Inputs:
    fc, src = load_geojson(demand, "demand")
    frame = LocalFrame.around(fc, src)
    dlayer = read_layer(fc, frame, ALL_TYPES, src)
    dem_local = load_dem(dem, frame, options)
    clayer = read_layer(cameras, frame, ("Point",), "cameras") if cameras is not None else None
    slayer = read_layer(candidates, frame, ("Point", "Polygon", "MultiPolygon"), "candidates")
    blayer = read_layer(buildings, frame, ("Polygon", "MultiPolygon"), "buildings") if buildings is not None else None
    D = build_demand(dlayer, options)
    E = build_cameras(clayer, options)
    S = build_sites(slayer, options)
    if dem_local is not None:
        inside = dem_local.covers(D.xy[:, 0], D.xy[:, 1])
        if not inside.any():
            raise CoverageInputError("DEM does not overlap the demand", source=str(dem_local.source))
        if not inside.all():
            bad = int(np.flatnonzero(~inside)[0])
            raise CoverageInputError(
                "demand lies outside the DEM", source=dlayer.source, feature=D.feature_ids[int(D.feature[bad])]
            )
    bld = _buildings(blayer, dem_local) if blayer is not None and len(blayer) else None
    scene = Scene(dem_local, bld, options.target_height_m, STANDARD_REFRACTION_CC if options.curvature else 0.0)
    return _Inputs(frame, D, E, S, scene, blayer)


def _buildings(blayer: Layer, dem: DEM | None) -> Buildings:
    """Buildings as obstacles, ``height`` (m) or ``levels`` x 3 m each."""
    hs = [
        _num(
            p,
            "height",
            (float(p["levels"]) * 3.0) if p.get("levels") is not None else None,
            blayer.source,
            fid,
            0,
            1000,
        )
        for p, fid in zip(blayer.props, blayer.ids, strict=False)
    ]
    return Buildings.build(blayer.geoms, np.array(hs), dem)


def _visibility(
    inputs: _Inputs, options: PlanOptions, step: Progress
) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray, np.ndarray]:
    """What the existing cameras see (a bool per demand sample) and the candidates' coverage matrix, with
    each candidate's site and heading."""
    D, E, S, scene = inputs.demand, inputs.existing, inputs.sites, inputs.scene
    step("existing cameras", 0.15)
    tree = cKDTree(D.xy)
    Aex = camera_coverage(scene, D.xy, E.xy, E.height, E.azimuth, E.hfov, E.range, E.tilt, E.vfov, tree)
    before = np.asarray(Aex.sum(axis=1)).reshape(-1) > 0
    step("candidate visibility", 0.3)
    headings = np.arange(options.headings) * (360.0 / options.headings)
    A, site_of, heading_of = candidate_coverage(
        scene,
        D.xy,
        S.xy,
        S.height,
        headings,
        S.hfov,
        S.range,
        tree,
        progress=lambda f: step("candidate visibility", 0.3 + 0.25 * f),
    )
    return before, A, site_of, heading_of


def _optimise(
    A: sp.csr_matrix, D: Demand, S: Sites, site_of: np.ndarray, before: np.ndarray, options: PlanOptions, step: Progress
) -> tuple[MaxCoverage, CoverageSolution]:
    step("optimising", 0.55)
    model = MaxCoverage(
        A, D.weight, cost=S.cost[site_of], site=site_of, capacity=S.capacity, covered_by_existing=before
    )
    if options.target_share is not None:
        return model, model.set_cover(options.target_share, time_limit=options.time_limit_s)
    sol = model.solve(
        options.k,
        budget=options.budget,
        time_limit=options.time_limit_s,
        progress=lambda stage, f: step(f"optimising: {stage}", 0.55 + 0.3 * f),
    )
    return model, sol


def _plan(inputs: _Inputs, options: PlanOptions, step: Progress, t0: float) -> PlanOutcome:
    """Visibility, the optimisation and the report, for inputs read since ``t0``."""
    frame, D, E, S = inputs.frame, inputs.demand, inputs.existing, inputs.sites
    timings = {"inputs": time.perf_counter() - t0}

    t = time.perf_counter()
    before, A, site_of, heading_of = _visibility(inputs, options, step)
    timings["visibility"] = time.perf_counter() - t

    t = time.perf_counter()
    model, sol = _optimise(A, D, S, site_of, before, options, step)
    timings["optimise"] = time.perf_counter() - t

    step("blind spots and report", 0.85)
    r = build_report(frame, D, E, S, site_of, heading_of, A, before, sol, model, options)
    outcome = PlanOutcome(
        frame,
        D,
        E,
        S,
        site_of,
        heading_of,
        before,
        sol,
        r.blind_spots,
        r.report,
        r.recommended,
        r.blind_geojson,
        inputs.scene,
        blind_local=r.blind_local,
    )
    outcome.timings = {**timings, "total": time.perf_counter() - t0}
    outcome.report["timings_s"] = {k: round(v, 4) for k, v in outcome.timings.items()}
    if inputs.buildings is not None:
        outcome.buildings_local = list(inputs.buildings.geoms)
    step("done", 1.0)
    return outcome
