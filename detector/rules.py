"""Incident rules on tracked objects, per camera: small, bounded state and pure geometry.

Semantics (the ones peers get wrong):

* an object is *in* a zone by its box's bottom-centre, after ``inertia`` consecutive
  observations inside; it stays in while it is seen inside again within the episode
  grace (a one-frame flicker across the edge does not restart a dwell);
* dwell and every duration are measured on capture timestamps, never frame counts;
* an object counts only when the median of its recent scores reaches ``min_confidence``
  and its box has at least ``min_area`` px²;
* a line crossing needs a confirmed track that stays on the other side ``min_frames``
  observations in a row (flicker never double-counts);
* one real event gives one incident: an :class:`EpisodeBook` per rule keeps one episode per
  subject (zone or track); while the condition holds, later frames *update* the same
  incident (same id, higher revision); after it lapses for ``grace_s`` the episode ends,
  and if it returns within the rule's ``cooldown_s`` the same incident is re-opened;
* incident ids derive from (camera, rule, subject geometry, episode start capture time),
  never from track ids, so a worker that replays the same frames after a crash produces
  the same ids.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from xueliang.config.cameras import CameraConfig
from xueliang.config.rules import (
    AbandonedObjectRule,
    ActiveWindow,
    CrowdingRule,
    FireSmokeRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    StalledVehicleRule,
)
from xueliang.contracts import Incident
from xueliang.geometry import box_area, box_bottom_centre, line_side, point_in_polygon, within_segment

UPDATE_INTERVAL_S = 5.0


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
    """One live track as the rules see it (project class name, median recent score)."""

    track_id: int
    class_name: str
    xyxy: tuple[float, float, float, float]
    score: float
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


@dataclass
class _Episode:
    incident_id: str
    started_ts: float
    last_true_ts: float
    last_emit_ts: float
    revision: int = 0
    open: bool = True
    ended_ts: float = 0.0
    signature: Any = None
    objects: tuple[TrackedObject | RawDetection, ...] = ()
    details: dict[str, float | int | str] = field(default_factory=dict)


class EpisodeBook:
    """Episodes of one rule on one camera, one per subject, with grace, cooldown and re-arm."""

    def __init__(
        self,
        camera_id: str,
        rule_name: str,
        rule_type: str,
        zone: str | None,
        grace_s: float,
        cooldown_s: float,
        update_interval_s: float = UPDATE_INTERVAL_S,
    ) -> None:
        self.camera_id, self.rule_name, self.rule_type, self.zone = camera_id, rule_name, rule_type, zone
        self.grace_s, self.cooldown_s, self.update_interval_s = grace_s, cooldown_s, update_interval_s
        self.episodes: dict[Any, _Episode] = {}

    def _event(self, ep: _Episode, ts: float, is_new: bool) -> RuleEvent:
        return RuleEvent(
            ep.incident_id,
            self.rule_name,
            self.rule_type,
            self.zone,
            is_new,
            not ep.open,
            ep.revision,
            ep.started_ts,
            ts,
            ep.objects,
            dict(ep.details),
        )

    def hold(
        self,
        subject: Any,
        episode_key: str,
        ts: float,
        start_ts: float,
        objects: Sequence[TrackedObject | RawDetection],
        details: dict[str, float | int | str],
        signature: Any = None,
    ) -> RuleEvent | None:
        """The rule's condition holds for ``subject`` at ``ts``: open, re-open or update its episode."""
        ep = self.episodes.get(subject)
        objs = tuple(objects)
        if ep is not None and (ep.open or ts - ep.ended_ts < self.cooldown_s):
            reopened = not ep.open
            ep.open = True
            ep.last_true_ts = ts
            ep.objects, ep.details = objs, details
            if reopened or signature != ep.signature or ts - ep.last_emit_ts >= self.update_interval_s:
                ep.signature = signature
                ep.revision += 1
                ep.last_emit_ts = ts
                return self._event(ep, ts, False)
            return None
        incident_id = Incident.make_id(self.camera_id, self.rule_name, f"{episode_key}@{round(start_ts * 1000)}")
        ep = _Episode(incident_id, start_ts, ts, ts, signature=signature, objects=objs, details=details)
        self.episodes[subject] = ep
        return self._event(ep, ts, True)

    def sweep(self, ts: float, holding: set[Any] = frozenset()) -> list[RuleEvent]:  # type: ignore[assignment]
        """End episodes whose condition lapsed more than ``grace_s`` ago; forget cooled-down ones."""
        events = []
        for subject, ep in list(self.episodes.items()):
            if subject in holding:
                continue
            if ep.open and ts - ep.last_true_ts > self.grace_s:
                ep.open = False
                ep.ended_ts = ep.last_true_ts
                ep.revision += 1
                ep.details = {**ep.details, "ended": 1, "duration_s": round(ep.last_true_ts - ep.started_ts, 3)}
                events.append(self._event(ep, ts, False))
            elif not ep.open and ts - ep.ended_ts >= self.cooldown_s:
                del self.episodes[subject]
        return events

    @property
    def busy(self) -> bool:
        """An open episode exists (the camera is not quiet)."""
        return any(ep.open for ep in self.episodes.values())


# ------------------------------------------------------------------------ helpers
class _Presence:
    """Per-track zone presence: established after ``inertia`` consecutive inside observations."""

    __slots__ = ("entered_ts", "established", "last_inside_ts", "run")

    def __init__(self) -> None:
        self.run = 0
        self.entered_ts: float | None = None
        self.last_inside_ts = -math.inf
        self.established = False

    def observe(self, inside: bool, ts: float, inertia: int, grace_s: float) -> None:
        if inside:
            self.run += 1
            if self.entered_ts is None:
                self.entered_ts = ts
            self.last_inside_ts = ts
            if self.run >= inertia:
                self.established = True
        else:
            self.run = 0
            if not self.established or ts - self.last_inside_ts > grace_s:
                self.established = False
                self.entered_ts = None

    def inside(self, ts: float, grace_s: float) -> bool:
        return self.established and ts - self.last_inside_ts <= grace_s


def _entered(p: _Presence, ts: float) -> float:
    return ts if p.entered_ts is None else p.entered_ts


class _RuleRunner:
    def __init__(self, rule: Any, camera: CameraConfig, grace_s: float, update_interval_s: float) -> None:
        self.rule = rule
        self.camera = camera
        self.grace_s = grace_s
        zone_name = getattr(rule, "zone", None)
        self.polygon = next((z.polygon for z in camera.zones if z.name == zone_name), None) if zone_name else None
        self.book = EpisodeBook(camera.id, rule.name, rule.type, zone_name, grace_s, rule.cooldown_s, update_interval_s)

    def qualifies(self, obj: TrackedObject | RawDetection) -> bool:
        score = obj.score if isinstance(obj, TrackedObject) else obj.confidence
        return (
            obj.class_name in self.rule.classes and score >= self.rule.min_confidence and obj.area >= self.rule.min_area
        )

    def in_zone(self, obj: TrackedObject | RawDetection) -> bool:
        return self.polygon is None or point_in_polygon(obj.bottom_centre, self.polygon)

    def step(self, frame: FrameView) -> list[RuleEvent]:
        if not in_schedule(self.rule.schedule, frame.local_time):
            self.idle(frame)
            return self.book.sweep(frame.ts)
        return self.evaluate(frame)

    def idle(self, frame: FrameView) -> None:
        """Outside the schedule: forget per-object progress (a dwell must be seen whole)."""

    def evaluate(self, frame: FrameView) -> list[RuleEvent]:
        raise NotImplementedError

    def prune(self, states: dict[int, Any], frame: FrameView) -> None:
        live = {o.track_id for o in frame.objects}
        for tid in [t for t in states if t not in live]:
            del states[tid]

    @property
    def busy(self) -> bool:
        return self.book.busy


class _ZoneRunner(_RuleRunner):
    """Shared by intrusion, loitering and crowding: per-track presence in the zone."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.presence: dict[int, _Presence] = {}

    def idle(self, frame: FrameView) -> None:
        self.presence.clear()

    def update_presence(self, frame: FrameView) -> list[TrackedObject]:
        """Observe seen objects; return the live qualifying objects established inside."""
        inertia = self.rule.inertia
        for o in frame.objects:
            if not o.seen:
                continue
            p = self.presence.setdefault(o.track_id, _Presence())
            p.observe(self.qualifies(o) and self.in_zone(o), frame.ts, inertia, self.grace_s)
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
        return events + self.book.sweep(frame.ts, holding)


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
        if crowded:
            if self.since is None or frame.ts - self.last_crowded_ts > self.grace_s:
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
        elif self.since is not None and frame.ts - self.last_crowded_ts > self.grace_s:
            self.since = None
        return events + self.book.sweep(frame.ts, {zone} if crowded and self.book.busy else set())


class _Side:
    __slots__ = ("candidate", "count", "stable")

    def __init__(self, side: int) -> None:
        self.stable, self.candidate, self.count = side, 0, 0


class LineCrossingRunner(_RuleRunner):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        line = next(ln for ln in self.camera.lines if ln.name == self.rule.line)
        self.a, self.b = line.a, line.b
        self.sides: dict[int, _Side] = {}
        self.book.zone = None

    def idle(self, frame: FrameView) -> None:
        self.sides.clear()

    def direction_of(self, from_side: int, to_side: int) -> str:
        """``a_to_b`` is from the −1 side (left of a→b on screen) to the +1 side (right of a→b)."""
        return "a_to_b" if (from_side, to_side) == (-1, 1) else "b_to_a"

    def evaluate(self, frame: FrameView) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        holding = set()
        for o in frame.objects:
            if not o.seen or not self.qualifies(o):
                continue
            side = line_side(o.bottom_centre, self.a, self.b)
            if side == 0:
                continue
            st = self.sides.get(o.track_id)
            if st is None:
                self.sides[o.track_id] = _Side(side)
                continue
            if side == st.stable:
                st.candidate, st.count = 0, 0
                continue
            st.count = st.count + 1 if side == st.candidate else 1
            st.candidate = side
            if st.count < self.rule.min_frames:
                continue
            from_side, st.stable, st.candidate, st.count = st.stable, side, 0, 0
            direction = self.direction_of(from_side, side)
            if not o.confirmed or not within_segment(o.bottom_centre, self.a, self.b):
                continue
            if self.rule.direction != "any" and direction != self.rule.direction:
                continue
            holding.add(o.track_id)
            prev = self.book.episodes.get(o.track_id)
            crossings = int(prev.details.get("crossings", 0)) + 1 if prev else 1
            ev = self.book.hold(
                o.track_id,
                self.rule.line,
                frame.ts,
                frame.ts,
                [o],
                {"direction": direction, "crossings": crossings},
                signature=crossings,
            )
            if ev:
                events.append(ev)
        self.prune(self.sides, frame)
        return events + self.book.sweep(frame.ts, holding)


class _Stay:
    __slots__ = ("anchor", "anchor_ts", "recent", "unattended_since")

    def __init__(self, point: tuple[float, float], ts: float) -> None:
        self.anchor, self.anchor_ts = point, ts
        self.recent: deque[tuple[float, float]] = deque([point], maxlen=3)
        self.unattended_since = ts


class StationaryRunner(_RuleRunner):
    """Stalled vehicle, and (with an owner test) abandoned object: stationary for ``stationary_s``."""

    owner_radius: float | None = None

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.stays: dict[int, _Stay] = {}
        if isinstance(self.rule, AbandonedObjectRule):
            self.owner_radius = self.rule.owner_radius_px

    def idle(self, frame: FrameView) -> None:
        self.stays.clear()

    def evaluate(self, frame: FrameView) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        holding = set()
        people = [o.bottom_centre for o in frame.objects if o.class_name == "person" and o.seen]
        for o in frame.objects:
            if not o.seen:
                continue
            if not (self.qualifies(o) and self.in_zone(o)):
                self.stays.pop(o.track_id, None)
                continue
            st = self.stays.get(o.track_id)
            if st is None:
                self.stays[o.track_id] = _Stay(o.bottom_centre, frame.ts)
                continue
            st.recent.append(o.bottom_centre)
            mx = sum(p[0] for p in st.recent) / len(st.recent)
            my = sum(p[1] for p in st.recent) / len(st.recent)
            if math.hypot(mx - st.anchor[0], my - st.anchor[1]) > self.rule.max_motion_px:
                st.anchor, st.anchor_ts, st.unattended_since = (mx, my), frame.ts, frame.ts
                continue
            since = st.anchor_ts
            if self.owner_radius is not None:
                if any(math.hypot(px - mx, py - my) <= self.owner_radius for px, py in people):
                    st.unattended_since = frame.ts
                since = max(since, st.unattended_since)
            still = frame.ts - since
            if still >= self.rule.stationary_s:
                holding.add(o.track_id)
                ev = self.book.hold(
                    o.track_id,
                    f"{self.rule.zone or '*'}:{round(st.anchor[0])},{round(st.anchor[1])}",
                    frame.ts,
                    since,
                    [o],
                    {"stationary_s": round(still, 1)},
                )
                if ev:
                    events.append(ev)
        self.prune(self.stays, frame)
        return events + self.book.sweep(frame.ts, holding)


class FireSmokeRunner(_RuleRunner):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.window: deque[tuple[float, bool]] = deque(maxlen=self.rule.n)

    def idle(self, frame: FrameView) -> None:
        self.window.clear()

    def evaluate(self, frame: FrameView) -> list[RuleEvent]:
        hits = [d for d in frame.detections if self.qualifies(d) and self.in_zone(d)]
        self.window.append((frame.ts, bool(hits)))
        subject = self.rule.zone or "*"
        present = [ts for ts, hit in self.window if hit]
        events: list[RuleEvent] = []
        holding = set()
        if len(present) >= self.rule.k and hits:
            holding.add(subject)
            # the incident's largest total box area in one frame, which its grade follows (a new incident
            # starts from nothing; one re-opened within its cooldown keeps its peak)
            ep = self.book.episodes.get(subject)
            peak = max(float(ep.details.get("max_area_px", 0)) if ep else 0.0, sum(d.area for d in hits))
            ev = self.book.hold(
                subject,
                subject,
                frame.ts,
                present[0],
                hits,
                {
                    "classes": ",".join(sorted({d.class_name for d in hits})),
                    "frames": f"{len(present)}/{len(self.window)}",
                    "max_area_px": round(peak),
                },
                signature=tuple(sorted({d.class_name for d in hits})),
            )
            if ev:
                events.append(ev)
        elif len(present) >= self.rule.k:
            holding.add(subject)  # present in k of n still: the episode goes on
        return events + self.book.sweep(frame.ts, holding)


RUNNERS: dict[type, type[_RuleRunner]] = {
    IntrusionRule: IntrusionRunner,
    LoiteringRule: LoiteringRunner,
    CrowdingRule: CrowdingRunner,
    LineCrossingRule: LineCrossingRunner,
    StalledVehicleRule: StationaryRunner,
    AbandonedObjectRule: StationaryRunner,
    FireSmokeRule: FireSmokeRunner,
}


class CameraRules:
    """Every enabled rule of one camera."""

    def __init__(
        self, camera: CameraConfig, grace_s: float = 2.0, update_interval_s: float = UPDATE_INTERVAL_S
    ) -> None:
        self.camera = camera
        self.runners = [RUNNERS[type(r)](r, camera, grace_s, update_interval_s) for r in camera.rules if r.enabled]

    def step(self, frame: FrameView) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        for runner in self.runners:
            events.extend(runner.step(frame))
        return events

    @property
    def busy(self) -> bool:
        return any(r.busy for r in self.runners)

    def rule(self, name: str) -> Any:
        return next(r.rule for r in self.runners if r.rule.name == name)


def local_time(ts: float, tz: Any) -> time:
    return datetime.fromtimestamp(ts, tz=tz).time()
