"""Fuzz on the real broker: at least 1,000 hostile records on every topic a stage consumes
(xl.frames → detector; xl.incidents and xl.camera-health → dispatch), interleaved with good
ones. At the end both stages are alive, every hostile record is in the dead-letter topic with a
reason (matched by its ``fuzz`` header), no good record is, and every good record was processed
exactly once (counted in the store). The detector runs the shipped BlobBackend, so the test
measures the pipeline's handling, not a model. The fourth consumed topic, xl.camera-registry, is read by
ingest for group membership only (contents never parsed): 1,000 hostile records there leave it running."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from xueliang.bus.fuzz import Hostile, hostile_frames, hostile_payloads
from xueliang.contracts import CameraHealth, CameraStatus, DeadLetter, Topics, topic_specs
from xueliang.detector.testing import BlobBackend, frame_message, minimal_settings, walker_frames, yard_camera
from xueliang.detector.worker import DetectorWorker
from xueliang.dispatch.models import AuditRow, CameraRow, IncidentRow
from xueliang.dispatch.store import Store
from xueliang.dispatch.testing import make_incident
from xueliang.dispatch.worker import Dispatcher
from xueliang.ingest.motion import MotionGate

pytestmark = [pytest.mark.kafka]

N_HOSTILE = 1000  # per consumed topic
N_GOOD_INCIDENTS = 60
N_GOOD_HEALTH = 40
CAMERA = yard_camera()


class Stage:
    """A stage's ``run(stop)`` in a thread; remembers what killed it."""

    def __init__(self, name: str, run) -> None:  # type: ignore[no-untyped-def]
        self.name, self.stop, self.error = name, threading.Event(), None
        self.thread = threading.Thread(target=self._run, args=(run,), name=name, daemon=True)
        self.thread.start()

    def _run(self, run) -> None:  # type: ignore[no-untyped-def]
        try:
            run(self.stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def alive(self) -> bool:
        return self.thread.is_alive() and self.error is None

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def send(prod, topic: str, h: Hostile, fuzz_id: int) -> None:  # type: ignore[no-untyped-def]
    prod.send(topic, h.value, key=h.key, headers={**h.headers, "fuzz": str(fuzz_id).encode()})


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_thousand_hostile_records_per_topic_stop_no_stage_and_lose_nothing(
    kafka_bootstrap: str, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    from xueliang.dispatch.testing import postgres_schema

    with ExitStack() as stack:
        if database == "postgresql":
            url = stack.enter_context(postgres_schema(request.getfixturevalue("postgres_url")))
        else:
            url = f"sqlite:///{tmp_path}/fuzz.db"
        _fuzz(kafka_bootstrap, tmp_path, url)


def _fuzz(kafka_bootstrap: str, tmp_path: Path, store_url: str) -> None:
    from xueliang.bus.kafka import KafkaBus

    rng = random.Random(16)
    prefix = f"t-fuzz-{uuid.uuid4().hex[:8]}"
    topics = Topics(**{k: f"{prefix}.{v}" for k, v in Topics().model_dump().items()})
    settings = minimal_settings(
        [CAMERA],
        bus={
            "type": "kafka",
            "bootstrap_servers": [kafka_bootstrap],
            "topics": topics.model_dump(),
            "frame_partitions": 2,
            "session_timeout_s": 6.0,
            "heartbeat_interval_s": 1.0,
        },
        detector={"max_age_s": 1e9, "snapshot_dir": str(tmp_path / "snaps"), "full_pass_s": 3.0},
        dispatch={"merge": {"window_s": 0}},  # each good incident its own case: counted one for one
    )
    bus = KafkaBus(settings.bus)
    bus.ensure_topics(topic_specs(topics, 2))
    prod = bus.producer("fuzzer")
    t_start = time.monotonic()

    # ---- frames: the walker scene (one intrusion) with 1,000 hostile frames between its frames
    t0 = time.time() - 600
    walker = walker_frames([(1, 9)], 14)
    gate = MotionGate(settings.cameras[0].motion)
    template = frame_message("cam-a", 0, t0, walker[0][1], keepalive=True)
    hostile: dict[int, tuple[str, str]] = {}  # fuzz id -> (topic, family)
    fid = 0
    bad_frames = hostile_frames(rng, N_HOSTILE, template)
    per_good = -(-N_HOSTILE // len(walker))
    for seq, (t, image) in enumerate(walker):
        d = gate.decide(image, t0 + t)
        good = frame_message("cam-a", seq, t0 + t, image, d.boxes, d.keepalive)
        prod.send(topics.frames, good.jpeg, key="cam-a", headers={**good.headers(), "good": str(seq).encode()})
        for _, h in zip(range(per_good), bad_frames, strict=False):
            send(prod, topics.frames, h, fid)
            hostile[fid] = (topics.frames, h.family)
            fid += 1
    assert sum(1 for t, _ in hostile.values() if t == topics.frames) >= N_HOSTILE

    # ---- incidents and camera health: good records (each a distinct event) interleaved with hostile ones
    now = datetime.now(UTC)
    good_incidents = [
        make_incident(f"fuzz-{i}", now, camera_id="cam-a", rule="yard-intrusion") for i in range(N_GOOD_INCIDENTS)
    ]
    good_health = [
        CameraHealth(camera_id=f"fuzz-cam-{i}", status=CameraStatus.degraded, at=now, reason="blur")
        for i in range(N_GOOD_HEALTH)
    ]
    for topic, goods, template_json in (
        (topics.incidents, good_incidents, json.loads(good_incidents[0].to_bytes())),
        (topics.camera_health, good_health, json.loads(good_health[0].to_bytes())),
    ):
        bad = list(hostile_payloads(rng, N_HOSTILE, template_json))
        step = len(bad) // len(goods)
        for i, g in enumerate(goods):
            prod.send(topic, g.to_bytes(), key=g.camera_id, headers={"good": str(i).encode()})
            for h in bad[i * step : (i + 1) * step] if i < len(goods) - 1 else bad[i * step :]:
                send(prod, topic, h, fid)
                hostile[fid] = (topic, h.family)
                fid += 1
    prod.flush()
    prod.close()
    produced_s = time.monotonic() - t_start
    counts = Counter(t for t, _ in hostile.values())
    assert min(counts.values()) >= N_HOSTILE and len(counts) == 3, counts

    # ---- the stages
    store = Store.from_url(store_url)
    groups = {"detector": f"{prefix}-detector", "dispatch": f"{prefix}-dispatch"}
    detector = DetectorWorker(settings, bus, worker_id="fuzz-det", backend=BlobBackend(), group_id=groups["detector"])
    dispatcher = Dispatcher(settings, bus, store, poll_timeout_s=0.2, group_id=groups["dispatch"])
    stages = [Stage("detector", detector.run), Stage("dispatch", dispatcher.run)]
    ends = {t: bus.end_offsets(t) for t in (topics.frames, topics.incidents, topics.camera_health)}

    def caught_up() -> bool:
        frames_done = bus.committed_offsets(groups["detector"], topics.frames)
        if any(frames_done.get(p, 0) < e for p, e in ends[topics.frames].items()):
            return False
        for t in (topics.incidents, topics.camera_health):  # incidents grow with the detector's own
            done = bus.committed_offsets(groups["dispatch"], t)
            if any(done.get(p, 0) < e for p, e in bus.end_offsets(t).items()):
                return False
        return True

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and all(s.alive() for s in stages) and not caught_up():
            time.sleep(0.25)
        for s in stages:
            assert s.alive(), f"{s.name} died: {s.error!r}"
        assert caught_up(), "a stage did not get through its topics"
        consumed_s = time.monotonic() - t_start - produced_s
    finally:
        for s in stages:
            s.close()
    for s in stages:
        assert s.error is None, f"{s.name} failed on stop: {s.error!r}"

    # ---- every hostile record dead-lettered once, with a reason; no good one
    reader = bus.consumer(f"fuzz-reader-{uuid.uuid4().hex[:6]}", [topics.dead_letters], offset_reset="earliest")
    letters: list[DeadLetter] = []
    want = len(hostile)
    deadline = time.monotonic() + 30
    while len(letters) < want and time.monotonic() < deadline:
        letters += [DeadLetter.from_bytes(r.value) for r in reader.poll(timeout=0.5, max_records=2000)]
    reader.close()
    seen: Counter[int] = Counter()
    for dl in letters:
        assert "good" not in dl.headers, f"a good record was dead-lettered: {dl.reason}"
        assert dl.reason.strip() and dl.source_offset is not None
        fuzz = int(base64.b64decode(dl.headers["fuzz"]))
        topic, _ = hostile[fuzz]
        assert dl.source_topic == topic
        assert dl.stage == ("detector" if topic == topics.frames else "dispatch")
        seen[fuzz] += 1
    missing = sorted(set(hostile) - set(seen))
    assert not missing, f"{len(missing)} hostile records not dead-lettered, e.g. {[hostile[m] for m in missing[:5]]}"
    assert max(seen.values()) == 1, "a hostile record was dead-lettered twice"

    # ---- every good record processed exactly once, counted in the store
    with store.read() as s:
        good_ids = [i.id for i in good_incidents]
        assert (
            s.scalar(select(func.count()).select_from(IncidentRow).where(IncidentRow.id.in_(good_ids)))
            == N_GOOD_INCIDENTS
        )
        reports = s.scalar(
            select(func.count())
            .select_from(AuditRow)
            .where(AuditRow.incident_id.in_(good_ids), AuditRow.action == "report")
        )
        assert reports == N_GOOD_INCIDENTS
        cams = s.scalars(select(CameraRow).where(CameraRow.id.like("fuzz-cam-%"))).all()
        assert len(cams) == N_GOOD_HEALTH and all(c.status == "degraded" and c.status_reason == "blur" for c in cams)
        # the walker scene's one intrusion, from the good frames, through the detector and dispatch
        detected = s.scalars(select(IncidentRow).where(IncidentRow.id.not_in(good_ids))).all()
    assert [(i.camera_id, i.rule) for i in detected] == [("cam-a", "yard-intrusion")]
    assert detector.stats.dead_letters == counts[topics.frames]
    assert detector.stats.frames_seen == counts[topics.frames] + len(walker)
    store.dispose()
    bus.close()
    print(
        f"fuzz: {dict(counts)} hostile + {len(walker)} frames, {len(good_incidents)} incidents, "
        f"{len(good_health)} health good; produced in {produced_s:.1f}s, consumed in {consumed_s:.1f}s; "
        f"families {dict(Counter(f for _, f in hostile.values()))}"
    )


def test_hostile_camera_registry_records_do_not_disturb_ingest(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The ingest stage consumes xl.camera-registry only for group membership (which partitions it owns,
    never the records' contents): 1,000 hostile records there leave it running its cameras."""
    from xueliang.bus.kafka import KafkaBus
    from xueliang.ingest.worker import IngestWorker

    rng = random.Random(17)
    prefix = f"t-fuzzreg-{uuid.uuid4().hex[:8]}"
    topics = Topics(**{k: f"{prefix}.{v}" for k, v in Topics().model_dump().items()})
    scenario = Path(__file__).resolve().parents[1] / "scenes" / "scenarios" / "quiet_day.yaml"
    camera = {"id": "cam-s", "source": {"type": "scene", "scenario": str(scenario)}, "sample_fps": 2.0}
    settings = minimal_settings(
        [camera],
        bus={
            "type": "kafka",
            "bootstrap_servers": [kafka_bootstrap],
            "topics": topics.model_dump(),
            "frame_partitions": 1,
            "session_timeout_s": 6.0,
            "heartbeat_interval_s": 1.0,
        },
    )
    bus = KafkaBus(settings.bus)
    bus.ensure_topics(topic_specs(topics, 1))
    worker = IngestWorker(settings, bus, worker_id="fuzz-ingest", share=True, tick_s=0.5)
    stage = Stage("ingest", worker.run)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and stage.alive() and worker.running() != ["cam-s"]:
            time.sleep(0.2)
        assert worker.running() == ["cam-s"], f"ingest never ran its camera ({stage.error!r})"
        prod = bus.producer("fuzzer")
        for i in range(N_HOSTILE):  # a compacted topic needs a key: hostile keys, values and headers
            value = rng.choice(
                [b"", b"null", b"\xff\xfe", rng.randbytes(rng.randrange(1, 2000)), b"{" * 5000, b"x" * 500_000]
            )
            key = rng.choice(["cam-s", "cam-nobody", "k" * 300, "\u96ea\u4eae", f"fz-{i}"])
            prod.send(topics.camera_registry, value, key=key, headers={"schema": rng.randbytes(4)}, partition=0)
        prod.flush()
        prod.close()
        frames_before = sum(bus.end_offsets(topics.frames).values())
        time.sleep(3.0)
        assert stage.alive(), f"ingest died: {stage.error!r}"
        assert worker.running() == ["cam-s"]
        assert sum(bus.end_offsets(topics.frames).values()) > frames_before  # still publishing frames
    finally:
        stage.close()
        bus.close()
    assert stage.error is None
