"""Box-level accuracy against hand-checked ground truth: average precision at one IoU threshold.

Used by the real-footage benchmark (``bench/realfootage``); the scenario evaluation
(:mod:`xueliang.detector.evaluate`) scores events, not boxes.

AP is the area under the precision/recall curve with precision made monotone (all-point
interpolation, as PASCAL VOC 2010+ and COCO's per-threshold AP): detections of a class over all
frames are sorted by score, each is a true positive when it overlaps a not-yet-matched ground-truth
box of its class by ``iou`` or more (greedy, best score first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Box = Sequence[float]  # x1, y1, x2, y2


def iou_one_to_many(box: Box, boxes: np.ndarray) -> np.ndarray:
    if not len(boxes):
        return np.zeros(0, np.float64)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


@dataclass(frozen=True)
class ClassScore:
    """AP of one class, with the counts behind it."""

    ap: float
    ground_truth: int
    detections: int
    true_positives: int

    @property
    def recall(self) -> float:
        return self.true_positives / self.ground_truth if self.ground_truth else 0.0


def average_precision(frames: Iterable[tuple[list[tuple[Box, float]], list[Box]]], iou: float = 0.5) -> ClassScore:
    """AP of one class over frames given as ``(detections [(box, score)], ground-truth boxes)``."""
    scored: list[tuple[float, bool]] = []
    n_gt = 0
    for dets, gts in frames:
        gt = np.asarray(gts, np.float64).reshape(-1, 4)
        n_gt += len(gt)
        taken = np.zeros(len(gt), bool)
        for box, score in sorted(dets, key=lambda d: -d[1]):
            overlap = iou_one_to_many(box, gt)
            overlap[taken] = -1.0
            best = int(overlap.argmax()) if len(overlap) else -1
            hit = best >= 0 and overlap[best] >= iou
            if hit:
                taken[best] = True
            scored.append((score, hit))
    if not scored:
        return ClassScore(0.0, n_gt, 0, 0)
    scored.sort(key=lambda s: -s[0])
    hits = np.array([h for _, h in scored], bool)
    tp = np.cumsum(hits)
    fp = np.cumsum(~hits)
    recall = tp / n_gt if n_gt else np.zeros(len(tp))
    precision = tp / (tp + fp)
    # monotone precision envelope, then the area under it at every recall step
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    ap = float((steps * envelope).sum()) if n_gt else 0.0
    return ClassScore(ap, n_gt, len(scored), int(tp[-1]))
