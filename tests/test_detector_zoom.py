"""Zoom (second look): small, uncertain whole-frame detections are looked at again in full-resolution
crops; the crop's better score replaces the weak one, and a crop never adds objects the whole frame
did not half-see."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.test_detector_worker import drain, read
from xueliang.bus.memory import MemoryBus
from xueliang.contracts import Incident, topic_specs
from xueliang.detector.backends import InferenceBackend
from xueliang.detector.roi import inside_crop
from xueliang.detector.testing import frame_message, minimal_settings, publish
from xueliang.detector.types import Detections
from xueliang.detector.worker import DetectorWorker

T0 = 1_700_000_000.0
W, H = 960, 720
FIRE = (700, 100, 712, 116)  # 12x16 px: 4x5 px once the frame is shrunk to 320
DECOY = (760, 160, 800, 190)  # blue: only visible to the crop pass


class ShrinkSensitiveBackend(InferenceBackend):
    """A red blob is a fire, scored by how many pixels the network would see of it: weak (0.15) in the
    whole frame shrunk to imgsz, sure (0.85) in a crop at full resolution. A blue blob is a car that
    only the full-resolution crop reports."""

    kind = "probe"

    def __init__(self) -> None:
        super().__init__(imgsz=320, conf=0.1, iou=0.5, names={0: "person", 3: "car", 5: "fire", 6: "smoke"})
        self.calls: list[tuple[int, int]] = []

    def _forward(self, tensor: np.ndarray) -> np.ndarray:  # pragma: no cover - predict() is overridden
        raise NotImplementedError

    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for img in images:
            self.calls.append(img.shape[:2])
            whole = max(img.shape[:2]) > self.imgsz  # shrunk to imgsz by the letterbox
            boxes, scores, classes = [], [], []
            red = (img[..., 2] > 180) & (img[..., 1] < 90) & (img[..., 0] < 90)
            blue = (img[..., 0] > 180) & (img[..., 1] < 90) & (img[..., 2] < 90)
            for cls, mask, score in ((5, red, 0.15 if whole else 0.85), (3, blue, None if whole else 0.9)):
                ys, xs = np.nonzero(mask)
                if score is None or not len(xs):
                    continue
                boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
                scores.append(score)
                classes.append(cls)
            out.append(
                Detections(
                    np.asarray(boxes, np.float32).reshape(-1, 4),
                    np.asarray(scores, np.float32),
                    np.asarray(classes, np.int32),
                )
            )
        return out


def scene() -> np.ndarray:
    img = np.full((H, W, 3), 90, np.uint8)
    cv2.rectangle(img, FIRE[:2], (FIRE[2] - 1, FIRE[3] - 1), (0, 0, 255), -1)
    cv2.rectangle(img, DECOY[:2], (DECOY[2] - 1, DECOY[3] - 1), (255, 0, 0), -1)
    return img


def run(
    tmp_path: Path, zoom: bool, camera_zoom: bool | None = None
) -> tuple[list[Incident], DetectorWorker, ShrinkSensitiveBackend]:
    camera = {
        "id": "far-field",
        "source": {"type": "file", "path": "unused.mp4"},
        "zoom": camera_zoom,
        "rules": [{"name": "field-fire", "type": "fire_smoke", "k": 2, "n": 3, "cooldown_s": 60}],
    }
    settings = minimal_settings(
        [camera], detector={"max_age_s": 1e9, "snapshot_dir": str(tmp_path / "snaps"), "zoom": {"enabled": zoom}}
    )
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(settings.bus.topics, settings.bus.frame_partitions))
    backend = ShrinkSensitiveBackend()
    worker = DetectorWorker(settings, bus, worker_id="w1", backend=backend, clock=lambda: T0 + 1000)
    producer = bus.producer()
    for seq in range(6):
        publish(
            producer,
            settings.bus.topics.frames,
            frame_message("far-field", seq, T0 + seq * 0.5, scene(), keepalive=True),
        )
    producer.flush()
    drain(worker, bus, 6)
    return read(bus, settings.bus.topics.incidents, Incident), worker, backend


def test_zoom_confirms_a_small_fire_the_shrunken_frame_only_half_sees(tmp_path):
    incidents, worker, backend = run(tmp_path, zoom=True)
    assert {i.rule_type for i in incidents} == {"fire_smoke"}
    first = min(incidents, key=lambda i: (i.started_at, i.revision))
    assert first.started_at.timestamp() <= T0 + 1.0  # k = 2 of 3 frames at 2 fps: the second frame
    assert worker.stats.zoom_crops >= 5
    assert (320, 320) in backend.calls  # crops of imgsz frame pixels, not the shrunken frame
    # the decoy car, seen only in crops where nothing was half-seen, never became a track
    tracks = worker.states["far-field"].tracker.tracks
    assert tracks and all(t.class_id == 5 for t in tracks)
    assert max(t.median_score for t in tracks) >= 0.8


def test_without_zoom_the_weak_fire_raises_nothing(tmp_path):
    incidents, worker, backend = run(tmp_path, zoom=False)
    assert incidents == []
    assert worker.stats.zoom_crops == 0
    assert all(max(shape) > 320 for shape in backend.calls)  # whole frames only (decoded at 1/2: 480x360)


def test_a_camera_can_turn_zoom_on_or_off_for_itself(tmp_path):
    incidents, worker, _ = run(tmp_path / "on", zoom=False, camera_zoom=True)
    assert {i.rule_type for i in incidents} == {"fire_smoke"} and worker.stats.zoom_crops > 0
    incidents, worker, _ = run(tmp_path / "off", zoom=True, camera_zoom=False)
    assert incidents == [] and worker.stats.zoom_crops == 0


def test_crop_detections_cut_by_an_inner_crop_edge_are_dropped():
    d = Detections(
        np.array([[0, 50, 30, 90], [100, 100, 140, 150], [280, 10, 320, 40]], np.float32),
        np.array([0.9, 0.9, 0.9], np.float32),
        np.array([3, 3, 3], np.int32),
    )
    # crop at the frame's left edge: its left side is the frame's edge, its right side is inside the frame
    kept = inside_crop(d, (0, 0, 320, 320), width=960, height=720)
    np.testing.assert_array_equal(kept.xyxy, d.xyxy[:2])
    # crop in the middle: both sides inside
    kept = inside_crop(d, (300, 200, 620, 520), width=960, height=720)
    np.testing.assert_array_equal(kept.xyxy, d.xyxy[1:2])
