"""County-scale benchmark: a whole county in one plan, on real terrain, with the time and peak memory of each phase.

The county is matplotlib's real Jacksboro DEM (3 arc-second, Tennessee; ~30 x 32 km) warped to UTM 17N
at 30 m, with seeded synthetic villages (on gentle, low ground), roads between them (a minimum spanning
tree plus a few shortcuts) and houses. Demand is a regular grid over the county (``--spacing`` m,
>= 400,000 points at the default 45 m) weighted by what is there: fields 1, roads 3 (main roads 5),
village ground 8, village centres 20 (integer weights). Candidate sites are poles along the roads and
on a grid in the villages, each offered at 8 headings (60 degree view, 200 m range, 8 m mast), >= 100,000
candidate views. Coverage: the sector and the line of sight over the DEM and past every house (2.5-D),
built by :func:`xueliang.coverage.visibility.candidate_coverage` in blocks of sites (streamed, never
dense). Then the greedy-only answer and the full solve (``--time-limit``) for ``k`` cameras, both with
their certified bound.

    flock -x /tmp/xl-cpu.lock .venv/bin/python bench/coverage/county.py --out bench/coverage/results_county.json
    .venv/bin/python bench/coverage/county.py --spacing 150 --k 100 --time-limit 20 --out /tmp/small.json  # ~30 s

Peak memory per phase is the process's peak resident set size during that phase (Linux: the counter is
reset between phases through ``/proc/self/clear_refs``); ``peak_rss_total`` is the whole run's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree

from xueliang.coverage.model import CoverageSolution, MaxCoverage
from xueliang.coverage.terrain import DEM
from xueliang.coverage.visibility import Buildings, Scene, candidate_coverage


def _rss_peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


class Phases:
    """Times and peak memory of each phase, and a progress line per phase on stderr."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = {}
        self.t0 = time.perf_counter()
        self._name = ""
        self._t = 0.0

    def start(self, name: str) -> None:
        _reset_peak()
        self._name, self._t = name, time.perf_counter()
        self.bar(0.0)

    def bar(self, frac: float, note: str = "") -> None:
        n = round(frac * 30)
        sys.stderr.write(
            f"\r[{'#' * n}{'.' * (30 - n)}] {frac:4.0%} {self._name:<22} {time.perf_counter() - self._t:7.1f}s "
            f"(total {time.perf_counter() - self.t0:6.1f}s, peak {_rss_peak_mb():6.0f} MB) {note:<30}"
        )
        sys.stderr.flush()

    def stop(self, **extra: Any) -> None:
        self.bar(1.0)
        sys.stderr.write("\n")
        self.rows[self._name] = {
            "seconds": round(time.perf_counter() - self._t, 3),
            "peak_rss_mb": round(_rss_peak_mb(), 1),
        }
        self.rows[self._name].update(extra)


def load_dem(resolution: float) -> DEM:
    from matplotlib import cbook

    dem = DEM.from_npz(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False))
    dem = dem.to_crs("EPSG:32617", resolution)
    # keep an inner rectangle without the warp's empty corners: peel the emptiest border line until none is left
    ok = ~np.isnan(dem.z)
    r0, r1, c0, c1 = 0, ok.shape[0], 0, ok.shape[1]
    while not ok[r0:r1, c0:c1].all():
        sub = ok[r0:r1, c0:c1]
        miss = [(~sub[0]).sum(), (~sub[-1]).sum(), (~sub[:, 0]).sum(), (~sub[:, -1]).sum()]
        side = int(np.argmax(miss))
        r0, r1, c0, c1 = r0 + (side == 0), r1 - (side == 1), c0 + (side == 2), c1 - (side == 3)
    z = dem.z[r0:r1, c0:c1]
    rows, cols = [r0], [c0]
    return DEM(z.copy(), dem.x0 + cols[0] * dem.dx, dem.y0 - rows[0] * dem.dy, dem.dx, dem.dy, None, "jacksboro")


def make_county(dem: DEM, rng: np.random.Generator, n_villages: int) -> dict[str, Any]:
    """Villages on gentle low ground, roads between them, houses in them (local metres)."""
    x0, y0, x1, y1 = dem.bounds
    # candidate centres: slope < 10 %, elevation below the 60th percentile, 1 km from the edge
    gy, gx = np.gradient(dem.z, dem.dy, dem.dx)
    slope = np.hypot(gx, gy)
    xs, ys = dem.cell_centres()
    low = dem.z < np.nanpercentile(dem.z, 60)
    r_, c_ = np.nonzero((slope < 0.10) & low)
    pts = np.c_[xs[c_], ys[r_]]
    pts = pts[(pts[:, 0] > x0 + 1000) & (pts[:, 0] < x1 - 1000) & (pts[:, 1] > y0 + 1000) & (pts[:, 1] < y1 - 1000)]
    order = rng.permutation(len(pts))
    centres: list[np.ndarray] = []
    for i in order:  # Poisson-disc thinning: villages at least 1.3 km apart
        p = pts[i]
        if all(np.hypot(*(p - q)) > 1300 for q in centres[-400:]):
            centres.append(p)
            if len(centres) == n_villages:
                break
    C = np.array(centres)
    radius = rng.uniform(200, 450, len(C))
    # roads: minimum spanning tree over the villages + shortcuts to the second-nearest neighbour
    d = np.hypot(C[:, None, 0] - C[None, :, 0], C[:, None, 1] - C[None, :, 1])
    mst = minimum_spanning_tree(d).tocoo()
    edges = {(min(a, b), max(a, b)) for a, b in zip(mst.row.tolist(), mst.col.tolist(), strict=True)}
    main = set(sorted(edges, key=lambda e: -radius[e[0]] - radius[e[1]])[: len(edges) // 4])
    nn = np.argsort(d, axis=1)[:, 2]
    extra = {(min(i, int(j)), max(i, int(j))) for i, j in enumerate(nn) if rng.random() < 0.35} - edges
    roads = [(C[a], C[b], 5 if (a, b) in main else 3) for a, b in sorted(edges)] + [
        (C[a], C[b], 3) for a, b in sorted(extra)
    ]
    # houses: 25-60 per village, 8-14 m boxes, 4-10 m high, not on the village centre
    houses, heights = [], []
    for c, r in zip(C, radius, strict=True):
        for _ in range(int(rng.integers(25, 61))):
            a, rr = rng.uniform(0, 2 * math.pi), rng.uniform(50, 0.9 * r)
            hx, hy = c[0] + rr * math.cos(a), c[1] + rr * math.sin(a)
            w, h = rng.uniform(8, 14), rng.uniform(8, 12)
            houses.append(shapely.box(hx - w / 2, hy - h / 2, hx + w / 2, hy + h / 2))
            heights.append(float(rng.choice([4.0, 7.0, 10.0])))
    return {"centres": C, "radius": radius, "roads": roads, "houses": houses, "heights": np.array(heights)}


def _along(a: np.ndarray, b: np.ndarray, step: float, offset: float = 0.0) -> np.ndarray:
    L = float(np.hypot(*(b - a)))
    t = np.arange(step / 2, L, step) / max(L, 1e-9)
    p = a + t[:, None] * (b - a)
    if offset:
        nrm = np.array([-(b - a)[1], (b - a)[0]]) / max(L, 1e-9)
        p = p + offset * nrm
    return p


def demand_grid(dem: DEM, county: dict[str, Any], spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = dem.bounds
    gx = np.arange(x0 + spacing / 2, x1 - 1, spacing)
    gy = np.arange(y0 + spacing / 2, y1 - 1, spacing)
    X, Y = np.meshgrid(gx, gy)
    xy = np.c_[X.ravel(), Y.ravel()]
    del X, Y
    w = np.ones(len(xy), dtype=np.float64)
    cat = np.zeros(len(xy), dtype=np.int8)  # 0 field, 1 road, 2 main road, 3 village, 4 village centre
    tree = cKDTree(xy)
    for a, b, rw in county["roads"]:
        near = np.unique(
            np.concatenate(
                [
                    np.asarray(h, dtype=np.int64)
                    for h in tree.query_ball_point(_along(a, b, 10.0), r=max(20.0, spacing / 2))
                ]
                or [np.zeros(0, np.int64)]
            )
        )
        w[near] = np.maximum(w[near], rw)
        cat[near] = np.maximum(cat[near], 2 if rw >= 5 else 1)
    for c, r in zip(county["centres"], county["radius"], strict=True):
        v = np.asarray(tree.query_ball_point(c, r=r), dtype=np.int64)
        w[v] = np.maximum(w[v], 8)
        cat[v] = np.maximum(cat[v], 3)
        v = np.asarray(tree.query_ball_point(c, r=max(60.0, spacing)), dtype=np.int64)
        w[v] = 20
        cat[v] = 4
    return xy, w, cat


def poles(county: dict[str, Any], road_step: float, village_step: float, rng: np.random.Generator) -> np.ndarray:
    ps = [_along(a, b, road_step, offset=8.0) for a, b, _ in county["roads"]]
    for c, r in zip(county["centres"], county["radius"], strict=True):
        g = np.arange(-r, r + 1, village_step)
        X, Y = np.meshgrid(g, g)
        p = np.c_[X.ravel(), Y.ravel()] + rng.uniform(-10, 10, (X.size, 2))
        ps.append(c + p[np.hypot(p[:, 0], p[:, 1]) <= r])
    return np.vstack(ps)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spacing", type=float, default=45.0, help="demand grid step (m)")
    ap.add_argument("--villages", type=int, default=150)
    ap.add_argument("--road-pole-step", type=float, default=70.0)
    ap.add_argument("--village-pole-step", type=float, default=60.0)
    ap.add_argument("--headings", type=int, default=8)
    ap.add_argument("--range", type=float, default=200.0)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--time-limit", type=float, default=120.0, help="solver time limit (s)")
    ap.add_argument("--block", type=int, default=2048, help="sites per visibility block")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/coverage/results_county.json")
    return ap


def build_county(args: argparse.Namespace, ph: Phases) -> tuple[np.ndarray, np.ndarray, np.ndarray, Scene]:
    """The phases up to the scene: the DEM, villages, roads and houses, the demand grid (points and weights)
    and the poles (site positions inside the DEM)."""
    rng = np.random.default_rng(args.seed)
    ph.start("dem")
    dem = load_dem(30.0)
    ph.stop(shape=list(dem.z.shape), area_km2=round(dem.z.size * dem.dx * dem.dy / 1e6, 1))

    ph.start("villages, roads, houses")
    county = make_county(dem, rng, args.villages)
    ph.stop(villages=len(county["centres"]), roads=len(county["roads"]), houses=len(county["houses"]))

    ph.start("demand grid")
    dxy, w, cat = demand_grid(dem, county, args.spacing)
    ph.stop(
        points=len(dxy),
        total_weight=float(w.sum()),
        by_category={
            name: int((cat == i).sum())
            for i, name in enumerate(("field", "road", "main_road", "village", "village_centre"))
        },
    )

    ph.start("poles")
    sxy = poles(county, args.road_pole_step, args.village_pole_step, rng)
    inside = dem.covers(sxy[:, 0], sxy[:, 1])
    sxy = sxy[inside]
    ph.stop(sites=len(sxy), views=len(sxy) * args.headings)

    ph.start("buildings index")
    bld = Buildings.build(county["houses"], county["heights"], dem)
    scene = Scene(dem=dem, buildings=bld, target_height=1.5)
    ph.stop(footprints=len(county["houses"]))
    return dxy, w, sxy, scene


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    ph = Phases()
    dxy, w, sxy, scene = build_county(args, ph)

    ph.start("visibility (streamed)")
    s = len(sxy)
    A, site_of, _ = candidate_coverage(
        scene,
        dxy,
        sxy,
        np.full(s, 8.0),
        np.arange(args.headings) * (360.0 / args.headings),
        np.full(s, 60.0),
        np.full(s, args.range),
        block=args.block,
        progress=ph.bar,
    )
    ph.stop(demand=A.shape[0], views=A.shape[1], nnz=int(A.nnz))

    ph.start("model + presolve")
    model = MaxCoverage(A, w, site=site_of, capacity=np.full(s, 2, dtype=np.int64))
    del A
    pre = model.presolve()
    ph.stop(rows=int(pre.A.shape[0]), nnz=int(pre.A.nnz), unseeable_weight=pre.unseeable_weight)

    ph.start("greedy only")
    g = model.solve(
        args.k, local_search=False, mip=False, search_share=0.0, lagrangian_iters=0, time_limit=args.time_limit
    )
    ph.stop(**_sol(g))

    ph.start("full solve")
    f = model.solve(args.k, time_limit=args.time_limit, progress=lambda stage, frac: ph.bar(frac, stage))
    ph.stop(**_sol(f))

    out = _results(args, ph, g, f)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "phases"}, indent=1))
    return 0


def _results(args: argparse.Namespace, ph: Phases, g: CoverageSolution, f: CoverageSolution) -> dict[str, Any]:
    """The run's record: every phase, the greedy-only and the full solve, and the gain and gap between them."""
    total = time.perf_counter() - ph.t0
    return {
        "machine": platform.platform(),
        "args": vars(args),
        "phases": ph.rows,
        "total_s": round(total, 2),
        # the per-phase resets of the peak counter also reset getrusage's: the run's peak is the largest phase peak
        "peak_rss_total_mb": max(v["peak_rss_mb"] for v in ph.rows.values()),
        "greedy": _sol(g),
        "solved": _sol(f),
        "gain_over_greedy": f.covered_weight - g.covered_weight,
        # the greedy-only plan measured against the best bound found (the full solve's)
        "greedy_gap_vs_best_bound": (min(f.upper_bound, g.upper_bound) - g.covered_weight)
        / min(f.upper_bound, g.upper_bound),
    }


def _sol(s: Any) -> dict[str, Any]:
    return {
        "covered_weight": s.covered_weight,
        "upper_bound": round(s.upper_bound, 3),
        "gap": s.gap,
        "status": s.status,
        "status_text": s.status_text,
        "bound_kind": s.bound_kind,
        "k_text": s.k_text,
        "method": s.method,
        "timings_s": {k: round(v, 3) for k, v in s.timings.items()},
    }


if __name__ == "__main__":
    raise SystemExit(main())
