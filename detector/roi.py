"""Regions of interest for high-resolution frames (as Frigate does): instead of shrinking a
1080p frame to the model's 320-640 px input, where a far-away person becomes a few pixels,
infer on square crops around motion and tracked objects, each at least the model's input
size, clustered so that nearby boxes share one crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xueliang.detector.preprocess import nms
from xueliang.detector.types import Detections

Region = tuple[int, int, int, int]


def _square(box: Sequence[float], side_min: int, width: int, height: int, margin: float = 1.2) -> list[float]:
    x1, y1, x2, y2 = box
    side = min(max(side_min, margin * max(x2 - x1, y2 - y1)), width, height)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    nx1 = min(max(cx - side / 2, 0), width - side)
    ny1 = min(max(cy - side / 2, 0), height - side)
    return [nx1, ny1, nx1 + side, ny1 + side]


def roi_regions(
    width: int,
    height: int,
    boxes: Sequence[Sequence[float]],
    imgsz: int,
    max_regions: int = 4,
    max_share: float = 0.6,
    min_scale: float = 2.0,
) -> list[Region] | None:
    """Square crops (x1, y1, x2, y2) covering ``boxes``; None when the whole frame is the better input
    (no boxes, a small frame, too many crops or crops covering most of the frame)."""
    if not boxes or max(width, height) < min_scale * imgsz:
        return None
    regions = [_square(b, imgsz, width, height) for b in boxes]
    merged = True
    while merged and len(regions) > 1:  # cluster: merge overlapping crops into one covering square
        merged = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                a, b = regions[i], regions[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    union = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    regions[i] = _square(union, imgsz, width, height, margin=1.0)  # already padded
                    del regions[j]
                    merged = True
                    break
            if merged:
                break
    area = sum((r[2] - r[0]) * (r[3] - r[1]) for r in regions)
    if len(regions) > max_regions or area > max_share * width * height:
        return None
    return [(int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2))) for x1, y1, x2, y2 in regions]


def merge_crops(parts: Sequence[tuple[Region, Detections]], iou: float) -> Detections:
    """Detections of each crop → one set in frame pixels (class-aware NMS across crop overlaps)."""
    if not parts:
        return Detections.empty()
    xyxy = np.concatenate([d.xyxy + np.array([r[0], r[1], r[0], r[1]], np.float32) for r, d in parts])
    conf = np.concatenate([d.confidence for _, d in parts])
    cls = np.concatenate([d.class_id for _, d in parts])
    if not len(xyxy):
        return Detections.empty()
    keep = nms(xyxy + cls[:, None].astype(np.float32) * 100_000.0, conf, iou)
    return Detections(xyxy[keep], conf[keep], cls[keep])


def inside_crop(d: Detections, region: Region, width: int, height: int, margin: float = 2.0) -> Detections:
    """Drop crop detections that touch a crop edge lying inside the frame: an object cut by the crop
    is better seen by the whole-frame pass."""
    if not len(d):
        return d
    x1, y1, x2, y2 = region
    w, h = x2 - x1, y2 - y1
    b = d.xyxy
    ok = np.ones(len(d), bool)
    if x1 > 0:
        ok &= b[:, 0] > margin
    if y1 > 0:
        ok &= b[:, 1] > margin
    if x2 < width:
        ok &= b[:, 2] < w - margin
    if y2 < height:
        ok &= b[:, 3] < h - margin
    return d[ok]
