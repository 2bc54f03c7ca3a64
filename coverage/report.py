"""The plan's report: blind spots today, the cameras in install order, per-place and per-area shares,
the marginal-gain curve, and the GeoJSON layers (recommended cameras with their views, blind spots)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from xueliang.coverage.geo import LocalFrame
from xueliang.coverage.model import CoverageSolution, MaxCoverage
from xueliang.coverage.visibility import sector_polygon

if TYPE_CHECKING:  # the planner builds these and calls build_report
    from xueliang.coverage.planner import Cameras, Demand, PlanOptions, Sites


@dataclass(frozen=True)
class PlanReport:
    report: dict[str, Any]
    blind_spots: list[dict[str, Any]]  # ranked by weight
    blind_local: list[Any]  # the blind spots' polygons in the local frame, in the same order
    recommended: dict[str, Any]  # GeoJSON: each camera and its view sector
    blind_geojson: dict[str, Any]


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


def blind_spots(
    frame: LocalFrame, D: Demand, before: np.ndarray, after: np.ndarray, opts: PlanOptions
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Uncovered weighted samples today, clustered and ranked by weight, and each cluster's polygon."""
    w = D.weight
    total = float(w.sum())
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
    return [dict(spots[i], rank=r + 1) for r, i in enumerate(order)], [polys[i] for i in order]


def recommended_cameras(
    frame: LocalFrame,
    S: Sites,
    site_of: np.ndarray,
    heading_of: np.ndarray,
    A: sp.csr_matrix,
    w: np.ndarray,
    before: np.ndarray,
    sel: np.ndarray,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chosen cameras in install order (best marginal gain first) and their GeoJSON features (the
    camera's point and its view sector)."""
    total = float(w.sum())
    inst, gains = _install_order(A, w, before, sel)
    cams = []
    features = []
    run = float(w[before].sum())
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
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(shapely.Point(lonlat)),
                "properties": {**cam, "kind": "camera"},
            }
        )
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(frame.to_wgs84(view)),
                "properties": {"rank": rank, "site": S.ids[s], "heading_deg": hd, "kind": "view"},
            }
        )
    return cams, features


def marginal_curve(model: MaxCoverage, opts: PlanOptions, base_cov: float, total: float) -> list[dict[str, Any]]:
    """Greedy covered weight (existing + new) for k = 1..K."""
    K = min(max(opts.curve_max_k, opts.k or 0), model.m)
    try:
        gsol = model.solve(K, local_search=False, mip=False, lagrangian_iters=1, search_share=0.0)
        return [
            {"k": i + 1, "covered_weight": base_cov + float(v), "share": _share(base_cov + float(v), total)}
            for i, v in enumerate(gsol.curve)
        ]
    except Exception as exc:  # noqa: BLE001 - the curve is an extra; record why it is missing
        return [{"error": str(exc)}]


def place_status(D: Demand, before: np.ndarray, after: np.ndarray) -> list[dict[str, Any]]:
    """Per demand feature, the share seen before and after (the places a county reports: which
    entrances/schools are unseen)."""
    w = D.weight
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
    return places


def _plan_summary(
    opts: PlanOptions, cams: list[dict[str, Any]], sol: CoverageSolution, base_cov: float
) -> dict[str, Any]:
    return {
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
    }


def build_report(
    frame: LocalFrame,
    D: Demand,
    E: Cameras,
    S: Sites,
    site_of: np.ndarray,
    heading_of: np.ndarray,
    A: sp.csr_matrix,
    before: np.ndarray,
    sol: CoverageSolution,
    model: MaxCoverage,
    opts: PlanOptions,
) -> PlanReport:
    """The report of a solved plan (``sol.covered``: what is seen after it)."""
    w = D.weight
    after = sol.covered
    total = float(w.sum())
    spots, polys = blind_spots(frame, D, before, after, opts)
    cams, rec_features = recommended_cameras(frame, S, site_of, heading_of, A, w, before, np.asarray(sol.selected))
    blind_features = [
        {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(frame.to_wgs84(p)),
            "properties": {k: v for k, v in s.items() if k != "centroid"},
        }
        for s, p in zip(spots, polys, strict=False)
    ]
    base_cov = float(w[before].sum())
    report = {
        "frame": {"crs": "local azimuthal equidistant (m)", "lon_0": frame.lon, "lat_0": frame.lat},
        "demand": {"features": len(D.feature_ids), "samples": len(w), "total_weight": total},
        "existing_cameras": len(E.ids),
        "candidates": {"sites": len(S.ids), "site_headings": int(model.m), "coverage_nnz": int(A.nnz)},
        "before": {"covered_weight": base_cov, "share": _share(base_cov, total)},
        "after": {"covered_weight": float(w[after].sum()), "share": _share(float(w[after].sum()), total)},
        "by_category": _kpis(D.category, w, before, after),
        "by_village": _kpis(D.village, w, before, after),
        "places": place_status(D, before, after),
        "blind_spots": spots,
        "plan": _plan_summary(opts, cams, sol, base_cov),
        "marginal_gain_curve": marginal_curve(model, opts, base_cov, total),
    }
    return PlanReport(
        report,
        spots,
        polys,
        {"type": "FeatureCollection", "features": rec_features},
        {"type": "FeatureCollection", "features": blind_features},
    )
