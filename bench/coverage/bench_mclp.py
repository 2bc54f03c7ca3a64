"""Benchmark: spopt's MCLP (PuLP + CBC) against xueliang.coverage on the same instances, in one run.

Instances (seeded): demand and candidate points, ``random`` (uniform in a square) or ``clustered``
(villages: Gaussian clusters), a service radius giving a few candidates per demand point, integer
weights 1..11 like spopt's examples; plus ``terrain``: DEM cells of matplotlib's real Jacksboro
DEM as demand and 10 m masts on random cells as candidates, covered when within range *and* in
line of sight over the terrain.

spopt gets the dense cost matrix (distance, or +inf where terrain blocks the view) and builds its
model with ``MCLP.from_cost_matrix``; its time is model build + CBC solve (the cost matrix itself
is not charged to it). Ours starts from the coordinates (KD-tree) or from the sparse terrain
coverage and its time is build + presolve + solve. Every row records both covered weights, our
upper bound and gap, and CBC's status.

    .venv/bin/python bench/coverage/bench_mclp.py --quick            # CI-sized, ~20 s
    .venv/bin/python bench/coverage/bench_mclp.py --out bench/coverage/results_full.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import highspy  # noqa: F401 - imported up front, like pulp for spopt: import time is not solve time
import numpy as np
import scipy.sparse as sp

from xueliang.coverage.model import MaxCoverage, coverage_from_points


def points_instance(kind: str, n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    side = 100.0
    if kind == "random":
        d = rng.uniform(0, side, (n, 2))
        c = rng.uniform(0, side, (m, 2))
    else:
        nc = max(5, n // 200)
        centres = rng.uniform(0, side, (nc, 2))
        size = rng.uniform(1.0, 3.0, nc)
        ci = rng.integers(0, nc, n)
        d = centres[ci] + rng.normal(0, 1, (n, 2)) * size[ci, None]
        cj = rng.integers(0, nc, m)
        c = centres[cj] + rng.normal(0, 1, (m, 2)) * 1.5 * size[cj, None]
    w = rng.integers(1, 12, n).astype(np.float64)
    radius = side * math.sqrt(5.0 / (math.pi * m))  # about 5 candidates per demand point if uniform
    return d, c, w, radius


def terrain_instance(n_side: int, m: int, seed: int, range_m: float = 2000.0):
    """Demand: a regular subsample of the DEM cells; candidates: masts 10 m high on random cells."""
    from matplotlib import cbook

    from xueliang.coverage.terrain import DEM
    from xueliang.coverage.visibility import Scene, candidate_coverage

    rng = np.random.default_rng(seed)
    dem = DEM.from_npz(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False)).to_crs("EPSG:32617", 90.0)
    xs, ys = dem.cell_centres()
    rs = np.linspace(5, len(ys) - 6, n_side).astype(int)
    cs = np.linspace(5, len(xs) - 6, n_side).astype(int)
    R, C = np.meshgrid(rs, cs, indexing="ij")
    ok = ~np.isnan(dem.z[R, C])
    d = np.c_[xs[C[ok]], ys[R[ok]]]
    valid = np.argwhere(~np.isnan(dem.z[5:-5, 5:-5])) + 5
    pick = valid[rng.choice(len(valid), m, replace=False)]
    c = np.c_[xs[pick[:, 1]], ys[pick[:, 0]]]
    w = rng.integers(1, 12, len(d)).astype(np.float64)
    t = time.perf_counter()
    scene = Scene(dem=dem, target_height=2.0, curvature=0.0)
    A, _, _ = candidate_coverage(scene, d, c, np.full(m, 10.0), np.array([0.0]), np.full(m, 360.0), np.full(m, range_m))
    build = time.perf_counter() - t
    return d, c, w, A.tocsr(), build, range_m


def build_spopt(cost: np.ndarray, w: np.ndarray, radius: float, k: int) -> tuple[object | None, dict[str, object]]:
    """spopt's MCLP model for ``k`` sites, built by ``MCLP.from_cost_matrix`` (timed)."""
    from spopt.locate import MCLP

    t = time.perf_counter()
    try:
        model = MCLP.from_cost_matrix(cost, w, service_radius=radius, p_facilities=k)
    except MemoryError as exc:
        return None, {"build_s": time.perf_counter() - t, "sol_status": "none", "error": f"MemoryError: {exc}"}
    return model, {"build_s": time.perf_counter() - t}


def set_spopt_sites(model: object, k: int) -> None:
    """Change the built model's ``sum(y) == p`` constraint to ``k`` sites, in place.

    At 50,000 x 5,000 spopt's build (a Python loop over every demand-candidate pair) takes tens of
    minutes; the model differs between k only in this one right-hand side, so the benchmark builds
    it once per instance and re-solves it for each k, charging every k the measured build time."""
    fac = {v.name for v in model.fac_vars}  # type: ignore[attr-defined]
    found = [
        c
        for c in model.problem.constraints.values()  # type: ignore[attr-defined]
        if c.sense == 0 and {v.name for v in c} == fac
    ]
    if len(found) != 1:
        raise RuntimeError(f"expected one facility-count constraint in spopt's model, found {len(found)}")
    found[0].constant = -float(k)


def solve_spopt(model: object, built: dict[str, object], limit: float) -> dict[str, object]:
    """Solve a built spopt model with CBC under ``limit`` seconds; time = build + solve."""
    import pulp

    out = dict(built)
    if model is None:
        out["total_s"] = out["build_s"]
        return out
    t2 = time.perf_counter()
    try:
        model = model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=limit))  # type: ignore[attr-defined]
        out["solve_s"] = time.perf_counter() - t2
        prob = model.problem  # type: ignore[attr-defined]
        sel = [j for j, v in enumerate(model.fac_vars) if v.value() is not None and v.value() > 0.5]  # type: ignore[attr-defined]
        out["selected"] = sel
        out["sol_status"] = {1: "optimal", 2: "feasible", 0: "none", -1: "infeasible", -2: "unbounded"}.get(
            prob.sol_status, str(prob.sol_status)
        )
        out["objective"] = pulp.value(prob.objective)
    except Exception as exc:  # noqa: BLE001 - spopt raises when CBC returns no solution; record it
        out["solve_s"] = time.perf_counter() - t2
        out["sol_status"] = "none"
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
    out["total_s"] = float(out["build_s"]) + float(out["solve_s"])  # type: ignore[arg-type]
    return out


def covered_weight(A: sp.csr_matrix, w: np.ndarray, sel: list[int]) -> float:
    if not sel:
        return 0.0
    return float(w[np.asarray(A[:, sel].sum(axis=1)).ravel() > 0].sum())


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="CI-sized (~20 s): 1,000x200 and a small terrain instance, 60 s CBC limit"
    )
    ap.add_argument("--sizes", default=None, help="comma list of NxM, e.g. 1000x200,10000x1000,50000x5000")
    ap.add_argument("--ks", default="20,100,300")
    ap.add_argument("--kinds", default="random,clustered,terrain")
    ap.add_argument("--cbc-limit", type=float, default=300.0, help="CBC time limit (s)")
    ap.add_argument("--spopt-max-n", type=int, default=10_000, help="skip spopt above this many demand points")
    ap.add_argument(
        "--ours-limit",
        type=float,
        default=None,
        help="our time limit (s); default: spopt's measured time / 25, capped to [1, 60] s",
    )
    ap.add_argument(
        "--spopt-results",
        type=Path,
        action="append",
        default=[],
        help="take spopt's rows (same instance, k and seed) from these earlier result files instead of "
        "running spopt again (its 50,000 x 5,000 build alone takes over half an hour)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/coverage/results.json")
    return ap


def recorded_spopt(files: list[Path]) -> dict[tuple[str, int, int], dict[str, object]]:
    """spopt's rows in earlier result files, by (instance, k, seed)."""
    recorded: dict[tuple[str, int, int], dict[str, object]] = {}
    for f in files:
        data = json.loads(f.read_text())
        for r in data["rows"]:
            if r.get("spopt_status") not in (None, "not run") and "spopt_from" not in r:
                recorded[(r["instance"], r["k"], data["args"]["seed"])] = {**r, "from": f.name}
    return recorded


def _jobs(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """(kind, n, m) for each instance; terrain's n is the demand grid's side."""
    sizes = args.sizes or ("1000x200" if args.quick else "1000x200,10000x1000,50000x5000")
    jobs: list[tuple[str, int, int]] = []
    for kind in args.kinds.split(","):
        if kind == "terrain":
            jobs.append(("terrain", 40 if args.quick else 100, 150 if args.quick else 1000))
        else:
            for s in sizes.split(","):
                n, m = (int(x) for x in s.split("x"))
                jobs.append((kind, n, m))
    return jobs


@dataclass
class Instance:
    """One benchmark instance: points and weights, and for terrain its sparse coverage (else ``None``)."""

    kind: str
    label: str
    d: np.ndarray
    c: np.ndarray
    w: np.ndarray
    radius: float
    A: sp.csr_matrix | None
    geo_build: float  # seconds to build the terrain coverage

    @classmethod
    def make(cls, kind: str, n: int, m: int, seed: int) -> Instance:
        if kind == "terrain":
            d, c, w, A, geo_build, radius = terrain_instance(n, m, seed)
            return cls(kind, f"terrain {A.shape[0]}x{A.shape[1]}", d, c, w, radius, A, geo_build)
        d, c, w, radius = points_instance(kind, n, m, seed)
        return cls(kind, f"{kind} {n}x{m}", d, c, w, radius, None, 0.0)

    @property
    def n(self) -> int:
        return len(self.d) if self.A is None else int(self.A.shape[0])

    @property
    def m(self) -> int:
        return len(self.c) if self.A is None else int(self.A.shape[1])

    def spopt_cost(self) -> np.ndarray:
        """spopt's dense cost matrix: distance (where visible; +inf where terrain blocks)."""
        d, c = self.d, self.c
        if self.A is None:
            return np.hypot(d[:, None, 0] - c[None, :, 0], d[:, None, 1] - c[None, :, 1])
        dist = np.hypot(d[:, None, 0] - c[None, :, 0], d[:, None, 1] - c[None, :, 1])
        vis = self.A.toarray() > 0
        cost = np.where(vis, dist, np.inf)
        del vis, dist
        return cost


class SpoptRuns:
    """spopt on one instance: its model built at the first k and re-solved for the others (or its rows
    taken from earlier result files)."""

    def __init__(
        self, inst: Instance, args: argparse.Namespace, recorded: dict[tuple[str, int, int], dict[str, object]]
    ):
        self.inst, self.args, self.recorded = inst, args, recorded
        self.model: object | None = None
        self.built: dict[str, object] = {}

    def result(self, k: int) -> dict[str, object]:
        earlier = self.recorded.get((self.inst.label, k, self.args.seed))
        if earlier is not None:
            return {
                "sol_status": earlier["spopt_status"],
                "weight": earlier["spopt_weight"],
                "build_s": earlier["spopt_build_s"],
                "solve_s": earlier["spopt_solve_s"],
                "total_s": earlier["spopt_total_s"],
                "error": earlier["spopt_error"],
                "from": earlier["from"],
            }
        if self.inst.n > self.args.spopt_max_n:
            return {"sol_status": "not run"}
        if not self.built:
            cost = self.inst.spopt_cost()
            gc.collect()
            self.model, self.built = build_spopt(cost, self.inst.w, self.inst.radius, k)
            del cost
            gc.collect()
            print(
                f"{self.inst.label}: spopt built its model in {self.built['build_s']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        elif self.model is not None:
            set_spopt_sites(self.model, k)
        return solve_spopt(self.model, self.built, self.args.cbc_limit)


def bench_row(inst: Instance, k: int, sp_res: dict[str, object], limit: float) -> dict[str, object]:
    """Our solve under ``limit`` seconds (from the coordinates or the sparse coverage) beside spopt's result."""
    t = time.perf_counter()
    if inst.A is not None:
        model = MaxCoverage(inst.A, inst.w)
    else:
        model = MaxCoverage(coverage_from_points(inst.d, inst.c, inst.radius), inst.w)
    sol = model.solve(k, time_limit=limit)
    ours_total = time.perf_counter() - t
    w = inst.w
    sp_val = covered_weight(model.A, w, sp_res["selected"]) if "selected" in sp_res else sp_res.get("weight")  # type: ignore[arg-type]
    row: dict[str, object] = {
        "instance": inst.label,
        "k": k,
        "spopt_status": sp_res["sol_status"],
        "spopt_weight": sp_val,
        "spopt_build_s": sp_res.get("build_s"),
        "spopt_solve_s": sp_res.get("solve_s"),
        "spopt_total_s": sp_res.get("total_s"),
        "spopt_error": sp_res.get("error"),
        "ours_weight": sol.covered_weight,
        "ours_bound": sol.upper_bound,
        "ours_gap": sol.gap,
        "ours_status": sol.status,
        "ours_status_text": sol.status_text,
        "ours_bound_kind": sol.bound_kind,
        "ours_k_used": sol.k_used,
        "ours_everything_coverable_covered": sol.everything_coverable_covered,
        "ours_method": sol.method,
        "ours_limit_s": limit,
        "ours_total_s": ours_total,
        "ours_timings": sol.timings,
        "terrain_visibility_build_s": inst.geo_build if inst.kind == "terrain" else None,
        "total_weight": float(w.sum()),
        "nnz": int(model.A.nnz),
    }
    if "from" in sp_res:
        row["spopt_from"] = sp_res["from"]
    if sp_val is not None:
        row["ours_minus_spopt"] = sol.covered_weight - sp_val
        row["speedup"] = float(sp_res["total_s"]) / ours_total  # type: ignore[arg-type]
    return row


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    recorded = recorded_spopt(args.spopt_results)
    if args.quick:
        args.cbc_limit = min(args.cbc_limit, 60.0)
    ks = [int(k) for k in args.ks.split(",")]
    rows = []
    for kind, n, m in _jobs(args):
        inst = Instance.make(kind, n, m, args.seed)
        spopt = SpoptRuns(inst, args, recorded)
        for k in ks:
            if k >= inst.m:
                print(f"{inst.label} k={k}: skipped (k >= candidates)", file=sys.stderr)
                continue
            sp_res = spopt.result(k)
            limit = args.ours_limit
            if limit is None:
                limit = min(60.0, max(1.0, float(sp_res.get("total_s", 1500.0)) / 25.0))  # type: ignore[arg-type]
            row = bench_row(inst, k, sp_res, limit)
            rows.append(row)
            print(json.dumps({k2: v for k2, v in row.items() if k2 != "ours_timings"}), file=sys.stderr, flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(
                json.dumps({"machine": platform.platform(), "args": vars(args), "rows": rows}, indent=1, default=str)
            )
    print(markdown_table(rows))
    return 0


def markdown_table(rows: list[dict[str, object]]) -> str:
    def f(v: object, fmt: str) -> str:
        return "—" if v is None else format(v, fmt)

    out = [
        "| instance | k | spopt weight | spopt status | spopt time (build+solve) s | ours weight | upper bound | gap | ours time s | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        spt = (
            f"{r['spopt_total_s']:.1f} ({r['spopt_build_s']:.1f}+{r['spopt_solve_s']:.1f})"
            if r.get("spopt_solve_s") is not None
            else "—"
        )
        out.append(
            f"| {r['instance']} | {r['k']} | {f(r['spopt_weight'], '.0f')} | {r['spopt_status']} | {spt} | "
            f"{r['ours_weight']:.0f} | {r['ours_bound']:.1f} | {r['ours_gap']:.3%} | {r['ours_total_s']:.2f} | "
            f"{f(r.get('speedup'), '.0f')}{'×' if r.get('speedup') else ''} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
