"""The dispatcher on the bus: idempotent consumption, dead letters, crash/restart, SLA timers
across restarts; on the embedded bus, and SIGKILL of a real dispatcher process on Kafka."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from xueliang.bus.memory import MemoryBus
from xueliang.contracts import CameraHealth, CameraStatus, DeadLetter, Incident, Severity, Topics, topic_specs
from xueliang.dispatch.clock import ManualClock
from xueliang.dispatch.models import AuditRow, EscalationRow, IncidentRow, NotificationRow
from xueliang.dispatch.service import DispatchService
from xueliang.dispatch.store import Store
from xueliang.dispatch.testing import SAMPLE_YAML, make_incident, postgres_schema, sample_settings
from xueliang.dispatch.worker import Dispatcher
from xueliang.dispatch.workflow import Action, Actor, Role, State

TOPICS = Topics()


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def caught_up(bus, group: str = "dispatch") -> bool:  # type: ignore[no-untyped-def]
    for topic in (TOPICS.incidents, TOPICS.camera_health):
        ends, done = bus.end_offsets(topic), bus.committed_offsets(group, topic)
        if any(done.get(p, 0) < end for p, end in ends.items()):
            return False
    return True


class Running:
    """A dispatcher in a thread; ``stop()`` joins it and re-raises what killed it."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(dispatcher,), daemon=True)
        self.thread.start()

    def _run(self, d: Dispatcher) -> None:
        try:
            d.run(self.stop_event)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(TOPICS))
    url = f"sqlite:///{tmp_path}/dispatch.db"
    clock = ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    settings = sample_settings()
    return bus, url, clock, settings


def counts(store: Store) -> tuple[int, int, int]:
    with store.read() as s:
        return (
            s.scalar(select(func.count()).select_from(IncidentRow)) or 0,
            s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.action == "report")) or 0,
            s.scalar(select(func.count()).select_from(NotificationRow)) or 0,
        )


def test_dispatcher_stores_incidents_and_health_and_dead_letters_bad_records(env) -> None:  # type: ignore[no-untyped-def]
    bus, url, clock, settings = env
    store = Store.from_url(url)
    producer = bus.producer()
    t0 = clock()
    for n in range(5):
        for rev in range(2):
            inc = make_incident(n, t0, revision=rev)
            producer.send(TOPICS.incidents, inc.to_bytes(), key=inc.camera_id)
    producer.send(TOPICS.incidents, b'{"schema": "xl.incident/9", "id": "x"}', key="cam-a1-gate")
    producer.send(TOPICS.incidents, b"\xff not json", key="cam-b1-school")
    long_id = make_incident(99, t0).model_copy(update={"camera_id": "c" * 80})
    producer.send(TOPICS.incidents, long_id.to_bytes(), key="c")
    producer.send(
        TOPICS.camera_health,
        CameraHealth(
            camera_id="cam-b1-school", status=CameraStatus.offline, at=t0, reason="no frames for 8 s"
        ).to_bytes(),
        key="cam-b1-school",
    )
    run = Running(Dispatcher(settings, bus, store, clock=clock))
    wait_for(lambda: caught_up(bus), 15, "the dispatcher to commit every record")
    run.stop()
    assert run.error is None
    assert counts(store)[:2] == (5, 5)
    svc = DispatchService(store, settings, clock)
    assert {i.revision for i in svc.list_incidents().items} == {1}
    assert svc.get_camera("cam-b1-school").status == "offline"
    dlq = bus.consumer("t", [TOPICS.dead_letters]).poll(timeout=1)
    letters = [DeadLetter.from_bytes(r.value) for r in dlq]
    assert len(letters) == 3
    assert all(d.stage == "dispatch" and d.source_topic == TOPICS.incidents for d in letters)
    reasons = " | ".join(d.reason for d in letters)
    assert "xl.incident/1" in reasons and "Invalid JSON" in reasons and "camera_id longer than 64" in reasons
    garbled = next(d for d in letters if d.payload() == b"\xff not json")
    assert garbled.key == "cam-b1-school" and garbled.source_offset is not None
    store.dispose()


def test_crash_between_db_commit_and_offset_commit_stores_each_incident_once(env) -> None:  # type: ignore[no-untyped-def]
    bus, url, clock, settings = env
    store = Store.from_url(url)
    producer = bus.producer()
    sent: dict[str, int] = {}
    for n in range(40):
        for rev in range(n % 3 + 1):
            inc = make_incident(
                n, clock(), camera_id=["cam-a1-gate", "cam-b1-school"][n % 2], revision=rev, severity=Severity.serious
            )
            producer.send(TOPICS.incidents, inc.to_bytes(), key=inc.camera_id)
            sent[inc.id] = rev

    crashed = threading.Event()

    class Crash(BaseException):
        pass

    def crash_once(records) -> None:  # type: ignore[no-untyped-def]
        if not crashed.is_set():
            crashed.set()
            raise Crash("killed after the database commit, before the offset commit")

    first = Dispatcher(settings, bus, store, clock=clock, max_records=30)
    first.after_db_commit = crash_once
    run = Running(first)
    run.thread.join(10)
    assert isinstance(run.error, Crash)
    assert bus.committed_offsets("dispatch", TOPICS.incidents) == {}  # nothing committed
    stored_before = counts(store)[0]
    assert stored_before > 0

    second = Running(Dispatcher(settings, bus, Store.from_url(url), clock=clock))
    wait_for(lambda: caught_up(bus), 15, "the restarted dispatcher to catch up")
    second.stop()
    n_inc, n_report, n_notes = counts(store)
    assert (n_inc, n_report) == (len(sent), len(sent))
    assert n_notes == 2 * len(sent)  # owner + township, once each despite the redelivery
    with store.read() as s:
        assert dict(s.execute(select(IncidentRow.id, IncidentRow.revision)).all()) == sent
    store.dispose()


def test_restart_inside_a_pending_sla_window_escalates_on_time(env) -> None:  # type: ignore[no-untyped-def]
    bus, url, clock, settings = env
    t0 = clock()
    inc = make_incident(1, t0, severity=Severity.critical)  # critical: county owns, accept within 120 s
    bus.producer().send(TOPICS.incidents, inc.to_bytes(), key=inc.camera_id)
    store = Store.from_url(url)
    run = Running(Dispatcher(settings, bus, store, clock=clock))
    wait_for(lambda: caught_up(bus), 10, "the incident to be stored")
    clock.set(t0 + timedelta(seconds=60))
    time.sleep(3 * settings.dispatch.tick_s)
    run.stop()
    store.dispose()
    svc = DispatchService(Store.from_url(url), settings, clock)
    assert svc.get_incident(inc.id).state is State.reported

    clock.set(t0 + timedelta(seconds=119))  # still inside the window while the dispatcher is down
    run = Running(Dispatcher(settings, bus, Store.from_url(url), clock=clock))
    time.sleep(3 * settings.dispatch.tick_s)
    assert svc.get_incident(inc.id).state is State.reported
    clock.set(t0 + timedelta(seconds=120))
    wait_for(lambda: svc.get_incident(inc.id).state is State.escalated, 5, "the escalation")
    run.stop()
    v = svc.get_incident(inc.id)
    assert (v.owner_centre_id, v.escalations[0].due_at, v.escalations[0].at) == (
        "city",
        t0 + timedelta(seconds=120),
        t0 + timedelta(seconds=120),
    )


# ------------------------------------------------------------------------------- Kafka, real process
def _start_dispatcher(config: Path, store_url: str, group: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xueliang.dispatch.worker",
                "--config",
                str(config),
                "--store-url",
                store_url,
                "--group",
                group,
                "--log-level",
                "INFO",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


@pytest.mark.kafka
@pytest.mark.slow
def test_sigkill_while_incidents_stream_through_kafka(kafka_bootstrap: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(
        frames=f"t{tag}.frames",
        incidents=f"t{tag}.incidents",
        camera_health=f"t{tag}.health",
        dead_letters=f"t{tag}.dlq",
        camera_registry=f"t{tag}.registry",
    )
    group = f"dispatch-{tag}"
    raw = yaml.safe_load(SAMPLE_YAML)
    raw["bus"] = {
        "type": "kafka",
        "bootstrap_servers": [kafka_bootstrap],
        "topics": topics.model_dump(),
        "frame_partitions": 1,
        "session_timeout_s": 6.0,
    }  # the broker's minimum: the dead member goes sooner
    raw["dispatch"]["sla"]["critical"] = {"accept_s": 15, "close_s": 600}
    raw["dispatch"]["merge"] = {"window_s": 0}  # the dispatcher process reads this file: one case per incident
    config = tmp_path / "xueliang.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    settings = sample_settings(bus=raw["bus"], dispatch=raw["dispatch"])
    # production's pair when the test command started PostgreSQL; else the embedded SQLite
    with ExitStack() as stack:
        pg = os.environ.get("XL_POSTGRES_URL")
        store_url = stack.enter_context(postgres_schema(pg)) if pg else f"sqlite:///{tmp_path}/dispatch.db"
        _sigkill_scenario(config, store_url, settings, topics, bus_config=raw["bus"], group=group, tmp_path=tmp_path)


def _sigkill_scenario(
    config: Path,
    store_url: str,
    settings,
    topics: Topics,
    *,
    bus_config: dict,  # type: ignore[no-untyped-def]
    group: str,
    tmp_path: Path,
) -> None:
    from xueliang.bus.kafka import KafkaBus
    from xueliang.config import KafkaBusConfig

    bus = KafkaBus(KafkaBusConfig.model_validate(bus_config))
    bus.ensure_topics(topic_specs(topics, 1))
    producer = bus.producer("test")
    log = tmp_path / "dispatcher.log"

    sent: dict[str, int] = {}
    cams = ["cam-a1-gate", "cam-b1-school", "33060312001320000017"]

    def stream(first: int, last: int) -> None:
        for n in range(first, last):
            cam = cams[n % 3]
            for rev in range(n % 3 + 1):
                inc = make_incident(n, datetime.now(UTC), camera_id=cam, severity=Severity.general, revision=rev)
                producer.send(topics.incidents, inc.to_bytes(), key=cam)
                sent[inc.id] = rev
            if n % 10 == 9:
                producer.flush(10)
                time.sleep(0.1)
        producer.flush(10)

    store = Store.from_url(store_url)
    store.migrate()
    proc = _start_dispatcher(config, store_url, group, log)
    try:
        stream(0, 1)
        wait_for(lambda: proc.poll() is None and _count(store) >= 1, 60, "the dispatcher to start")
        # the SLA probe, sent once the dispatcher runs: a critical incident the county must accept in 15 s
        probe = make_incident("probe", datetime.now(UTC), severity=Severity.critical, camera_id="cam-b1-school")
        producer.send(topics.incidents, probe.to_bytes(), key=probe.camera_id)
        producer.flush(10)
        wait_for(lambda: _stored(store, probe.id), 10, "the probe to be stored")
        feeder = threading.Thread(target=stream, args=(1, 400))  # paced: about 4 s of traffic
        feeder.start()
        wait_for(lambda: _count(store) >= 60, 30, "60 incidents")
        # an operator acts while the stream goes on: redelivery must not undo it
        svc = DispatchService(store, settings)
        first_ids = [i.id for i in svc.list_incidents(limit=500).items if i.id != probe.id][:5]
        for incident_id in first_ids:
            owner = svc.get_incident(incident_id).owner_centre_id
            svc.transition(incident_id, Action.accept, Actor("op", Role.operator, owner))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed_at = _count(store)
        kill_time = datetime.now(UTC)
        proc = _start_dispatcher(config, store_url, group, log)
        feeder.join(60)

        def done() -> bool:
            ends = bus.end_offsets(topics.incidents)
            committed = bus.committed_offsets(group, topics.incidents)
            return all(committed.get(p, 0) >= e for p, e in ends.items())

        wait_for(done, 90, "the restarted dispatcher to commit the whole stream")
        wait_for(lambda: bool(svc.get_incident(probe.id).escalations), 30, "the probe's escalation")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        bus.close()

    assert 0 < killed_at < len(sent) + 1, "the kill should land mid-stream"
    n_inc, n_report, _n_notes = counts(store)
    assert (n_inc, n_report) == (len(sent) + 1, len(sent) + 1)  # each incident exactly once, audited once
    with store.read() as s:
        # in insertion order: PostgreSQL returns an unordered scan in heap order, not id order
        notes = s.execute(select(NotificationRow.incident_id, NotificationRow.kind).order_by(NotificationRow.id)).all()
    assert sorted(i for i, _ in notes if i != probe.id) == sorted(sent)  # one owner notification each
    probe_notes = [k for i, k in notes if i == probe.id]  # (later: the city's own window may flag it too)
    assert probe_notes[:5] == ["owner", "notify", "sla_yellow", "sla_red", "escalation"], probe_notes
    assert probe_notes.count("escalation") == 1
    with store.read() as s:
        stored = dict(s.execute(select(IncidentRow.id, IncidentRow.revision)).all())
        states = dict(s.execute(select(IncidentRow.id, IncidentRow.state)).all())
    assert {k: v for k, v in stored.items() if k != probe.id} == sent  # the latest revision of each
    assert {states[i] for i in first_ids} == {"accepted"}
    assert {v for k, v in states.items() if k not in first_ids and k != probe.id} == {"reported"}
    # the probe's SLA window spanned the kill: the escalation fired on schedule, once
    v = svc.get_incident(probe.id)
    assert len(v.escalations) == 1 and v.escalations[0].to_centre_id == "city"
    assert v.escalations[0].due_at == v.reported_at + timedelta(seconds=15)
    lateness = (v.escalations[0].at - v.escalations[0].due_at).total_seconds()
    assert kill_time < v.escalations[0].due_at, "the kill should land inside the probe's SLA window"
    assert 0 <= lateness < 3, f"escalation {lateness:.2f}s after its deadline"
    print(
        f"[{store.dialect}] SIGKILL after {killed_at}/{len(sent) + 1} incidents stored; escalation {lateness:.2f}s after its deadline"
    )
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(EscalationRow)) == 1
    store.dispose()


def _stored(store: Store, incident_id: str) -> bool:
    with store.read() as s:
        return s.get(IncidentRow, incident_id) is not None


def _count(store: Store) -> int:
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(IncidentRow)) or 0


def test_database_outage_is_retried_not_dead_lettered(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import OperationalError

    bus, url, clock, settings = env
    store = Store.from_url(url)
    svc = DispatchService(store, settings, clock)
    real = svc.ingest_incident
    failures = iter([True, False])

    def flaky(incident: Incident):  # type: ignore[no-untyped-def]
        if next(failures, False):
            raise OperationalError("INSERT ...", {}, Exception("server closed the connection unexpectedly"))
        return real(incident)

    monkeypatch.setattr(svc, "ingest_incident", flaky)
    producer = bus.producer()
    for n in range(3):
        inc = make_incident(n, clock())
        producer.send(TOPICS.incidents, inc.to_bytes(), key=inc.camera_id)
    run = Running(Dispatcher(settings, bus, store, clock=clock, service=svc))
    wait_for(lambda: caught_up(bus), 15, "the dispatcher to recover from the outage")
    run.stop()
    assert run.error is None
    assert counts(store)[:2] == (3, 3)
    assert bus.end_offsets(TOPICS.dead_letters) == {0: 0}


def test_store_collector_exports_incident_state(env) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import CollectorRegistry, generate_latest

    from xueliang.dispatch.metrics import get_metrics, register_store_collector

    _, url, clock, settings = env
    store = Store.from_url(url)
    store.migrate()
    registry = CollectorRegistry()
    svc = DispatchService(store, settings, clock, metrics=get_metrics(registry))
    svc.sync_config()
    register_store_collector(store, registry)
    inc = make_incident(1, clock())
    svc.ingest_incident(inc)
    svc.ingest_incident(make_incident(2, clock()))
    clock.advance(30)
    svc.transition(inc.id, Action.reject, Actor("op", Role.operator, "village-a1"), reason="false_alarm")
    text = generate_latest(registry).decode()
    assert 'xl_dispatch_incidents{centre="village-a1",severity="major",state="rejected",tier="village"} 1.0' in text
    assert "xl_dispatch_false_alarm_ratio 0.5" in text
    assert 'xl_dispatch_rejections_total{reason="false_alarm"} 1.0' in text
    assert 'xl_dispatch_incidents_ingested_total{outcome="created"} 2.0' in text
    store.dispose()
