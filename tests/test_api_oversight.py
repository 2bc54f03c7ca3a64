"""督办 over HTTP: the per-child KPI table and ranking (a centre is charged with the cases it let
escalate away), urging an owner (notified, audited, state unchanged, live-feed event), the
notification inbox, and cases escalated away staying readable — never actionable — below."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from xueliang.api.testing import ApiEnv, make_incident
from xueliang.contracts import Severity
from xueliang.dispatch.clock import ManualClock
from xueliang.dispatch.testing import postgres_schema
from xueliang.dispatch.workflow import Action, Actor, Role

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SUP = Actor("sup-anchang", Role.supervisor, "anchang")
OP = Actor("op-dajiaqiao", Role.operator, "dajiaqiao")


@pytest.fixture()
def clock():
    return ManualClock(T0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request, tmp_path, clock):
    if request.param == "sqlite":
        yield ApiEnv.create(tmp_path, clock=clock)
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        env = ApiEnv.create(tmp_path, clock=clock, db_url=url)
        yield env
        env.store.dispose()


@pytest.fixture()
def client(env):
    with TestClient(env.app) as c:
        yield c


def ingest(env, clock, camera, episode, severity, **kw):
    inc = make_incident(camera, episode=episode, severity=severity, at=clock(), **kw)
    env.service.ingest_incident(inc)
    return inc.id


def test_child_kpis_rank_and_charge_escalations(env, client, clock):
    fast = [ingest(env, clock, "cam-dajiaqiao-entrance", f"d{i}", Severity.general) for i in range(2)]
    fa = ingest(env, clock, "cam-dajiaqiao-pond", "fa", Severity.general, rule="pond")
    slow = ingest(env, clock, "cam-xishi-square", "x", Severity.serious, rule="square")
    fire = ingest(env, clock, "cam-dajiaqiao-entrance", "fire", Severity.major, rule="fire", rule_type="fire_smoke")
    clock.advance(60)
    for iid in fast:
        env.service.transition(iid, Action.accept, OP, "")
    env.service.transition(fa, Action.reject, OP, "", reason="false_alarm")
    clock.advance(900)  # the serious case at 西市村 and the township's major fire miss their accept windows
    env.service.tick()
    assert env.service.get_incident(slow).owner_centre_id == "anchang"
    assert env.service.get_incident(fire).owner_centre_id == "shaoxing"  # township, county: both let it go

    h = env.headers("sup-anchang")
    rows = client.get("/api/v1/centres/anchang/kpis/children", headers=h).json()
    by = {r["centre_id"]: r for r in rows}
    assert [r["centre_id"] for r in rows] == ["dajiaqiao", "xishi"] and [r["rank"] for r in rows] == [1, 2]
    assert by["dajiaqiao"]["total"] == 4 and by["dajiaqiao"]["accept_p50_s"] == 60.0
    assert by["dajiaqiao"]["false_alarm_rate"] == 0.25 and by["dajiaqiao"]["escalations"] == 0
    # 西市村 let its case escalate: it is charged with it although the township owns it now
    assert by["xishi"]["total"] == 1 and by["xishi"]["overdue_rate"] == 1.0 and by["xishi"]["escalations"] == 1
    assert by["xishi"]["unaccepted"] == 1
    # the county's table: the township that let its fire go red has a non-zero overdue rate
    county = {
        r["centre_id"]: r
        for r in client.get("/api/v1/centres/keqiao/kpis/children", headers=env.headers("sup-keqiao")).json()
    }
    assert county["anchang"]["total"] == 5 and county["anchang"]["overdue_rate"] == pytest.approx(0.4)
    assert (
        county["anchang"]["escalations"] == 2 and county["qianqing"]["total"] == 0 and county["qianqing"]["rank"] == 1
    )
    assert client.get("/api/v1/centres/dajiaqiao/kpis/children", headers=env.headers("op-dajiaqiao")).json() == []
    assert client.get("/api/v1/centres/qianqing/kpis/children", headers=h).status_code == 403
    assert client.get("/api/v1/centres/atlantis/kpis/children", headers=h).status_code == 404


def test_urge_notifies_the_owner_and_is_audited(env, client, clock):
    iid = ingest(env, clock, "cam-dajiaqiao-entrance", "u", Severity.general)
    own = ingest(env, clock, "cam-dajiaqiao-entrance", "own", Severity.major, rule="fire", rule_type="fire_smoke")
    seen = []
    env.service.subscribe(seen.append)
    r = client.post(
        f"/api/v1/incidents/{iid}/urge", headers=env.headers("sup-anchang"), json={"note": "请十分钟内受理"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "reported"
    detail = client.get(f"/api/v1/incidents/{iid}", headers=env.headers("op-dajiaqiao")).json()
    assert detail["audit"][-1]["action"] == "urge" and detail["audit"][-1]["note"] == "请十分钟内受理"
    assert detail["audit"][-1]["actor"] == "sup-anchang" and detail["state"] == "reported"
    inbox = client.get("/api/v1/centres/dajiaqiao/notifications", headers=env.headers("op-dajiaqiao")).json()
    urge = next(n for n in inbox if n["kind"] == "urge")
    assert urge["incident_id"] == iid and "请十分钟内受理" in urge["note"] and urge["read_at"] is None
    assert [e.kind.value for e in seen] == ["incident.urged"] and seen[0].payload["by"] == "sup-anchang"

    # the inbox: mark read (ids of other centres are ignored)
    other = client.get("/api/v1/centres/anchang/notifications", headers=env.headers("sup-anchang")).json()
    ids = [urge["id"], *[n["id"] for n in other if n["centre_id"] == "anchang"][:1]]
    r = client.post(
        "/api/v1/centres/dajiaqiao/notifications/read", headers=env.headers("op-dajiaqiao"), json={"ids": ids}
    )
    assert r.json() == {"marked": 1}
    unread = client.get(
        "/api/v1/centres/dajiaqiao/notifications", headers=env.headers("op-dajiaqiao"), params={"unread_only": True}
    ).json()
    assert urge["id"] not in [n["id"] for n in unread]
    assert (
        client.post(
            "/api/v1/centres/xishi/notifications/read", headers=env.headers("op-dajiaqiao"), json={"ids": [1]}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/centres/dajiaqiao/notifications/read", headers=env.headers("op-dajiaqiao"), json={"ids": []}
        ).status_code
        == 422
    )
    for bad in ([0], [2**70], ["x"], list(range(1, 502))):  # found by Schemathesis: a huge id was a 500
        r = client.post(
            "/api/v1/centres/dajiaqiao/notifications/read", headers=env.headers("op-dajiaqiao"), json={"ids": bad}
        )
        assert r.status_code == 422, (bad, r.text)

    def urge_as(user, incident, note="快"):
        return client.post(
            f"/api/v1/incidents/{incident}/urge", headers=env.headers(user), json={"note": note}
        ).status_code

    assert urge_as("op-dajiaqiao", iid) == 403  # operators do not urge
    assert urge_as("eng-keqiao", iid) == 403
    assert urge_as("sup-qianqing", iid) == 403  # another township's area
    assert urge_as("sup-anchang", own) == 403  # its own case: act, do not urge
    assert urge_as("sup-keqiao", own) == 200  # the county urges the township
    assert urge_as("sup-anchang", iid, "   ") == 422
    assert urge_as("sup-anchang", iid, "x" * 501) == 422
    assert urge_as("sup-anchang", "no-such-incident") == 404
    env.service.transition(iid, Action.reject, OP, "", reason="duplicate")
    assert urge_as("sup-anchang", iid) == 409


def test_escalated_away_cases_stay_readable_below_never_actionable(env, client, clock):
    iid = ingest(env, clock, "cam-dajiaqiao-entrance", "e", Severity.general)
    env.service.transition(iid, Action.escalate, SUP, "需街道处置")
    op = env.headers("op-dajiaqiao")
    got = client.get(f"/api/v1/incidents/{iid}", headers=op)
    assert got.status_code == 200 and got.json()["owner_centre_id"] == "anchang"
    assert got.json()["permitted_actions"] == []
    assert client.post(f"/api/v1/incidents/{iid}/accept", headers=op, json={}).status_code == 403
    away = client.get("/api/v1/wall", headers=op, params={"scope": "away"}).json()
    assert [i["id"] for i in away["items"]] == [iid] and away["items"][0]["permitted_actions"] == []
    assert client.get("/api/v1/wall", headers=op).json()["total"] == 0  # not on its open wall
    assert client.get("/api/v1/wall", headers=env.headers("sup-anchang"), params={"scope": "away"}).json()["total"] == 0
    assert client.get(f"/api/v1/incidents/{iid}", headers=env.headers("op-xishi")).status_code == 404
    assert client.get("/api/v1/wall", headers=env.headers("admin"), params={"scope": "away"}).json()["total"] == 0
