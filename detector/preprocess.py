"""One letterbox and one NMS, shared by every backend (so they all return the same boxes).

The frame is resized keeping its aspect ratio so that its long side is ``imgsz`` (bilinear),
centred on a canvas and padded with grey 114, exactly as ultralytics does, so weights trained by
ultralytics see the same pixels whichever runtime executes them. The canvas is the model's fixed
input where it has one; otherwise it is *rectangular*, the resized frame padded only up to the next
multiple of the stride (as ultralytics' own ``predict`` does): a 16:9 camera at 320 px costs a
320x192 canvas, 60 % of the 320x320 square.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from xueliang.detector.types import Detections

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class LetterboxInfo:
    """How a frame was placed on the canvas: boxes go back by ``(xy - pad) / scale``."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int


def canvas_shape(height: int, width: int, imgsz: int, stride: int = 32) -> tuple[int, int]:
    """The smallest stride-aligned (H, W) canvas holding a ``height`` x ``width`` frame resized to ``imgsz``."""
    scale = min(imgsz / height, imgsz / width)
    new_h, new_w = int(round(height * scale)), int(round(width * scale))
    return -(-new_h // stride) * stride, -(-new_w // stride) * stride


def letterbox(image: np.ndarray, imgsz: int, canvas: tuple[int, int] | None = None) -> tuple[np.ndarray, LetterboxInfo]:
    """BGR uint8 HxWx3 image → the (H, W, 3) uint8 ``canvas`` (default: :func:`canvas_shape`) and the placement.

    The long side is resized to ``imgsz`` or less, whatever fits the canvas."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR HxWx3 image, got shape {image.shape}")
    h, w = image.shape[:2]
    ch, cw = canvas or canvas_shape(h, w, imgsz)
    scale = min(imgsz / h, imgsz / w, ch / h, cw / w)
    new_w, new_h = min(cw, int(round(w * scale))), min(ch, int(round(h * scale)))
    pad_x, pad_y = (cw - new_w) / 2, (ch - new_h) / 2
    top, bottom = int(round(pad_y - 0.1)), int(round(pad_y + 0.1))
    left, right = int(round(pad_x - 0.1)), int(round(pad_x + 0.1))
    resized = image if (new_w, new_h) == (w, h) else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out = cv2.copyMakeBorder(
        resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE, PAD_VALUE, PAD_VALUE)
    )
    if out.shape[:2] != (ch, cw):  # rounding guard
        out = cv2.resize(out, (cw, ch), interpolation=cv2.INTER_LINEAR)
    return out, LetterboxInfo(scale, float(left), float(top), w, h)


def to_tensor(canvases: list[np.ndarray]) -> np.ndarray:
    """Stack same-shape canvases into the network's (B, 3, H, W) float32 RGB input in [0, 1]."""
    batch = np.stack(canvases)[..., ::-1]  # BGR → RGB
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(x1[i], x1[rest])
        yy1 = np.maximum(y1[i], y1[rest])
        xx2 = np.minimum(x2[i], x2[rest])
        yy2 = np.minimum(y2[i], y2[rest])
        inter = (xx2 - xx1).clip(0) * (yy2 - yy1).clip(0)
        iou = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def postprocess(
    output: np.ndarray, infos: list[LetterboxInfo], conf: float, iou: float, max_det: int = 300
) -> list[Detections]:
    """Raw YOLO output → per-frame detections in frame pixels (class-aware NMS).

    Accepts the anchor layout of YOLOv8/11 heads, ``(B, 4 + nc, A)`` with centre-xywh boxes,
    and the end-to-end layout ``(B, K, 6)`` of x1, y1, x2, y2, score, class (NMS already done).
    """
    output = np.asarray(output, dtype=np.float32)
    if output.ndim != 3 or output.shape[0] != len(infos):
        raise ValueError(f"unexpected model output shape {output.shape} for a batch of {len(infos)}")
    end2end = output.shape[2] == 6 and output.shape[1] != 6
    results = []
    for b, info in enumerate(infos):
        if end2end:
            rows = output[b]
            rows = rows[rows[:, 4] >= conf]
            xyxy, scores, cls = rows[:, :4].copy(), rows[:, 4], rows[:, 5].astype(np.int32)
        else:
            # reduced along the contiguous anchor axis, and the class taken only where the best score passes
            # (the transposed (A, 4 + nc) view's row-wise argmax cost ~1 ms a frame for 80 COCO classes)
            cls_scores = output[b, 4:]  # (nc, A)
            best = cls_scores.max(0)
            kept = np.flatnonzero(best >= conf)
            cls = cls_scores[:, kept].argmax(0).astype(np.int32)
            scores = best[kept]
            cx, cy, bw, bh = output[b, :4][:, kept]
            xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)
            if len(xyxy):
                # class-aware: offset boxes per class so different classes never suppress each other
                offset = cls[:, None].astype(np.float32) * 7680.0
                keep = nms(xyxy + offset, scores, iou)[:max_det]
                xyxy, scores, cls = xyxy[keep], scores[keep], cls[keep]
        xyxy[:, [0, 2]] = ((xyxy[:, [0, 2]] - info.pad_x) / info.scale).clip(0, info.width)
        xyxy[:, [1, 3]] = ((xyxy[:, [1, 3]] - info.pad_y) / info.scale).clip(0, info.height)
        results.append(Detections(xyxy.astype(np.float32), scores.astype(np.float32), cls.astype(np.int32)))
    return results
