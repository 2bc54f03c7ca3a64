"""The dispatch store and service on SQLite and on a real PostgreSQL (same code path).

PostgreSQL comes from ``deploy/postgres/postgres.sh start`` via XL_POSTGRES_URL; each
test gets its own schema there (``search_path``), dropped afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from xueliang.contracts import CameraHealth, CameraStatus, Severity
from xueliang.dispatch.changes import ChangeEvent, EventKind
from xueliang.dispatch.clock import ManualClock
from xueliang.dispatch.models import AuditRow, Base, IncidentRow, NotificationRow
from xueliang.dispatch.service import DispatchService
from xueliang.dispatch.store import Store
from xueliang.dispatch.testing import make_incident, postgres_schema, sample_settings
from xueliang.dispatch.views import CameraCreate, CameraUpdate, IncidentFilter
from xueliang.dispatch.workflow import (
    Action,
    Actor,
    Forbidden,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    Role,
    StaleRevision,
    State,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/dispatch.db"
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    st = Store.from_url(db_url)
    st.migrate()
    yield st
    st.dispose()


@pytest.fixture
def svc(store: Store, clock: ManualClock) -> DispatchService:
    s = DispatchService(store, sample_settings(), clock)
    s.sync_config()
    return s


OP_A1 = Actor("li", Role.operator, "village-a1")
SUP_COUNTY = Actor("zhao", Role.supervisor, "county")


def test_migrations_create_exactly_the_model_schema(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    assert store.current_revision() == "0002"
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    store.migrate()  # idempotent


def test_upsert_by_incident_id_updates_evidence_and_never_goes_back(svc: DispatchService, clock: ManualClock) -> None:
    t0 = clock()
    first = make_incident(1, t0, revision=0)
    assert svc.ingest_incident(first).outcome == "created"
    clock.advance(5)
    assert svc.ingest_incident(make_incident(1, clock(), revision=2, dwell_s=42.0)).outcome == "updated"
    assert svc.ingest_incident(make_incident(1, clock(), revision=1, dwell_s=1.0)).outcome == "stale"
    assert svc.ingest_incident(make_incident(1, clock(), revision=2)).outcome == "stale"
    got = svc.get_incident(first.id)
    assert got.revision == 2 and got.details["dwell_s"] == 42.0
    assert got.snapshot_url == "/snapshots/1-2.jpg" and got.boxes[0]["xyxy"][3] == 122.0
    assert got.reported_at == t0  # the SLA clock keeps the first report
    assert [a.action for a in got.audit] == ["report"]
    with svc.store.read() as s:
        assert s.scalar(select(func.count()).select_from(IncidentRow)) == 1
    # routing at creation: major → village owns, township and county notified
    assert got.owner_centre_id == "village-a1"
    assert {(n.centre_id, n.kind) for n in got.notifications} == {
        ("village-a1", "owner"),
        ("town-a", "notify"),
        ("county", "notify"),
    }


def test_full_workflow_is_audited_step_by_step(svc: DispatchService, clock: ManualClock) -> None:
    inc = make_incident(2, clock(), severity=Severity.general)
    svc.ingest_incident(inc)
    steps = [
        (Action.accept, {}),
        (Action.dispatch, {"target": "派出所"}),
        (Action.receive, {}),
        (Action.handle, {}),
        (Action.feedback, {}),
        (Action.verify, {}),
        (Action.close, {}),
    ]
    sup = Actor("chen", Role.supervisor, "village-a1")
    for action, kw in steps:
        clock.advance(60)
        view = svc.transition(inc.id, action, sup, note=f"step {action.value}", **kw)
    assert view.state is State.closed and view.closed_at == clock()
    detail = svc.get_incident(inc.id)
    trail = [(a.action, a.from_state, a.to_state, a.actor, a.centre_id) for a in detail.audit]
    assert trail == [("report", None, "reported", "system", None)] + [
        (a.value, f, t, "chen", "village-a1")
        for (a, _), (f, t) in zip(
            steps,
            [
                ("reported", "accepted"),
                ("accepted", "dispatched"),
                ("dispatched", "received"),
                ("received", "handling"),
                ("handling", "feedback"),
                ("feedback", "verified"),
                ("verified", "closed"),
            ],
            strict=True,
        )
    ]
    assert [a.at for a in detail.audit] == sorted(a.at for a in detail.audit)
    assert detail.audit[2].note == "to 派出所: step dispatch"
    assert detail.dispatch_target == "派出所"
    k = svc.kpis()
    assert k.closed == 1 and k.on_time_closure_rate == 1.0 and k.time_to_close.mean_s == 7 * 60
    assert k.time_to_accept.mean_s == 60 and k.resolved_share_by_tier == {"village": 1.0}


def test_illegal_and_forbidden_transitions_are_refused_with_clear_errors(
    svc: DispatchService, clock: ManualClock
) -> None:
    inc = make_incident(3, clock())
    svc.ingest_incident(inc)
    with pytest.raises(
        IllegalTransition,
        match=r"cannot close an incident that is reported \(legal now: "
        r"accept, escalate, reject\)",
    ):
        svc.transition(inc.id, Action.close, SUP_COUNTY)
    with pytest.raises(Forbidden, match="role operator may not close"):
        svc.transition(inc.id, Action.close, OP_A1)
    with pytest.raises(Forbidden, match="outside village-b1's area"):
        svc.transition(inc.id, Action.accept, Actor("x", Role.operator, "village-b1"))
    with pytest.raises(InvalidRequest, match="reject needs a reason"):
        svc.transition(inc.id, Action.reject, OP_A1)
    with pytest.raises(InvalidRequest, match="unknown action 'open'"):
        svc.transition(inc.id, "open", OP_A1)
    with pytest.raises(NotFound):
        svc.transition("inc-missing", Action.accept, OP_A1)
    v = svc.transition(inc.id, Action.accept, OP_A1)
    with pytest.raises(StaleRevision):
        svc.transition(inc.id, Action.dispatch, OP_A1, target="village-a1", expected_version=v.version - 1)
    with pytest.raises(InvalidRequest, match="not under the owner"):
        svc.transition(inc.id, Action.dispatch, OP_A1, target="village-b1")
    svc.transition(inc.id, Action.reject, OP_A1, reason="false_alarm")
    with pytest.raises(IllegalTransition, match="none, it is final"):
        svc.transition(inc.id, Action.accept, OP_A1)
    # refused attempts leave no trace in the audit trail
    assert [(a.action, a.to_state) for a in svc.audit_trail(inc.id)] == [
        ("report", "reported"),
        ("accept", "accepted"),
        ("reject", "rejected"),
    ]
    assert svc.kpis().false_alarm_rate == 1.0


def test_dispatch_to_a_centre_lets_that_centre_work_it(svc: DispatchService, clock: ManualClock) -> None:
    inc = make_incident(4, clock(), camera_id="33060312001320000017", rule_type="fire_smoke")  # town-a owns
    svc.ingest_incident(inc)
    town = Actor("sun", Role.operator, "town-a")
    svc.transition(inc.id, Action.accept, town)
    svc.transition(inc.id, Action.dispatch, town, target="village-a2")
    a2 = Actor("zhou", Role.operator, "village-a2")
    svc.transition(inc.id, Action.receive, a2)
    svc.transition(inc.id, Action.handle, a2)
    with pytest.raises(Forbidden):
        svc.transition(inc.id, Action.feedback, Actor("q", Role.operator, "village-a1"))
    assert svc.transition(inc.id, Action.feedback, a2, note="fire out").state is State.feedback
    assert [n.kind for n in svc.notifications("village-a2")] == ["dispatch"]


def test_unaccepted_major_incident_escalates_village_township_county_on_schedule(
    svc: DispatchService, clock: ManualClock
) -> None:
    """major: accept within 300 s, yellow at 80 %; each escalation gives the parent a fresh window."""
    t0 = clock()
    inc = make_incident(5, t0)
    svc.ingest_incident(inc)
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731

    clock.set(at(239))
    assert svc.tick().flags == 0
    clock.set(at(240))
    assert svc.tick().flags == 1
    v = svc.get_incident(inc.id)
    assert (v.state, v.owner_centre_id, v.sla_flag) == (State.reported, "village-a1", "yellow")

    clock.set(at(299.9))
    assert svc.tick().escalations == 0
    clock.set(at(300))
    assert svc.tick().escalations == 1
    v = svc.get_incident(inc.id)
    assert (v.state, v.owner_centre_id, v.sla_flag, v.escalation_level) == (State.escalated, "town-a", "red", 1)
    assert v.accept_due_at == at(600)
    assert ("town-a", "escalation") in {(n.centre_id, n.kind) for n in v.notifications}

    clock.set(at(599))
    assert svc.tick().escalations == 0
    clock.set(at(600))
    assert svc.tick().escalations == 1
    v = svc.get_incident(inc.id)
    assert (v.state, v.owner_centre_id, v.escalation_level) == (State.escalated, "county", 2)
    assert [(e.from_centre_id, e.to_centre_id, e.due_at, e.at) for e in v.escalations] == [
        ("village-a1", "town-a", at(300), at(300)),
        ("town-a", "county", at(600), at(600)),
    ]
    assert [(f.clock, f.level, f.centre_id, f.due_at) for f in v.sla_flags] == [
        ("accept", "yellow", "village-a1", at(240)),
        ("accept", "red", "village-a1", at(300)),
        ("accept", "yellow", "town-a", at(540)),
        ("accept", "red", "town-a", at(600)),
    ]

    # the county accepts: the accept clock stops, no further escalation
    clock.set(at(700))
    v = svc.transition(inc.id, Action.accept, SUP_COUNTY)
    assert v.state is State.accepted and v.sla_flag == "none" and v.accept_due_at is None
    clock.set(at(1200))
    assert svc.tick().escalations == 0
    assert svc.get_incident(inc.id).owner_centre_id == "county"
    esc_audit = [a for a in svc.audit_trail(inc.id) if a.action == "escalate"]
    assert [a.actor for a in esc_audit] == ["system", "system"] and "village-a1 → town-a" in esc_audit[0].note


def test_a_raised_severity_moves_the_case_up_and_shortens_its_windows(svc: DispatchService, clock: ManualClock) -> None:
    """A later revision grading the event higher (a crowd swells, a fire spreads) re-routes it: the
    grade's owner takes it over when it sits above the current one, the running SLA windows shrink
    to the new grade's, the grade's centres are told; a lower grade later never lowers it."""
    t0 = clock()
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    inc = make_incident(20, t0, severity=Severity.general)
    svc.ingest_incident(inc)
    v = svc.get_incident(inc.id)
    assert (v.owner_centre_id, v.accept_due_at, v.close_due_at) == ("village-a1", at(1800), at(259200))
    start = svc.store.last_event_id()

    # serious: still the village's (accept 900 s from the raise, not from the report), township told
    clock.set(at(60))
    assert svc.ingest_incident(make_incident(20, clock(), severity=Severity.serious, revision=1)).outcome == "updated"
    v = svc.get_incident(inc.id)
    assert (v.severity, v.owner_centre_id, v.state) == (Severity.serious, "village-a1", State.reported)
    assert (v.accept_due_at, v.close_due_at) == (at(960), at(60 + 86400))
    assert ("town-a", "notify") in {(n.centre_id, n.kind) for n in v.notifications}
    assert v.audit[-1].action == "raise_severity" and "general → serious (revision 1)" in v.audit[-1].note

    # critical: the county owns that grade; it gets a full 120-s accept window, the city is told
    clock.set(at(120))
    svc.ingest_incident(make_incident(20, clock(), severity=Severity.critical, revision=2))
    v = svc.get_incident(inc.id)
    assert (v.severity, v.owner_centre_id, v.state, v.escalation_level) == (
        Severity.critical,
        "county",
        State.reported,
        0,
    )
    assert (v.accept_due_at, v.close_due_at) == (at(240), at(120 + 3600))
    notes = {(n.centre_id, n.kind) for n in v.notifications}
    assert {("county", "owner"), ("city", "notify")} <= notes
    assert "owner village-a1 → county" in v.audit[-1].note
    with pytest.raises(Forbidden):  # no longer the village's to accept
        svc.transition(inc.id, Action.accept, OP_A1)
    kinds = [
        (r.kind, r.payload.get("severity_from"), r.payload.get("from_centre_id")) for r in svc.store.events_after(start)
    ]
    assert kinds == [
        ("incident.updated", "general", None),
        ("incident.rerouted", "serious", "village-a1"),
        ("incident.updated", "serious", None),
    ]

    # a later revision grading it lower changes the evidence, not the grade or the owner
    clock.set(at(150))
    svc.ingest_incident(make_incident(20, clock(), severity=Severity.general, revision=3))
    v = svc.get_incident(inc.id)
    assert (v.revision, v.severity, v.owner_centre_id, v.accept_due_at) == (3, Severity.critical, "county", at(240))

    # the county does not accept in time: the shortened window escalates it to the city
    clock.set(at(240))
    assert svc.tick().escalations == 1
    v = svc.get_incident(inc.id)
    assert (v.state, v.owner_centre_id) == (State.escalated, "city")

    # a closed case keeps its grade
    done = make_incident(21, clock(), severity=Severity.general)
    svc.ingest_incident(done)
    for action in (Action.accept, Action.reject):
        svc.transition(done.id, action, OP_A1, **({"reason": "false_alarm"} if action is Action.reject else {}))
    svc.ingest_incident(make_incident(21, clock(), severity=Severity.critical, revision=1))
    v = svc.get_incident(done.id)
    assert (v.severity, v.owner_centre_id, v.revision) == (Severity.general, "village-a1", 1)


def test_accepting_in_time_stops_the_escalation(svc: DispatchService, clock: ManualClock) -> None:
    t0 = clock()
    inc = make_incident(6, t0)
    svc.ingest_incident(inc)
    clock.set(t0 + timedelta(seconds=250))
    svc.tick()
    svc.transition(inc.id, Action.accept, OP_A1)
    clock.set(t0 + timedelta(seconds=3600))
    assert svc.tick().escalations == 0
    v = svc.get_incident(inc.id)
    assert (v.state, v.owner_centre_id, v.sla_flag) == (State.accepted, "village-a1", "none")
    # the close clock keeps running: 4 h after the report it escalates unless closed
    clock.set(t0 + timedelta(hours=4))
    assert svc.tick().escalations == 1
    v = svc.get_incident(inc.id)
    assert (v.state, v.owner_centre_id, v.close_flag) == (State.escalated, "town-a", "red")
    assert v.escalations[-1].reason == "close_sla"


def test_restart_inside_a_pending_sla_window_still_escalates_on_time(
    db_url: str, svc: DispatchService, clock: ManualClock
) -> None:
    t0 = clock()
    inc = make_incident(7, t0)
    svc.ingest_incident(inc)
    clock.set(t0 + timedelta(seconds=100))
    svc.tick()
    svc.store.dispose()  # "crash": nothing survives but the database
    del svc
    clock.set(t0 + timedelta(seconds=300))
    store2 = Store.from_url(db_url)
    store2.migrate()
    svc2 = DispatchService(store2, sample_settings(), clock)
    result = svc2.tick()
    assert (result.flags, result.escalations) == (2, 1)  # the yellow (due at 240 s) and the breach
    v = svc2.get_incident(inc.id)
    assert v.owner_centre_id == "town-a" and v.escalations[0].at == t0 + timedelta(seconds=300)
    # down for two whole windows: escalations follow the stored schedule, not the restart time
    store2.dispose()
    clock.set(t0 + timedelta(seconds=905))
    svc3 = DispatchService(Store.from_url(db_url), sample_settings(), clock)
    svc3.tick()
    v = svc3.get_incident(inc.id)
    assert [(e.to_centre_id, e.due_at) for e in v.escalations] == [
        ("town-a", t0 + timedelta(seconds=300)),
        ("county", t0 + timedelta(seconds=600)),
        ("city", t0 + timedelta(seconds=900)),
    ]
    clock.set(t0 + timedelta(seconds=5000))
    svc3.tick()  # the top centre: red, nowhere higher to go
    assert svc3.get_incident(inc.id).owner_centre_id == "city"
    svc3.store.dispose()


def test_supervisor_escalates_by_hand(svc: DispatchService, clock: ManualClock) -> None:
    inc = make_incident(8, clock(), severity=Severity.general)
    svc.ingest_incident(inc)
    v = svc.transition(inc.id, Action.escalate, Actor("s", Role.supervisor, "town-a"), note="needs the township")
    assert (v.state, v.owner_centre_id) == (State.escalated, "town-a")
    assert svc.get_incident(inc.id).escalations[0].reason == "manual"
    with pytest.raises(InvalidRequest, match="top centre"):
        for _ in range(4):
            svc.transition(inc.id, Action.escalate, Actor("root", Role.admin, "city"))


def test_list_filters_subtree_and_cursor_pagination(svc: DispatchService, clock: ManualClock) -> None:
    ids = []
    for n in range(7):
        cam = ["cam-a1-gate", "cam-b1-school", "33060312001320000017"][n % 3]
        sev = [Severity.general, Severity.serious][n % 2]
        inc = make_incident(100 + n, clock(), camera_id=cam, severity=sev, rule=f"r{n % 2}")
        svc.ingest_incident(inc)
        ids.append(inc.id)
        clock.advance(10)
    svc.transition(ids[0], Action.accept, OP_A1)
    page = svc.list_incidents(limit=3)
    got = [i.id for i in page.items]
    while page.next_cursor:
        page = svc.list_incidents(limit=3, cursor=page.next_cursor)
        got += [i.id for i in page.items]
    assert got == list(reversed(ids))
    town_a = svc.list_incidents(IncidentFilter(centre_id="town-a"), limit=50).items
    assert {i.camera_id for i in town_a} == {"cam-a1-gate", "33060312001320000017"}
    assert [i.id for i in svc.list_incidents(IncidentFilter(states=[State.accepted])).items] == [ids[0]]
    serious_b = svc.list_incidents(IncidentFilter(severities=[Severity.serious], camera_ids=["cam-b1-school"])).items
    assert {i.id for i in serious_b} == {ids[1]}
    assert len(svc.list_incidents(IncidentFilter(rules=["r0"])).items) == 4
    window = svc.list_incidents(IncidentFilter(since=clock() - timedelta(seconds=40), until=clock())).items
    assert [i.id for i in window] == list(reversed(ids[3:]))
    # a village operator sees only its own grid, and may not look elsewhere
    mine = svc.list_incidents(viewer=OP_A1).items
    assert {i.owner_centre_id for i in mine} == {"village-a1"}
    with pytest.raises(Forbidden):
        svc.list_incidents(IncidentFilter(centre_id="county"), viewer=OP_A1)
    with pytest.raises(Forbidden):
        svc.get_incident(ids[1], viewer=OP_A1)
    assert svc.list_incidents(IncidentFilter(sla_flags=["none"]), limit=500).items


def test_cameras_crud_health_history_and_online_rate(svc: DispatchService, clock: ManualClock) -> None:
    t0 = clock()
    cam = svc.create_camera(
        CameraCreate(id="33060321001320000099", name="山头村桥头", url="rtsp://admin:pw@10.1.1.1/main")
    )
    assert cam.grid_id == "village-b1" and cam.masked_url == "rtsp://***@10.1.1.1/main"
    with pytest.raises(InvalidRequest, match="town-a' is a township centre"):
        svc.create_camera(CameraCreate(id="cam-bad", village="town-a"))
    with pytest.raises(InvalidRequest, match="give `village`"):
        svc.create_camera(CameraCreate(id="cam-nowhere"))
    assert svc.update_camera(cam.id, CameraUpdate(village="village-b1", name="桥头")).name == "桥头"

    def health(status: CameraStatus, s: float) -> CameraHealth:
        return CameraHealth(
            camera_id=cam.id,
            status=status,
            at=t0 + timedelta(seconds=s),
            reason=status.value,
            faults=["blur"] if status is CameraStatus.degraded else [],
            scores={"blur": 0.1},
        )

    assert svc.ingest_health(health(CameraStatus.online, 0))
    assert not svc.ingest_health(health(CameraStatus.online, 100))  # same status: no new history row
    assert svc.ingest_health(health(CameraStatus.offline, 600))
    assert not svc.ingest_health(health(CameraStatus.online, 300))  # older than the stored status: ignored
    assert svc.ingest_health(health(CameraStatus.degraded, 900))
    assert svc.get_camera(cam.id).status == "degraded"
    rate = svc.online_rate(t0, t0 + timedelta(seconds=1200), centre_id="village-b1")
    mine = next(c for c in rate.cameras if c.camera_id == cam.id)
    assert (mine.online_s, mine.offline_s, mine.degraded_s) == (600, 300, 300)
    assert mine.online_rate == pytest.approx(0.75) and mine.intact_rate == pytest.approx(0.5)
    assert rate.online_rate == pytest.approx(0.75)  # the other camera has no known status: not counted
    # health of a camera nobody registered still lands, routed by its GB/T 28181 id
    svc.ingest_health(CameraHealth(camera_id="33060311001320000005", status=CameraStatus.online, at=t0))
    assert svc.get_camera("33060311001320000005").grid_id == "village-a1"
    svc.delete_camera(cam.id)
    with pytest.raises(NotFound):
        svc.get_camera(cam.id)


def test_event_feed_is_ordered_and_hooks_fire_after_commit(svc: DispatchService, clock: ManualClock) -> None:
    seen: list[ChangeEvent] = []
    unsubscribe = svc.subscribe(seen.append)
    start = svc.store.last_event_id()
    inc = make_incident(9, clock())
    svc.ingest_incident(inc)
    svc.transition(inc.id, Action.accept, OP_A1)
    unsubscribe()
    svc.transition(inc.id, Action.dispatch, OP_A1, target="保安")
    rows = svc.store.events_after(start)
    assert [r.kind for r in rows] == ["incident.created", "incident.transition", "incident.transition"]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert [e.kind for e in seen] == [EventKind.incident_created, EventKind.incident_transition]
    assert seen[1].payload["state"] == "accepted" and seen[1].centre_id == "village-a1"
    clock.advance(3600)
    svc.transition(inc.id, Action.receive, OP_A1)
    assert svc.store.prune_events(before=clock() - timedelta(seconds=60)) >= 3
    assert [r.kind for r in svc.store.events_after(start)] == ["incident.transition"]


def test_concurrent_accepts_one_wins(svc: DispatchService, clock: ManualClock) -> None:
    inc = make_incident(10, clock())
    svc.ingest_incident(inc)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def accept(i: int) -> None:
        barrier.wait()
        try:
            svc.transition(inc.id, Action.accept, Actor(f"op{i}", Role.operator, "village-a1"))
            outcomes.append("ok")
        except (IllegalTransition, StaleRevision) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1, outcomes
    with svc.store.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.action == "accept")) == 1
        assert s.scalar(select(func.count()).select_from(NotificationRow)) == 3


def test_gb28181_camera_incident_lands_in_the_village_of_its_division_code(
    svc: DispatchService, clock: ManualClock
) -> None:
    # configured without `village`: the id's division code 33060312 names 大和山村 (village-a2)
    assert svc.get_camera("33060312001320000017").grid_id == "village-a2"
    inc = make_incident(11, clock(), camera_id="33060312001320000017", severity=Severity.serious)
    assert svc.ingest_incident(inc).owner_centre_id == "village-a2"
    got = svc.get_incident(inc.id)
    assert (got.grid_centre_id, got.owner_centre_id) == ("village-a2", "village-a2")
    assert {(n.centre_id, n.kind) for n in got.notifications} == {("village-a2", "owner"), ("town-a", "notify")}
    assert "33060312" in got.audit[0].note
    # a GB/T 28181 camera the registry has never seen routes by its id alone
    unseen = make_incident(12, clock(), camera_id="33060321001320000042", severity=Severity.general)
    assert svc.ingest_incident(unseen).owner_centre_id == "village-b1"
    # and one whose division no centre carries goes to the root, saying why
    stray = make_incident(13, clock(), camera_id="cam-unregistered", severity=Severity.general)
    assert svc.ingest_incident(stray).owner_centre_id == "city"
    assert "no village and no GB/T 28181 id" in svc.get_incident(stray.id).route_reason


def test_concurrent_migrations_of_a_fresh_database_serialise(db_url: str) -> None:
    stores = [Store.from_url(db_url) for _ in range(3)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def migrate(st: Store) -> None:
        barrier.wait()
        try:
            st.migrate()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {st.current_revision() for st in stores} == {"0002"}
    for st in stores:
        st.dispose()


def test_a_tailer_of_the_event_feed_never_misses_a_concurrent_commit(svc: DispatchService, clock: ManualClock) -> None:
    incidents = [
        make_incident(200 + n, clock(), severity=Severity.general, camera_id=["cam-a1-gate", "cam-b1-school"][n % 2])
        for n in range(24)
    ]
    start = svc.store.last_event_id()
    seen: list[int] = []
    done = threading.Event()

    def tail() -> None:
        last = start
        while True:
            finished = done.is_set()
            for row in svc.store.events_after(last):
                seen.append(row.id)
                last = row.id
            if finished:
                return

    def work(chunk: list) -> None:  # type: ignore[type-arg]
        for inc in chunk:
            svc.ingest_incident(inc)
            owner = "village-a1" if inc.camera_id == "cam-a1-gate" else "village-b1"
            svc.transition(inc.id, Action.accept, Actor("op", Role.operator, owner))

    tailer = threading.Thread(target=tail)
    tailer.start()
    workers = [threading.Thread(target=work, args=(incidents[i::4],)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    tailer.join()
    everything = [r.id for r in svc.store.events_after(start, limit=1000)]
    assert len(everything) == 2 * len(incidents)
    assert seen == everything  # nothing skipped, nothing out of order
