"""The coverage planning job endpoint: the planner's blind spots and proposals become a map layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from xueliang.api.testing import ApiEnv

pytest.importorskip("scipy")
pytest.importorskip("shapely")


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    from xueliang.coverage.synth import generate_county

    c = generate_county(tmp_path_factory.mktemp("county"), with_dem=False)
    load = lambda p: json.loads(Path(p).read_text())  # noqa: E731
    return {
        "demand": load(c.demand),
        "candidates": load(c.candidates),
        "cameras": load(c.cameras),
        "buildings": load(c.buildings),
    }


def test_plan_stores_a_map_layer(tmp_path, county):
    env = ApiEnv.create(tmp_path)
    with TestClient(env.app) as client:
        body = {**county, "options": {"k": 3}, "layer": "plan-keqiao", "centre_id": "keqiao"}
        assert client.post("/api/v1/coverage/plan", headers=env.headers("op-dajiaqiao"), json=body).status_code == 403
        r = client.post("/api/v1/coverage/plan", headers=env.headers("eng-keqiao"), json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["report"]["after"]["share"] > out["report"]["before"]["share"]
        plan = out["plan"]  # what is proven, in words: k asked, k used, optimal or "within X %"
        assert plan["k_requested"] == 3 and plan["k_used"] == 3 and plan["k_text"] == "k requested 3, 3 used"
        assert (
            plan["status_text"] == "optimal"
            if plan["status"] == "optimal"
            else plan["status_text"].startswith("within")
        )
        assert plan["bound_kind"] and plan["upper_bound"] >= 0
        n_blind = len(out["blind_spots"]["features"])
        assert n_blind > 0 and out["layer"]["name"] == "plan-keqiao"
        fc = client.get("/api/v1/map", headers=env.headers("sup-keqiao")).json()
        kinds = [f["properties"]["kind"] for f in fc["features"]]
        assert kinds.count("blind") == n_blind and kinds.count("candidate") == 3
        # the village operator is below keqiao: a county layer is not in its subtree
        fc = client.get("/api/v1/map", headers=env.headers("op-dajiaqiao")).json()
        assert "blind" not in [f["properties"]["kind"] for f in fc["features"]]


def test_plan_input_errors_are_422(tmp_path, county):
    env = ApiEnv.create(tmp_path)
    h = env.headers("eng-keqiao")
    with TestClient(env.app) as client:
        r = client.post("/api/v1/coverage/plan", headers=h, json={**county, "options": {"k": 2, "budget": 3}})
        assert r.status_code == 422 and "exactly one" in r.text
        r = client.post(
            "/api/v1/coverage/plan", headers=h, json={**county, "demand": {"type": "Feature"}, "options": {"k": 1}}
        )
        assert r.status_code == 422 and "demand" in r.text
        body = {**county, "options": {"k": 1}, "dem_path": "/etc/passwd"}
        assert client.post("/api/v1/coverage/plan", headers=h, json=body).status_code == 422  # no server paths


def test_plan_for_a_budget_says_no_k_was_requested(tmp_path, county):
    env = ApiEnv.create(tmp_path)
    with TestClient(env.app) as client:
        body = {**county, "options": {"budget": 2.0, "time_limit_s": 2}}
        r = client.post("/api/v1/coverage/plan", headers=env.headers("eng-keqiao"), json=body)
        assert r.status_code == 200, r.text
        plan = r.json()["plan"]
        assert plan["k_requested"] is None and plan["k_used"] == 2  # two poles of cost 1
        assert plan["k_text"].startswith("2 cameras") and plan["status_text"]
