"""Zones and lines as pure functions on points (image pixel coordinates), shared by the detector's rules
and the scene generator's ground truth."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Point = tuple[float, float]
Box = tuple[float, float, float, float]


def as_box(values: Iterable[float]) -> Box:
    """Four numbers (a numpy row, a list) as a plain ``(x1, y1, x2, y2)`` tuple of floats."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


def box_bottom_centre(xyxy: tuple[float, float, float, float]) -> Point:
    """Where an object stands: the middle of its box's bottom edge (what zone membership uses)."""
    return (xyxy[0] + xyxy[2]) / 2, xyxy[3]


def box_area(xyxy: tuple[float, float, float, float]) -> float:
    return max(0.0, xyxy[2] - xyxy[0]) * max(0.0, xyxy[3] - xyxy[1])


def points_in_polygon(points: np.ndarray, polygon: Sequence[Point]) -> np.ndarray:
    """(N, 2) points → (N,) bool mask: inside by the even-odd rule, or on an edge. Edges count as inside so that a
    zone drawn to the picture's border holds an object the border cuts off: its box is clipped to the frame, so its
    bottom-centre lies on the frame's last line, which is then the zone's edge."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = poly[:, 0][None, :], poly[:, 1][None, :]
    x2, y2 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    hits = straddles & (x < x_cross)
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    within = (
        (np.minimum(x1, x2) <= x) & (x <= np.maximum(x1, x2)) & (np.minimum(y1, y2) <= y) & (y <= np.maximum(y1, y2))
    )
    on_edge = (np.abs(cross) <= 1e-9 * (1.0 + np.abs(x2 - x1) + np.abs(y2 - y1))) & within
    return ((hits.sum(axis=1) % 2) == 1) | on_edge.any(axis=1)


def point_in_polygon(point: Point, polygon: Sequence[Point]) -> bool:
    return bool(points_in_polygon(np.asarray([point]), polygon)[0])


def line_side(point: Point, a: Point, b: Point) -> int:
    """+1 / -1 for the two sides of the line a→b (sign of the cross product (b−a)×(p−a)), 0 on it.

    In image coordinates (y down) the +1 side is on the right of a walker going from a to b
    ... seen on screen: for a=(0, y0), b=(W, y0) a horizontal line drawn left to right, +1 is below it.
    """
    cross = (b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0])
    return 1 if cross > 0 else -1 if cross < 0 else 0


def within_segment(point: Point, a: Point, b: Point, margin: float = 0.05) -> bool:
    """Whether the point's projection onto the line falls on the segment a–b (± ``margin`` of its length)."""
    ax, ay = b[0] - a[0], b[1] - a[1]
    length2 = ax * ax + ay * ay
    if length2 == 0:
        return False
    t = ((point[0] - a[0]) * ax + (point[1] - a[1]) * ay) / length2
    return -margin <= t <= 1 + margin
