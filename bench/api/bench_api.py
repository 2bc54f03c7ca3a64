"""Load test of the operator API: 50 live-feed (SSE) clients plus a steady stream of incident queries.

The API runs under uvicorn in its own process (as ``xueliang api`` would) on a SQLite store
seeded with incidents; this process holds the clients and, like a dispatcher in another
process, writes new incidents into the same database at a steady rate. Measured:

* incident queries (``GET /api/v1/incidents`` with filters and cursor pages): achieved
  request rate, p50/p99 latency;
* live feed: every client's delay from the incident's commit to its SSE event, p50/p99,
  and the share of expected events delivered.

Usage: ``python bench/api/bench_api.py [--clients 50] [--query-workers 8] [--duration 20]
[--publish-rate 2] [--out bench/api/results.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

CAMERAS = ["cam-dajiaqiao-entrance", "cam-dajiaqiao-pond", "cam-xishi-square", "cam-dongjia-bridge"]
# who watches the feed: operators and supervisors of every tier (round-robin over the clients)
WATCHERS = ["op-dajiaqiao", "op-xishi", "sup-anchang", "sup-qianqing", "sup-keqiao", "admin"]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def serve(workdir: str, port: int, ready: mp.Event) -> None:  # type: ignore[valid-type]
    """The API process: the same app factory the CLI runs."""
    import uvicorn

    from xueliang.api.testing import ApiEnv

    env = ApiEnv.create(Path(workdir))
    config = uvicorn.Config(env.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    ready.set()
    server.run()


def seed(workdir: Path, n: int) -> None:
    from xueliang.api.testing import ApiEnv, make_incident
    from xueliang.contracts import Severity

    env = ApiEnv.create(workdir)
    t0 = datetime.now(UTC) - timedelta(days=7)
    sev = list(Severity)
    for i in range(n):
        cam = CAMERAS[i % len(CAMERAS)]
        env.service.ingest_incident(
            make_incident(
                cam,
                episode=f"seed{i}",
                severity=sev[(i // 4) % 2],
                at=t0 + timedelta(seconds=300 * i),
                with_snapshot=False,
            )
        )
    env.store.dispose()


async def feed_client(
    base: str,
    token: str,
    stop: asyncio.Event,
    received: dict[str, list[float]],
    connected: asyncio.Event,
    counter: list[int],
    total: int,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client,
        client.stream("GET", f"{base}/api/v1/feed", headers=headers) as r,
    ):
        r.raise_for_status()
        event = None
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "hello":
                    counter[0] += 1
                    if counter[0] == total:
                        connected.set()
            elif line.startswith("data:") and event == "incident":
                now = time.time()
                data = json.loads(line[5:])
                if data["kind"] == "incident.created":
                    received.setdefault(data["incident_id"], []).append(now)
            if stop.is_set():
                return


async def query_worker(
    base: str, tokens: list[str], stop: asyncio.Event, lat: list[float], errors: list[int], seed: int
) -> None:
    import random

    rnd = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while not stop.is_set():
            token = rnd.choice(tokens)
            params: dict[str, object] = {"limit": rnd.choice([20, 50, 100])}
            shape = rnd.random()
            if shape < 0.3:
                params["open_only"] = "true"
            elif shape < 0.5:
                params["severity"] = ["serious"]
            elif shape < 0.7:
                params["camera_id"] = [rnd.choice(CAMERAS)]
            elif shape < 0.85:
                params["since"] = (datetime.now(UTC) - timedelta(days=rnd.randint(1, 6))).isoformat()
            t = time.perf_counter()
            r = await client.get("/api/v1/incidents", params=params, headers={"Authorization": f"Bearer {token}"})
            if r.status_code == 200 and r.json()["next_cursor"] and rnd.random() < 0.3:
                r = await client.get(
                    "/api/v1/incidents",
                    params={**params, "cursor": r.json()["next_cursor"]},
                    headers={"Authorization": f"Bearer {token}"},
                )
            lat.append(time.perf_counter() - t)
            if r.status_code != 200:
                errors.append(r.status_code)


async def publisher(workdir: Path, stop: asyncio.Event, rate: float, published: dict[str, float]) -> None:
    """Writes new incidents into the database (a dispatcher in another process, as in production)."""
    from xueliang.api.testing import ApiEnv, make_incident, sample_settings
    from xueliang.dispatch.service import DispatchService
    from xueliang.dispatch.store import Store

    settings = sample_settings(workdir / "snapshots")
    store = Store.from_url(f"sqlite:///{workdir}/xueliang.db")
    service = DispatchService(store, settings)
    del ApiEnv
    i = 0
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        cam = CAMERAS[i % 3]  # villages with watchers
        inc = make_incident(cam, episode=f"live{i}", with_snapshot=False)
        await asyncio.to_thread(service.ingest_incident, inc)
        published[inc.id] = time.time()
        i += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    store.dispose()


def expected_watchers(camera: str, clients: int) -> int:
    """How many of the clients see a general incident of this camera's village (owner: the village)."""
    village = {"cam-dajiaqiao-entrance": "dajiaqiao", "cam-dajiaqiao-pond": "dajiaqiao", "cam-xishi-square": "xishi"}[
        camera
    ]
    sees = {
        "op-dajiaqiao": village == "dajiaqiao",
        "op-xishi": village == "xishi",
        "sup-anchang": True,
        "sup-qianqing": False,
        "sup-keqiao": True,
        "admin": True,
    }
    return sum(1 for i in range(clients) if sees[WATCHERS[i % len(WATCHERS)]])


async def run(args: argparse.Namespace, workdir: Path, base: str) -> dict[str, object]:
    from xueliang.api.testing import ApiEnv

    env = ApiEnv.create(workdir)  # same database: only for minting tokens
    tokens = {u: env.token(u) for u in WATCHERS}
    stop = asyncio.Event()
    feeds_stop = asyncio.Event()
    connected = asyncio.Event()
    received: dict[str, list[float]] = {}
    counter = [0]
    feeds = [
        asyncio.create_task(
            feed_client(
                base, tokens[WATCHERS[i % len(WATCHERS)]], feeds_stop, received, connected, counter, args.clients
            )
        )
        for i in range(args.clients)
    ]
    await asyncio.wait_for(connected.wait(), 60)
    lat: list[float] = []
    errors: list[int] = []
    published: dict[str, float] = {}
    t0 = time.perf_counter()
    queries = [
        asyncio.create_task(query_worker(base, list(tokens.values()), stop, lat, errors, s))
        for s in range(args.query_workers)
    ]
    pub = asyncio.create_task(publisher(workdir, stop, args.publish_rate, published))
    await asyncio.sleep(args.duration)
    stop.set()
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*queries, pub)
    await asyncio.sleep(2.0)  # let the last events arrive
    feeds_stop.set()
    for f in feeds:
        f.cancel()
    await asyncio.gather(*feeds, return_exceptions=True)
    delays = [t - published[iid] for iid, ts in received.items() if iid in published for t in ts]
    expected = sum(expected_watchers(_camera_of(i, env), args.clients) for i in range(len(published)))
    return {
        "clients": args.clients,
        "query_workers": args.query_workers,
        "duration_s": round(elapsed, 2),
        "queries": len(lat),
        "query_errors": len(errors),
        "query_rate_per_s": round(len(lat) / elapsed, 1),
        "query_p50_ms": round(1000 * (pct(lat, 0.5) or 0), 1),
        "query_p99_ms": round(1000 * (pct(lat, 0.99) or 0), 1),
        "incidents_published": len(published),
        "feed_events_expected": expected,
        "feed_events_received": len(delays),
        "feed_delay_p50_ms": round(1000 * (pct(delays, 0.5) or 0), 1),
        "feed_delay_p99_ms": round(1000 * (pct(delays, 0.99) or 0), 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }


def _camera_of(i: int, env: object) -> str:
    return CAMERAS[i % 3]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--query-workers", type=int, default=8, help="concurrent query loops (closed loop)")
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--publish-rate", type=float, default=2.0, help="new incidents per second")
    p.add_argument("--seed-incidents", type=int, default=2000)
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = p.parse_args(argv)
    from xueliang.api.testing import free_port

    workdir = Path(tempfile.mkdtemp(prefix="xl-bench-api-"))
    seed(workdir, args.seed_incidents)
    port = free_port()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=serve, args=(str(workdir), port, ready), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    ready.wait(60)
    for _ in range(200):
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        result = asyncio.run(run(args, workdir, base))
    finally:
        server.terminate()
        server.join(10)
    result["seed_incidents"] = args.seed_incidents
    result["publish_rate_per_s"] = args.publish_rate
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
