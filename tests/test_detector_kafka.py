"""The worker on the real Kafka broker, model-independent (BlobBackend worker processes):
two workers share four cameras, one is SIGKILLed mid-stream, and every incident still arrives
exactly once after dedup by id — the same ids an uninterrupted run produces; a poison frame goes
to the dead-letter topic and processing continues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from xueliang.bus.memory import MemoryBus
from xueliang.contracts import DeadLetter, FrameMessage, Incident, Topics, topic_specs
from xueliang.detector.evaluate import read_incidents
from xueliang.detector.testing import BlobBackend, minimal_settings, publish, publish_frames, walker_frames
from xueliang.detector.worker import DetectorWorker

pytestmark = [pytest.mark.slow]
CAMERAS = {f"cam-{c}": [(1 + k, 9 + k), (20 + k, 27 + k)] for k, c in enumerate("abcd")}


def settings_for(bus_cfg: dict, snapshots: Path):
    cams = [
        {
            "id": cid,
            "source": {"type": "file", "path": "unused.mp4"},
            "zones": [{"name": "yard", "polygon": [[150, 100], [260, 100], [260, 230], [150, 230]]}],
            "rules": [{"name": "yard-intrusion", "type": "intrusion", "zone": "yard", "cooldown_s": 5}],
            "motion": {"keepalive_s": 2.0},
        }
        for cid in CAMERAS
    ]
    return minimal_settings(
        cams, bus=bus_cfg, detector={"max_age_s": 1e9, "snapshot_dir": str(snapshots), "queue_frames": 16}
    )


def feed(bus, settings, t0: float) -> int:
    prod = bus.producer("feeder")
    n = 0
    for cam in settings.cameras:
        n += publish_frames(prod, settings.bus.topics.frames, cam, walker_frames(CAMERAS[cam.id], 36), t0)
    prod.flush()
    return n


def reference_ids(tmp_path: Path, t0: float) -> set[str]:
    bus = MemoryBus()
    settings = settings_for({"type": "memory"}, tmp_path / "ref")
    bus.ensure_topics(topic_specs(settings.bus.topics))
    n = feed(bus, settings, t0)
    worker = DetectorWorker(settings, bus, worker_id="ref", backend=BlobBackend())
    stop = threading.Event()
    th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    th.start()
    while sum(worker.done.values()) < n:
        time.sleep(0.02)
    stop.set()
    th.join(10)
    return {i.id for i in read_incidents(bus, settings.bus.topics.incidents, "ref-reader", idle_s=0.3)}


def test_sigkill_one_of_two_workers_every_incident_exactly_once(kafka_bootstrap, tmp_path):
    from xueliang.bus.kafka import KafkaBus

    t0 = time.time()
    expected = reference_ids(tmp_path, t0)
    assert len(expected) == 2 * len(CAMERAS)

    prefix = f"t-detk-{uuid.uuid4().hex[:8]}"
    topics = Topics(**{k: f"{prefix}.{v}" for k, v in Topics().model_dump().items()})
    settings = settings_for(
        {
            "type": "kafka",
            "bootstrap_servers": [kafka_bootstrap],
            "topics": topics.model_dump(),
            "frame_partitions": 4,
            "session_timeout_s": 6.0,
            "heartbeat_interval_s": 1.0,
        },
        tmp_path / "snaps",
    )
    cfg = tmp_path / "xueliang.yaml"
    cfg.write_text(yaml.safe_dump(settings.model_dump(mode="json", by_alias=True)))
    bus = KafkaBus(settings.bus)
    bus.ensure_topics(topic_specs(topics, 4))
    prod = bus.producer("poison")
    publish(prod, topics.frames, FrameMessage("cam-a", 0, t0, 8, 8, b"\xff\xd8 not a jpeg"))
    prod.close()
    n = 1 + feed(bus, settings, t0)

    group = f"detector-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xueliang.detector.testing",
                "--config",
                str(cfg),
                "--worker-id",
                f"w{i}",
                "--group",
                group,
                "--delay",
                "0.02",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in (1, 2)
    ]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sum(bus.end_offsets(topics.incidents).values()) < 2:
            time.sleep(0.1)
        assert sum(bus.committed_offsets(group, topics.frames).values()) < n, "finished before the kill"
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        # the survivor takes the dead member's partitions after the session timeout and replays them
        deadline = time.monotonic() + 90
        last, still = None, time.monotonic()
        while time.monotonic() < deadline:
            state = (
                sum(bus.end_offsets(topics.incidents).values()),
                sum(bus.committed_offsets(group, topics.frames).values()),
            )
            if state[1] >= n:
                break
            if state != last:
                last, still = state, time.monotonic()
            elif time.monotonic() - still > 15:
                break
            time.sleep(0.3)
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(30) == 0
    finally:
        logs = []
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            logs.append(p.stdout.read().decode(errors="replace") if p.stdout else "")
    incidents = read_incidents(bus, topics.incidents, f"reader-{uuid.uuid4().hex[:6]}")
    dl = bus.consumer(f"dl-{uuid.uuid4().hex[:6]}", [topics.dead_letters])
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + 10
    while not letters and time.monotonic() < deadline:
        letters += [DeadLetter.from_bytes(r.value) for r in dl.poll(timeout=0.5)]
    dl.close()
    committed = sum(bus.committed_offsets(group, topics.frames).values())
    bus.close()
    ids = {i.id for i in incidents}
    print(
        f"\n{len(incidents)} incident reports, {len(ids)} incidents after dedup, {len(expected)} expected; "
        f"committed {committed}/{n}"
    )
    assert ids == expected, logs[1][-4000:]
    # the survivor did take over the killed member's partitions (its assignment grew to all four)
    assignments = [ln for ln in logs[1].splitlines() if "partitions now" in ln]
    assert len(assignments) >= 2 and assignments[-1].count(topics.frames) == 4, assignments
    assert committed == n
    assert any("undecodable JPEG" in d.reason and "cam-a" in d.reason for d in letters)
    # every incident's first report carries its snapshot URL
    assert all(i.snapshot_url == f"/snapshots/{i.id}.jpg" for i in incidents)
    assert all((tmp_path / "snaps" / f"{i}.jpg").is_file() for i in ids)
    assert all(isinstance(i, Incident) for i in incidents)
