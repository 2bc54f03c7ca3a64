"""Incidents over HTTP: filters, cursor pagination, the workflow actions (legal, illegal, stale),
the live feed (SSE) and the coverage map layers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from xueliang.api.testing import ApiEnv, SseReader, make_incident
from xueliang.contracts import CameraHealth, CameraStatus, Severity
from xueliang.dispatch.clock import ManualClock

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture()
def clock():
    return ManualClock(T0)


@pytest.fixture()
def env(tmp_path, clock):
    return ApiEnv.create(tmp_path, clock=clock)


@pytest.fixture()
def client(env):
    with TestClient(env.app) as c:
        yield c


def seed(env, clock, n=7):
    """n incidents on two dajiaqiao cameras, one a minute, alternating severity general/serious."""
    out = []
    for i in range(n):
        cam = "cam-dajiaqiao-entrance" if i % 2 == 0 else "cam-dajiaqiao-pond"
        sev = Severity.general if i % 2 == 0 else Severity.serious
        inc = make_incident(
            cam, episode=f"e{i}", severity=sev, at=clock(), rule="gate-intrusion" if i % 2 == 0 else "pond"
        )
        env.service.ingest_incident(inc)
        out.append(inc)
        clock.advance(60)
    return out


def test_filters_and_cursor_pagination(env, client, clock):
    incs = seed(env, clock)
    h = env.headers("sup-anchang")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/incidents", headers=h, params=params).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i.id for i in reversed(incs)]  # newest first, each exactly once
    q = lambda **p: [i["id"] for i in client.get("/api/v1/incidents", headers=h, params=p).json()["items"]]  # noqa: E731
    assert set(q(severity=["serious"])) == {i.id for i in incs if i.severity is Severity.serious}
    assert set(q(camera_id=["cam-dajiaqiao-entrance"])) == {i.id for i in incs[::2]}
    assert set(q(rule=["pond"], severity=["general"])) == set()
    since, until = (T0 + timedelta(minutes=2)).isoformat(), (T0 + timedelta(minutes=4)).isoformat()
    assert set(q(since=since, until=until)) == {incs[2].id, incs[3].id}
    assert set(q(since="2026-03-01T08:05:00")) == {incs[5].id, incs[6].id}  # no zone: UTC
    assert len(q(state=["reported"], open_only=True)) == 7 and q(state=["closed"]) == []
    assert set(q(centre_id="dajiaqiao")) == {i.id for i in incs}
    assert client.get("/api/v1/incidents", headers=h, params={"severity": "catastrophic"}).status_code == 422
    assert client.get("/api/v1/incidents", headers=h, params={"cursor": "!!"}).status_code == 422
    assert client.get("/api/v1/incidents", headers=h, params={"centre_id": "atlantis"}).status_code == 404


def test_full_workflow_with_audit(env, client, clock):
    inc = seed(env, clock, 1)[0]
    url = f"/api/v1/incidents/{inc.id}"
    op, sup = env.headers("op-dajiaqiao"), env.headers("sup-anchang")
    steps = [
        ("accept", op, {"note": "收到"}, "accepted"),
        ("dispatch", op, {"target": "网格员张三", "note": "请核实"}, "dispatched"),
        ("receive", op, {}, "received"),
        ("handle", op, {}, "handling"),
        ("feedback", op, {"note": "已劝离"}, "feedback"),
        ("verify", sup, {"note": "属实"}, "verified"),
        ("close", sup, {"note": "办结"}, "closed"),
    ]
    for action, headers, body, state in steps:
        clock.advance(30)
        version = client.get(url, headers=headers).json()["version"]
        r = client.post(f"{url}/{action}", headers=headers, json={**body, "expected_version": version})
        assert r.status_code == 200, (action, r.text)
        assert r.json()["state"] == state
    detail = client.get(url, headers=op).json()
    assert [a["to_state"] for a in detail["audit"]] == ["reported"] + [s[3] for s in steps]
    assert detail["dispatch_target"] == "网格员张三" and detail["permitted_actions"] == []
    assert detail["audit"][-1]["actor"] == "sup-anchang" and detail["audit"][1]["note"] == "收到"


def test_operator_cannot_verify_and_illegal_or_stale_is_409(env, client, clock):
    inc = seed(env, clock, 1)[0]
    url = f"/api/v1/incidents/{inc.id}"
    op = env.headers("op-dajiaqiao")
    r = client.post(f"{url}/close", headers=op, json={})
    assert r.status_code == 403  # role may not close
    r = client.post(f"{url}/handle", headers=op, json={})
    assert r.status_code == 409 and "cannot handle an incident that is reported" in r.json()["detail"]
    v = client.get(url, headers=op).json()["version"]
    assert client.post(f"{url}/accept", headers=op, json={"expected_version": v}).status_code == 200
    r = client.post(f"{url}/reject", headers=op, json={"reason": "duplicate", "expected_version": v})
    assert r.status_code == 409 and "changed" in r.json()["detail"]
    assert client.post(f"{url}/reject", headers=op, json={}).status_code == 422  # a reason is required
    assert client.post(f"{url}/dispatch", headers=op, json={"target": " "}).status_code == 422
    assert client.post(f"{url}/dispatch", headers=op, json={"target": "qianqing"}).status_code == 422  # not below
    r = client.post(f"{url}/reject", headers=op, json={"reason": "false_alarm", "note": "树影"})
    assert r.status_code == 200 and r.json()["state"] == "rejected" and r.json()["reject_reason"] == "false_alarm"
    assert client.post("/api/v1/incidents/inc-nope/accept", headers=op, json={}).status_code == 404


def test_kpis_centres_and_camera_health(env, client, clock):
    incs = seed(env, clock, 3)
    h = env.headers("sup-anchang")
    client.post(f"/api/v1/incidents/{incs[0].id}/reject", headers=h, json={"reason": "false_alarm"})
    k = client.get("/api/v1/centres/anchang/kpis", headers=h).json()
    assert k["total"] == 3 and k["rejected"] == 1 and k["false_alarm_rate"] == pytest.approx(1 / 3)
    tree = client.get("/api/v1/centres", headers=h).json()
    assert tree["id"] == "anchang" and {c["id"] for c in tree["children"]} == {"dajiaqiao", "xishi"}
    # camera health: online for 30 min, then offline (signal loss) for 10 → 75% online over the last 40 min
    start = clock()
    env.service.ingest_health(CameraHealth(camera_id="cam-xishi-square", status=CameraStatus.online, at=start))
    clock.advance(1800)
    env.service.ingest_health(
        CameraHealth(
            camera_id="cam-xishi-square",
            status=CameraStatus.offline,
            at=clock(),
            reason="no frames",
            faults=["signal_loss"],
            scores={"signal_loss": 1.0},
        )
    )
    clock.advance(600)
    rate = client.get("/api/v1/cameras/online-rate", headers=env.headers("op-xishi"), params={"window_s": 2400}).json()
    assert rate["online_rate"] == pytest.approx(0.75)
    cam = client.get("/api/v1/cameras/cam-xishi-square", headers=env.headers("op-xishi")).json()
    assert cam["status"] == "offline" and cam["faults"] == ["signal_loss"] and cam["placement"]["azimuth_deg"] == 200
    rules = client.get("/api/v1/cameras/cam-dajiaqiao-entrance/rules", headers=env.headers("op-dajiaqiao")).json()
    assert rules[0]["name"] == "gate-intrusion" and rules[0]["severity"] == "serious" and rules[0]["zone"] == "gate"
    zones = client.get("/api/v1/cameras/cam-dajiaqiao-entrance/zones", headers=env.headers("op-dajiaqiao")).json()
    assert zones["zones"][0]["name"] == "gate"


def test_map_sectors_and_coverage_layer(env, client):
    fc = client.get("/api/v1/map", headers=env.headers("sup-anchang")).json()
    cams = {f["properties"]["id"] for f in fc["features"] if f["properties"]["kind"] == "camera"}
    assert cams == {"cam-dajiaqiao-entrance", "cam-dajiaqiao-pond", "cam-xishi-square"}
    sector = next(
        f
        for f in fc["features"]
        if f["properties"]["kind"] == "sector" and f["properties"]["id"] == "cam-dajiaqiao-entrance"
    )
    ring = sector["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] == [120.4561, 30.0912]
    # azimuth 90° (east) ± 35°: every arc point lies east of the camera, at 60 m
    for lon, lat in ring[1:-1]:
        dx = (lon - 120.4561) * 111320 * 0.86548
        dy = (lat - 30.0912) * 111320
        assert dx > 0 and abs((dx * dx + dy * dy) ** 0.5 - 60) < 0.5
    layer = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"kind": "blind", "area_m2": 1200},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[120.457, 30.091], [120.458, 30.091], [120.458, 30.092], [120.457, 30.091]]],
                },
            },
            {
                "type": "Feature",
                "properties": {"kind": "candidate"},
                "geometry": {"type": "Point", "coordinates": [120.4575, 30.0915]},
            },
        ],
    }
    assert client.put("/api/v1/map/layers/plan-1", headers=env.headers("op-dajiaqiao"), json=layer).status_code == 403
    bad = {"type": "FeatureCollection", "features": [{**layer["features"][0], "properties": {"kind": "lake"}}]}
    assert client.put("/api/v1/map/layers/plan-1", headers=env.headers("eng-keqiao"), json=bad).status_code == 422
    r = client.put(
        "/api/v1/map/layers/plan-1", headers=env.headers("eng-keqiao"), json=layer, params={"centre_id": "anchang"}
    )
    assert r.status_code == 200 and r.json()["features"] == 2
    kinds = [
        f["properties"]["kind"]
        for f in client.get("/api/v1/map", headers=env.headers("sup-anchang")).json()["features"]
    ]
    assert kinds.count("blind") == 1 and kinds.count("candidate") == 1
    other = client.get("/api/v1/map", headers=env.headers("sup-qianqing")).json()["features"]
    assert not [f for f in other if f["properties"]["kind"] in ("blind", "candidate")]


@pytest.mark.slow
def test_live_feed_filters_by_subtree_and_replays(tmp_path):
    env = ApiEnv.create(tmp_path)
    with env.serve() as base:

        def reader(user, **params):
            q = "&".join(f"{k}={v}" for k, v in params.items())
            return SseReader(f"{base}/api/v1/feed?{q}", env.headers(user))

        mine, other, township = reader("op-dajiaqiao"), reader("op-xishi"), reader("sup-anchang")
        for r in (mine, other, township):
            assert r.status == 200
            assert r.next(lambda e: e.event == "hello").event == "hello"
        inc = make_incident("cam-dajiaqiao-entrance", episode="live")
        env.service.ingest_incident(inc)
        ev = mine.next(lambda e: e.event == "incident")
        body = json.loads(ev.data)
        assert body["kind"] == "incident.created" and body["incident"]["id"] == inc.id
        assert body["incident"]["permitted_actions"] == ["accept", "reject"]
        assert json.loads(township.next(lambda e: e.event == "incident").data)["incident"]["id"] == inc.id
        # escalation to the township: the village's wall is told to drop it
        env.service.transition(inc.id, "escalate", _actor("sup-anchang", "supervisor", "anchang"), "需街道处置")
        gone = json.loads(mine.next(lambda e: e.event == "incident").data)
        assert gone["visible"] is False and gone["incident"] is None
        up = json.loads(township.next(lambda e: json.loads(e.data)["kind"] == "incident.escalated").data)
        assert up["incident"]["owner_centre_id"] == "anchang"
        # camera status for the other village reaches only its subtree
        env.service.ingest_health(
            CameraHealth(
                camera_id="cam-xishi-square", status=CameraStatus.offline, at=datetime.now(UTC), faults=["signal_loss"]
            )
        )
        cam = json.loads(other.next(lambda e: e.event == "camera").data)
        assert cam["camera_id"] == "cam-xishi-square"
        with pytest.raises(TimeoutError):
            other.next(lambda e: e.event == "incident", timeout=0.5)  # never saw dajiaqiao's incident
        # a county supervisor narrowing the feed to one township; another township is refused
        narrowed = reader("sup-keqiao", centre_id="qianqing")
        narrowed.next(lambda e: e.event == "hello")
        assert reader("op-dajiaqiao", centre_id="xishi").status == 403
        env.service.ingest_incident(make_incident("cam-dongjia-bridge", episode="q", rule="bridge"))
        env.service.ingest_incident(make_incident("cam-xishi-square", episode="x", rule="square"))
        got = json.loads(narrowed.next(lambda e: e.event == "incident").data)["incident"]["camera_id"]
        assert got == "cam-dongjia-bridge"
        with pytest.raises(TimeoutError):
            narrowed.next(lambda e: e.event == "incident", timeout=0.5)  # xishi is not in qianqing
        # reconnect with Last-Event-ID: the missed events are replayed in order
        first_id = int(ev.id)
        again = SseReader(f"{base}/api/v1/feed", {**env.headers("sup-anchang"), "Last-Event-ID": str(first_id - 1)})
        again.next(lambda e: e.event == "hello")
        kinds = [json.loads(again.next(lambda e: e.event == "incident").data)["kind"] for _ in range(2)]
        assert kinds == ["incident.created", "incident.escalated"]
        for r in (mine, other, township, again, narrowed):
            r.close()


def _actor(name, role, centre):
    from xueliang.dispatch.workflow import Actor, Role

    return Actor(name, Role(role), centre)


def test_server_shutdown_ends_open_feed_streams(tmp_path):
    """An SSE response never completes by itself: make_server ends the streams so shutdown is prompt."""
    import time

    env = ApiEnv.create(tmp_path)
    with env.serve() as base:
        reader = SseReader(f"{base}/api/v1/feed", env.headers("sup-keqiao"))
        reader.next(lambda e: e.event == "hello")
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 2.0
    assert reader.join(5)  # the client saw its stream end
    reader.close()


@pytest.mark.slow
def test_live_feed_survives_a_database_error(tmp_path, monkeypatch):
    """A failing read of the event log is logged and retried; no event is lost."""
    env = ApiEnv.create(tmp_path)
    with env.serve() as base:
        reader = SseReader(f"{base}/api/v1/feed", env.headers("op-dajiaqiao"))
        reader.next(lambda e: e.event == "hello")
        hub = env.app.state.feed
        real = hub.store.events_after
        calls = {"n": 0}

        def flaky(after, limit):
            calls["n"] += 1
            if calls["n"] <= 2:
                raise OSError("database is locked")
            return real(after, limit)

        monkeypatch.setattr(hub.store, "events_after", flaky)
        inc = make_incident("cam-dajiaqiao-entrance", episode="flaky")
        env.service.ingest_incident(inc)
        body = json.loads(reader.next(lambda e: e.event == "incident", timeout=8).data)
        assert body["incident"]["id"] == inc.id and calls["n"] > 2
        reader.close()
