"""Merge bench/coverage/results_*.json into the Markdown table of docs/coverage.md.

.venv/bin/python bench/coverage/table.py bench/coverage/results_*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(paths: list[str]) -> int:
    rows = []
    for p in paths:
        data = json.loads(Path(p).read_text())
        for r in data.get("rows", []):  # results_county.json has phases, not rows
            rows.append({**r, "ours_limit_mode": "fixed" if data["args"].get("ours_limit") else "spopt/25"})
    order = {"random": 0, "clustered": 1, "terrain": 2}

    def key(r: dict) -> tuple:
        kind, size = r["instance"].split(" ")
        n = int(size.split("x")[0])
        return (n, order[kind], r["k"], r["ours_limit_mode"])

    out = [
        "| instance (n×m) | k | spopt covered | CBC status | spopt s (build + solve) | ours covered | upper bound | gap | "
        "ours says (bound) | ours s (limit) | ours − spopt | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=key):
        sp = r.get("spopt_weight")
        spt = (
            f"{r['spopt_total_s']:.1f} ({r['spopt_build_s']:.1f} + {r['spopt_solve_s']:.1f})"
            if r.get("spopt_solve_s") is not None
            else "not run"
        )
        diff = "—" if sp is None else f"{r['ours_weight'] - sp:+.0f}"
        speed = "—" if r.get("speedup") is None else f"{r['speedup']:.0f}×"
        words = (
            f"{r['ours_status_text']} ({r['ours_bound_kind']})" if r.get("ours_status_text") else "— (earlier solver)"
        )
        out.append(
            f"| {r['instance']} | {r['k']} | {'—' if sp is None else f'{sp:.0f}'} | {r['spopt_status']}"
            f"{' †' if r.get('spopt_from') else ''} | {spt} | "
            f"{r['ours_weight']:.0f} | {r['ours_bound']:.1f} | {r['ours_gap']:.3%} | {words} | {r['ours_total_s']:.2f} "
            f"({r['ours_limit_s']:.1f}) | {diff} | {speed} |"
        )
    earlier = sorted({r["spopt_from"] for r in rows if r.get("spopt_from")})
    if earlier:
        out.append("")
        out.append(
            f"† spopt's result recorded by an earlier run of the same bench on the same seeded instance "
            f"({', '.join(earlier)}); ours solved again in this run."
        )
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
