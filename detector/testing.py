"""Shipped fakes and helpers for testing the detector stage (and stages downstream of it).

* :class:`BlobBackend` — a tiny classical detector (bright blobs on a dark frame, via OpenCV
  connected components) behind the same :class:`InferenceBackend` interface: lets the worker's
  contract (bus, commits, dead letters, crash replay) be tested in milliseconds without a model.
* :func:`yard_camera` — the camera the worker tests use with :class:`BlobBackend`: a yard zone watched for intrusion.
* :func:`minimal_settings` — a valid :class:`Settings` holding only the given cameras.
* :func:`publish_frames` — send frames to the frames topic as :class:`FrameMessage`s with
  ``capture_ts = t0 + scene t`` (no real-time waiting), motion boxes from ingest's motion gate.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
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

    def __init__(self, names: dict[int, str] | None = None, min_area: int = 30, delay_s: float = 0.0) -> None:
        super().__init__(
            imgsz=0,
            conf=0.0,
            iou=0.0,
            names=names or {0: "person", 1: "bicycle", 2: "motorbike", 3: "car", 4: "truck", 5: "fire", 6: "smoke"},
        )
        self.min_area = min_area
        self.delay_s = delay_s  # per image: makes a worker slow enough to be killed mid-stream in tests

    def _forward(self, tensor: np.ndarray) -> np.ndarray:  # pragma: no cover - predict() is overridden
        raise NotImplementedError

    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        if self.delay_s:
            time.sleep(self.delay_s * len(images))
        out = []
        for img in images:
            boxes, scores, classes = [], [], []
            for cls, mask in (
                (0, np.all(img > 200, axis=2)),
                (5, (img[..., 2] > 200) & (img[..., 1] < 80) & (img[..., 0] < 80)),
                (3, (img[..., 0] > 200) & (img[..., 1] < 80) & (img[..., 2] < 80)),
            ):
                n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
                for i in range(1, n):
                    x, y, w, h, area = stats[i]
                    if area >= self.min_area:
                        boxes.append((x, y, x + w, y + h))
                        scores.append(0.9)
                        classes.append(cls)
            out.append(
                Detections(
                    np.asarray(boxes, np.float32).reshape(-1, 4),
                    np.asarray(scores, np.float32),
                    np.asarray(classes, np.int32),
                )
            )
        return out


def walker_frames(
    visits: Sequence[tuple[float, float]],
    duration_s: float,
    fps: float = 5.0,
    width: int = 320,
    height: int = 240,
    y: int = 200,
) -> list[tuple[float, np.ndarray]]:
    """(scene t, image): a white 12x30 'person' (for :class:`BlobBackend`) walking left → right across the
    frame during each (start, end) visit, on a dark background."""
    frames = []
    for i in range(int(duration_s * fps)):
        t = i / fps
        img = np.full((height, width, 3), 40, np.uint8)
        for start, end in visits:
            if start <= t <= end:
                x = int(20 + (width - 40) * (t - start) / (end - start))
                cv2.rectangle(img, (x - 6, y - 30), (x + 6, y), (255, 255, 255), -1)
        frames.append((t, img))
    return frames


def yard_camera() -> dict[str, Any]:
    """A fresh config of ``cam-a``: a yard zone (x 150-260, y 100-230 of a 320x240 frame) with an intrusion rule
    (3 observations inside, 5 s cooldown), motion gating sensitive enough for :func:`walker_frames`' walker."""
    return {
        "id": "cam-a",
        "source": {"type": "file", "path": "unused.mp4"},
        "zones": [{"name": "yard", "polygon": [[150, 100], [260, 100], [260, 230], [150, 230]]}],
        "rules": [{"name": "yard-intrusion", "type": "intrusion", "zone": "yard", "inertia": 3, "cooldown_s": 5}],
        "motion": {"keepalive_s": 2.0, "min_area_ratio": 0.0005},
    }


def minimal_settings(cameras: Sequence[CameraConfig | dict[str, Any]], **sections: Any) -> Settings:
    """Settings with a one-branch centre tree (city → county → township → village ``v1``)."""
    cams = []
    for cam in cameras:
        data = cam.model_dump(mode="json") if isinstance(cam, CameraConfig) else dict(cam)
        if not data.get("village"):
            data["village"] = "v1"
        cams.append(data)
    tree = {
        "id": "city",
        "name": "City",
        "tier": "city",
        "children": [
            {
                "id": "c1",
                "name": "County",
                "tier": "county",
                "children": [
                    {
                        "id": "t1",
                        "name": "Township",
                        "tier": "township",
                        "children": [{"id": "v1", "name": "Village", "tier": "village"}],
                    }
                ],
            }
        ],
    }
    return Settings.model_validate({"centres": tree, "cameras": cams, **sections})


def frame_message(
    camera_id: str,
    seq: int,
    ts: float,
    image: np.ndarray,
    motion: Iterable[MotionBox] = (),
    keepalive: bool = False,
    quality: int = 85,
) -> FrameMessage:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    h, w = image.shape[:2]
    return FrameMessage(camera_id, seq, ts, w, h, buf.tobytes(), tuple(motion), keepalive)


def publish(producer: Producer, topic: str, msg: FrameMessage) -> None:
    producer.send(topic, msg.jpeg, key=msg.camera_id, headers=msg.headers())


def publish_frames(
    producer: Producer, topic: str, camera: CameraConfig, frames: Iterable[tuple[float, np.ndarray]], t0: float
) -> int:
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


def main(argv: list[str] | None = None) -> None:
    """``python -m xueliang.detector.testing --config x.yaml``: a real worker process whose backend is the
    BlobBackend (crash and rebalance tests on a real broker without a model)."""
    from xueliang.bus import make_bus
    from xueliang.config import load_config
    from xueliang.detector.worker import GROUP, DetectorWorker

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--config", required=True)
    ap.add_argument("--worker-id", default=None)
    ap.add_argument("--group", default=GROUP)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds of fake inference per image")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_config(args.config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bus = make_bus(settings.bus)
    try:
        DetectorWorker(
            settings, bus, worker_id=args.worker_id, group_id=args.group, backend=BlobBackend(delay_s=args.delay)
        ).run(stop)
    finally:
        bus.close()


if __name__ == "__main__":
    main()
