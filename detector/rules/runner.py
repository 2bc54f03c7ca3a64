"""The rule engine every rule family shares: schedule windows, qualification (class, score, size, zone),
one :class:`~xueliang.detector.rules.episodes.EpisodeBook` per rule, and per-object state that outlives
its track (lost or id-switched objects wait as *ghosts* for the object's next track).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import time
from typing import Any

from xueliang.config.cameras import CameraConfig
from xueliang.config.rules import ActiveWindow
from xueliang.detector.rules.episodes import EpisodeBook
from xueliang.detector.rules.frames import FrameView, RawDetection, RuleEvent, TrackedObject
from xueliang.geometry import box_area, box_bottom_centre, point_in_polygon

# Classes a model confuses for one object (a track's majority class may flip between them): an object's
# rule state passes only to a track of the same family.
CLASS_FAMILIES: dict[str, str] = {
    "car": "vehicle",
    "truck": "vehicle",
    "bus": "vehicle",
    "van": "vehicle",
    "bicycle": "two_wheeler",
    "motorbike": "two_wheeler",
}
HANDOVER_IOU = 0.5  # a lost object's state passes to a new track whose box overlaps its last one this much


def class_family(name: str) -> str:
    return CLASS_FAMILIES.get(name, name)


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def in_schedule(windows: Sequence[ActiveWindow], now: time) -> bool:
    """Whether ``now`` falls in any window; a window with start > end wraps midnight."""
    if not windows:
        return True
    for w in windows:
        if w.start <= w.end:
            if w.start <= now < w.end:
                return True
        elif now >= w.start or now < w.end:
            return True
    return False


class ObjectState:
    """Per-object rule state that can outlive its track (see :meth:`RuleRunner.claim`).

    ``point``/``xyxy``: where the object was last consistent with the state (stationary anchor, or last
    bottom-centre inside the zone) and its box there; ``seen_ts``: when; ``since``: the timer's start;
    ``born_ts``: when the rule first saw the track (two tracks seen at once are two objects).
    """

    __slots__ = ("born_ts", "family", "point", "seen_ts", "xyxy")

    def __init__(
        self, family: str, xyxy: tuple[float, float, float, float], ts: float, born_ts: float | None = None
    ) -> None:
        self.family, self.xyxy, self.point, self.seen_ts = family, xyxy, box_bottom_centre(xyxy), ts
        self.born_ts = ts if born_ts is None else born_ts

    @property
    def since(self) -> float:
        raise NotImplementedError

    @property
    def donor(self) -> bool:
        """Worth handing to the object's next track (a timer is running)."""
        raise NotImplementedError


class RuleRunner:
    def __init__(self, rule: Any, camera: CameraConfig, grace_s: float, update_interval_s: float) -> None:
        self.rule = rule
        self.camera = camera
        self.grace_s = grace_s
        # how long an object's state waits for the object's next track (0: per-object state dies with its track)
        self.occlusion_grace_s: float = getattr(rule, "occlusion_grace_s", 0.0)
        self.ghosts: list[tuple[int, ObjectState]] = []  # (track id it belonged to, state), oldest first
        zone_name = getattr(rule, "zone", None)
        self.polygon = next((z.polygon for z in camera.zones if z.name == zone_name), None) if zone_name else None
        self.book = EpisodeBook(camera.id, rule.name, rule.type, zone_name, grace_s, rule.cooldown_s, update_interval_s)

    def qualifies(self, obj: TrackedObject | RawDetection) -> bool:
        score = obj.confidence
        return (
            obj.class_name in self.rule.classes and score >= self.rule.min_confidence and obj.area >= self.rule.min_area
        )

    def in_zone(self, obj: TrackedObject | RawDetection) -> bool:
        return self.polygon is None or point_in_polygon(obj.bottom_centre, self.polygon)

    def step(self, frame: FrameView) -> list[RuleEvent]:
        if self.ghosts:
            self.ghosts = [(t, g) for t, g in self.ghosts if frame.ts - g.seen_ts <= self.occlusion_grace_s]
        if not in_schedule(self.rule.schedule, frame.local_time):
            self.ghosts.clear()
            self.idle(frame)
            return self.book.sweep(frame.ts)
        return self.evaluate(frame)

    def idle(self, frame: FrameView) -> None:
        """Outside the schedule: forget per-object progress (a dwell must be seen whole)."""

    def evaluate(self, frame: FrameView) -> list[RuleEvent]:
        raise NotImplementedError

    def prune(self, states: dict[int, Any], frame: FrameView) -> None:
        """Drop the state of tracks the tracker evicted; a running timer waits as a ghost for the object's
        next track (for ``occlusion_grace_s`` after it was last seen)."""
        live = {o.track_id for o in frame.objects}
        for tid in [t for t in states if t not in live]:
            self.bury(tid, states.pop(tid), frame.ts)

    def bury(self, tid: int, state: Any, ts: float) -> None:
        if isinstance(state, ObjectState) and state.donor and ts - state.seen_ts <= self.occlusion_grace_s:
            self.ghosts.append((tid, state))

    def claim(
        self,
        states: dict[int, Any],
        obj: TrackedObject,
        heir: ObjectState,
        radius: float,
        ts: float,
        seen: set[int],
    ) -> tuple[int, Any] | None:
        """The lost state ``obj`` (whose own state is ``heir``) continues, if any: a ghost, or the state of a
        live track unseen in this frame (the tracker gave the object a new id while the old one coasts), of
        the same class family, last seen within ``occlusion_grace_s`` and before ``obj``'s track was first
        seen (unless it is that track's own), at the same place (``heir.point`` within ``radius`` of where
        it was, or boxes overlapping by IoU ≥ 0.5). The longest-running one wins; it is taken (one object,
        one heir), and its episode moves to ``obj``'s track."""
        if self.occlusion_grace_s <= 0:
            return None
        family = class_family(obj.class_name)
        # a live track's state may be any rule's (``states`` values): only an object's state can be an heir
        candidates: list[tuple[int, int, Any]] = [(i, tid, g) for i, (tid, g) in enumerate(self.ghosts)]
        candidates += [(-1, tid, s) for tid, s in states.items() if tid != obj.track_id and tid not in seen]
        fits = [
            (g.since, tid, i, g)
            for i, tid, g in candidates
            if isinstance(g, ObjectState)
            and g.donor
            and g.family == family
            and ts - g.seen_ts <= self.occlusion_grace_s
            and (tid == obj.track_id or g.seen_ts < heir.born_ts)
            and (math.dist(g.point, heir.point) <= radius or box_iou(g.xyxy, obj.xyxy) >= HANDOVER_IOU)
        ]
        if not fits:
            return None
        _, tid, i, g = min(fits, key=lambda f: (f[0], f[1], f[2]))
        if i >= 0:
            del self.ghosts[i]
        else:
            del states[tid]
        self.book.rekey(tid, obj.track_id)
        return tid, g

    def hidden(self, ts: float) -> set[int]:
        """Subjects whose object is out of sight but may come back (their episodes stay open)."""
        return {tid for tid, _ in self.ghosts}

    @property
    def busy(self) -> bool:
        # a ghost keeps the camera busy: a successor replaying from the last quiet point rebuilds it
        return self.book.busy or bool(self.ghosts)
