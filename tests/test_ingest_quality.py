"""Video quality diagnosis on labelled clips made from real footage (opencv-doc's vtest.avi)
with OpenCV transforms, read back through the ingest file source; a confusion table is printed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from xueliang.bus.memory import MemoryBus
from xueliang.config.cameras import CameraConfig, QualityConfig
from xueliang.contracts import CameraHealth, CameraStatus, Incident
from xueliang.ingest.quality import QualityDiagnoser, measure, primary_fault
from xueliang.ingest.sources import make_source
from xueliang.ingest.testing import FootageMissing, settings_for, vtest_avi
from xueliang.ingest.worker import IngestWorker

FPS = 10
CLIP_FRAMES = 20
SEGMENTS = (0, 260, 520)  # three parts of the footage per label


def _covered(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hand / cloth over most of the lens: a dark, blurred, textureless blob."""
    h, w = f.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cx, cy = int(w * rng.uniform(0.45, 0.55)), int(h * rng.uniform(0.45, 0.55))
    cv2.ellipse(mask, (cx, cy), (int(w * 0.72), int(h * 0.8)), float(rng.uniform(-10, 10)), 0, 360, 255, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 6)
    skin = np.empty_like(f)
    skin[:] = (45, 60, 85)
    return cv2.blendLinear(skin, f, mask.astype(np.float32) / 255, 1 - mask.astype(np.float32) / 255)


def _turned(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The camera turned away (pan ≈ 25 %, tilt 8°, zoom): applied to the second half of the clip."""
    h, w = f.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 8.0, 1.2)
    m[0, 2] += 0.25 * w
    return cv2.warpAffine(f, m, (w, h), borderMode=cv2.BORDER_REFLECT)


TRANSFORMS = {
    "clean": lambda f, rng: f,
    "blurred": lambda f, rng: cv2.GaussianBlur(f, (0, 0), 4),
    "covered": _covered,
    "frozen": None,  # the first frame repeated
    "turned": _turned,  # second half only
    "black": lambda f, rng: cv2.randn(np.empty_like(f), (3, 3, 3), (1.5, 1.5, 1.5)),
    "colour_cast": lambda f, rng: np.clip(f.astype(np.float32) * (0.7, 1.0, 1.45), 0, 255).astype(np.uint8),
    "dark": lambda f, rng: np.clip(f.astype(np.float32) * 0.15, 0, 255).astype(np.uint8),
    "bright": lambda f, rng: np.clip(f.astype(np.float32) * 0.3 + 200, 0, 255).astype(np.uint8),
    "noisy": lambda f, rng: cv2.add(
        f, cv2.randn(np.empty(f.shape, np.int16), (0, 0, 0), (20, 20, 20)), dtype=cv2.CV_8U
    ),
}
EXPECTED = {
    "clean": None,
    "blurred": "blur",
    "covered": "covered",
    "frozen": "frozen",
    "turned": "moved",
    "black": "signal_loss",
    "colour_cast": "colour_cast",
    "dark": "too_dark",
    "bright": "too_bright",
    "noisy": "noise",
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    try:
        src = vtest_avi()
    except FootageMissing as exc:
        pytest.skip(str(exc))
    cap = cv2.VideoCapture(str(src))
    frames = []
    while len(frames) < max(SEGMENTS) + CLIP_FRAMES:
        ok, f = cap.read()
        assert ok, f"{src} is shorter than expected"
        frames.append(f)
    cap.release()
    out_dir = tmp_path_factory.mktemp("quality-clips")
    rng = np.random.default_rng(7)
    cv2.setRNGSeed(7)
    clips: dict[str, list[Path]] = {}
    for label, fn in TRANSFORMS.items():
        for start in SEGMENTS:
            path = out_dir / f"{label}-{start}.avi"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (768, 576))
            for k in range(CLIP_FRAMES):
                if fn is None:
                    f = frames[start]
                elif label == "turned" and k < CLIP_FRAMES // 2:
                    f = frames[start + k]
                else:
                    f = fn(frames[start + k], rng)
                writer.write(f)
            writer.release()
            clips.setdefault(label, []).append(path)
    return clips


def _diagnose_clip(path: Path, quality: QualityConfig) -> tuple[str, ...]:
    cam = CameraConfig.model_validate(
        {"id": "q", "source": {"type": "file", "path": str(path), "loop": False, "realtime": False}}
    )
    source = make_source(cam)
    source.open()
    diag = QualityDiagnoser(quality)
    last = None
    try:
        while (ts := source.grab()) is not None:
            if diag.due(ts):
                last = diag.diagnose(source.retrieve(), ts)
    finally:
        source.close()
    assert last is not None
    return last.faults


def test_quality_confusion_table(clips: dict[str, list[Path]]) -> None:
    quality = QualityConfig(interval_s=0.5, frozen_s=1.0)
    table: dict[str, Counter[str]] = {}
    for label, paths in clips.items():
        table[label] = Counter(primary_fault(_diagnose_clip(p, quality)) or "ok" for p in paths)
    cols = ["ok", "blur", "covered", "moved", "frozen", "signal_loss", "colour_cast", "too_dark", "too_bright", "noise"]
    lines = [
        "",
        "quality diagnosis: labelled clip (rows) → primary fault (columns), clips of vtest.avi",
        f"{'':12s}" + "".join(f"{c:>12s}" for c in cols),
    ]
    for label, counts in table.items():
        lines.append(f"{label:12s}" + "".join(f"{counts.get(c, 0):12d}" for c in cols))
    print("\n".join(lines))
    for label, counts in table.items():
        expected = EXPECTED[label] or "ok"
        assert counts == Counter({expected: len(SEGMENTS)}), (label, dict(counts))


def test_quality_scores_are_bounded_and_clean_footage_passes(clips: dict[str, list[Path]]) -> None:
    cap = cv2.VideoCapture(str(clips["clean"][0]))
    ok, frame = cap.read()
    cap.release()
    assert ok
    scores = measure(frame)
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert max(scores.values()) < 0.5, scores


def test_frozen_needs_frozen_s_of_identical_pictures(clips: dict[str, list[Path]]) -> None:
    # the same frozen clip with a longer frozen_s than the clip lasts is not (yet) frozen
    assert "frozen" not in _diagnose_clip(clips["frozen"][0], QualityConfig(interval_s=0.5, frozen_s=10.0))


@pytest.mark.slow
def test_worker_publishes_diagnosis_change_and_fault_incident(clips: dict[str, list[Path]]) -> None:
    """End to end: a covered camera goes degraded (health event) and, after the grace period,
    becomes a camera_fault incident; the clean camera stays online and raises nothing."""
    quality = {"interval_s": 0.5, "fault_grace_s": 2.0}
    settings = settings_for(
        [
            {"id": "clean-cam", "source": {"type": "file", "path": str(clips["clean"][0])}, "quality": quality},
            {"id": "covered-cam", "source": {"type": "file", "path": str(clips["covered"][0])}, "quality": quality},
        ]
    )
    bus = MemoryBus()
    stop = threading.Event()
    worker = IngestWorker(settings, bus, worker_id="w-quality", tick_s=0.2)
    bus.ensure_topics(worker.topic_specs())  # before the checker subscribes (the worker creates them in run())
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    topics = settings.bus.topics
    consumer = bus.consumer("check", [topics.camera_health, topics.incidents])
    health: list[CameraHealth] = []
    incidents: list[Incident] = []
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline and not incidents:
            for rec in consumer.poll(timeout=0.3):
                if rec.topic == topics.incidents:
                    incidents.append(Incident.from_bytes(rec.value))
                else:
                    health.append(CameraHealth.from_bytes(rec.value))
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    covered = [h for h in health if h.camera_id == "covered-cam"]
    assert covered and covered[-1].status is CameraStatus.degraded and "covered" in covered[-1].faults
    assert all(h.status is CameraStatus.online for h in health if h.camera_id == "clean-cam")
    assert len(incidents) == 1
    inc = incidents[0]
    assert (inc.camera_id, inc.rule, inc.rule_type, inc.details["fault"]) == (
        "covered-cam",
        "camera_fault",
        "camera_fault",
        "covered",
    )
    assert inc.id == Incident.make_id("covered-cam", "camera_fault", f"covered@{inc.started_at.isoformat()}")
    assert (inc.updated_at - inc.started_at).total_seconds() >= 2.0


def test_moved_view_is_flagged_then_becomes_the_reference() -> None:
    """Across the whole of vtest.avi (walkers everywhere) the view never counts as moved; a turned
    camera is flagged, and after moved_rebaseline_s its new view is accepted as normal."""
    try:
        src = vtest_avi()
    except FootageMissing as exc:
        pytest.skip(str(exc))
    cap = cv2.VideoCapture(str(src))
    frames, i = [], 0
    while cap.grab():
        if i % 40 == 0:
            frames.append(cap.retrieve()[1])
        i += 1
    cap.release()
    diag = QualityDiagnoser(QualityConfig(interval_s=1.0, moved_rebaseline_s=5.0))
    ts = 0.0
    for f in frames:  # 20 pictures, 4 s of footage apart
        d = diag.diagnose(f, ts)
        assert "moved" not in d.faults and d.scores["moved"] < 0.3, (ts, d.scores)
        ts += 1.0
    rng = np.random.default_rng(0)
    flagged = []
    for f in frames[:8]:
        flagged.append("moved" in diag.diagnose(_turned(f, rng), ts).faults)
        ts += 1.0
    assert flagged == [True] * 6 + [False] * 2  # flagged for 5 s, then the new view is the reference
