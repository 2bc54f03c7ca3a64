"""Wall query at scale: GET /api/v1/wall's triage query (ordering, counts, paging) over N open
incidents of a township on SQLite (and PostgreSQL with --db-url), timed in-process.

    .venv/bin/python bench/api/bench_wall.py --n 20000 [--db-url postgresql+psycopg://...]

Seeds 1,000 incidents through the dispatch service (routing, SLA windows), ticks them (some red,
escalated, yellow), then copies rows with new ids up to N; reports the median of 7 runs of page 1,
a deep page and a filtered search for a township supervisor and a village operator.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from xueliang.api.testing import ApiEnv, make_incident
from xueliang.contracts import Severity
from xueliang.dispatch.triage import WallQuery, wall_page
from xueliang.dispatch.workflow import Actor, Role


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--db-url")
    args = ap.parse_args()
    env = ApiEnv.create(Path(tempfile.mkdtemp()), db_url=args.db_url)
    svc = env.service
    now = datetime.now(UTC)
    cams = ["cam-dajiaqiao-entrance", "cam-dajiaqiao-pond", "cam-xishi-square"]
    sevs = [Severity.general] * 6 + [Severity.serious] * 3 + [Severity.major]
    for i in range(1000):
        inc = make_incident(
            cams[i % 3], episode=f"b{i}", severity=sevs[i % 10], at=now - timedelta(seconds=2000 - 2 * i)
        )
        svc.ingest_incident(inc)
    svc.tick()
    cols = [c for c in env.store.engine.dialect.get_columns(env.store.engine.connect(), "incidents")]
    names = [c["name"] for c in cols if c["name"] != "id"]
    with env.store.engine.begin() as conn:
        k = 0
        while conn.execute(text("SELECT count(*) FROM incidents")).scalar() < args.n:
            k += 1
            conn.execute(
                text(
                    f"INSERT INTO incidents (id, {', '.join(names)}) SELECT id || '-c{k}', {', '.join(names)} "
                    "FROM incidents WHERE id NOT LIKE '%-c%' LIMIT :m"
                ),
                {"m": args.n - conn.execute(text("SELECT count(*) FROM incidents")).scalar()},
            )
    total = env.store.engine.connect().execute(text("SELECT count(*) FROM incidents")).scalar()
    sup = Actor("sup-anchang", Role.supervisor, "anchang")
    op = Actor("op-dajiaqiao", Role.operator, "dajiaqiao")
    cases = {
        "township page 1": (sup, WallQuery(), 1),
        "township page 100": (sup, WallQuery(), 100),
        "township search 西市 + serious": (sup, WallQuery(search="西市", severities=[Severity.serious]), 1),
        "village page 1": (op, WallQuery(), 1),
    }
    print(f"{total} incidents, {env.store.engine.dialect.name}")
    for name, (viewer, q, page) in cases.items():
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            res = wall_page(svc, q, viewer=viewer, page=page, page_size=60)
            runs.append(time.perf_counter() - t)
        print(f"{name:34s} median {1000 * statistics.median(runs):7.1f} ms  (total {res.total}, red {res.counts.red})")


if __name__ == "__main__":
    main()
