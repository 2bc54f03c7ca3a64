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
import shapely
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.sparse.csgraph import connected_components
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
from xueliang.coverage.terrain import DEM, STANDARD_REFRACTION_CC
from xueliang.coverage.visibility import (
    Buildings,
    Scene,
    camera_coverage,
    candidate_coverage,
    sector_polygon,
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


def _clusters(xy: np.ndarray, dist: float) -> np.ndarray:
    if len(xy) == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = cKDTree(xy).query_pairs(dist, output_type="ndarray")
    g = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xy), len(xy)))
    _, lab = connected_components(g, directed=False)
    return lab


def _share(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 1.0


def _kpis(keys: np.ndarray, w: np.ndarray, before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(set(keys.tolist())):
        s = keys == key
        tot = float(w[s].sum())
        b, a = float(w[s & before].sum()), float(w[s & after].sum())
        out[key] = {
            "weight": tot,
            "covered_before": b,
            "covered_after": a,
            "share_before": _share(b, tot),
            "share_after": _share(a, tot),
        }
    return out


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

    try:
        outcome = _run_plan(
            demand, candidates, options, cameras=cameras, buildings=buildings, dem=dem, progress=progress
        )
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


def _run_plan(
    demand: str | Path | dict[str, Any],
    candidates: str | Path | dict[str, Any],
    options: PlanOptions,
    *,
    cameras: str | Path | dict[str, Any] | None,
    buildings: str | Path | dict[str, Any] | None,
    dem: str | Path | DEM | None,
    progress: Progress | None,
) -> PlanOutcome:
    step = progress or (lambda stage, frac: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    step("reading inputs", 0.0)
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
    bld = None
    if blayer is not None and len(blayer):
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
        bld = Buildings.build(blayer.geoms, np.array(hs), dem_local)
    scene = Scene(dem_local, bld, options.target_height_m, STANDARD_REFRACTION_CC if options.curvature else 0.0)
    timings["inputs"] = time.perf_counter() - t0

    t = time.perf_counter()
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
    timings["visibility"] = time.perf_counter() - t

    t = time.perf_counter()
    step("optimising", 0.55)
    model = MaxCoverage(
        A, D.weight, cost=S.cost[site_of], site=site_of, capacity=S.capacity, covered_by_existing=before
    )
    if options.target_share is not None:
        sol = model.set_cover(options.target_share, time_limit=options.time_limit_s)
    else:
        sol = model.solve(
            options.k,
            budget=options.budget,
            time_limit=options.time_limit_s,
            progress=lambda stage, f: step(f"optimising: {stage}", 0.55 + 0.3 * f),
        )
    timings["optimise"] = time.perf_counter() - t
    after = sol.covered

    step("blind spots and report", 0.85)
    outcome = _report(frame, D, E, S, site_of, heading_of, A, before, after, sol, model, options, scene)
    outcome.timings = {**timings, "total": time.perf_counter() - t0}
    outcome.report["timings_s"] = {k: round(v, 4) for k, v in outcome.timings.items()}
    if blayer is not None:
        outcome.buildings_local = list(blayer.geoms)
    step("done", 1.0)
    return outcome


def _install_order(
    A: sp.csr_matrix, w: np.ndarray, before: np.ndarray, sel: np.ndarray
) -> tuple[list[int], list[float]]:
    """Greedy order of the chosen cameras and each one's marginal gain (install the best first)."""
    covered = before.copy()
    left = [int(j) for j in sel]
    order, gains = [], []
    C = A.tocsc()
    while left:
        g = [
            float(w[C.indices[C.indptr[j] : C.indptr[j + 1]]][~covered[C.indices[C.indptr[j] : C.indptr[j + 1]]]].sum())
            for j in left
        ]
        b = int(np.argmax(g))
        j = left.pop(b)
        order.append(j)
        gains.append(g[b])
        covered[C.indices[C.indptr[j] : C.indptr[j + 1]]] = True
    return order, gains


def _report(
    frame: LocalFrame,
    D: Demand,
    E: Cameras,
    S: Sites,
    site_of: np.ndarray,
    heading_of: np.ndarray,
    A: sp.csr_matrix,
    before: np.ndarray,
    after: np.ndarray,
    sol: CoverageSolution,
    model: MaxCoverage,
    opts: PlanOptions,
    scene: Scene,
) -> PlanOutcome:
    w = D.weight
    total = float(w.sum())
    # blind spots: uncovered weighted samples today, clustered and ranked by weight
    un = np.flatnonzero(~before & (w > 0))
    lab = _clusters(D.xy[un], opts.cluster_distance_m)
    if len(un):  # split long chains (a road) into pieces of at most ~blind_spot_max_extent_m
        cell = np.floor(D.xy[un] / opts.blind_spot_max_extent_m).astype(np.int64)
        _, lab = np.unique(np.c_[lab, cell], axis=0, return_inverse=True)
        lab = lab.reshape(-1)
    spots: list[dict[str, Any]] = []
    polys = []
    # group by cluster with one sort (a county has thousands of clusters over hundreds of thousands of samples)
    by_lab = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[by_lab])) + 1
    for grp in np.split(by_lab, cuts) if len(un) else []:
        idx = un[grp]
        cw = float(w[idx].sum())
        hull = shapely.union_all(
            shapely.buffer(shapely.points(D.xy[idx]), opts.spacing_m * 0.75, quad_segs=4)
        ).simplify(1.0)
        cats: dict[str, float] = {}
        for cat, ww in zip(D.category[idx], w[idx], strict=False):
            cats[str(cat)] = cats.get(str(cat), 0.0) + float(ww)
        feats = sorted({D.feature_ids[int(f)] for f in D.feature[idx]})
        cen = frame.xy_to_lonlat(D.xy[idx].mean(axis=0, keepdims=True))[0]
        spots.append(
            {
                "weight": cw,
                "share_of_total": _share(cw, total),
                "samples": len(idx),
                "categories": dict(sorted(cats.items(), key=lambda kv: -kv[1])),
                "villages": sorted(set(D.village[idx].tolist())),
                "features": feats,
                "centroid": [round(float(cen[0]), 7), round(float(cen[1]), 7)],
                "covered_after_share": _share(float(w[idx][after[idx]].sum()), cw),
            }
        )
        polys.append(hull)
    order = np.argsort([-s["weight"] for s in spots], kind="stable")
    spots = [dict(spots[i], rank=r + 1) for r, i in enumerate(order)]
    polys = [polys[i] for i in order]

    sel = np.asarray(sol.selected)
    inst, gains = _install_order(A, w, before, sel)
    cams = []
    rec_features = []
    base_cov = float(w[before].sum())
    run = base_cov
    for rank, (j, g) in enumerate(zip(inst, gains, strict=False), start=1):
        s = int(site_of[j])
        run += g
        hd = float(heading_of[j])
        lonlat = frame.xy_to_lonlat(S.xy[s : s + 1])[0]
        cam = {
            "rank": rank,
            "site": S.ids[s],
            "heading_deg": hd,
            "hfov_deg": float(S.hfov[s]),
            "range_m": float(S.range[s]),
            "height_m": float(S.height[s]),
            "cost": float(S.cost[s]),
            "marginal_weight": g,
            "cumulative_share": _share(run, total),
            "lon": round(float(lonlat[0]), 7),
            "lat": round(float(lonlat[1]), 7),
        }
        cams.append(cam)
        view = sector_polygon(S.xy[s, 0], S.xy[s, 1], hd, float(S.hfov[s]), float(S.range[s]))
        rec_features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(shapely.Point(lonlat)),
                "properties": {**cam, "kind": "camera"},
            }
        )
        rec_features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(frame.to_wgs84(view)),
                "properties": {"rank": rank, "site": S.ids[s], "heading_deg": hd, "kind": "view"},
            }
        )
    blind_features = [
        {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(frame.to_wgs84(p)),
            "properties": {k: v for k, v in s.items() if k != "centroid"},
        }
        for s, p in zip(spots, polys, strict=False)
    ]

    # marginal-gain curve: greedy covered weight (existing + new) for k = 1..K
    K = min(max(opts.curve_max_k, opts.k or 0), model.m)
    try:
        gsol = model.solve(K, local_search=False, mip=False, lagrangian_iters=1, search_share=0.0)
        curve: list[dict[str, Any]] = [
            {"k": i + 1, "covered_weight": base_cov + float(v), "share": _share(base_cov + float(v), total)}
            for i, v in enumerate(gsol.curve)
        ]
    except Exception as exc:  # noqa: BLE001 - the curve is an extra; record why it is missing
        curve = [{"error": str(exc)}]

    # per-feature status (the places a county reports: which entrances/schools are unseen)
    places = []
    by_feat = np.argsort(D.feature, kind="stable")
    feat_start = np.searchsorted(D.feature[by_feat], np.arange(len(D.feature_ids) + 1))
    for fi, fid in enumerate(D.feature_ids):
        rows_f = by_feat[feat_start[fi] : feat_start[fi + 1]]
        fw = float(w[rows_f].sum())
        places.append(
            {
                "feature": fid,
                "category": str(D.category[rows_f][0]),
                "village": str(D.village[rows_f][0]),
                "share_before": _share(float(w[rows_f][before[rows_f]].sum()), fw),
                "share_after": _share(float(w[rows_f][after[rows_f]].sum()), fw),
            }
        )
    report = {
        "frame": {"crs": "local azimuthal equidistant (m)", "lon_0": frame.lon, "lat_0": frame.lat},
        "demand": {"features": len(D.feature_ids), "samples": len(w), "total_weight": total},
        "existing_cameras": len(E.ids),
        "candidates": {"sites": len(S.ids), "site_headings": int(model.m), "coverage_nnz": int(A.nnz)},
        "before": {"covered_weight": base_cov, "share": _share(base_cov, total)},
        "after": {"covered_weight": float(w[after].sum()), "share": _share(float(w[after].sum()), total)},
        "by_category": _kpis(D.category, w, before, after),
        "by_village": _kpis(D.village, w, before, after),
        "places": places,
        "blind_spots": spots,
        "plan": {
            "goal": {"k": opts.k, "budget": opts.budget, "target_share": opts.target_share},
            "cameras": cams,
            "objective": sol.summary(),
            "covered_weight_total": base_cov + sol.covered_weight,
            "upper_bound_total": base_cov + sol.upper_bound,
            "gap": sol.gap,
            "status": sol.status,
            "status_text": sol.status_text,
            "bound_kind": sol.bound_kind,
            "k_requested": sol.k_requested,
            "k_used": sol.k_used,
            "everything_coverable_covered": sol.everything_coverable_covered,
            "k_text": sol.k_text,
        },
        "marginal_gain_curve": curve,
    }
    return PlanOutcome(
        frame,
        D,
        E,
        S,
        site_of,
        heading_of,
        before,
        sol,
        spots,
        report,
        {"type": "FeatureCollection", "features": rec_features},
        {"type": "FeatureCollection", "features": blind_features},
        scene,
        blind_local=polys,
    )
