"""事件归并: repeated alarms of one camera and rule become occurrences of one open case, on SQLite
and a real PostgreSQL. One camera raising the same rule 20 times in 10 minutes is one open case
with 20 occurrences, each with its own snapshot; the raw incidents stay in the store and the
audit trail; later revisions of merged incidents update their occurrence; a different zone or
rule, a closed case, a gap longer than the window or a window of 0 opens a new case."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from xueliang.api.testing import ApiEnv
from xueliang.api.testing import make_incident as api_incident
from xueliang.api.testing import sample_settings as api_settings
from xueliang.contracts import Severity
from xueliang.dispatch.clock import ManualClock
from xueliang.dispatch.models import AuditRow, IncidentRow, OccurrenceRow
from xueliang.dispatch.service import DispatchService
from xueliang.dispatch.store import Store, alembic_config
from xueliang.dispatch.testing import make_incident, postgres_schema, sample_settings
from xueliang.dispatch.views import IncidentFilter
from xueliang.dispatch.workflow import Action, Actor, Role

SUP = Actor("zhao", Role.supervisor, "county")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/dispatch.db"
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    st = Store.from_url(db_url)
    st.migrate()
    yield st
    st.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def service(store: Store, clock: ManualClock, **merge: object) -> DispatchService:
    svc = DispatchService(store, sample_settings(dispatch={"merge": {"window_s": 600, **merge}}), clock)
    svc.sync_config()
    return svc


def open_cases(svc: DispatchService) -> list:
    return svc.list_incidents(IncidentFilter(open_only=True), limit=500).items


def test_twenty_alarms_in_ten_minutes_are_one_case_with_twenty_occurrences(store: Store, clock: ManualClock) -> None:
    svc = service(store, clock)
    t0 = clock()
    incidents = []
    for n in range(20):  # one every 30 s: 20 in 9.5 minutes
        inc = make_incident(f"e{n}", clock(), severity=Severity.serious)
        incidents.append(inc)
        result = svc.ingest_incident(inc)
        assert result.outcome == ("created" if n == 0 else "merged")
        assert result.case_id == incidents[0].id and result.incident_id == inc.id
        clock.advance(30)
    assert clock() - t0 == timedelta(minutes=10)
    cases = open_cases(svc)
    assert len(cases) == 1
    case = svc.get_incident(cases[0].id)
    assert case.id == incidents[0].id and case.occurrence_count == 20
    assert [o.incident_id for o in case.occurrences] == [i.id for i in reversed(incidents)]  # newest first
    assert len({o.snapshot_url for o in case.occurrences}) == 20  # each its own snapshot
    assert case.snapshot_url == incidents[-1].snapshot_url  # the card shows the latest
    assert case.last_occurrence_at == incidents[-1].updated_at and case.started_at == incidents[0].started_at
    assert case.revision == 0 and case.state == "reported"
    # the raw incidents stay in the store and the audit trail
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(OccurrenceRow)) == 20
        assert s.scalar(select(func.count()).select_from(IncidentRow)) == 1
        merges = list(s.scalars(select(AuditRow.note).where(AuditRow.action == "merge").order_by(AuditRow.id)))
    assert len(merges) == 19 and incidents[5].id in merges[4] and merges[4].startswith("occurrence 6:")
    assert [a.action for a in case.audit] == ["report"] + ["merge"] * 19
    # the owner was told once, not twenty times
    assert [n.kind for n in case.notifications].count("owner") == 1
    # redelivery changes nothing; a newer revision of a merged incident updates its occurrence
    assert svc.ingest_incident(incidents[7]).outcome == "stale"
    again = make_incident("e7", incidents[7].updated_at, severity=Severity.serious, revision=3, dwell_s=9.0)
    assert svc.ingest_incident(again).outcome == "updated"
    case = svc.get_incident(case.id)
    occ = next(o for o in case.occurrences if o.incident_id == again.id)
    assert occ.revision == 3 and occ.details["dwell_s"] == 9.0 and occ.snapshot_url == again.snapshot_url
    assert case.snapshot_url == incidents[-1].snapshot_url and case.occurrence_count == 20
    assert svc.case_of(again.id) == case.id and svc.case_of(case.id) == case.id


def test_what_does_not_merge(store: Store, clock: ManualClock) -> None:
    svc = service(store, clock, by_rule_type={"fire_smoke": 0})
    first = make_incident("a", clock())
    assert svc.ingest_incident(first).outcome == "created"
    clock.advance(10)
    # another zone, another rule, another camera: new cases
    assert svc.ingest_incident(make_incident("b", clock(), zone="yard")).outcome == "created"
    assert (
        svc.ingest_incident(make_incident("c", clock(), rule="gate-loiter", rule_type="loitering")).outcome == "created"
    )
    assert svc.ingest_incident(make_incident("d", clock(), camera_id="cam-b1-school")).outcome == "created"
    # a rule type whose window is 0 never merges
    fire = [make_incident(f"f{n}", clock(), rule="gate-fire", rule_type="fire_smoke") for n in range(2)]
    assert [svc.ingest_incident(f).outcome for f in fire] == ["created", "created"]
    # within the window: merged; after a gap longer than the window: a new case
    clock.advance(590)
    assert svc.ingest_incident(make_incident("e", clock())).outcome == "merged"
    clock.advance(601)
    assert svc.ingest_incident(make_incident("g", clock())).outcome == "created"
    # a closed (here: rejected) case takes no more occurrences
    svc.transition(make_incident("g", clock()).id, Action.reject, SUP, "", reason="duplicate")
    clock.advance(5)
    assert svc.ingest_incident(make_incident("h", clock())).outcome == "created"


def test_a_higher_grade_occurrence_raises_the_case(store: Store, clock: ManualClock) -> None:
    svc = service(store, clock)
    first = make_incident("a", clock(), severity=Severity.general)
    svc.ingest_incident(first)
    clock.advance(20)
    assert svc.ingest_incident(make_incident("b", clock(), severity=Severity.serious)).outcome == "merged"
    case = svc.get_incident(first.id)
    assert case.severity == "serious" and case.occurrence_count == 2
    assert [a.action for a in case.audit] == ["report", "merge", "raise_severity"]


def test_migration_keeps_existing_incidents_as_one_occurrence_cases(tmp_path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path}/old.db"
    st = Store.from_url(url)
    st.migrate()
    clock = ManualClock()
    svc = DispatchService(st, sample_settings(), clock)
    svc.sync_config()
    inc = make_incident("old", clock())
    svc.ingest_incident(inc)
    with st.engine.begin() as conn:  # back to the schema before merging, then up again
        command.downgrade(alembic_config(conn), "0001")
    with st.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    st.migrate()
    case = svc.get_incident(inc.id)
    assert case.occurrence_count == 1 and [o.incident_id for o in case.occurrences] == [inc.id]
    assert case.last_occurrence_at == inc.updated_at
    st.dispose()


def test_api_card_counts_and_merged_snapshots_follow_the_case_scope(tmp_path) -> None:
    """The wall card carries the count and the latest snapshot; a merged incident's snapshot is served
    to whoever sees its case and 404 to another village."""
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    settings = api_settings(snaps).model_copy(deep=True)
    settings.dispatch.merge.window_s = 600
    env = ApiEnv.create(tmp_path, settings=settings)
    incs = [api_incident("cam-dajiaqiao-entrance", episode=f"r{n}") for n in range(3)]
    for inc in incs:
        env.write_snapshot(inc)
        env.service.ingest_incident(inc)
    with TestClient(env.app) as client:
        wall = client.get("/api/v1/wall", headers=env.headers("op-dajiaqiao")).json()
        assert wall["total"] == 1
        card = wall["items"][0]
        assert card["occurrence_count"] == 3 and card["snapshot_url"] == incs[-1].snapshot_url
        detail = client.get(f"/api/v1/incidents/{card['id']}", headers=env.headers("op-dajiaqiao")).json()
        assert [o["incident_id"] for o in detail["occurrences"]] == [i.id for i in reversed(incs)]
        url = f"/snapshots/{incs[1].id}.jpg"  # a merged occurrence's own snapshot
        assert client.get(url, headers=env.headers("op-dajiaqiao")).status_code == 200
        assert client.get(url, headers=env.headers("sup-anchang")).status_code == 200
        assert client.get(url, headers=env.headers("op-xishi")).status_code == 404
