"""网格员 (grid workers) as dispatch targets: listed for the dispatcher, they see on their wall and act
on (签收, 处置, 反馈, 退单) exactly the cases dispatched to them by user name — even one owned by the
township — and nothing else; the live feed brings them their cases."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from xueliang.api.testing import USERS, ApiEnv, SseReader, make_incident
from xueliang.contracts import Severity
from xueliang.dispatch.workflow import Action, Actor, Role

GRID = {**USERS, "grid-zhang": ("grid_worker", "dajiaqiao"), "grid-li": ("grid_worker", "xishi")}
OP = Actor("op-dajiaqiao", Role.operator, "dajiaqiao")


@pytest.fixture()
def env(tmp_path):
    return ApiEnv.create(tmp_path, users=GRID)


def test_grid_worker_handles_only_what_is_dispatched_to_them(env):
    svc = env.service
    mine = make_incident("cam-dajiaqiao-entrance", episode="mine")
    other = make_incident("cam-dajiaqiao-entrance", episode="other")
    big = make_incident("cam-dajiaqiao-pond", episode="big", severity=Severity.major, rule="pond")
    for inc in (mine, other, big):
        svc.ingest_incident(inc)
    with TestClient(env.app) as client:
        op, zhang, li = env.headers("op-dajiaqiao"), env.headers("grid-zhang"), env.headers("grid-li")
        workers = client.get("/api/v1/centres/anchang/grid-workers", headers=env.headers("sup-anchang")).json()
        assert {(w["username"], w["centre_id"]) for w in workers} == {("grid-zhang", "dajiaqiao"), ("grid-li", "xishi")}
        assert [w["username"] for w in client.get("/api/v1/centres/dajiaqiao/grid-workers", headers=op).json()] == [
            "grid-zhang"
        ]
        assert client.get("/api/v1/centres/xishi/grid-workers", headers=op).status_code == 403

        svc.transition(mine.id, Action.accept, OP, "")
        r = client.post(
            f"/api/v1/incidents/{mine.id}/dispatch", headers=op, json={"target": "grid-zhang", "note": "请核实"}
        )
        assert r.status_code == 200, r.text
        # the township's major case, dispatched to the same village grid worker
        sup = Actor("sup-anchang", Role.supervisor, "anchang")
        svc.transition(big.id, Action.accept, sup, "")
        svc.transition(big.id, Action.dispatch, sup, "", target="grid-zhang")

        wall = client.get("/api/v1/wall", headers=zhang).json()
        assert {i["id"] for i in wall["items"]} == {mine.id, big.id}
        assert all(i["permitted_actions"] == ["receive", "return"] for i in wall["items"])
        assert client.get("/api/v1/wall", headers=li).json()["total"] == 0
        assert client.get(f"/api/v1/incidents/{big.id}", headers=zhang).status_code == 200  # owned by the township
        assert client.get(f"/api/v1/incidents/{big.id}", headers=li).status_code == 404
        assert client.get(f"/api/v1/incidents/{other.id}", headers=zhang).json()["permitted_actions"] == []

        for action, body in (("receive", {}), ("handle", {}), ("feedback", {"note": "已劝离"})):
            r = client.post(f"/api/v1/incidents/{mine.id}/{action}", headers=zhang, json=body)
            assert r.status_code == 200, (action, r.text)
        detail = client.get(f"/api/v1/incidents/{mine.id}", headers=op).json()
        assert detail["state"] == "feedback" and detail["audit"][-1]["actor"] == "grid-zhang"
        assert detail["audit"][-1]["role"] == "grid_worker" and detail["audit"][-1]["note"] == "已劝离"
        # nothing else: not the other case, not the owner's actions, not someone else's
        assert client.post(f"/api/v1/incidents/{other.id}/accept", headers=zhang, json={}).status_code == 403
        assert client.post(f"/api/v1/incidents/{big.id}/receive", headers=li, json={}).status_code == 403
        assert client.post(f"/api/v1/incidents/{mine.id}/verify", headers=zhang, json={}).status_code == 403
        assert (
            client.post(
                "/api/v1/incidents/bulk", headers=zhang, json={"action": "accept", "items": [{"id": other.id}]}
            ).json()["results"][0]["status"]
            == 403
        )


def test_the_live_feed_brings_a_grid_worker_their_case(env):
    inc = make_incident("cam-dajiaqiao-pond", episode="feed", severity=Severity.major, rule="pond")
    env.service.ingest_incident(inc)
    sup = Actor("sup-anchang", Role.supervisor, "anchang")
    env.service.transition(inc.id, Action.accept, sup, "")
    with env.serve() as base:
        reader = SseReader(f"{base}/api/v1/feed", headers=env.headers("grid-zhang"))
        try:
            reader.next(lambda e: e.event == "hello")
            env.service.transition(inc.id, Action.dispatch, sup, "", target="grid-zhang")
            ev = reader.next(lambda e: e.event == "incident" and json.loads(e.data)["incident_id"] == inc.id)
            body = json.loads(ev.data)
            assert body["visible"] is True and body["incident"]["permitted_actions"] == ["receive", "return"]
        finally:
            reader.close()
