"""Evidence clips: the detector's ring buffer of sampled frames becomes an H.264 MP4 of a few seconds
before and after an incident, beside its snapshot (frame count and duration checked by decoding
it with PyAV); retention; the worker writes one per new incident; the API serves it with the
snapshot's scope (a village operator gets 404 on another village's clip)."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from xueliang.api.testing import ApiEnv, make_incident
from xueliang.bus.memory import MemoryBus
from xueliang.contracts import Incident
from xueliang.detector.clips import ClipRecorder, write_clip
from xueliang.detector.testing import publish_frames, walker_frames

av = pytest.importorskip("av")

T0 = 1_700_000_000.0


def jpeg(i: int, w: int = 320, h: int = 240) -> bytes:
    img = np.zeros((h, w, 3), np.uint8)
    cv2.rectangle(img, (10 + 5 * i, 100), (40 + 5 * i, 160), (255, 255, 255), -1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def probe(path) -> tuple[int, float, tuple[int, int]]:
    with av.open(str(path)) as f:
        stream = f.streams.video[0]
        frames = list(f.decode(stream))
        assert stream.codec_context.name == "h264"
        duration = float(stream.duration * stream.time_base) if stream.duration else float(f.duration / 1e6)
        return len(frames), duration, (frames[0].width, frames[0].height)


def test_clip_spans_pre_and_post_seconds(tmp_path):
    rec = ClipRecorder(tmp_path, pre_s=4, post_s=4, fps=2)
    for i in range(41):  # 2 fps for 20 s
        ts = T0 + i * 0.5
        rec.add("cam", ts, jpeg(i))
        if i == 20:  # an incident at t = 10 s
            rec.start("inc-a", "cam", ts)
            assert not rec.path_of("inc-a").exists()  # still recording what happens next
    rec.close()
    n, duration, size = probe(rec.path_of("inc-a"))
    assert n == 17 and size == (320, 240)  # 6.0 .. 14.0 s
    assert duration == pytest.approx(8.5, abs=0.01)
    assert rec.written == 1 and rec.failed == 0
    rec.start("inc-a", "cam", T0 + 10)  # a replay after a restart does not record it again
    assert rec._open.get("cam") == []


@pytest.mark.parametrize(("second_s", "first_frame_s"), [(12.0, 8.0), (10.5, 6.0)])
def test_overlapping_clips_of_a_camera_encode_its_frames_once(tmp_path, second_s, first_frame_s):
    """Two incidents 2 s or 0.5 s apart: each clip still spans its own window, starting at the key frame at or
    before its first frame (KEYINT frames apart), and the frames both clips show are encoded once."""
    rec = ClipRecorder(tmp_path, pre_s=4, post_s=4, fps=2)
    for i in range(41):
        ts = T0 + i * 0.5
        rec.add("cam", ts, jpeg(i))
        if ts in (T0 + 10, T0 + second_s):
            rec.start(f"inc-{ts - T0:g}", "cam", ts)
    rec.close()
    assert probe(rec.path_of("inc-10"))[:2] == (17, pytest.approx(8.5, abs=0.01))
    n, duration, _ = probe(rec.path_of(f"inc-{second_s:g}"))
    expected = round((second_s + 4 - first_frame_s) * 2) + 1  # from the key frame to 4 s after the incident
    assert n == expected and duration == pytest.approx(expected / 2, abs=0.01)
    assert rec.frames_encoded == round((second_s + 4 - 6) * 2) + 1  # 6 s .. the last clip's end, once each
    assert rec.written == 2 and rec.failed == 0


def test_retention_keeps_the_newest(tmp_path):
    rec = ClipRecorder(tmp_path, pre_s=1, post_s=1, fps=2, max_files=2)
    for k in range(3):
        for i in range(5):
            rec.add("cam", T0 + k * 10 + i * 0.5, jpeg(i))
            if i == 2:
                rec.start(f"inc-{k}", "cam", T0 + k * 10 + i * 0.5)
        rec.close()
        time.sleep(0.02)
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["inc-1.mp4", "inc-2.mp4"]
    old = tmp_path / "inc-old.mp4"  # a clip from before this recorder (a restart): past the retention
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 10 * 86400,) * 2)
    again = ClipRecorder(tmp_path, pre_s=1, post_s=1, fps=2, max_files=3)
    for i in range(5):
        again.add("cam", T0 + 100 + i * 0.5, jpeg(i))
        if i == 2:
            again.start("inc-3", "cam", T0 + 100 + i * 0.5)
    again.close()
    assert not old.exists()
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["inc-1.mp4", "inc-2.mp4", "inc-3.mp4"]


def test_odd_sizes_and_undecodable_frames(tmp_path):
    path = write_clip(tmp_path / "x.mp4", [jpeg(i, 321, 241) for i in range(3)] + [b"not a jpeg"], 2.0)
    assert probe(path)[0] == 3 and probe(path)[2] == (320, 240)
    assert write_clip(tmp_path / "y.mp4", [b"junk"], 2.0) is None and not (tmp_path / "y.mp4").exists()


def test_worker_writes_a_clip_per_new_incident(tmp_path):
    import threading

    from xueliang.contracts import topic_specs
    from xueliang.detector.testing import BlobBackend, minimal_settings, yard_camera
    from xueliang.detector.worker import DetectorWorker

    camera = yard_camera()
    settings = minimal_settings(
        [camera],
        detector={"max_age_s": 1e9, "snapshot_dir": str(tmp_path / "snaps"), "clips": {"pre_s": 2, "post_s": 2}},
    )
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(settings.bus.topics, settings.bus.frame_partitions))
    worker = DetectorWorker(settings, bus, worker_id="w1", backend=BlobBackend(), clock=lambda: T0 + 1000)
    n = publish_frames(bus.producer(), settings.bus.topics.frames, settings.cameras[0], walker_frames([(1, 9)], 16), T0)
    stop = threading.Event()
    th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while sum(worker.done.values()) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    th.join(20)
    consumer = bus.consumer("reader", [settings.bus.topics.incidents])
    incidents = [Incident.from_bytes(r.value) for r in consumer.poll(timeout=0.2)]
    first = min(incidents, key=lambda i: i.revision)
    clip = tmp_path / "snaps" / f"{first.id}.mp4"
    assert clip.exists(), list((tmp_path / "snaps").iterdir())
    frames, duration, size = probe(clip)
    # 2 s before and after the incident at the walker's 5 fps (minus frames the motion gate skipped)
    assert 10 <= frames <= 21 and size == (320, 240) and 1.8 <= duration <= 4.3, (frames, duration)
    assert worker.clips is not None and worker.clips.written == 1


def test_api_serves_clips_in_the_snapshot_scope(tmp_path):
    env = ApiEnv.create(tmp_path)
    inc = make_incident("cam-dajiaqiao-entrance", episode="clip")
    env.service.ingest_incident(inc)
    snaps = env.settings.detector.snapshot_dir
    write_clip(snaps / f"{inc.id}.mp4", [jpeg(i) for i in range(6)], 2.0)
    with TestClient(env.app) as client:
        r = client.get(f"/clips/{inc.id}.mp4", headers=env.headers("op-dajiaqiao"))
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4" and r.content[4:8] == b"ftyp"
        assert client.get(f"/clips/{inc.id}.mp4", headers=env.headers("sup-anchang")).status_code == 200
        assert client.get(f"/clips/{inc.id}.mp4", headers=env.headers("op-xishi")).status_code == 404
        assert client.get(f"/clips/{inc.id}.mp4").status_code == 401
        other = make_incident("cam-dajiaqiao-entrance", episode="no-clip")
        env.service.ingest_incident(other)
        assert client.get(f"/clips/{other.id}.mp4", headers=env.headers("op-dajiaqiao")).status_code == 404
        for bad in ("../xueliang.db", f"{inc.id}.jpg", "x" * 70 + ".mp4", "%2e%2e.mp4"):
            assert client.get(f"/clips/{bad}", headers=env.headers("admin")).status_code == 404


def test_clips_beyond_the_writers_backlog_are_skipped_not_queued(tmp_path, monkeypatch, caplog):
    import xueliang.detector.clips as clips

    monkeypatch.setattr(clips, "MAX_WAITING", 0)  # as if the writer were that far behind
    rec = ClipRecorder(tmp_path, pre_s=1, post_s=1, fps=2)
    for i in range(6):
        rec.add("cam", T0 + i * 0.5, jpeg(i))
        if i == 1:
            rec.start("inc-late", "cam", T0 + i * 0.5)
    rec.close()
    assert rec.skipped == 1 and rec.written == 0 and not rec.path_of("inc-late").exists()
    assert "inc-late" in caplog.text and "waiting for the writer" in caplog.text
