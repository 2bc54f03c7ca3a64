"""Who sees what: sparse coverage from geometry.

For each camera (or candidate site) a KD-tree range query finds the demand points within range;
each pair is then kept when

* it lies inside the horizontal view sector: ``|bearing - azimuth| <= hfov / 2`` (bearing clockwise
  from grid north), and, when tilt and vertical FOV are given, inside the vertical one:
  ``tilt - vfov/2 <= elevation angle <= tilt + vfov/2`` (negative = looking down);
* the line of sight clears the terrain (:meth:`DEM.line_of_sight`) and every building: a sight
  line crossing a footprint is blocked when it passes lower than the roof anywhere over it
  (2.5-D: flat roofs at ``base + height``; the lowest point over a footprint is at one of the
  crossing points, the line being straight).

Line of sight is computed once per (site, demand) pair and shared by all headings of the site.
Nothing is dense: the result is a CSR matrix of (demand x camera) or (demand x (site, heading)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.spatial import cKDTree

from xueliang.coverage.terrain import DEM


@dataclass(frozen=True)
class Buildings:
    """Footprints (shapely polygons in the local metric CRS) with heights above their base."""

    polygons: np.ndarray  # of shapely Polygons
    heights: np.ndarray
    base: np.ndarray  # ground elevation of each footprint (0 without a DEM)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tree", shapely.STRtree(self.polygons))

    @classmethod
    def build(cls, polygons: list[object], heights: np.ndarray, dem: DEM | None = None) -> Buildings:
        polys = np.asarray(polygons, dtype=object)
        if dem is not None and len(polys):
            c = shapely.get_coordinates(shapely.centroid(polys))
            base = dem.elevation(c[:, 0], c[:, 1])
            base = np.where(np.isnan(base), 0.0, base)
        else:
            base = np.zeros(len(polys))
        return cls(polys, np.asarray(heights, dtype=np.float64), base)

    def clear(self, o: np.ndarray, oz: np.ndarray, t: np.ndarray, tz: np.ndarray) -> np.ndarray:
        """Sight lines (``o`` (N,2) at absolute height ``oz`` to ``t`` at ``tz``) not blocked by a roof."""
        n = len(o)
        ok = np.ones(n, dtype=bool)
        if n == 0 or len(self.polygons) == 0:
            return ok
        segs = shapely.linestrings(np.stack([o, t], axis=1))
        si, pi = self.tree.query(segs, predicate="intersects")  # type: ignore[attr-defined]  # an STRtree (shapely is optional)
        if len(si) == 0:
            return ok
        pieces = shapely.intersection(segs[si], self.polygons[pi])
        xy, which = shapely.get_coordinates(pieces, return_index=True)
        if len(xy) == 0:
            return ok
        seg = si[which]
        d = t[seg] - o[seg]
        L2 = np.maximum((d * d).sum(axis=1), 1e-12)
        tt = np.clip(((xy - o[seg]) * d).sum(axis=1) / L2, 0.0, 1.0)
        line = oz[seg] + tt * (tz[seg] - oz[seg])
        roof = (self.base + self.heights)[pi[which]]
        blocked = line < roof - 1e-9
        ok[seg[blocked]] = False
        return ok


@dataclass(frozen=True)
class Scene:
    """The obstacles: terrain (optional), buildings (optional); heights of the target above ground."""

    dem: DEM | None = None
    buildings: Buildings | None = None
    target_height: float = 1.5
    curvature: float = 0.0

    def ground(self, xy: np.ndarray) -> np.ndarray:
        if self.dem is None:
            return np.zeros(len(xy))
        z = self.dem.elevation(xy[:, 0], xy[:, 1])
        return np.where(np.isnan(z), 0.0, z)

    def pairs_in_range(
        self, demand_xy: np.ndarray, site_xy: np.ndarray, ranges: np.ndarray, tree: cKDTree | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        tree = tree or cKDTree(demand_xy)
        hits = tree.query_ball_point(site_xy, r=ranges)
        lens = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        rows = np.fromiter((i for h in hits for i in h), dtype=np.int64, count=int(lens.sum()))
        cols = np.repeat(np.arange(len(site_xy)), lens)
        return rows, cols

    def line_of_sight(
        self,
        demand_xy: np.ndarray,
        site_xy: np.ndarray,
        site_height: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        *,
        ground_demand: np.ndarray | None = None,
        ground_site: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Clear sight per pair; also the observer's and target's absolute heights. The ground heights
        of demand and sites may be passed in (computed once when pairs come in blocks)."""
        gd = self.ground(demand_xy) if ground_demand is None else ground_demand
        gs = self.ground(site_xy) if ground_site is None else ground_site
        oz = gs[cols] + site_height[cols]
        tz = gd[rows] + self.target_height
        ok = np.ones(len(rows), dtype=bool)
        o, t = site_xy[cols], demand_xy[rows]
        if self.buildings is not None:
            ok &= self.buildings.clear(o, oz, t, tz)
        if self.dem is not None and ok.any():
            idx = np.flatnonzero(ok)
            ok[idx] = self.dem.line_of_sight(
                o[idx, 0], o[idx, 1], oz[idx], t[idx, 0], t[idx, 1], tz[idx], curvature=self.curvature
            )
        return ok, oz, tz


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


def in_sector(
    dx: np.ndarray,
    dy: np.ndarray,
    dz: np.ndarray,
    azimuth: np.ndarray,
    hfov: np.ndarray,
    tilt: np.ndarray | None = None,
    vfov: np.ndarray | None = None,
) -> np.ndarray:
    """Pairs inside the view sector; ``dz`` = target minus observer height."""
    bearing = np.degrees(np.arctan2(dx, dy)) % 360.0
    dist = np.hypot(dx, dy)
    ok = (hfov >= 360.0) | (_angle_diff(bearing, azimuth) <= hfov / 2 + 1e-9) | (dist < 1e-6)
    if tilt is not None and vfov is not None:
        elev = np.degrees(np.arctan2(dz, np.maximum(dist, 1e-6)))
        vt = np.isfinite(tilt) & np.isfinite(vfov)
        ok &= ~vt | ((elev >= tilt - vfov / 2 - 1e-9) & (elev <= tilt + vfov / 2 + 1e-9))
    return ok


def camera_coverage(
    scene: Scene,
    demand_xy: np.ndarray,
    cam_xy: np.ndarray,
    height: np.ndarray,
    azimuth: np.ndarray,
    hfov: np.ndarray,
    rng: np.ndarray,
    tilt: np.ndarray | None = None,
    vfov: np.ndarray | None = None,
    tree: cKDTree | None = None,
) -> sp.csr_matrix:
    """CSR (demand x cameras) of what fixed cameras see."""
    n, m = len(demand_xy), len(cam_xy)
    if n == 0 or m == 0:
        return sp.csr_matrix((n, m))
    rows, cols = scene.pairs_in_range(demand_xy, cam_xy, rng, tree)
    d = demand_xy[rows] - cam_xy[cols]
    ok, oz, tz = scene.line_of_sight(demand_xy, cam_xy, height, rows, cols)
    ok &= in_sector(
        d[:, 0],
        d[:, 1],
        tz - oz,
        azimuth[cols],
        hfov[cols],
        None if tilt is None else tilt[cols],
        None if vfov is None else vfov[cols],
    )
    return sp.csr_matrix((np.ones(int(ok.sum())), (rows[ok], cols[ok])), shape=(n, m))


def candidate_coverage(
    scene: Scene,
    demand_xy: np.ndarray,
    site_xy: np.ndarray,
    height: np.ndarray,
    headings: np.ndarray,
    hfov: np.ndarray,
    rng: np.ndarray,
    tree: cKDTree | None = None,
    *,
    block: int = 2048,
    progress: Callable[[float], None] | None = None,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """CSR (demand x (site, heading)); candidate ``j`` is site ``site_of[j]`` facing ``heading_of[j]``.

    Streamed: sites are taken ``block`` at a time (range query, line of sight once per (site, demand)
    pair, then the sector of every heading), and only the visible (row, column) pairs of each block
    are kept, as int32; memory is bounded by one block's pairs plus the result's non-zeros, never
    ``n x m``. ``progress(fraction)`` is called after each block. ``hfov >= 360`` makes a site a
    single all-round candidate (dome / PTZ)."""
    n, s = len(demand_xy), len(site_xy)
    hd = np.asarray(headings, dtype=np.float64)
    hfov = np.asarray(hfov, dtype=np.float64)
    omni_site = hfov >= 360
    per_site = np.where(omni_site, 1, len(hd))
    site_of = np.repeat(np.arange(s), per_site)
    first = np.concatenate([[0], np.cumsum(per_site)[:-1]]).astype(np.int64) if s else np.zeros(0, np.int64)
    head_of = np.where(omni_site[site_of], 0.0, hd[np.arange(len(site_of)) - first[site_of]]) if s else np.zeros(0)
    m = len(site_of)
    if n == 0 or s == 0:
        return sp.csr_matrix((n, m)), site_of, head_of
    if m >= 2**31 or n >= 2**31:
        raise ValueError("more than 2**31 demand points or candidates")
    tree = tree or cKDTree(demand_xy)
    gd = scene.ground(demand_xy)
    gs = scene.ground(site_xy)
    out_r: list[np.ndarray] = []
    out_c: list[np.ndarray] = []
    for b0 in range(0, s, block):
        b1 = min(s, b0 + block)
        rows, cols = scene.pairs_in_range(demand_xy, site_xy[b0:b1], rng[b0:b1], tree)
        cols = cols + b0
        ok, _, _ = scene.line_of_sight(demand_xy, site_xy, height, rows, cols, ground_demand=gd, ground_site=gs)
        rows, cols = rows[ok], cols[ok]
        d = demand_xy[rows] - site_xy[cols]
        bearing = np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360.0
        omni = omni_site[cols]
        half = hfov[cols] / 2 + 1e-9
        if omni.any():
            out_r.append(rows[omni].astype(np.int32))
            out_c.append(first[cols[omni]].astype(np.int32))
        for h_i, h in enumerate(hd):
            inside = ~omni & (_angle_diff(bearing, h) <= half)
            out_r.append(rows[inside].astype(np.int32))
            out_c.append((first[cols[inside]] + h_i).astype(np.int32))
        del rows, cols, d, bearing, ok
        if progress is not None:
            progress(b1 / s)
    r = np.concatenate(out_r)
    del out_r
    c = np.concatenate(out_c)
    del out_c
    A = sp.csr_matrix((np.ones(len(r), dtype=np.float64), (r, c)), shape=(n, m))
    del r, c
    A.sum_duplicates()
    A.data[:] = 1.0
    return A, site_of, head_of


def sector_polygon(x: float, y: float, azimuth: float, hfov: float, rng: float, n_arc: int = 24) -> shapely.Polygon:
    """The view sector as a polygon (a disc for ``hfov >= 360``)."""
    if hfov >= 360:
        return shapely.Point(x, y).buffer(rng, quad_segs=16)
    a = np.radians(np.linspace(azimuth - hfov / 2, azimuth + hfov / 2, n_arc))
    pts = np.c_[x + rng * np.sin(a), y + rng * np.cos(a)]
    return shapely.Polygon(np.vstack([[x, y], pts, [x, y]]))
