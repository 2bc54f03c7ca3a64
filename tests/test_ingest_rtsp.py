"""Real RTSP camera (GStreamer's RTSP server streaming opencv-doc's vtest.avi as H.264 over
RTP/TCP on loopback) → ingest worker → bus, on the embedded bus and on the real Kafka broker."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from xueliang.bus.base import Bus
from xueliang.bus.memory import MemoryBus
from xueliang.contracts import FRAME_SCHEMA, CameraHealth, CameraStatus, FrameMessage
from xueliang.ingest.testing import (
    FootageMissing,
    RtspServer,
    encode_h264,
    settings_for,
    vtest_avi,
)
from xueliang.ingest.worker import IngestWorker

SAMPLE_FPS = 5.0
WINDOW_S = 6.0
REF_SIZE = (96, 72)


@pytest.fixture(scope="module")
def vtest() -> object:
    try:
        return vtest_avi()
    except FootageMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def reference(vtest) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Every frame of vtest.avi as a small grey image, to identify which frame a published JPEG shows."""
    cap = cv2.VideoCapture(str(vtest))
    refs = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        refs.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), REF_SIZE, interpolation=cv2.INTER_AREA))
    cap.release()
    assert len(refs) > 700
    return np.stack(refs).astype(np.float32)


@pytest.fixture(scope="module")
def clip(vtest):  # type: ignore[no-untyped-def]
    # a 25 fps camera (frames of the 10 fps footage repeated), 2 s GOP like many IP cameras
    return encode_h264(vtest, fps=25, gop=50, name="vtest25")


@pytest.fixture(scope="module")
def gstreamer() -> None:
    """The system Python's GStreamer RTSP server bindings (Debian python3-gi, gir1.2-gst-rtsp-server-1.0)."""
    code = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    probe = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, check=False)
    if probe.returncode != 0:
        message = "GStreamer RTSP server not installed (scripts/setup.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture()
def rtsp(clip, gstreamer) -> Iterator[RtspServer]:  # type: ignore[no-untyped-def]
    server = RtspServer({"cam1": clip})
    server.start()
    yield server
    server.stop()


def _bus(kind: str, request: pytest.FixtureRequest) -> tuple[Bus, dict | None]:  # type: ignore[type-arg]
    if kind == "memory":
        return MemoryBus(), None
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    from xueliang.bus.kafka import KafkaBus
    from xueliang.config.bus import KafkaBusConfig

    prefix = f"t-ingest-{uuid.uuid4().hex[:8]}"
    cfg = KafkaBusConfig(
        bootstrap_servers=[bootstrap],
        frame_partitions=2,
        topics={
            "frames": f"{prefix}.frames",
            "incidents": f"{prefix}.incidents",
            "camera_health": f"{prefix}.health",
            "dead_letters": f"{prefix}.dlq",
            "camera_registry": f"{prefix}.registry",
        },
    )

    def drop_topics() -> None:  # leave the shared broker as we found it
        admin = KafkaBus(cfg)
        try:
            admin.delete_topics([t for t in cfg.topics.model_dump().values() if t in admin.list_topics()])
        finally:
            admin.close()

    request.addfinalizer(drop_topics)
    return KafkaBus(cfg), cfg.model_dump()


def _match(reference: np.ndarray, jpeg: bytes) -> tuple[int, float]:
    """Index of the footage frame the JPEG shows, and the PSNR of that match."""
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    small = cv2.resize(img, REF_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    mse = ((reference - small) ** 2).mean(axis=(1, 2))
    i = int(mse.argmin())
    return i, 10 * math.log10(255**2 / max(float(mse[i]), 1e-6))


@pytest.mark.slow
@pytest.mark.parametrize(("bus_kind", "decoder"), [("memory", "opencv"), ("kafka", "opencv"), ("memory", "pyav")])
def test_rtsp_frames_arrive_at_rate_with_headers_and_content(bus_kind, decoder, rtsp, reference, request):  # type: ignore[no-untyped-def]
    bus, bus_cfg = _bus(bus_kind, request)
    settings = settings_for(
        [
            {
                "id": "cam1",
                "source": {"type": "rtsp", "url": rtsp.url("cam1"), "transport": "tcp", "decoder": decoder},
                "sample_fps": SAMPLE_FPS,
                "motion": {"enabled": False},
                "max_width": 960,
            }
        ],
        bus=bus_cfg,
    )
    topics = settings.bus.topics
    worker = IngestWorker(settings, bus, worker_id="w-rtsp")
    bus.ensure_topics(worker.topic_specs())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        consumer = bus.consumer(f"check-{uuid.uuid4().hex[:6]}", [topics.frames], offset_reset="earliest")
        frames: list[tuple[FrameMessage, dict[str, bytes], int]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for rec in consumer.poll(timeout=0.5):
                frames.append((FrameMessage.from_record(rec.value, rec.headers), rec.headers, rec.partition))
            if frames and frames[-1][0].capture_ts - frames[0][0].capture_ts > WINDOW_S + 1.5:
                break
        consumer.close()
    finally:
        stop.set()
        thread.join(timeout=30)
        bus.close()
    assert not thread.is_alive()
    assert frames, "no frame arrived from the RTSP camera"

    # rate: frames whose capture time falls in a window after the first second (connection burst)
    t0 = frames[0][0].capture_ts + 1.0
    in_window = [m for m, _, _ in frames if t0 <= m.capture_ts < t0 + WINDOW_S]
    rate = len(in_window) / WINDOW_S
    print(f"\n[{bus_kind}/{decoder}] RTSP → bus: {rate:.2f} frames/s in {WINDOW_S:.0f} s (configured {SAMPLE_FPS})")
    assert abs(rate - SAMPLE_FPS) <= 0.1 * SAMPLE_FPS

    # headers
    seqs = [m.seq for m, _, _ in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for msg, headers, partition in frames:
        assert headers["schema"] == FRAME_SCHEMA.encode()
        assert headers["camera"] == b"cam1" and msg.camera_id == "cam1"
        assert (msg.width, msg.height) == (768, 576)
        assert headers["keepalive"] == b"0" and msg.motion == ()
        assert partition == worker.frame_partition("cam1")
        assert abs(msg.capture_ts - time.time()) < 120

    # content: every frame is a picture of the footage, in order, at the stream's pace
    matches = [(m.capture_ts, *_match(reference, m.jpeg)) for m, _, _ in frames]
    psnrs = [p for _, _, p in matches]
    print(f"[{bus_kind}/{decoder}] content match PSNR min {min(psnrs):.1f} dB, median {float(np.median(psnrs)):.1f} dB")
    assert min(psnrs) > 24.0
    idx = [i for _, i, _ in matches]
    assert idx == sorted(idx), "frames out of order"
    # after the connection burst, the 10 fps footage advances 10 frames per second of capture time; the
    # median pace between consecutive frames (a stall and its read burst compress one stretch of capture
    # times, which would skew a first-to-last ratio)
    steady = [(ts, i) for ts, i, _ in matches if ts >= t0]
    span_ts = steady[-1][0] - steady[0][0]
    advanced = steady[-1][1] - steady[0][1]
    pace = float(np.median([(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(steady) if b[0] > a[0]]))
    print(
        f"[{bus_kind}/{decoder}] footage advanced {advanced} frames in {span_ts:.2f} s of capture time, "
        f"median pace {pace:.2f} frames/s"
    )
    assert abs(pace - 10) <= 1.0, (pace, advanced, span_ts)
    assert abs(advanced - 10 * span_ts) <= 0.2 * 10 * span_ts + 2, (advanced, span_ts)


def _health(bus: Bus, topic: str, group: str) -> Iterator[CameraHealth]:
    consumer = bus.consumer(group, [topic], offset_reset="earliest")
    try:
        while True:
            recs = consumer.poll(timeout=0.2)
            yield from (CameraHealth.from_bytes(r.value) for r in recs)
            if not recs:
                yield None  # type: ignore[misc]
    finally:
        consumer.close()


def _wait_status(events: Iterator[CameraHealth], status: CameraStatus, timeout: float) -> CameraHealth:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ev = next(events)
        if ev is not None and ev.status is status:
            return ev
    raise AssertionError(f"camera did not become {status} within {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["opencv", "pyav"])
def test_rtsp_server_stop_marks_offline_and_restart_recovers(rtsp, decoder):  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    settings = settings_for(
        [
            {
                "id": "cam1",
                "source": {"type": "rtsp", "url": rtsp.url("cam1"), "decoder": decoder},
                "sample_fps": 2,
                "motion": {"enabled": False},
                "reconnect": {"stall_timeout_s": 3, "offline_after_s": 6, "initial_backoff_s": 0.5, "max_backoff_s": 2},
            }
        ]
    )
    worker = IngestWorker(settings, bus, worker_id="w-offline")
    bus.ensure_topics(worker.topic_specs())  # before the checker subscribes (the worker creates them in run())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        events = _health(bus, settings.bus.topics.camera_health, "check-health")
        _wait_status(events, CameraStatus.online, 20)
        rtsp.stop()
        stopped = time.time()
        offline = _wait_status(events, CameraStatus.offline, 15)
        took = offline.at.timestamp() - stopped
        print(f"\n[{decoder}] RTSP server stopped → camera offline after {took:.1f} s ({offline.reason})")
        assert took <= 10.0
        frames_before = bus.end_offsets(settings.bus.topics.frames)
        rtsp.start()
        restarted = time.time()
        online = _wait_status(events, CameraStatus.online, 20)
        print(f"[{decoder}] RTSP server restarted → camera online after {online.at.timestamp() - restarted:.1f} s")
        time.sleep(1.5)
        assert sum(bus.end_offsets(settings.bus.topics.frames).values()) > sum(frames_before.values())
        assert thread.is_alive(), "the worker must not need a restart"
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
