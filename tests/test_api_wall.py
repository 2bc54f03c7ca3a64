"""The alert wall's API: SLA-first triage order over the whole set (server-side paging, so an urgent
case is never cut), urgent counts unaffected by filters, search, history, CSV export and bulk
accept / reject, with bad input answered 4xx."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from xueliang.api.testing import ApiEnv, make_incident
from xueliang.contracts import Severity
from xueliang.dispatch.clock import ManualClock
from xueliang.dispatch.testing import postgres_schema
from xueliang.dispatch.workflow import Action, Actor, Role

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


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


@pytest.fixture()
def township(env, clock):
    """At the township 安昌 (sup-anchang): 3 red cases escalated from 西市村 (accept SLA missed), one
    general case its supervisor escalated by hand, 2 yellow ones at 大家桥村, one major owned by the
    township, 60 general ones, and a critical one at another township's village (not visible)."""
    ids = {}
    ids["red"], ids["yellow"] = [], []
    for i in range(3):
        ids["red"].append(ingest(env, clock, "cam-xishi-square", f"r{i}", Severity.serious, rule="square"))
        clock.advance(1)
    clock.advance(200 - 3)
    for i in range(2):
        ids["yellow"].append(ingest(env, clock, "cam-dajiaqiao-pond", f"y{i}", Severity.serious, rule="pond"))
        clock.advance(1)
    clock.advance(100 - 2)
    ids["general"] = []
    for i in range(60):
        ids["general"].append(ingest(env, clock, "cam-dajiaqiao-entrance", f"g{i}", Severity.general))
        clock.advance(1)
    sup = Actor("sup-anchang", Role.supervisor, "anchang")
    ids["manual"] = ids["general"][10]
    env.service.transition(ids["manual"], Action.escalate, sup, "需街道处置")
    clock.advance(900 - 360)
    # a major case owned by the township and a critical one owned by the county, both recent
    ids["major"] = ingest(env, clock, "cam-dajiaqiao-entrance", "m", Severity.major)
    ids["other"] = ingest(env, clock, "cam-dongjia-bridge", "c", Severity.critical, rule="bridge")
    clock.advance(50)  # red cases due at 900 s, yellow at 200 + 720 s; generals warn at 1440 s
    env.service.tick()
    return ids


def test_triage_order_paging_and_counts(env, client, township):
    ids = township
    h = env.headers("sup-anchang")
    first = client.get("/api/v1/wall", headers=h, params={"page_size": 5}).json()
    # red first (oldest first within the same severity), then escalated to me, then yellow
    assert [i["id"] for i in first["items"]] == [*ids["red"], ids["manual"], ids["yellow"][0]]
    assert [i["urgency"] for i in first["items"]] == ["red"] * 3 + ["escalated_to_me", "yellow"]
    assert all(i["state"] == "escalated" and i["owner_centre_id"] == "anchang" for i in first["items"][:4])
    assert first["total"] == 3 + 2 + 60 + 1 and first["pages"] == 14
    assert first["counts"] == {
        "scope_total": 66,
        "red": 3,
        "yellow": 2,
        "escalated_to_me": 4,
        "critical": 0,
        "unaccepted": 66,
    }
    second = client.get("/api/v1/wall", headers=h, params={"page_size": 5, "page": 2}).json()
    # then severity (the township's major case), then the oldest general ones
    assert [i["id"] for i in second["items"]] == [ids["yellow"][1], ids["major"], *ids["general"][:3]]
    every = []
    for page in range(1, 15):
        every += [
            i["id"]
            for i in client.get("/api/v1/wall", headers=h, params={"page_size": 5, "page": page}).json()["items"]
        ]
    assert len(every) == len(set(every)) == 66  # each exactly once across pages
    assert "accept" in first["items"][0]["permitted_actions"]

    # the village sees its own cases only; nothing is escalated to it
    village = client.get("/api/v1/wall", headers=env.headers("op-dajiaqiao"), params={"page_size": 3}).json()
    assert [i["id"] for i in village["items"]] == ids["yellow"] + [ids["general"][0]]
    assert village["counts"]["escalated_to_me"] == 0 and village["counts"]["red"] == 0
    # the county sees the critical case first among non-flagged ones; the township's escalations are not "to" it
    county = client.get("/api/v1/wall", headers=env.headers("sup-keqiao"), params={"page_size": 7}).json()
    assert [i["urgency"] for i in county["items"]][:5] == ["red"] * 3 + ["yellow"] * 2
    assert county["items"][5]["id"] == ids["other"] and county["counts"]["critical"] == 1
    assert county["counts"]["escalated_to_me"] == 0


def test_filters_search_do_not_hide_urgent_counts(env, client, township):
    ids = township
    h = env.headers("sup-anchang")

    def q(**p):
        page = client.get("/api/v1/wall", headers=h, params={"page_size": 200, **p}).json()
        return [i["id"] for i in page["items"]], page

    assert q(sla_flag="red")[0] == ids["red"]
    assert q(escalated_to_me="true")[0] == [*ids["red"], ids["manual"]]
    assert set(q(severity="serious")[0]) == set(ids["red"] + ids["yellow"])
    assert set(q(q="西市")[0]) == set(ids["red"])  # camera name
    assert set(q(q="POND")[0]) == set(ids["yellow"])  # camera id / rule, case-insensitive
    assert q(q="100%_")[0] == []  # LIKE wildcards are literal
    got, page = q(severity="general", camera_id="cam-dajiaqiao-entrance")
    assert len(got) == 60 and page["total"] == 60
    assert page["counts"]["red"] == 3 and page["counts"]["escalated_to_me"] == 4  # filters never hide urgent work
    assert set(q(state="escalated")[0]) == {*ids["red"], ids["manual"]}


def test_history_csv_and_bulk(env, client, township, clock):
    ids = township
    h = env.headers("sup-anchang")
    # bulk accept: two yellow cases, one case outside the area, one unknown, one stale version
    versions = {
        i["id"]: i["version"] for i in client.get("/api/v1/wall", headers=h, params={"page_size": 200}).json()["items"]
    }
    body = {
        "action": "accept",
        "note": "批量受理",
        "items": [
            {"id": ids["yellow"][0], "expected_version": versions[ids["yellow"][0]]},
            {"id": ids["yellow"][1]},
            {"id": ids["other"]},
            {"id": "no-such-incident"},
            {"id": ids["general"][0], "expected_version": versions[ids["general"][0]] + 1},
        ],
    }
    r = client.post("/api/v1/incidents/bulk", headers=h, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["done"] == 2 and out["failed"] == 3
    assert [x["status"] for x in out["results"]] == [200, 200, 403, 404, 409]
    assert out["results"][0]["incident"]["state"] == "accepted"
    audit = client.get(f"/api/v1/incidents/{ids['yellow'][1]}", headers=h).json()["audit"]
    assert audit[-1]["action"] == "accept" and audit[-1]["note"] == "批量受理" and audit[-1]["actor"] == "sup-anchang"

    # bulk reject as duplicate: they move to the history, newest closure first
    for gid in ids["general"][20:23]:
        clock.advance(5)
        r = client.post(
            "/api/v1/incidents/bulk",
            headers=h,
            json={"action": "reject", "reason": "duplicate", "items": [{"id": gid}]},
        )
        assert r.json()["done"] == 1
    hist = client.get("/api/v1/wall", headers=h, params={"scope": "closed"}).json()
    assert [i["id"] for i in hist["items"]] == list(reversed(ids["general"][20:23]))
    assert all(i["state"] == "rejected" and i["reject_reason"] == "duplicate" for i in hist["items"])
    assert client.get("/api/v1/wall", headers=h).json()["total"] == 66 - 3

    # CSV: the same rows in the same order, every page, with Chinese camera names
    r = client.get("/api/v1/wall/export.csv", headers=h, params={"severity": "serious"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert [x["id"] for x in rows] == [*ids["red"], *ids["yellow"]]
    assert rows[0]["camera_name"] == "西市村广场" and rows[0]["urgency"] == "red"
    assert rows[3]["state"] == "accepted"
    assert len(list(csv.DictReader(io.StringIO(client.get("/api/v1/wall/export.csv", headers=h).text[1:])))) == 63


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"page": 0}, 422),
        ({"page_size": 500}, 422),
        ({"scope": "everything"}, 422),
        ({"severity": "catastrophic"}, 422),
        ({"sla_flag": "blue"}, 422),
        ({"q": "x" * 101}, 422),
        ({"centre_id": "atlantis"}, 404),
        ({"centre_id": "qianqing"}, 403),
        ({"since": "yesterday"}, 422),
    ],
)
def test_wall_bad_input(env, client, params, status):
    r = client.get("/api/v1/wall", headers=env.headers("sup-anchang"), params=params)
    assert r.status_code == status, r.text
    assert client.get("/api/v1/wall").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"action": "reject", "items": [{"id": "a"}]},  # no reason
        {"action": "accept", "reason": "duplicate", "items": [{"id": "a"}]},
        {"action": "close", "items": [{"id": "a"}]},  # only accept / reject in bulk
        {"action": "accept", "items": []},
        {"action": "accept", "items": [{"id": "a"}, {"id": "a"}]},
        {"action": "accept", "items": [{"id": "a"}] * 201},
        {"action": "accept", "items": [{"id": "../etc"}]},
        {"action": "accept", "items": [{"id": "a"}], "extra": 1},
    ],
)
def test_bulk_bad_input(env, client, body):
    r = client.post("/api/v1/incidents/bulk", headers=env.headers("sup-anchang"), json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_engineer_bulk_is_forbidden_per_item(env, client, clock):
    iid = ingest(env, clock, "cam-dajiaqiao-entrance", "e", Severity.general)
    r = client.post(
        "/api/v1/incidents/bulk", headers=env.headers("eng-keqiao"), json={"action": "accept", "items": [{"id": iid}]}
    )
    assert r.status_code == 200 and r.json()["results"][0]["status"] == 403
    assert env.service.get_incident(iid).state == "reported"
