"""Two COCO-trained teachers, one set of boxes: pseudo-labels for training and drafts of ground truth.

Both converted COCO models (``detector/models/coco-nanodet.onnx``, ``coco-centernet.onnx``) look at a frame;
their COCO names become the project's classes; per class, boxes of the two teachers overlapping by IoU >= 0.5
are one object. An object is *proposed* when either teacher scores it >= ``accept`` or both see it at >=
``agree``. Used by ``bench/realfootage/label.py`` (drafts a person then checks by eye) and by
``scripts/train_model.py real`` (labels for real frames the project's model trains on).
"""

from __future__ import annotations

import numpy as np

from xueliang.detector.backends import InferenceBackend
from xueliang.detector.preprocess import nms

PROJECT_CLASSES = ("person", "bicycle", "motorbike", "car", "truck")
COCO_TO_PROJECT = {"person": "person", "bicycle": "bicycle", "motorcycle": "motorbike", "car": "car",
                   "truck": "truck", "bus": "truck"}  # fmt: skip


def teacher_boxes(det: InferenceBackend, frame: np.ndarray) -> list[tuple[list[float], str, float]]:
    d = det.infer([frame])[0]
    out = []
    for box, score, cid in zip(d.xyxy, d.confidence, d.class_id, strict=True):
        name = COCO_TO_PROJECT.get(det.names[int(cid)])
        if name:
            out.append(([float(v) for v in box], name, float(score)))
    return out


def merge(teachers: list[list[tuple[list[float], str, float]]], accept: float, agree: float) -> list[dict]:
    """Per class: greedy clusters at IoU >= 0.5; each cluster keeps its best box and every teacher's best score."""
    flat = [(b, c, s, t) for t, boxes in enumerate(teachers) for b, c, s in boxes]
    merged: list[dict] = []
    for cls in PROJECT_CLASSES:
        rows = [r for r in flat if r[1] == cls]
        if not rows:
            continue
        boxes = np.array([r[0] for r in rows], np.float32)
        scores = np.array([r[2] for r in rows], np.float32)
        order = nms(boxes, scores, 1.0)  # every index, best first
        used = np.zeros(len(rows), bool)
        for i in order:
            if used[i]:
                continue
            x1 = np.maximum(boxes[i, 0], boxes[:, 0])
            y1 = np.maximum(boxes[i, 1], boxes[:, 1])
            x2 = np.minimum(boxes[i, 2], boxes[:, 2])
            y2 = np.minimum(boxes[i, 3], boxes[:, 3])
            inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            iou = inter / (area[i] + area - inter + 1e-9)
            members = np.flatnonzero((iou >= 0.5) & ~used)
            used[members] = True
            per_teacher = [max((scores[m] for m in members if rows[m][3] == t), default=0.0) for t in range(2)]
            proposed = max(per_teacher) >= accept or min(per_teacher) >= agree
            merged.append(
                {
                    "box": [round(v, 1) for v in boxes[i].tolist()],
                    "class": cls,
                    "scores": [round(float(v), 3) for v in per_teacher],
                    "proposed": bool(proposed),
                }
            )
    return merged
