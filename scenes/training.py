"""Ground truth → training labels (YOLO format), with the rule for which boxes count."""

from __future__ import annotations

from collections.abc import Iterable

from xueliang.scenes.render import GroundTruthBox

MIN_VISIBLE = 0.3  # boxes of actors hidden more than this are not labelled
MIN_SIDE_PX = 3.0  # boxes smaller than this (in the stored image) are not labelled


def labelled(boxes: Iterable[GroundTruthBox], scale: float = 1.0) -> list[GroundTruthBox]:
    """Boxes a detector is expected to find: visible enough and not too small at ``scale``."""
    return [
        b
        for b in boxes
        if b.visible_fraction >= MIN_VISIBLE
        and (b.xyxy[2] - b.xyxy[0]) * scale >= MIN_SIDE_PX
        and (b.xyxy[3] - b.xyxy[1]) * scale >= MIN_SIDE_PX
    ]


def yolo_labels(boxes: Iterable[GroundTruthBox], width: int, height: int, scale: float = 1.0) -> list[str]:
    """``class cx cy w h`` lines, normalised to the frame size."""
    out = []
    for b in labelled(boxes, scale):
        x0, y0, x1, y1 = b.xyxy
        out.append(
            f"{b.class_id} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
            f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"
        )
    return out
