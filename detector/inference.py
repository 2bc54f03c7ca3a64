"""The detector worker's inference: decoding (reduced JPEG decodes), the whole-frame or ROI pass in
micro-batches per backend, the zoom's second look, and a failed batch retried frame by frame."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING

import cv2
import numpy as np

from xueliang.bus.base import Producer, TopicPartition
from xueliang.bus.deadletter import DeadLetters, is_outage
from xueliang.config.cameras import CameraConfig
from xueliang.contracts import FrameMessage, jpeg_size
from xueliang.detector import metrics
from xueliang.detector.backends import InferenceBackend
from xueliang.detector.roi import Region, merge_crops, roi_regions
from xueliang.detector.types import Detections
from xueliang.detector.zoom import second_look

if TYPE_CHECKING:
    from xueliang.config.detector import DetectorConfig
    from xueliang.detector.worker import CameraState, WorkerStats, _Pending

log = logging.getLogger(__name__)

_REDUCED_DECODE = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def jpeg_problem(msg: FrameMessage) -> str | None:
    """Why the frame's value is not the JPEG its headers describe (read from the JPEG's own header)."""
    try:
        w, h = jpeg_size(msg.jpeg)
    except ValueError as exc:
        return str(exc)
    if (w, h) != (msg.width, msg.height):
        return f"JPEG is {w}x{h}, headers say {msg.width}x{msg.height}"
    return None


class InferenceMixin:
    """The inference part of :class:`~xueliang.detector.worker.DetectorWorker`."""

    config: DetectorConfig
    cameras: dict[str, CameraConfig]
    backends: dict[str | None, InferenceBackend]
    stats: WorkerStats
    dead_letters: DeadLetters
    worker_id: str

    if TYPE_CHECKING:  # the worker's own

        def state(self, camera_id: str) -> CameraState: ...
        def _done(self, tp: TopicPartition, offset: int) -> None: ...
        def _after_inference(self, item: _Pending, dets: Detections, producer: Producer) -> None: ...

    def _decode(self, msg: FrameMessage) -> tuple[np.ndarray | None, str]:
        """The frame's pixels (reduced when that is enough), or None and why not. The JPEG's own size is
        read first and must match the headers: a forged header cannot make the decoder allocate more."""
        if problem := jpeg_problem(msg):
            return None, problem
        scale = self._decode_scale(msg)
        try:
            img = cv2.imdecode(np.frombuffer(msg.jpeg, np.uint8), _REDUCED_DECODE[scale])
        except cv2.error as exc:
            return None, f"decoder error: {str(exc).strip()[:200]}"
        if img is None or img.size == 0 or img.ndim != 3:
            return None, "the decoder returned no image"
        return img, ""

    def _views(self, item: _Pending) -> list[Region] | None:
        """Crops to infer for this frame (ROI mode), or None for the whole frame."""
        if not self.config.roi_crops or item.image is None:
            return None
        st = self.state(item.msg.camera_id)
        boxes = [(b.x1, b.y1, b.x2, b.y2) for b in item.msg.motion] + [tuple(t.xyxy) for t in st.tracker.tracks]
        h, w = item.image.shape[:2]
        return roi_regions(w, h, boxes, self._backend(item.msg.camera_id).imgsz)

    def _infer_batch(self, items: list[_Pending], producer: Producer) -> None:
        """Infer a batch; if it fails, each frame alone, so one frame the model or the rules cannot
        take is dead-lettered (naming its camera) and the others go on."""
        if not items:
            return
        try:
            self._infer_items(items, producer)
            return
        except Exception as exc:  # sorted out below, frame by frame
            if is_outage(exc):
                raise
            if len(items) == 1:
                self._failed(producer, items[0], exc)
                return
            log.warning(
                "%s: a batch of %d frames failed (%s); retrying them one by one", self.worker_id, len(items), exc
            )
        for it in items:
            if it.handled:
                continue  # handled before the failure
            try:
                self._infer_items([it], producer)
            except Exception as exc:  # the frame's own failure: dead-lettered
                if is_outage(exc):
                    raise
                self._failed(producer, it, exc)

    def _failed(self, producer: Producer, item: _Pending, exc: BaseException) -> None:
        log.exception("%s: frame %s seq %d failed", self.worker_id, item.msg.camera_id, item.msg.seq, exc_info=exc)
        self.dead_letters.failed(producer, item.record, exc, what=f"camera {item.msg.camera_id}, seq {item.msg.seq}")
        self.stats.dead_letters += 1
        self._done(item.tp, item.record.offset)

    def _backend(self, camera_id: str) -> InferenceBackend:
        return self.backends[self.cameras[camera_id].detector_backend]

    def _infer_items(self, items: list[_Pending], producer: Producer) -> None:
        groups: dict[str | None, list[_Pending]] = defaultdict(list)
        for it in items:
            groups[self.cameras[it.msg.camera_id].detector_backend].append(it)
        for key, group in groups.items():
            self._infer_group(group, producer, self.backends[key])

    def _infer_group(self, items: list[_Pending], producer: Producer, backend: InferenceBackend) -> None:
        views = [self._views(it) for it in items]
        inputs: list[np.ndarray] = []
        wanted: list[frozenset[str]] = []  # per input, the classes its camera's rules look at
        for it, regions in zip(items, views, strict=False):
            if regions is None:
                inputs.append(it.decoded)
            else:
                inputs += [it.decoded[y1:y2, x1:x2] for x1, y1, x2, y2 in regions]
            wanted += [self.state(it.msg.camera_id).classes] * (1 if regions is None else len(regions))
        raw = backend.infer(inputs, wanted)
        dets, k = [], 0
        for regions in views:
            if regions is None:
                dets.append(raw[k])
                k += 1
            else:
                dets.append(merge_crops(list(zip(regions, raw[k : k + len(regions)], strict=False)), self.config.iou))
                k += len(regions)
        if any(self._zooms(it.msg.camera_id) for it in items):
            dets = self._second_look(items, dets, backend)
        metrics.FRAMES_INFERRED.inc(len(items))
        self.stats.frames_inferred += len(items)
        for item, found in zip(items, dets, strict=False):
            d = found
            if item.scale != 1:  # back to the frame's pixels, where the zones are drawn
                d = Detections((d.xyxy * np.float32(item.scale)).astype(np.float32), d.confidence, d.class_id)
            self._after_inference(item, d, producer)

    def _zooms(self, camera_id: str) -> bool:
        own = self.cameras[camera_id].zoom
        return self.config.zoom.enabled if own is None else own

    def _second_look(
        self, items: list[_Pending], dets: list[Detections], backend: InferenceBackend
    ) -> list[Detections]:
        """The zoom (:func:`xueliang.detector.zoom.second_look`) on the frames of zooming cameras."""
        states = [self.state(it.msg.camera_id) if self._zooms(it.msg.camera_id) else None for it in items]
        out, crops = second_look(
            [it.decoded for it in items],
            [it.msg.capture_ts for it in items],
            states,
            dets,
            backend,
            self.config.zoom,
            self.config.iou,
        )
        if crops:
            metrics.ZOOM_CROPS.inc(crops)
            self.stats.zoom_crops += crops
        return out

    def _decode_scale(self, msg: FrameMessage) -> int:
        """The largest JPEG reduction (1/2, 1/4, 1/8) still at least ``decode_min_scale`` × the input size of the
        networks that run for this camera's rules: the network sees the frame shrunk to that anyway, and a
        reduced decode costs a fraction of a full one (a 576p frame for a 384-px network: half size, so the
        letterbox has nothing left to resize). ROI crops and zoom need every pixel; snapshots are decoded again
        at full size."""
        imgsz = self._backend(msg.camera_id).input_size(self.state(msg.camera_id).classes)
        if self.config.roi_crops or self._zooms(msg.camera_id) or imgsz <= 0:
            return 1  # (imgsz 0: a test backend that takes frames as they are)
        long_side, least = max(msg.width, msg.height), self.config.decode_min_scale * imgsz
        return next((k for k in (8, 4, 2) if long_side // k >= least), 1)
