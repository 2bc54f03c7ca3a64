"""Coverage plans as jobs: POST /api/v1/coverage/jobs checks the input at once (4xx before any
job), runs the plan in the background with the planner's stages and progress, and the job's
result is the same as the synchronous /plan's; jobs are readable by their owner only."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from xueliang.api.testing import ApiEnv

pytest.importorskip("scipy")
sys.path.insert(0, str(Path(__file__).parent / "browser"))
from test_console import village_plan_input


def test_job_runs_with_progress_and_matches_the_plan(tmp_path):
    env = ApiEnv.create(tmp_path)
    demand, poles = village_plan_input()
    body = {"demand": demand, "candidates": poles, "options": {"k": 2, "spacing_m": 10}, "centre_id": "dajiaqiao"}
    h = env.headers("eng-keqiao")
    with TestClient(env.app) as client:
        r = client.post("/api/v1/coverage/jobs", headers=h, json=body)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["state"] == "running" and len(job["id"]) == 16
        seen, deadline = [], time.monotonic() + 60
        while job["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
            job = client.get(f"/api/v1/coverage/jobs/{job['id']}", headers=h).json()
            seen.append((job["stage"], job["fraction"]))
        assert job["state"] == "done" and job["fraction"] == 1.0, job
        fractions = [f for _, f in seen]
        assert fractions == sorted(fractions)  # progress never goes back
        sync = client.post("/api/v1/coverage/plan", headers=h, json=body).json()
        assert job["result"]["report"]["after"] == sync["report"]["after"]
        assert [
            f["properties"]["site"]
            for f in job["result"]["recommended"]["features"]
            if f["properties"]["kind"] == "camera"
        ] == [f["properties"]["site"] for f in sync["recommended"]["features"] if f["properties"]["kind"] == "camera"]
        # only its owner (and admins) read it; operators cannot plan
        assert client.get(f"/api/v1/coverage/jobs/{job['id']}", headers=env.headers("eng-xishi")).status_code == 404
        assert client.get(f"/api/v1/coverage/jobs/{job['id']}", headers=env.headers("admin")).status_code == 200
        assert client.post("/api/v1/coverage/jobs", headers=env.headers("op-dajiaqiao"), json=body).status_code == 403
        assert client.get("/api/v1/coverage/jobs/not-a-job", headers=h).status_code == 422
        assert client.get("/api/v1/coverage/jobs/" + "0" * 16, headers=h).status_code == 404
        # bad input is refused before a job exists; an unreachable goal fails the job with the reason
        bad = {**body, "options": {"k": 2, "nonsense": 1}}
        assert client.post("/api/v1/coverage/jobs", headers=h, json=bad).status_code == 422
        assert (
            client.post("/api/v1/coverage/jobs", headers=h, json={**body, "demand": {"type": "Point"}}).status_code
            == 422
        )
