"""A second opinion on fire before it reaches the rules: flames have a colour.

A fire detection is kept only when enough of its box is flame-coloured: red to yellow hue, saturated and
bright, or the near-white, warm core of a flame. On real footage the network's false fires sit on dark
corners, brick, autumn leaves and sun glare, where the flame fraction is about zero (measured: the 95th
percentile of 27 false fires on vtest/tree frames was 0.000), while every generated fire the model finds
has 0.42 or more, and a real flame at the size a rule acts on (tens of pixels) fills a good part of its box.

Smoke gets no colour test: real smoke is grey or white, like the pavement and sky the network mistakes
for it, so a colour rule would reject real smoke as readily as false smoke (and dusk light tints generated
smoke: a tenth of its boxes have no low-saturation pixels). What keeps false smoke out is the model itself
(trained with real frames as hard negatives), the rule's k-of-n persistence, and one test of geometry: a smoke
box lying inside a confident person's box is that person. The fire/smoke model has seen few real people up
close, and a face filling the picture scored 0.48-0.54 as smoke (a held-out in-car clip); a person standing in
front of smoke leaves the smoke's box larger than theirs. On held-out generated frames none of the 316 smoke
boxes lies 80 % inside a person's box.
"""

from __future__ import annotations

import cv2
import numpy as np

from xueliang.config.detector import HazardCheckConfig
from xueliang.detector.types import Detections
from xueliang.geometry import as_box


def flame_fraction(image: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Share of the box's pixels (BGR ``image``, box in its pixels) that look like flame."""
    h, w = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return 0.0
    crop = image[y1:y2, x1:x2]
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    b, g, r = (crop[..., i].astype(np.int16) for i in range(3))
    warm = (r >= g) & (g >= b)
    flame = ((hue <= 25) | (hue >= 170)) & (sat >= 90) & (val >= 150) & warm
    core = (val >= 230) & warm & (r - b >= 20)
    return float((flame | core).mean())


def verify_fire(
    dets: Detections, names: list[str], image: np.ndarray, scale: float, config: HazardCheckConfig
) -> np.ndarray:
    """Boolean mask over ``dets``: False for a fire detection whose box is not flame-coloured enough.

    ``dets`` are in frame pixels, ``image`` is the decoded frame, ``scale`` = frame pixels per image pixel."""
    keep = np.ones(len(dets), bool)
    if not config.enabled:
        return keep
    for i, name in enumerate(names):
        if name in config.fire_classes:
            box = as_box(float(v) / scale for v in dets.xyxy[i])
            keep[i] = flame_fraction(image, box) >= config.min_flame_fraction
    return keep


def verify_smoke(dets: Detections, names: list[str], config: HazardCheckConfig) -> np.ndarray:
    """Boolean mask over ``dets``: False for a smoke detection with at least ``max_smoke_inside_person`` of its
    area inside the box of a person detected with ``person_min_score`` or more (any class map's person)."""
    keep = np.ones(len(dets), bool)
    if not config.enabled or config.max_smoke_inside_person >= 1 or not len(dets):
        return keep
    people = dets.xyxy[
        [n == "person" and s >= config.person_min_score for n, s in zip(names, dets.confidence, strict=True)]
    ]
    if not len(people):
        return keep
    for i, name in enumerate(names):
        if name in config.smoke_classes:
            x1, y1, x2, y2 = (float(v) for v in dets.xyxy[i])
            iw = (np.minimum(x2, people[:, 2]) - np.maximum(x1, people[:, 0])).clip(0)
            ih = (np.minimum(y2, people[:, 3]) - np.maximum(y1, people[:, 1])).clip(0)
            inside = float((iw * ih).max()) / max((x2 - x1) * (y2 - y1), 1e-9)
            keep[i] = inside < config.max_smoke_inside_person
    return keep
