"""Scenario tests from the scene generator:

* the rules fed with ground-truth boxes raise exactly the expected incidents (model-independent);

and through the real Kafka broker, with the shipped model (ONNX Runtime):

* every public scenario → event recall ≥ 0.95, precision ≥ 0.95, each incident raised within 2 s of
  scene time of its ground-truth event (per-rule table printed);
* two worker processes, one SIGKILLed mid-scenario → after dedup by id every incident arrives exactly
  once (the same ids as the uninterrupted run), and a poison frame lands in the dead-letter topic.

Frames are published as fast as the broker takes them with ``capture_ts = t0 + scene t``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from xueliang.config.detector import DEFAULT_MODEL
from xueliang.contracts import DeadLetter, FrameMessage, Topics, topic_specs
from xueliang.detector.evaluate import (
    DEFAULT_SAMPLE_FPS,
    oracle_incidents,
    read_incidents,
    render,
    scenario_camera,
    score,
)
from xueliang.detector.testing import minimal_settings, publish, publish_frames
from xueliang.scenes.scenario import load_scenario, public_scenarios
from xueliang.scenes.truth import expected_incidents

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
FPS = float(os.environ.get("XL_SCENARIO_FPS", DEFAULT_SAMPLE_FPS))
KILL_SET = ("demo", "line_crossing_riverbank")  # scenes the shipped model sees well: several incidents mid-run

MODEL = Path(os.environ.get("XL_DETECTOR_MODEL", DEFAULT_MODEL)).resolve()  # try another export without editing
ONLY = [s for s in os.environ.get("XL_SCENARIOS", "").split(",") if s]  # quick runs on a subset
needs_model = pytest.mark.skipif(not MODEL.is_file(), reason=f"model {MODEL} missing")


def public_names() -> list[str]:
    return [p.stem for p in public_scenarios() if not ONLY or p.stem in ONLY]


@pytest.fixture(scope="module")
def rendered():
    """Every public scenario rendered once at the sample rate: name → [(scene t, JPEG, truth boxes)]."""
    return {n: render(load_scenario(REPO / "scenes" / "scenarios" / f"{n}.yaml"), 0, FPS) for n in public_names()}


def test_rules_on_ground_truth_boxes_raise_exactly_the_expected_incidents(rendered):
    scenarios = {n: load_scenario(REPO / "scenes" / "scenarios" / f"{n}.yaml") for n in rendered}
    incidents, t0, cams = [], {}, {}
    for i, (name, sc) in enumerate(scenarios.items()):
        t0[name] = 1_800_000_000.0 + 10_000 * i
        cams[name] = scenario_camera(sc, name).id
        incidents += oracle_incidents(sc, name, ((t, boxes) for t, _, boxes in rendered[name]), t0[name])
    ev = score({n: expected_incidents(sc) for n, sc in scenarios.items()}, incidents, t0, cams)
    print("\nrules on ground-truth boxes\n" + ev.table())
    assert ev.recall == 1.0 and ev.precision == 1.0, ev.unmatched
    assert all(abs(o) <= 2.0 for o in ev.totals().offsets)


def kafka_config(bootstrap: str, prefix: str) -> dict:
    topics = Topics(**{k: f"{prefix}.{v}" for k, v in Topics().model_dump().items()})
    return {
        "type": "kafka",
        "bootstrap_servers": [bootstrap],
        "topics": topics.model_dump(),
        "frame_partitions": 4,
        "session_timeout_s": 6.0,
        "heartbeat_interval_s": 1.0,
    }


def build(bootstrap: str, names: list[str], snapshots: Path):
    scenarios = {n: load_scenario(REPO / "scenes" / "scenarios" / f"{n}.yaml") for n in names}
    cams = {n: scenario_camera(sc, n) for n, sc in scenarios.items()}
    settings = minimal_settings(
        list(cams.values()),
        bus=kafka_config(bootstrap, f"t-det-{uuid.uuid4().hex[:8]}"),
        detector={
            "max_age_s": 1e9,
            "snapshot_dir": str(snapshots),
            "backend": {"type": "onnxruntime", "model": str(MODEL)},
            "zoom": {"enabled": True},
        },
    )  # far-field fires and walkers
    return scenarios, cams, settings


def publish_all(bus, settings, scenarios, cams, rendered) -> tuple[dict[str, float], int]:
    prod = bus.producer("test-feeder")
    t0, n = {}, 0
    base = time.time()
    for i, name in enumerate(scenarios):
        t0[name] = base + 0.001 * i
        frames = ((t, cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)) for t, jpeg, _ in rendered[name])
        n += publish_frames(prod, settings.bus.topics.frames, cams[name], frames, t0[name])
    prod.close()
    return t0, n


@pytest.fixture(scope="module")
def uninterrupted(kafka_bootstrap, tmp_path_factory, rendered):
    """All public scenarios through Kafka with one in-process worker."""
    from xueliang.bus.kafka import KafkaBus
    from xueliang.detector.worker import DetectorWorker

    names = public_names()
    snaps = tmp_path_factory.mktemp("snapshots")
    scenarios, cams, settings = build(kafka_bootstrap, names, snaps)
    bus = KafkaBus(settings.bus)
    bus.ensure_topics(topic_specs(settings.bus.topics, settings.bus.frame_partitions))
    t0, n = publish_all(bus, settings, scenarios, cams, rendered)
    worker = DetectorWorker(settings, bus, worker_id="w-single", group_id=f"detector-{uuid.uuid4().hex[:8]}")
    stop = threading.Event()
    th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    started = time.monotonic()
    th.start()
    while sum(worker.done.values()) < n and time.monotonic() - started < 600:
        time.sleep(0.2)
    stop.set()
    th.join(30)
    elapsed = time.monotonic() - started
    incidents = read_incidents(bus, settings.bus.topics.incidents, f"reader-{uuid.uuid4().hex[:6]}")
    bus.close()
    assert sum(worker.done.values()) >= n, "the worker did not get through the frames in time"
    expected = {name: expected_incidents(sc) for name, sc in scenarios.items()}
    ev = score(expected, incidents, t0, {k: c.id for k, c in cams.items()})
    print(f"\n{n} frames at {FPS} fps, {worker.stats.frames_inferred} inferred, {elapsed:.1f}s\n{ev.table()}")
    for line in ev.unmatched:
        print("  ", line)
    return {"incidents": incidents, "eval": ev, "snaps": snaps, "cams": cams, "t0": t0, "expected": expected}


@needs_model
def test_public_scenarios_recall_precision_timing(uninterrupted):
    """Issue 5's goal: recall and precision ≥ 0.95 over the public scenario set, every incident within
    2 s of scene time of its ground-truth event (shipped model, zoom on, through the real broker)."""
    ev = uninterrupted["eval"]
    assert ev.recall >= 0.95, ev.table()
    assert ev.precision >= 0.95, ev.table()
    assert all(abs(o) <= 2.0 for o in ev.totals().offsets), ev.table()


@needs_model
def test_every_incident_has_its_snapshot(uninterrupted):
    incidents = uninterrupted["incidents"]
    assert incidents
    for inc in incidents:
        assert inc.snapshot_url == f"/snapshots/{inc.id}.jpg"
        assert (uninterrupted["snaps"] / f"{inc.id}.jpg").stat().st_size > 1000


@needs_model
def test_sigkill_one_of_two_workers_every_incident_exactly_once(kafka_bootstrap, tmp_path, uninterrupted, rendered):
    from xueliang.bus.kafka import KafkaBus

    kill_set = [n for n in KILL_SET if n in rendered]
    scenarios, cams, settings = build(kafka_bootstrap, kill_set, tmp_path / "snaps")
    cfg = tmp_path / "xueliang.yaml"
    cfg.write_text(yaml.safe_dump(settings.model_dump(mode="json", by_alias=True), allow_unicode=True))
    bus = KafkaBus(settings.bus)
    topics = settings.bus.topics
    bus.ensure_topics(topic_specs(topics, settings.bus.frame_partitions))
    # a poison frame first: it must go to the dead-letter topic and the workers go on
    prod = bus.producer("poison")
    publish(prod, topics.frames, FrameMessage(cams[kill_set[0]].id, 0, time.time(), 8, 8, b"\xff\xd8 not a jpeg"))
    prod.close()
    t0, _ = publish_all(bus, settings, scenarios, cams, rendered)
    env = {**os.environ, "YOLO_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    group = f"detector-{uuid.uuid4().hex[:8]}"  # the broker is shared: a group of our own
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xueliang.detector.worker",
                "--config",
                str(cfg),
                "--worker-id",
                f"w{i}",
                "--group",
                group,
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in (1, 2)
    ]
    logs: list[bytes] = []
    try:
        # kill w1 as soon as the first incidents are out (mid-scenario)
        deadline = time.monotonic() + 180
        seen = 0
        while time.monotonic() < deadline and seen < 2:
            seen = sum(bus.end_offsets(topics.incidents).values())
            for p in procs:
                if p.poll() is not None:
                    out = p.stdout.read().decode(errors="replace") if p.stdout else ""
                    pytest.fail(f"worker exited with {p.returncode}:\n{out[-3000:]}")
            time.sleep(0.2)
        assert seen >= 2, "no incidents before the kill"
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        # wait until the survivor is idle: incidents and committed offsets unchanged for 12 s
        last, still = None, time.monotonic()
        while time.monotonic() < deadline + 180:
            state = (
                sum(bus.end_offsets(topics.incidents).values()),
                sum(bus.committed_offsets(group, topics.frames).values()),
            )
            if state != last:
                last, still = state, time.monotonic()
            elif time.monotonic() - still > 12:
                break
            time.sleep(0.5)
        procs[1].send_signal(signal.SIGTERM)
        procs[1].wait(30)
        assert procs[1].returncode == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            logs.append(p.stdout.read() if p.stdout else b"")
    incidents = read_incidents(bus, topics.incidents, f"reader-{uuid.uuid4().hex[:6]}")
    letters: list[DeadLetter] = []
    dl_consumer = bus.consumer(f"dl-{uuid.uuid4().hex[:6]}", [topics.dead_letters])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not letters:
        letters += [DeadLetter.from_bytes(r.value) for r in dl_consumer.poll(timeout=0.5)]
    dl_consumer.close()
    bus.close()
    assert any("undecodable JPEG" in dl.reason for dl in letters), logs[1][-3000:].decode(errors="replace")

    ids = {i.id for i in incidents}
    expected = {name: expected_incidents(sc) for name, sc in scenarios.items()}
    ev = score(expected, incidents, t0, {k: c.id for k, c in cams.items()})
    print(f"\nSIGKILL run: {len(incidents)} reports, {len(ids)} incidents after dedup\n{ev.table()}")
    # exactly once after dedup: the same incidents as the uninterrupted run of these scenarios ...
    ref = uninterrupted["eval"]
    for name in kill_set:
        for (sc, rule), s in ev.rules.items():
            if sc == name:
                assert s.raised == ref.rules[(sc, rule)].raised, (sc, rule, ev.table())
    # ... each matched to the same ground-truth events (recall itself is the previous test's business)
    for key, sc in ev.rules.items():
        assert sc.matched == ref.rules[key].matched, (key, ev.table())
    assert len(ids) == ev.totals().raised
