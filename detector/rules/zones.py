"""Zone rules (intrusion, loitering, crowding): per-track presence in the zone, with inertia and grace."""

from __future__ import annotations

import math
from typing import Any

from xueliang.detector.rules.frames import FrameView, RuleEvent, TrackedObject
from xueliang.detector.rules.runner import ObjectState, RuleRunner, class_family


class _Presence(ObjectState):
    """Per-track zone presence: established after ``inertia`` consecutive inside observations."""

    __slots__ = ("entered_ts", "established", "last_inside_ts", "run")

    def __init__(self, family: str, xyxy: tuple[float, float, float, float], ts: float) -> None:
        super().__init__(family, xyxy, ts)
        self.run = 0
        self.entered_ts: float | None = None
        self.last_inside_ts = -math.inf
        self.established = False

    @property
    def since(self) -> float:
        return math.inf if self.entered_ts is None else self.entered_ts

    @property
    def donor(self) -> bool:
        return self.established

    def observe(self, inside: bool, ts: float, inertia: int, grace_s: float) -> None:
        if inside:
            self.run += 1
            if self.entered_ts is None:
                self.entered_ts = ts
            self.last_inside_ts = self.seen_ts = ts
            if self.run >= inertia:
                self.established = True
        else:
            self.run = 0
            if not self.established or ts - self.last_inside_ts > grace_s:
                self.established = False
                self.entered_ts = None

    def inherit(self, other: _Presence) -> None:
        """Go on with ``other``'s dwell: the same object, seen again under a new track."""
        self.entered_ts, self.established = other.entered_ts, True
        self.run = max(self.run, other.run)
        self.last_inside_ts = max(self.last_inside_ts, other.last_inside_ts)

    def inside(self, ts: float, grace_s: float) -> bool:
        return self.established and ts - self.last_inside_ts <= grace_s


def _entered(p: _Presence, ts: float) -> float:
    return ts if p.entered_ts is None else p.entered_ts


class _ZoneRunner(RuleRunner):
    """Shared by intrusion, loitering and crowding: per-track presence in the zone."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.presence: dict[int, _Presence] = {}

    def idle(self, frame: FrameView) -> None:
        self.presence.clear()

    def update_presence(self, frame: FrameView) -> list[TrackedObject]:
        """Observe seen objects; return the live qualifying objects established inside."""
        inertia = self.rule.inertia
        seen = {o.track_id for o in frame.objects if o.seen}
        for o in frame.objects:
            if not o.seen:
                continue
            inside = self.qualifies(o) and self.in_zone(o)
            p = self.presence.get(o.track_id)
            if p is None:
                p = self.presence[o.track_id] = _Presence(class_family(o.class_name), o.xyxy, frame.ts)
            if inside and not p.established:
                # a new track where an object inside was lost moments ago: the same object, its dwell goes on
                # (within half its height of where it was last seen inside)
                p.point, radius = o.bottom_centre, (o.xyxy[3] - o.xyxy[1]) / 2
                lost = self.claim(self.presence, o, p, radius, frame.ts, seen)
                if lost is not None:
                    p.inherit(lost[1])
            p.observe(inside, frame.ts, inertia, self.grace_s)
            if inside:
                p.xyxy, p.point = o.xyxy, o.bottom_centre
        self.prune(self.presence, frame)
        return [
            o
            for o in frame.objects
            if o.track_id in self.presence and self.presence[o.track_id].inside(frame.ts, self.grace_s)
        ]


class IntrusionRunner(_ZoneRunner):
    def evaluate(self, frame: FrameView) -> list[RuleEvent]:
        inside = self.update_presence(frame)
        events: list[RuleEvent] = []
        zone = self.rule.zone
        if inside:
            start = min(_entered(self.presence[o.track_id], frame.ts) for o in inside)
            ev = self.book.hold(zone, zone, frame.ts, start, inside, {"count": len(inside)}, signature=len(inside))
            if ev:
                events.append(ev)
        return events + self.book.sweep(frame.ts, {zone} if inside else set())


class LoiteringRunner(_ZoneRunner):
    def evaluate(self, frame: FrameView) -> list[RuleEvent]:
        inside = self.update_presence(frame)
        events: list[RuleEvent] = []
        holding = set()
        for o in inside:
            entered = _entered(self.presence[o.track_id], frame.ts)
            dwell = frame.ts - entered
            if dwell >= self.rule.dwell_s:
                holding.add(o.track_id)
                ev = self.book.hold(o.track_id, self.rule.zone, frame.ts, entered, [o], {"dwell_s": round(dwell, 1)})
                if ev:
                    events.append(ev)
        return events + self.book.sweep(frame.ts, holding | self.hidden(frame.ts))


class CrowdingRunner(_ZoneRunner):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.since: float | None = None
        self.last_crowded_ts = -math.inf
        self.max_count = 0

    def evaluate(self, frame: FrameView) -> list[RuleEvent]:
        inside = self.update_presence(frame)
        zone = self.rule.zone
        events: list[RuleEvent] = []
        crowded = len(inside) >= self.rule.min_count
        # the duration survives a dip in the count (an occluded or re-identified member) this long
        tolerance = max(self.grace_s, self.occlusion_grace_s)
        if crowded:
            if self.since is None or frame.ts - self.last_crowded_ts > tolerance:
                self.since, self.max_count = frame.ts, 0
            self.last_crowded_ts = frame.ts
            self.max_count = max(self.max_count, len(inside))
            if frame.ts - self.since >= self.rule.min_duration_s:
                ev = self.book.hold(
                    zone,
                    zone,
                    frame.ts,
                    self.since,
                    inside,
                    {"count": len(inside), "max_count": self.max_count, "duration_s": round(frame.ts - self.since, 1)},
                    signature=len(inside),
                )
                if ev:
                    events.append(ev)
                return events + self.book.sweep(frame.ts, {zone})
        elif self.since is not None and frame.ts - self.last_crowded_ts > tolerance:
            self.since = None
        return events + self.book.sweep(frame.ts, {zone} if crowded and self.book.busy else set())
