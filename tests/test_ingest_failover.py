"""Two ingest worker processes share six cameras through Kafka group membership; SIGKILL one
and its cameras move to the survivor; start a third and the load spreads again (real broker,
real processes, real footage)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from xueliang.contracts import FrameMessage
from xueliang.ingest.testing import CENTRES, FootageMissing, encode_h264, vtest_avi

CAMERAS = [f"cam{i}" for i in range(6)]
SAMPLE_FPS = 2.0
RUNNING = re.compile(r"ingest (\w+): running cameras \[(.*)\]")


def _running(log: Path) -> set[str] | None:
    """The worker's latest 'running cameras [...]' set from its log."""
    last = None
    for line in log.read_text(errors="replace").splitlines():
        m = RUNNING.search(line)
        if m:
            last = {c.strip(" '") for c in m.group(2).split(",") if c.strip()}
    return last


class Frames:
    """Reads the frames topic; remembers every frame per camera."""

    def __init__(self, bus, topic: str) -> None:  # type: ignore[no-untyped-def]
        self.consumer = bus.consumer(f"check-{uuid.uuid4().hex[:6]}", [topic], offset_reset="earliest")
        self.by_cam: dict[str, list[FrameMessage]] = defaultdict(list)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for rec in self.consumer.poll(timeout=0.3):
                msg = FrameMessage.from_record(rec.value, rec.headers)
                self.by_cam[msg.camera_id].append(msg)

    def window(self, t0: float, t1: float) -> dict[str, list[FrameMessage]]:
        return {c: [m for m in ms if t0 <= m.capture_ts < t1] for c, ms in self.by_cam.items()}


def _assert_each_camera_once(frames: Frames, t0: float, t1: float) -> None:
    span = t1 - t0
    for cam in CAMERAS:
        got = frames.window(t0, t1).get(cam, [])
        rate = len(got) / span
        # one runner per camera: the configured rate (two runners would double it and interleave seqs)
        assert abs(rate - SAMPLE_FPS) <= 0.25 * SAMPLE_FPS + 1 / span, (cam, rate)
        seqs = [m.seq for m in got]
        assert seqs == sorted(seqs), f"{cam}: sequence numbers interleave (run twice?)"


@pytest.mark.slow
def test_sigkill_one_worker_moves_its_cameras_to_the_other(kafka_bootstrap, tmp_path):  # type: ignore[no-untyped-def]
    try:
        clip = encode_h264(vtest_avi(), fps=10, gop=20, height=240, name="vtest240")
    except FootageMissing as exc:
        pytest.skip(str(exc))
    from xueliang.bus.kafka import KafkaBus
    from xueliang.config import load_config

    prefix = f"t-failover-{uuid.uuid4().hex[:8]}"
    config = {
        "centres": CENTRES,
        "bus": {
            "type": "kafka",
            "bootstrap_servers": [kafka_bootstrap],
            "frame_partitions": 6,
            "session_timeout_s": 6,
            "heartbeat_interval_s": 1,
            "topics": {
                "frames": f"{prefix}.frames",
                "incidents": f"{prefix}.incidents",
                "camera_health": f"{prefix}.health",
                "dead_letters": f"{prefix}.dlq",
                "camera_registry": f"{prefix}.registry",
            },
        },
        "cameras": [
            {
                "id": c,
                "village": "v1",
                "source": {"type": "file", "path": str(clip)},
                "sample_fps": SAMPLE_FPS,
                "motion": {"enabled": False},
                "quality": {"enabled": False},
            }
            for c in CAMERAS
        ],
    }
    cfg_path = tmp_path / "ingest.yaml"
    cfg_path.write_text(yaml.safe_dump(config, allow_unicode=True))
    settings = load_config(cfg_path)
    bus = KafkaBus(settings.bus)
    # the worker creates its topics itself; create them here too so the checker can subscribe first
    from xueliang.bus.memory import MemoryBus
    from xueliang.ingest.worker import IngestWorker

    bus.ensure_topics(IngestWorker(settings, MemoryBus(), share=True).topic_specs())
    frames = Frames(bus, settings.bus.topics.frames)

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {w: tmp_path / f"{w}.log" for w in ("wA", "wB")}
    try:
        for w, log in logs.items():
            procs[w] = subprocess.Popen(
                [sys.executable, "-m", "xueliang.ingest.worker", "-c", str(cfg_path), "--worker-id", w],
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                env=env,
            )
        # steady state: the six cameras split between the two workers, none twice
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            frames.pump(0.5)
            a, b = _running(logs["wA"]), _running(logs["wB"])
            if a and b and a | b == set(CAMERAS) and not a & b:
                break
        a, b = _running(logs["wA"]), _running(logs["wB"])
        assert a and b, f"both workers should run cameras: wA={a} wB={b}\n{logs['wA'].read_text()[-2000:]}"
        assert a | b == set(CAMERAS) and not a & b, (a, b)
        print(f"\nsteady state: wA runs {sorted(a)}, wB runs {sorted(b)}")
        t0 = time.time() + 2.0  # let just-started cameras settle
        frames.pump(2.0 + 4.0 + 1.0)
        _assert_each_camera_once(frames, t0, t0 + 4.0)

        procs["wA"].send_signal(signal.SIGKILL)
        killed = time.time()
        procs["wA"].wait(10)
        moved_at: dict[str, float] = {}
        while time.time() - killed < 35 and len(moved_at) < len(a):
            frames.pump(0.5)
            for cam in a:
                fresh = [m for m in frames.by_cam.get(cam, []) if m.capture_ts > killed + 0.5]
                if fresh and cam not in moved_at:
                    moved_at[cam] = fresh[0].capture_ts - killed
        print(
            "SIGKILL wA → its cameras' frames resume via wB after "
            + ", ".join(f"{c} {t:.1f} s" for c, t in sorted(moved_at.items()))
        )
        assert set(moved_at) == a, f"cameras {sorted(a - set(moved_at))} did not move"
        assert max(moved_at.values()) <= 30.0
        assert _running(logs["wB"]) == set(CAMERAS)

        t1 = time.time() + 2.0
        frames.pump(2.0 + 4.0 + 1.0)
        _assert_each_camera_once(frames, t1, t1 + 4.0)

        # add a worker: the load spreads again
        logs["wC"] = tmp_path / "wC.log"
        procs["wC"] = subprocess.Popen(
            [sys.executable, "-m", "xueliang.ingest.worker", "-c", str(cfg_path), "--worker-id", "wC"],
            stdout=logs["wC"].open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            frames.pump(0.5)
            b, c = _running(logs["wB"]), _running(logs["wC"])
            if b and c and b | c == set(CAMERAS) and not b & c:
                break
        b, c = _running(logs["wB"]), _running(logs["wC"])
        print(f"wC joined: wB runs {sorted(b or [])}, wC runs {sorted(c or [])}")
        assert b and c and b | c == set(CAMERAS) and not b & c and len(c) == 3
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        frames.consumer.close()
        mine = set(settings.bus.topics.model_dump().values())
        bus.delete_topics([t for t in bus.list_topics() if t in mine])  # leave the shared broker as we found it
        bus.close()
    assert procs["wB"].returncode == 0, logs["wB"].read_text()[-3000:]
    assert procs["wC"].returncode == 0, logs["wC"].read_text()[-3000:]
