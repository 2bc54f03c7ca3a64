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


# ------------------------------------------------------------ issue 16: scope and session holes
@pytest.fixture
def fresh(tmp_path):
    from xueliang.api.users import create_user

    env = ApiEnv.create(tmp_path)
    create_user(env.store, "adm-anchang", "correct-horse-battery", "admin", "anchang")
    with TestClient(env.app) as client:
        yield env, client


def test_township_admin_manages_only_its_subtree(fresh):
    """#5: an admin of a township neither reads nor changes accounts above or beside it."""
    env, client = fresh
    h = env.headers("adm-anchang")
    listed = {u["username"] for u in client.get("/api/v1/users", headers=h).json()}
    assert listed == {"adm-anchang", "op-dajiaqiao", "op-xishi", "sup-anchang", "eng-xishi"}
    for name in ("admin", "sup-keqiao", "sup-qianqing", "eng-keqiao"):  # city, county, other township
        assert client.get(f"/api/v1/users/{name}", headers=h).status_code == 404
        assert client.patch(f"/api/v1/users/{name}", headers=h, json={"active": False}).status_code == 404
        assert client.delete(f"/api/v1/users/{name}", headers=h).status_code == 404
    assert client.get("/api/v1/users/op-xishi", headers=h).status_code == 200
    # nor can it move its own people above itself, or create accounts there
    assert client.patch("/api/v1/users/op-xishi", headers=h, json={"centre_id": "keqiao"}).status_code == 403
    body = {"username": "new-county", "password": "correct-horse-battery", "role": "admin", "centre_id": "keqiao"}
    assert client.post("/api/v1/users", headers=h, json=body).status_code == 403
    assert client.get("/api/v1/users/admin", headers=env.headers("admin")).json()["active"] is True
    # the city admin still manages everyone
    assert client.get("/api/v1/users/sup-keqiao", headers=env.headers("admin")).status_code == 200


def test_live_feed_closes_when_the_account_is_disabled(tmp_path):
    """#6: an open SSE stream ends once its account is disabled (re-read every feed_recheck_s)."""
    from xueliang.api.testing import SseReader

    env = ApiEnv.create(tmp_path)
    env.app.state.feed_recheck_s = 0.3
    with env.serve() as base:
        reader = SseReader(f"{base}/api/v1/feed", env.headers("op-xishi"))
        try:
            assert reader.status == 200
            reader.next(lambda e: e.event == "hello")
            assert not reader.join(1.0)  # a live stream stays open
            import httpx

            r = httpx.patch(f"{base}/api/v1/users/op-xishi", headers=env.headers("admin"), json={"active": False})
            assert r.status_code == 200
            assert reader.join(5.0), "the feed kept streaming to a disabled account"
        finally:
            reader.close()


def test_failed_logins_lock_the_name_per_client_address(tmp_path):
    """#8: five wrong passwords from one address lock that address out, not the operator elsewhere."""
    env = ApiEnv.create(tmp_path)
    with TestClient(env.app, client=("203.0.113.9", 40000)) as guesser:
        for _ in range(5):
            r = guesser.post("/api/v1/auth/token", data={"username": "op-xishi", "password": "guess-123"})
            assert r.status_code == 401
        r = guesser.post("/api/v1/auth/token", data={"username": "op-xishi", "password": "correct-horse-battery"})
        assert r.status_code == 429 and "203.0.113.9" in r.json()["detail"]
    with TestClient(env.app, client=("10.1.2.3", 40000)) as operator:
        r = operator.post("/api/v1/auth/token", data={"username": "op-xishi", "password": "correct-horse-battery"})
        assert r.status_code == 200


def test_request_bodies_are_limited_and_checked_before_they_are_read(world):
    """#9: a body over the limit is 413 before parsing; a body without a valid token is 401 unread."""
    env, client, iid = world
    limit = env.settings.api.max_body_bytes
    big = b"x" * (limit + 1)
    r = client.post(f"/api/v1/incidents/{iid}/accept", headers=env.headers(VILLAGE_OP), content=big)
    assert r.status_code == 413 and str(limit) in r.json()["detail"]
    r = client.post("/api/v1/auth/token", content=big)  # the login form too
    assert r.status_code == 413

    def chunks():  # no Content-Length: counted while it streams
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536

    r = client.post(f"/api/v1/incidents/{iid}/accept", headers=env.headers(VILLAGE_OP), content=chunks())
    assert r.status_code == 413
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        r = client.post(f"/api/v1/incidents/{iid}/accept", headers=headers, content=b'{"note": "x"}')
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    detail = client.get(f"/api/v1/incidents/{iid}", headers=env.headers(VILLAGE_OP)).json()
    assert detail["state"] == "reported"  # nothing happened


def test_permission_is_checked_before_the_version(world):
    """#11: an actor outside the incident's area gets 403 whatever version it sends (409 would reveal it)."""
    env, client, iid = world
    version = client.get(f"/api/v1/incidents/{iid}", headers=env.headers(VILLAGE_OP)).json()["version"]
    for sent in (version, version + 7):
        r = client.post(
            f"/api/v1/incidents/{iid}/accept", headers=env.headers(OTHER_VILLAGE_OP), json={"expected_version": sent}
        )
        assert r.status_code == 403, r.text
        assert str(version) not in r.json()["detail"].replace(iid, "")
    r = client.post(f"/api/v1/incidents/{iid}/accept", headers=env.headers(VILLAGE_OP), json={"expected_version": 99})
    assert r.status_code == 409  # the owner still gets the stale-version answer
