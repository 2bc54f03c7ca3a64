"""What the rules read (one frame's tracked objects and raw detections) and what they write (events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from xueliang.geometry import box_area, box_bottom_centre


# ------------------------------------------------------------------------ inputs
class _Boxed:
    """Geometry of anything with an ``xyxy`` box, in frame pixels."""

    __slots__ = ()
    xyxy: tuple[float, float, float, float]

    @property
    def bottom_centre(self) -> tuple[float, float]:
        return box_bottom_centre(self.xyxy)

    @property
    def area(self) -> float:
        return box_area(self.xyxy)


@dataclass(frozen=True, slots=True)
class TrackedObject(_Boxed):
    """One live track as the rules see it (project class name; ``confidence``: the median recent score)."""

    track_id: int
    class_name: str
    xyxy: tuple[float, float, float, float]
    confidence: float
    confirmed: bool = True
    seen: bool = True  # detected in this frame (False: coasting on its last box)


@dataclass(frozen=True, slots=True)
class RawDetection(_Boxed):
    class_name: str
    xyxy: tuple[float, float, float, float]
    confidence: float


@dataclass(frozen=True, slots=True)
class FrameView:
    """What the rules get for one inferred frame of one camera."""

    ts: float
    local_time: time
    objects: tuple[TrackedObject, ...] = ()
    detections: tuple[RawDetection, ...] = ()


# ----------------------------------------------------------------------- outputs
@dataclass(frozen=True, slots=True)
class RuleEvent:
    """A new incident, or an update of one (same id, higher revision)."""

    incident_id: str
    rule_name: str
    rule_type: str
    zone: str | None
    is_new: bool
    ended: bool
    revision: int
    started_ts: float
    ts: float
    objects: tuple[TrackedObject | RawDetection, ...]
    details: dict[str, float | int | str]
