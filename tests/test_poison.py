"""One bad record never stops a stage: the contracts refuse what they cannot represent (with a
reason), every consumer dead-letters a record that fails on its own and goes on, and only an outage
of the connection is retried. Detector with the shipped BlobBackend; dispatch on SQLite and on
a real PostgreSQL (where the database itself refuses a record)."""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from xueliang.bus.base import Record
from xueliang.bus.deadletter import DeadLetters, is_outage
from xueliang.bus.memory import MemoryBus
from xueliang.contracts import (
    MAX_MESSAGE_BYTES,
    CameraHealth,
    ContractError,
    DeadLetter,
    FrameMessage,
    Incident,
    Topics,
    topic_specs,
)
from xueliang.detector.testing import (
    BlobBackend,
    frame_message,
    minimal_settings,
    publish_frames,
    walker_frames,
    yard_camera,
)
from xueliang.detector.worker import DetectorWorker
from xueliang.dispatch.clock import ManualClock
from xueliang.dispatch.models import CameraRow
from xueliang.dispatch.store import Store
from xueliang.dispatch.testing import make_incident, postgres_schema, sample_settings
from xueliang.dispatch.worker import Dispatcher

T0 = 1_700_000_000.0
W, H = 320, 240
CAMERA = yard_camera()


def good_headers() -> dict[str, bytes]:
    return frame_message("cam-a", 0, T0, np.zeros((H, W, 3), np.uint8)).headers()


# ------------------------------------------------------------------ contracts
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"motion": b"[[1e999,0,10,10]]"}, "non-finite"),
        ({"motion": b"[[NaN,0,10,10]]"}, "non-finite"),
        ({"motion": json.dumps([[0, 0, 1, 1]] * 300).encode()}, "300 motion boxes"),
        ({"motion": b'"gate"'}, "not a list"),
        ({"ts": b"inf"}, "not a finite"),
        ({"ts": b"nan"}, "not a finite"),
        ({"ts": repr(time.time() + 7 * 86400).encode()}, "in the future"),
        ({"camera": b"c" * 65}, "camera longer than 64 characters"),
        ({"camera": b""}, "camera is empty"),
        ({"camera": b"cam\x00a"}, "control characters"),
        ({"camera": b"\xff\xfe"}, "malformed frame headers"),
        ({"seq": b"-1"}, "seq -1 outside"),
        ({"seq": b"9" * 40}, "seq header too long"),
        ({"w": b"0"}, "w 0 outside"),
        ({"h": b"100000"}, "h 100000 outside"),
        ({"note": b"x" * 70_000}, "at most 65536"),
    ],
)
def test_frame_contract_refuses_what_it_cannot_represent(change: dict[str, bytes], reason: str) -> None:
    headers = {**good_headers(), **change}
    with pytest.raises(ContractError, match=reason):
        FrameMessage.from_record(b"\xff\xd8jpeg", headers)


def test_payload_contracts_refuse_naive_future_non_finite_long_and_oversized() -> None:
    now = datetime.now(UTC)
    health = {"schema": "xl.camera-health/1", "camera_id": "cam-a", "status": "online", "at": now.isoformat()}
    CameraHealth.from_bytes(json.dumps(health).encode())  # the good one parses
    cases = [
        ({"at": now.replace(tzinfo=None).isoformat()}, "at must be timezone-aware"),
        ({"at": (now + timedelta(days=30)).isoformat()}, "in the future"),
        ({"camera_id": "c" * 65}, "camera_id longer than 64 characters"),
        ({"faults": ["blur"] * 33}, "faults: List should have at most 32 items"),
        ({"reason": "r" * 2001}, "reason: String should have at most 2000 characters"),
    ]
    for change, reason in cases:
        with pytest.raises(ContractError, match=reason):
            CameraHealth.from_bytes(json.dumps({**health, **change}).encode())
    with pytest.raises(ContractError, match="fps: Input should be a finite number"):
        CameraHealth.from_bytes(json.dumps(health).encode()[:-1] + b', "fps": 1e999}')
    inc = json.loads(make_incident(1, now).to_bytes())
    for change, reason in [
        ({"details": {"count": float("inf")}}, "details.count"),
        ({"track_ids": list(range(2000))}, "track_ids: List should have at most 1024 items"),
        ({"revision": 2**40}, "revision: Input should be less than or equal to 2147483647"),
        ({"boxes": [{"xyxy": [0, 0, 1e999, 1], "class_name": "person", "confidence": 0.5}]}, "boxes.0.xyxy.2"),
        ({"updated_at": "2026-03-01T09:00:00"}, "updated_at must be timezone-aware"),
    ]:
        raw = json.dumps({**inc, **change}).replace("Infinity", "1e999").encode()
        with pytest.raises(ContractError, match=reason):
            Incident.from_bytes(raw)


def test_dead_letter_always_fits_the_topic_and_keeps_the_reason() -> None:
    rec = Record("xl.frames", 2, 17, "k" * 5000, b"v" * MAX_MESSAGE_BYTES, {f"h{i}": b"x" * 70_000 for i in range(40)})
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(Topics()))
    letters = DeadLetters("detector", "xl.dead-letters")
    dl = letters.send(bus.producer(), rec, "r" * 5000)
    assert len(dl.to_bytes()) < MAX_MESSAGE_BYTES
    assert dl.reason == "r" * 2000 and dl.source_partition == 2 and dl.source_offset == 17
    (got,) = bus.consumer("t", ["xl.dead-letters"]).poll(timeout=1)
    assert got.headers == {"schema": b"xl.dead-letter/1", "stage": b"detector", "kind": b"contract"}


def test_a_flood_of_dead_letters_does_not_flood_the_log(caplog) -> None:  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(Topics()))
    counted: list[str] = []
    letters = DeadLetters("dispatch", "xl.dead-letters", count=counted.append)
    prod = bus.producer()
    with caplog.at_level(logging.WARNING, logger="xueliang.bus.deadletter"):
        for i in range(100):
            letters.send(prod, Record("xl.incidents", 0, i, "k", b"x"), f"bad {i}")
    assert len(caplog.records) == 20 and len(counted) == 100 == letters.sent
    assert len(bus.consumer("t", ["xl.dead-letters"]).poll(timeout=1, max_records=500)) == 100


def test_outage_or_record_fault() -> None:
    from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError, StatementError

    from xueliang.bus.base import BusError

    assert is_outage(BusError("broker down"))
    assert is_outage(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert is_outage(InterfaceError("SELECT 1", {}, Exception("connection already closed")))
    for exc in (
        IntegrityError("INSERT", {}, Exception("duplicate key")),
        DataError("INSERT", {}, Exception("value too long for type character varying(64)")),
        StatementError("naive datetime", "INSERT", {}, ValueError("naive")),
        OverflowError("cannot convert float infinity to integer"),
    ):
        assert not is_outage(exc), exc


# ------------------------------------------------------------------- detector
def detector(tmp_path: Path, bus: MemoryBus, backend: BlobBackend | None = None, **cfg: object) -> DetectorWorker:
    settings = minimal_settings(
        [CAMERA], detector={"max_age_s": 1e9, "snapshot_dir": str(tmp_path / "snaps"), "full_pass_s": 3.0, **cfg}
    )
    bus.ensure_topics(topic_specs(settings.bus.topics, settings.bus.frame_partitions))
    return DetectorWorker(settings, bus, worker_id="w1", backend=backend or BlobBackend(), clock=lambda: T0 + 1000)


def run_until(worker: DetectorWorker, n_records: int, timeout: float = 20.0) -> None:
    stop, errors = threading.Event(), []

    def target() -> None:
        try:
            worker.run(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    th = threading.Thread(target=target, daemon=True)
    th.start()
    deadline = time.monotonic() + timeout
    while sum(worker.done.values()) < n_records and time.monotonic() < deadline and th.is_alive():
        time.sleep(0.02)
    stop.set()
    th.join(10)
    assert not errors, f"the detector died: {errors[0]!r}"
    assert sum(worker.done.values()) >= n_records


def read(bus: MemoryBus, topic: str, cls):  # type: ignore[no-untyped-def]
    consumer = bus.consumer(f"reader-{time.monotonic_ns()}", [topic])
    out = []
    while recs := consumer.poll(timeout=0.05):
        out += [cls.from_bytes(r.value) for r in recs]
    consumer.close()
    return out


def test_detector_survives_infinite_motion_unknown_cameras_forged_sizes_and_a_failing_frame(tmp_path: Path) -> None:
    class Picky(BlobBackend):
        """Fails on a frame that is pure grey 77 (the model or a rule raising on one frame)."""

        def predict(self, images):  # type: ignore[no-untyped-def]
            if any(img.size and int(img[0, 0, 0]) == 77 for img in images):
                raise RuntimeError("kernel refused this input")
            return super().predict(images)

    bus = MemoryBus()
    worker = detector(tmp_path, bus, Picky())
    topics = worker.topics
    prod = bus.producer()
    good = frame_message("cam-a", 0, T0, np.zeros((H, W, 3), np.uint8))
    poisons = [
        (good.jpeg, dict(good.headers(), motion=b"[[1e999,0,10,10]]")),  # issue 16 #1: int(inf) killed the stage
        (good.jpeg, dict(good.headers(), camera=b"cam-nobody")),
        (good.jpeg, dict(good.headers(), w=b"8000", h=b"8000")),  # a forged size: no 8000x8000 decode
        (good.jpeg[: len(good.jpeg) // 3], good.headers()),  # truncated
        (frame_message("cam-a", 1, T0, np.full((H, W, 3), 77, np.uint8)).jpeg, good.headers()),
    ]
    for value, headers in poisons:
        prod.send(topics.frames, value, key="cam-a", headers=headers)
    n = len(poisons) + publish_frames(
        prod, topics.frames, worker.settings.cameras[0], walker_frames([(1, 9)], 14), T0 + 0.1
    )
    run_until(worker, n)
    letters = read(bus, topics.dead_letters, DeadLetter)
    reasons = [d.reason for d in letters]
    assert len(letters) == len(poisons), reasons
    assert "non-finite" in reasons[0] and "cam-a" in reasons[0]
    assert "unknown camera 'cam-nobody'" in reasons[1]
    assert "JPEG is 320x240, headers say 8000x8000" in reasons[2]
    assert "undecodable JPEG (camera cam-a" in reasons[3]
    assert "camera cam-a, seq 0: RuntimeError: kernel refused this input" in reasons[4]
    assert all(d.stage == "detector" and d.source_offset is not None for d in letters)
    assert len({i.id for i in read(bus, topics.incidents, Incident)}) == 1  # the good frames still made it
    assert bus.committed_offsets("detector", topics.frames) == {
        p: e for p, e in bus.end_offsets(topics.frames).items() if e
    }


def test_detector_rejoins_after_a_bus_failure_and_replays_what_was_not_committed(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """An outage is not a poison record: the detector backs off, rejoins on fresh clients and replays
    from the committed offsets; same incident, nothing dead-lettered."""
    from xueliang.bus.base import BusError

    class FlakyBus(MemoryBus):
        failures = 1

        def consumer(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            c = super().consumer(*args, **kwargs)
            if self.failures:
                self.failures -= 1
                real, calls = c.poll, [0]

                def poll(*a, **kw):  # type: ignore[no-untyped-def]
                    calls[0] += 1
                    if calls[0] == 4:
                        raise BusError("broker went away (test)")
                    return real(*a, **kw)

                c.poll = poll  # type: ignore[method-assign]
            return c

    bus = FlakyBus()
    worker = detector(tmp_path, bus, queue_frames=8)
    n = publish_frames(
        bus.producer(), worker.topics.frames, worker.settings.cameras[0], walker_frames([(1, 9)], 14), T0
    )
    with caplog.at_level(logging.ERROR):
        run_until(worker, n, timeout=30)
    assert "bus error, rejoining" in caplog.text
    assert len({i.id for i in read(bus, worker.topics.incidents, Incident)}) == 1
    assert read(bus, worker.topics.dead_letters, DeadLetter) == []
    assert bus.committed_offsets("detector", worker.topics.frames) == {
        p: e for p, e in bus.end_offsets(worker.topics.frames).items() if e
    }


# ------------------------------------------------------------------- dispatch
def caught_up(bus, topics) -> bool:  # type: ignore[no-untyped-def]
    for topic in (topics.incidents, topics.camera_health):
        ends, done = bus.end_offsets(topic), bus.committed_offsets("dispatch", topic)
        if any(done.get(p, 0) < end for p, end in ends.items()):
            return False
    return True


def run_dispatcher(store_url: str, records: list[tuple[str, bytes, str]]) -> tuple[MemoryBus, list[DeadLetter], Store]:
    settings = sample_settings()
    topics = settings.bus.topics
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(topics))
    producer = bus.producer()
    for topic, value, key in records:
        producer.send(getattr(topics, topic), value, key=key)
    store = Store.from_url(store_url)
    clock = ManualClock(datetime.now(UTC))
    stop, errors = threading.Event(), []

    def target() -> None:
        try:
            Dispatcher(settings, bus, store, clock=clock).run(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    th = threading.Thread(target=target, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not caught_up(bus, topics) and time.monotonic() < deadline and th.is_alive():
        time.sleep(0.05)
    stop.set()
    th.join(15)
    assert not errors, f"the dispatcher died: {errors[0]!r}"
    assert caught_up(bus, topics), "a partition did not move on"
    letters = [DeadLetter.from_bytes(r.value) for r in bus.consumer("t", [topics.dead_letters]).poll(timeout=1)]
    return bus, letters, store


def health(camera_id: str, **kw) -> bytes:  # type: ignore[no-untyped-def]
    h = {"schema": "xl.camera-health/1", "camera_id": camera_id, "status": "offline"}
    h["at"] = datetime.now(UTC).isoformat()
    h.update(kw)
    return json.dumps(h).encode()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_dispatch_dead_letters_naive_long_and_refused_records_and_moves_on(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with ExitStack() as stack:
        if backend == "postgresql":
            url = stack.enter_context(postgres_schema(request.getfixturevalue("postgres_url")))
        else:
            url = f"sqlite:///{tmp_path}/d.db"
        key = "cam-b1-school"  # one key: one partition, which must move on past every bad record
        naive = health(key, at=datetime.now(UTC).replace(tzinfo=None).isoformat())
        records = [
            ("camera_health", naive, key),  # issue 16 #1: StatementError killed the dispatcher
            ("camera_health", health("c" * 80), key),  # issue 16 #2: DataError blocked the partition on PostgreSQL
            ("camera_health", health(key, reason="lens \x00 covered"), key),  # text PostgreSQL cannot store
            ("camera_health", health(key, status="degraded", reason="blur"), key),
        ]
        _, letters, store = run_dispatcher(url, records)
        reasons = [d.reason for d in letters]
        assert "at must be timezone-aware" in reasons[0]
        assert "camera_id longer than 64 characters" in reasons[1]
        if backend == "postgresql":  # the database's own refusal, dead-lettered, not retried forever
            assert len(letters) == 3, reasons
            assert "DataError" in reasons[2] and "0x00" in reasons[2]
        else:  # SQLite stores NUL
            assert len(letters) == 2, reasons
        assert all(d.stage == "dispatch" and d.source_topic == "xl.camera-health" for d in letters)
        with store.read() as s:
            cam = s.scalar(select(CameraRow).where(CameraRow.id == key))
        assert cam is not None and cam.status == "degraded" and cam.status_reason == "blur"
        store.dispose()
