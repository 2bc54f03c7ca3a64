"""The detector's zoom: a second look at small, uncertain detections.

The whole-frame pass shrinks a frame to the model's input size, where a far person or a small field
fire is a few pixels and scores low. The zoom remembers such detections per camera for ``hold_s``
(:class:`ZoomSpot`), infers crops of ``imgsz`` frame pixels around them at full resolution, and keeps
from the crops only what re-scores a spot (same class, overlapping): it never adds objects elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np

from xueliang.config.detector import ZoomConfig
from xueliang.detector.backends import InferenceBackend
from xueliang.detector.roi import Region, inside_crop, merge_crops, roi_regions
from xueliang.detector.tracking import iou_matrix
from xueliang.detector.types import Detections
from xueliang.geometry import as_box


class ZoomSpot(NamedTuple):
    """A small, uncertain whole-frame detection that the zoom looks at again."""

    box: tuple[float, float, float, float]
    ts: float  # capture time
    score: float
    class_id: int


class Spotted(Protocol):
    """What the zoom keeps per camera: the spots of the last ``hold_s`` (the worker's camera state)."""

    zoom_spots: list[ZoomSpot]
    classes: frozenset[str]  # the classes the camera's rules look at


def at_spots(d: Detections, region: Region, spots: list[ZoomSpot], min_iou: float = 0.2) -> Detections:
    """Crop detections (crop pixels) that are a second look at a spot: same class, overlapping it.
    The zoom re-scores what the whole-frame pass half-saw; it never adds objects elsewhere."""
    if not len(d) or not spots:
        return Detections.empty()
    boxes = d.xyxy + np.array([region[0], region[1], region[0], region[1]], np.float32)
    iou = iou_matrix(boxes, np.array([s.box for s in spots], np.float32))
    same = d.class_id[:, None] == np.array([s.class_id for s in spots])[None, :]
    return d[((iou >= min_iou) & same).any(axis=1)]


def second_look(
    images: Sequence[np.ndarray],
    capture_ts: Sequence[float],
    states: Sequence[Spotted | None],
    dets: list[Detections],
    backend: InferenceBackend,
    zoom: ZoomConfig,
    iou: float,
) -> tuple[list[Detections], int]:
    """Zoom: crops of imgsz frame pixels around small, uncertain detections (and where they were in the
    last ``hold_s``), inferred at full resolution and merged into the whole-frame detections.

    ``states[i]`` holds the spots of frame ``i``'s camera (None: the camera does not zoom); returns the
    detections and the number of crops inferred."""
    imgsz = backend.imgsz
    crops: list[np.ndarray] = []
    wanted: list[frozenset[str]] = []  # per crop, its camera's rule classes (an ensemble skips members for none)
    plan: list[tuple[int, list[Region], list[ZoomSpot]]] = []
    for i, (image, d) in enumerate(zip(images, dets, strict=False)):
        h, w = image.shape[:2]
        st = states[i]
        if imgsz <= 0 or max(h, w) < zoom.min_frame_scale * imgsz or st is None:
            continue
        now, model_px = capture_ts[i], imgsz / max(h, w)
        for box, score, cls in zip(d.xyxy, d.confidence, d.class_id, strict=False):
            if score >= zoom.min_confidence and max(box[2] - box[0], box[3] - box[1]) * model_px <= zoom.max_object_px:
                st.zoom_spots.append(ZoomSpot(as_box(box), now, float(score), int(cls)))
        st.zoom_spots = [s for s in st.zoom_spots if 0 <= now - s.ts <= zoom.hold_s]
        best = sorted(st.zoom_spots, key=lambda s: -s.score)
        regions = None
        for n in (2 * zoom.max_crops, zoom.max_crops, 1):  # the surest spots first when they do not all fit
            regions = roi_regions(
                w,
                h,
                [s.box for s in best[:n]],
                imgsz,
                max_regions=zoom.max_crops,
                max_share=1.0,
                min_scale=zoom.min_frame_scale,
            )
            if regions or len(best) <= n:
                break
        if regions:
            plan.append((i, regions, list(st.zoom_spots)))
            crops += [image[y1:y2, x1:x2] for x1, y1, x2, y2 in regions]
            wanted += [st.classes] * len(regions)
    if not crops:
        return dets, 0
    raw = backend.infer(crops, wanted)
    out, k = list(dets), 0
    for i, regions, spots in plan:
        h, w = images[i].shape[:2]
        parts = [((0, 0, w, h), dets[i])]
        for r in regions:
            parts.append((r, at_spots(inside_crop(raw[k], r, w, h), r, spots)))
            k += 1
        out[i] = merge_crops(parts, iou)
    return out, len(crops)
