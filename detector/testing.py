"""Shipped fakes and helpers for testing the detector stage (and stages downstream of it).

* :class:`BlobBackend` — a tiny classical detector (bright blobs on a dark frame, via OpenCV
  connected components) behind the same :class:`InferenceBackend` interface: lets the worker's
  contract (bus, commits, dead letters, crash replay) be tested in milliseconds without a model.
* :func:`minimal_settings` — a valid :class:`Settings` holding only the given cameras.
* :func:`publish_frames` — send frames to the frames topic as :class:`FrameMessage`s with
  ``capture_ts = t0 + scene t`` (no real-time waiting), motion boxes from ingest's motion gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import cv2
import numpy as np

from xueliang.bus.base import Producer
from xueliang.config import Settings
from xueliang.config.cameras import CameraConfig
from xueliang.contracts import FrameMessage, MotionBox
from xueliang.detector.backends import InferenceBackend
from xueliang.detector.types import Detections


class BlobBackend(InferenceBackend):
    """Bright blobs → detections. Colour picks the class: white = person (0), red = fire (5), blue = car (3)."""

    kind = "blob"

    def __init__(self, names: dict[int, str] | None = None, min_area: int = 30) -> None:
        super().__init__(imgsz=0, conf=0.0, iou=0.0,
                         names=names or {0: "person", 1: "bicycle", 2: "motorbike", 3: "car", 4: "truck",
                                         5: "fire", 6: "smoke"})
        self.min_area = min_area

    def _forward(self, tensor: np.ndarray) -> np.ndarray:  # pragma: no cover - predict() is overridden
        raise NotImplementedError

    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for img in images:
            boxes, scores, classes = [], [], []
            for cls, mask in ((0, np.all(img > 200, axis=2)),
                              (5, (img[..., 2] > 200) & (img[..., 1] < 80) & (img[..., 0] < 80)),
                              (3, (img[..., 0] > 200) & (img[..., 1] < 80) & (img[..., 2] < 80))):
                n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
                for i in range(1, n):
                    x, y, w, h, area = stats[i]
                    if area >= self.min_area:
                        boxes.append((x, y, x + w, y + h))
                        scores.append(0.9)
                        classes.append(cls)
            out.append(Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                                  np.asarray(classes, np.int32)))
        return out


def minimal_settings(cameras: Sequence[CameraConfig | dict[str, Any]], **sections: Any) -> Settings:
    """Settings with a one-branch centre tree (city → county → township → village ``v1``)."""
    cams = []
    for cam in cameras:
        data = cam.model_dump(mode="json") if isinstance(cam, CameraConfig) else dict(cam)
        if not data.get("village"):
            data["village"] = "v1"
        cams.append(data)
    tree = {"id": "city", "name": "City", "tier": "city", "children": [
        {"id": "c1", "name": "County", "tier": "county", "children": [
            {"id": "t1", "name": "Township", "tier": "township", "children": [
                {"id": "v1", "name": "Village", "tier": "village"}]}]}]}
    return Settings.model_validate({"centres": tree, "cameras": cams, **sections})


def frame_message(camera_id: str, seq: int, ts: float, image: np.ndarray, motion: Iterable[MotionBox] = (),
                  keepalive: bool = False, quality: int = 85) -> FrameMessage:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    h, w = image.shape[:2]
    return FrameMessage(camera_id, seq, ts, w, h, buf.tobytes(), tuple(motion), keepalive)


def publish(producer: Producer, topic: str, msg: FrameMessage) -> None:
    producer.send(topic, msg.jpeg, key=msg.camera_id, headers=msg.headers())


def publish_frames(producer: Producer, topic: str, camera: CameraConfig, frames: Iterable[tuple[float, np.ndarray]],
                   t0: float) -> int:
    """Publish (scene time, image) pairs as the ingest stage would, with motion from ingest's gate.

    Unlike ingest, frames without motion are published too (keep-alive flagged when one is due),
    so the detector's own gating is what decides; returns the number of frames sent.
    """
    from xueliang.ingest.motion import MotionGate

    gate = MotionGate(camera.motion)
    n = 0
    for seq, (t, image) in enumerate(frames):
        decision = gate.decide(image, t0 + t)
        publish(producer, topic, frame_message(camera.id, seq, t0 + t, image, decision.boxes, decision.keepalive))
        n += 1
    producer.flush()
    return n
