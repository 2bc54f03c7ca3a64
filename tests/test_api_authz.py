"""Authorisation matrix: a user sees and acts on its own centre's subtree only.

Another village's operator cannot list, read or act on an incident (404 on read, 403 on
act); the township supervisor above it can; engineers manage cameras, not incidents;
a missing or bad token gets 401.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from xueliang.api.testing import ApiEnv, make_incident
from xueliang.contracts import Severity

VILLAGE_OP, OTHER_VILLAGE_OP = "op-dajiaqiao", "op-xishi"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    env = ApiEnv.create(tmp_path_factory.mktemp("authz"))
    inc = make_incident("cam-dajiaqiao-entrance", episode="authz")  # general: owned by the village dajiaqiao
    env.service.ingest_incident(inc)
    env.write_snapshot(inc)
    with TestClient(env.app) as client:
        yield env, client, inc.id


def ids(client, env, user, **params):
    r = client.get("/api/v1/incidents", headers=env.headers(user), params=params)
    assert r.status_code == 200, r.text
    return {i["id"] for i in r.json()["items"]}


# who sees the village incident in lists, detail and snapshot
@pytest.mark.parametrize(
    "user, sees",
    [
        ("op-dajiaqiao", True),  # owner village
        ("sup-anchang", True),  # its township
        ("sup-keqiao", True),  # its county
        ("admin", True),
        ("op-xishi", False),  # another village of the same township
        ("sup-qianqing", False),  # another township
        ("eng-xishi", False),
    ],
)
def test_read_matrix(world, user, sees):
    env, client, iid = world
    assert (iid in ids(client, env, user)) is sees
    detail = client.get(f"/api/v1/incidents/{iid}", headers=env.headers(user))
    assert detail.status_code == (200 if sees else 404)
    if not sees:
        assert "dajiaqiao" not in detail.text  # the 404 reveals nothing about the owner
    snap = client.get(f"/snapshots/{iid}.jpg", headers=env.headers(user))
    assert snap.status_code == (200 if sees else 404)
    if sees:
        assert snap.headers["content-type"] == "image/jpeg" and snap.content[:2] == b"\xff\xd8"


def test_other_village_cannot_filter_on_our_centre(world):
    env, client, _ = world
    r = client.get("/api/v1/incidents", headers=env.headers(OTHER_VILLAGE_OP), params={"centre_id": "dajiaqiao"})
    assert r.status_code == 403
    r = client.get("/api/v1/centres/dajiaqiao/kpis", headers=env.headers(OTHER_VILLAGE_OP))
    assert r.status_code == 403


@pytest.mark.parametrize(
    "user, expected",
    [
        ("op-xishi", 403),  # another village: may not act
        ("sup-qianqing", 403),  # another township
        ("eng-keqiao", 403),  # engineers never act on incidents, even in their subtree
    ],
)
def test_act_forbidden(world, user, expected):
    env, client, iid = world
    for action, body in (("accept", {}), ("reject", {"reason": "false_alarm"}), ("escalate", {"note": "x"})):
        r = client.post(f"/api/v1/incidents/{iid}/{action}", headers=env.headers(user), json=body)
        assert r.status_code == expected, (action, r.text)
    detail = client.get(f"/api/v1/incidents/{iid}", headers=env.headers(VILLAGE_OP)).json()
    assert detail["state"] == "reported" and len(detail["audit"]) == 1  # nothing happened


def test_permitted_actions_follow_role_and_centre(world):
    env, client, iid = world
    op = client.get(f"/api/v1/incidents/{iid}", headers=env.headers(VILLAGE_OP)).json()
    sup = client.get(f"/api/v1/incidents/{iid}", headers=env.headers("sup-anchang")).json()
    eng = client.get(f"/api/v1/incidents/{iid}", headers=env.headers("eng-keqiao")).json()
    assert set(op["permitted_actions"]) == {"accept", "reject"}  # operators do not escalate
    assert set(sup["permitted_actions"]) == {"accept", "reject", "escalate"}
    assert eng["permitted_actions"] == []


def test_township_supervisor_can_act(tmp_path):
    env = ApiEnv.create(tmp_path)
    inc = make_incident("cam-dajiaqiao-entrance", episode="sup")
    env.service.ingest_incident(inc)
    with TestClient(env.app) as client:
        r = client.post(f"/api/v1/incidents/{inc.id}/accept", headers=env.headers("sup-anchang"), json={"note": "收到"})
        assert r.status_code == 200 and r.json()["state"] == "accepted"
        audit = client.get(f"/api/v1/incidents/{inc.id}", headers=env.headers(VILLAGE_OP)).json()["audit"]
        assert (audit[-1]["actor"], audit[-1]["role"], audit[-1]["centre_id"], audit[-1]["note"]) == (
            "sup-anchang",
            "supervisor",
            "anchang",
            "收到",
        )


def test_major_incident_is_township_owned_not_village_visible(tmp_path):
    env = ApiEnv.create(tmp_path)
    inc = make_incident("cam-dajiaqiao-entrance", episode="major", severity=Severity.major)
    env.service.ingest_incident(inc)
    with TestClient(env.app) as client:
        assert inc.id not in ids(client, env, VILLAGE_OP)
        assert inc.id in ids(client, env, "sup-anchang")
        assert (
            client.post(f"/api/v1/incidents/{inc.id}/accept", headers=env.headers(VILLAGE_OP), json={}).status_code
            == 403
        )


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/api/v1/incidents", None),
        ("GET", "/api/v1/incidents/inc-x", None),
        ("POST", "/api/v1/incidents/inc-x/accept", {}),
        ("GET", "/api/v1/cameras", None),
        ("POST", "/api/v1/cameras", {"id": "cam-new", "village": "xishi"}),
        ("GET", "/api/v1/centres", None),
    ],
)
def test_missing_or_bad_token(world, method, path, body):
    _, client, _ = world
    for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}):
        r = client.request(method, path, headers=headers, json=body)
        assert r.status_code == 401, (headers, r.text)


def test_cameras_scoped_and_managed_by_engineers(tmp_path):
    env = ApiEnv.create(tmp_path)
    with TestClient(env.app) as client:
        mine = {c["id"] for c in client.get("/api/v1/cameras", headers=env.headers(OTHER_VILLAGE_OP)).json()}
        assert mine == {"cam-xishi-square"}
        assert (
            client.get("/api/v1/cameras/cam-dajiaqiao-pond", headers=env.headers(OTHER_VILLAGE_OP)).status_code == 404
        )
        body = {"id": "cam-xishi-well", "name": "西市村水井", "village": "xishi", "url": "rtsp://admin:pw@10.0.0.9/1"}
        assert client.post("/api/v1/cameras", headers=env.headers(OTHER_VILLAGE_OP), json=body).status_code == 403
        assert (
            client.post(
                "/api/v1/cameras", headers=env.headers("eng-xishi"), json={**body, "village": "dajiaqiao"}
            ).status_code
            == 403
        )  # outside the engineer's area
        r = client.post("/api/v1/cameras", headers=env.headers("eng-xishi"), json=body)
        assert r.status_code == 201, r.text
        assert r.json()["masked_url"] == "rtsp://***@10.0.0.9/1" and "pw" not in r.text
        r = client.patch("/api/v1/cameras/cam-xishi-well", headers=env.headers("eng-keqiao"), json={"enabled": False})
        assert r.status_code == 200 and r.json()["enabled"] is False
        assert client.delete("/api/v1/cameras/cam-dajiaqiao-pond", headers=env.headers("eng-xishi")).status_code == 404
        assert client.delete("/api/v1/cameras/cam-xishi-well", headers=env.headers("eng-xishi")).status_code == 204
        assert client.get("/api/v1/cameras/cam-xishi-well", headers=env.headers("admin")).status_code == 404


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_env(request, tmp_path):
    if request.param == "sqlite":
        yield ApiEnv.create(tmp_path)
        return
    from xueliang.dispatch.testing import postgres_schema

    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        env = ApiEnv.create(tmp_path, db_url=url)
        try:
            yield env
        finally:
            env.store.dispose()


def test_matrix_and_workflow_on_each_database(any_db_env):
    """The same code path on SQLite and on a real PostgreSQL: users, scoping, actions, audit."""
    env = any_db_env
    inc = make_incident("cam-dajiaqiao-entrance", episode="db")
    env.service.ingest_incident(inc)
    with TestClient(env.app) as client:
        r = client.post("/api/v1/auth/token", data={"username": VILLAGE_OP, "password": "correct-horse-battery"})
        assert r.status_code == 200
        mine = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert inc.id in {i["id"] for i in client.get("/api/v1/incidents", headers=mine).json()["items"]}
        other = env.headers(OTHER_VILLAGE_OP)
        assert client.get(f"/api/v1/incidents/{inc.id}", headers=other).status_code == 404
        assert client.post(f"/api/v1/incidents/{inc.id}/accept", headers=other, json={}).status_code == 403
        assert client.post(f"/api/v1/incidents/{inc.id}/accept", headers=mine, json={"note": "ok"}).status_code == 200
        r = client.post(f"/api/v1/incidents/{inc.id}/accept", headers=mine, json={})
        assert r.status_code == 409 and r.json()["error"] == "IllegalTransition"
        audit = client.get(f"/api/v1/incidents/{inc.id}", headers=env.headers("sup-anchang")).json()["audit"]
        assert [a["to_state"] for a in audit] == ["reported", "accepted"]
        assert client.get("/readyz").status_code == 200
