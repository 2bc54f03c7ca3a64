"""``xueliang coverage plan ...``: plan new cameras from files, with a progress bar on stderr.

    python -m xueliang.coverage.cli plan --demand demand.geojson --candidates poles.geojson \\
        --cameras cameras.geojson --buildings buildings.geojson --dem dem.tif --k 10 --out plan/

Exit codes: 0 done, 2 bad input (the message names the file and feature), 3 infeasible goal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TextIO

from pydantic import ValidationError

from xueliang.coverage.errors import CoverageInputError, InfeasibleError


class ProgressBar:
    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream, self.width, self.t0 = stream, width, time.perf_counter()

    def __call__(self, stage: str, frac: float) -> None:
        n = round(frac * self.width)
        self.stream.write(
            f"\r[{'#' * n}{'.' * (self.width - n)}] {frac:4.0%} {stage[:40]:<40} {time.perf_counter() - self.t0:6.1f}s"
        )
        if frac >= 1.0:
            self.stream.write("\n")
        self.stream.flush()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xueliang coverage", description="Camera coverage planning (blind spots, next cameras)."
    )
    sub = p.add_subparsers(dest="command", required=True)
    pl = sub.add_parser("plan", help="find blind spots and recommend new cameras")
    pl.add_argument("--demand", required=True, help="GeoJSON of places to watch (category, village)")
    pl.add_argument("--candidates", required=True, help="GeoJSON of candidate sites (cost, capacity, height)")
    pl.add_argument("--cameras", help="GeoJSON of existing cameras (azimuth, hfov, range, height, tilt, vfov)")
    pl.add_argument("--buildings", help="GeoJSON of building footprints (height)")
    pl.add_argument("--dem", help="DEM GeoTIFF (or .npz)")
    goal = pl.add_mutually_exclusive_group(required=True)
    goal.add_argument("--k", type=int, help="number of new cameras")
    goal.add_argument("--budget", type=float, help="budget in cost units")
    goal.add_argument("--target-share", type=float, help="cheapest plan reaching this share of demand weight")
    pl.add_argument("--out", required=True, help="output folder")
    pl.add_argument("--weights", help="JSON file: category -> weight (replaces the default table)")
    pl.add_argument("--headings", type=int, default=12)
    pl.add_argument("--hfov", type=float, default=60.0)
    pl.add_argument("--range", type=float, default=120.0)
    pl.add_argument("--spacing", type=float, default=25.0)
    pl.add_argument("--curvature", action="store_true", help="earth curvature and refraction in line of sight")
    pl.add_argument("--time-limit", type=float, default=10.0)
    pl.add_argument("--no-png", action="store_true")
    pl.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from xueliang.coverage.output import write_outputs
    from xueliang.coverage.planner import PlanOptions, run_plan

    bar: ProgressBar | None = None

    def fail(msg: str, code: int) -> int:
        print(("\n" if bar is not None else "") + msg, file=sys.stderr)
        return code

    try:
        opts: dict[str, object] = {
            "k": args.k,
            "budget": args.budget,
            "target_share": args.target_share,
            "headings": args.headings,
            "hfov_deg": args.hfov,
            "range_m": args.range,
            "spacing_m": args.spacing,
            "curvature": args.curvature,
            "time_limit_s": args.time_limit,
        }
        if args.weights:
            try:
                with open(args.weights, encoding="utf-8") as fh:
                    opts["category_weights"] = json.load(fh)
            except (OSError, json.JSONDecodeError) as exc:
                raise CoverageInputError(f"cannot read weight table: {exc}", source=args.weights) from exc
        options = PlanOptions(**opts)
        bar = None if args.quiet else ProgressBar(sys.stderr)
        outcome = run_plan(
            args.demand,
            args.candidates,
            options,
            cameras=args.cameras,
            buildings=args.buildings,
            dem=args.dem,
            progress=bar,
        )
        files = write_outputs(outcome, args.out, png=not args.no_png)
    except ValidationError as exc:
        e = exc.errors()[0]
        return fail(f"error: invalid options: {e['msg']} ({'.'.join(map(str, e['loc']))})", 2)
    except CoverageInputError as exc:
        return fail(f"error: {exc}", 2)
    except InfeasibleError as exc:
        return fail(f"infeasible: {exc}", 3)
    r = outcome.report
    plan = r["plan"]
    print(
        f"coverage {r['before']['share']:.1%} -> {r['after']['share']:.1%} with {len(plan['cameras'])} new cameras "
        f"({plan['k_text']}); {plan['status_text']} (upper bound {plan['upper_bound_total']:.1f}, "
        f"{plan['bound_kind']} bound, gap {plan['gap']:.3%}); {len(r['blind_spots'])} blind spots today"
    )
    for name, path in files.items():
        print(f"  {name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
