"""Fast tests of the ingest parts: sampler, backoff, motion gate, health state machine,
bounded publisher, credential scrubbing, shared camera assignment on the embedded bus."""

from __future__ import annotations

import logging
import random
import threading
import time

import cv2
import numpy as np
import pytest

from xueliang.bus.base import BusError, Producer
from xueliang.bus.memory import MemoryBus
from xueliang.config.cameras import CameraConfig, MotionConfig
from xueliang.contracts import (
    CameraHealth,
    CameraStatus,
    FrameMessage,
    Incident,
    Topics,
    topic_specs,
)
from xueliang.ingest import metrics
from xueliang.ingest.camera import CameraRunner, Sampler
from xueliang.ingest.health import HealthTracker
from xueliang.ingest.motion import MotionGate
from xueliang.ingest.publisher import Publisher
from xueliang.ingest.quality import Diagnosis
from xueliang.ingest.testing import settings_for
from xueliang.ingest.worker import IngestWorker
from xueliang.retry import backoff_delays


# ------------------------------------------------------------------ sampler
@pytest.mark.parametrize(("stream_fps", "sample_fps"), [(25, 2), (25, 5), (10, 3), (30, 30), (25, 0.5)])
def test_sampler_keeps_the_configured_rate(stream_fps: float, sample_fps: float) -> None:
    s = Sampler(sample_fps)
    seconds = 40
    kept = [n / stream_fps for n in range(int(stream_fps * seconds)) if s.keep(n / stream_fps)]
    assert abs(len(kept) / seconds - min(sample_fps, stream_fps)) <= 0.05 * sample_fps + 1 / seconds


def test_sampler_restarts_after_a_gap_without_a_burst() -> None:
    s = Sampler(2)
    assert s.keep(0.0) and not s.keep(0.2) and s.keep(0.5)
    assert s.keep(100.0)  # back after a reconnect
    assert not s.keep(100.04) and not s.keep(100.3) and s.keep(100.5)


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    delays = backoff_delays(1.0, 30.0, 0.2, random.Random(1))
    got = [next(delays) for _ in range(8)]
    for d, base in zip(got, [1, 2, 4, 8, 16, 30, 30, 30], strict=True):
        assert 0.8 * base <= d <= 1.2 * base
    assert len(set(got)) == len(got)  # jittered


# ------------------------------------------------------------------ motion
def _scene(rng: np.random.Generator) -> np.ndarray:
    base = np.full((360, 640, 3), 90, np.uint8)
    cv2.rectangle(base, (0, 250), (640, 360), (60, 70, 60), -1)
    return cv2.add(base, cv2.randn(np.empty(base.shape, np.int16), (0, 0, 0), (2, 2, 2)), dtype=cv2.CV_8U)


def test_motion_gate_boxes_moving_object_and_sends_keepalives_only_when_still() -> None:
    rng = np.random.default_rng(0)
    gate = MotionGate(MotionConfig(keepalive_s=2.0))
    decisions = []
    for k in range(40):  # 0.1 s apart; a person-sized block walks in from t=2.0 s
        frame = _scene(rng)
        t = k * 0.1
        if t >= 2.0:
            x = 100 + int((t - 2.0) * 200)
            cv2.rectangle(frame, (x, 150), (x + 40, 260), (20, 20, 160), -1)
        decisions.append((t, gate.decide(frame, t)))
    still = [(t, d) for t, d in decisions if t < 2.0]
    assert [t for t, d in still if d.publish] == [0.0]  # first frame as keep-alive, then silence
    assert still[0][1].keepalive
    moving = [d for t, d in decisions if t >= 2.1]
    assert all(d.publish and not d.keepalive and d.boxes for d in moving)
    box = moving[-1].boxes[0]
    x_now = 100 + int((3.9 - 2.0) * 200)
    assert box.x1 <= x_now + 40 and box.x2 >= x_now and box.y1 <= 160 and box.y2 >= 250


def test_motion_gate_ignores_masked_polygon_and_keepalive_rate() -> None:
    rng = np.random.default_rng(1)
    # motion only inside the ignored polygon (a tree swaying)
    gate = MotionGate(MotionConfig(keepalive_s=1.0, ignore=[[(400, 0), (640, 0), (640, 200), (400, 200)]]))
    published = []
    for k in range(50):
        frame = _scene(rng)
        cv2.circle(frame, (520 + (k % 5) * 10, 100), 40, (20, 140, 20), -1)
        d = gate.decide(frame, k * 0.1)
        if d.publish:
            assert d.keepalive and d.boxes == ()
            published.append(round(k * 0.1, 1))
    assert published == [0.0, 1.0, 2.0, 3.0, 4.0]


# ------------------------------------------------------------------ health
class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def _camera(**kw: object) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "cam-h",
            "source": {"type": "file", "path": "/x.mp4"},
            "reconnect": {"stall_timeout_s": 3, "offline_after_s": 8},
            "quality": {"fault_grace_s": 10},
            **kw,
        }
    )


def test_health_status_changes_and_fault_incident_lifecycle() -> None:
    clock = Clock()
    tracker = HealthTracker(_camera(), clock=clock)
    assert tracker.tick() == []  # silent while connecting
    tracker.frame()
    [h] = tracker.tick()
    assert isinstance(h, CameraHealth) and h.status is CameraStatus.online
    assert tracker.tick() == []  # no change, no message
    clock.t += 4
    [h] = tracker.tick()
    assert h.status is CameraStatus.degraded and "stalled" in h.reason
    clock.t += 4.5
    [h] = tracker.tick()
    assert h.status is CameraStatus.offline
    clock.t += 9.9
    assert tracker.tick() == []  # offline 9.9 s: inside the 10 s grace
    clock.t += 0.2
    [inc] = tracker.tick()
    assert isinstance(inc, Incident) and inc.rule == inc.rule_type == "camera_fault"
    assert inc.details["fault"] == "offline" and inc.details["state"] == "active" and inc.revision == 0
    tracker.frame()
    msgs = tracker.tick()
    online = [m for m in msgs if isinstance(m, CameraHealth)]
    resolved = [m for m in msgs if isinstance(m, Incident)]
    assert online[0].status is CameraStatus.online
    assert resolved[0].id == inc.id and resolved[0].revision == 1 and resolved[0].details["state"] == "resolved"


def test_health_diagnosis_change_is_an_event() -> None:
    clock = Clock()
    tracker = HealthTracker(_camera(), clock=clock)
    tracker.frame()
    tracker.tick()
    tracker.diagnosed(Diagnosis({"blur": 0.9}, ("blur",)))
    [h] = tracker.tick()
    assert h.status is CameraStatus.degraded and h.faults == ["blur"] and h.scores["blur"] == 0.9
    tracker.diagnosed(Diagnosis({"blur": 0.1}, ()))
    [h] = tracker.tick()
    assert h.status is CameraStatus.online and h.faults == []


# ------------------------------------------------------------------ publisher
class StuckProducer(Producer):
    """A producer whose broker never acknowledges (records pile up as pending)."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, topic, value, key=None, headers=None, partition=None):  # type: ignore[no-untyped-def]
        self.sent += 1

    def pending(self) -> int:
        return self.sent

    def flush(self, timeout=None):  # type: ignore[no-untyped-def]
        raise BusError("broker away")

    def close(self) -> None:
        return None


class StuckBus(MemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.stuck = StuckProducer()

    def producer(self, client_id: str = "xueliang") -> Producer:
        return self.stuck


def _frame(i: int, cam: str = "cam-p") -> FrameMessage:
    return FrameMessage(camera_id=cam, seq=i, capture_ts=1.0 + i, width=4, height=4, jpeg=b"x" * 1000)


def test_publisher_is_bounded_and_drops_oldest_when_broker_stalls() -> None:
    bus = StuckBus()
    pub = Publisher(bus, "xl.frames", max_buffered_frames=10, max_in_flight=5)
    before = metrics.FRAMES_DROPPED.labels("cam-p", "buffer_full")._value.get()
    pub.start()
    for i in range(200):
        pub.offer_frame(_frame(i), 0)
        time.sleep(0.0005)
    time.sleep(0.1)
    assert bus.stuck.sent == 5  # in flight bound
    assert pub.buffered() == 10 and pub.peak_buffered == 10
    dropped = metrics.FRAMES_DROPPED.labels("cam-p", "buffer_full")._value.get() - before
    assert dropped == 200 - 5 - 10
    # the buffer holds the newest frames
    assert [m.seq for m, _ in list(pub._frames)] == list(range(190, 200))
    pub.close(timeout=0.2)


def test_publisher_sends_events_first_and_frames_to_their_partition() -> None:
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(Topics(), 6))
    pub = Publisher(bus, "xl.frames")
    pub.offer_frame(_frame(1, "a"), 4)
    pub.offer_event("xl.camera-health", "a", b"{}")
    pub.start()
    pub.close()
    assert bus.end_offsets("xl.frames") == {0: 0, 1: 0, 2: 0, 3: 0, 4: 1, 5: 0}
    assert sum(bus.end_offsets("xl.camera-health").values()) == 1


# ------------------------------------------------------------------ credentials
def test_credentials_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    cam = CameraConfig.model_validate(
        {
            "id": "secret-cam",
            "source": {
                "type": "rtsp",
                "url": "rtsp://admin:hunter2@127.0.0.1:1/main",
                "detect_url": "rtsp://admin:hunter2@127.0.0.1:1/sub",
            },
            "reconnect": {"stall_timeout_s": 0.5, "initial_backoff_s": 0.1, "max_backoff_s": 0.2},
        }
    )
    bus = MemoryBus()
    health = HealthTracker(cam)
    runner = CameraRunner(cam, Publisher(bus, "xl.frames"), 0, health)
    with caplog.at_level(logging.DEBUG):
        runner.start()
        time.sleep(0.8)
        runner.stop()
        runner.join(5)
    assert "127.0.0.1:1/sub" in caplog.text  # the detect substream was tried
    assert "hunter2" not in caplog.text and "admin" not in caplog.text
    assert "hunter2" not in health._reason
    assert metrics.RECONNECTS.labels("secret-cam")._value.get() >= 1


def test_camera_cpu_time_is_counted_per_camera(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """xl_ingest_cpu_seconds_total{camera} is the camera thread's own CPU time: run the loop in
    this thread to the end of a file and compare with this thread's CPU clock."""
    clip = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(150):
        frame = np.full((240, 320, 3), 90, np.uint8)
        cv2.rectangle(frame, (2 * i, 100), (2 * i + 30, 180), (200, 200, 200), -1)
        writer.write(frame)
    writer.release()
    cam = CameraConfig.model_validate(
        {
            "id": "cpu-cam",
            "sample_fps": 25,
            "source": {"type": "file", "path": str(clip), "loop": False, "realtime": False},
        }
    )
    counter = metrics.CPU_SECONDS.labels("cpu-cam")
    before_counted, before_cpu = counter._value.get(), time.thread_time()
    runner = CameraRunner(cam, Publisher(MemoryBus(), "xl.frames"), 0)
    runner._run()  # in this thread, to the end of the file
    spent, counted = time.thread_time() - before_cpu, counter._value.get() - before_counted
    assert runner.published > 100
    assert 0 < counted <= spent + 1e-6
    assert counted >= 0.9 * spent - 0.005  # all of the loop but opening the file


# ------------------------------------------------------------------ group sharing
def test_cameras_shared_between_workers_and_moved_when_one_leaves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Group membership on the embedded bus (same code path as Kafka): 2 workers split 6 cameras,
    no camera runs twice; when one worker stops its cameras move to the other."""
    img = np.full((120, 160, 3), 100, np.uint8)
    clip = tmp_path / "still.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for _ in range(10):
        writer.write(img)
    writer.release()
    settings = settings_for(
        [
            {
                "id": f"cam{i}",
                "source": {"type": "file", "path": str(clip)},
                "sample_fps": 1,
                "quality": {"enabled": False},
            }
            for i in range(6)
        ]
    )
    bus = MemoryBus()
    w1 = IngestWorker(settings, bus, worker_id="w1", share=True, tick_s=0.1)
    w2 = IngestWorker(settings, bus, worker_id="w2", share=True, tick_s=0.1)
    s1, s2 = threading.Event(), threading.Event()
    t1 = threading.Thread(target=w1.run, args=(s1,))
    t2 = threading.Thread(target=w2.run, args=(s2,))
    t1.start()
    t2.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            a, b = set(w1.running()), set(w2.running())
            if a and b and len(a) + len(b) == 6:
                break
            time.sleep(0.05)
        a, b = set(w1.running()), set(w2.running())
        assert a | b == {f"cam{i}" for i in range(6)} and not a & b and len(a) == len(b) == 3
        s1.set()
        t1.join(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(w2.running()) < 6:
            time.sleep(0.05)
        assert set(w2.running()) == {f"cam{i}" for i in range(6)}
    finally:
        s1.set()
        s2.set()
        t1.join(10)
        t2.join(10)
    assert not t1.is_alive() and not t2.is_alive()
