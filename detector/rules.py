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
  the same ids;
* per-object timers (stationary anchor, dwell, crowd duration) survive brief occlusions and
  id switches: the state of a track that is lost, or whose box leaps (another object took
  its id), waits ``occlusion_grace_s`` as a *ghost*; a track of the same class family that
  settles at the same place (bottom-centre within the rule's radius, or IoU ≥ 0.5) within
  that time, and was not seen together with it, takes it over, with the episode (same
  incident). A smooth departure leaves no ghost, so a car that drives off and another that
  parks there later start fresh.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
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

    def sweep(self, ts: float, holding: AbstractSet[Any] = frozenset()) -> list[RuleEvent]:
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

    def rekey(self, old: Any, new: Any) -> None:
        """The subject ``old`` goes on as ``new`` (an object's next track): its episode follows it."""
        if old != new and old in self.episodes and new not in self.episodes:
            self.episodes[new] = self.episodes.pop(old)

    @property
    def busy(self) -> bool:
        """An open episode exists (the camera is not quiet)."""
        return any(ep.open for ep in self.episodes.values())


# ------------------------------------------------------------------------ helpers
class _ObjectState:
    """Per-object rule state that can outlive its track (see :meth:`_RuleRunner.claim`).

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


class _Presence(_ObjectState):
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


class _RuleRunner:
    def __init__(self, rule: Any, camera: CameraConfig, grace_s: float, update_interval_s: float) -> None:
        self.rule = rule
        self.camera = camera
        self.grace_s = grace_s
        # how long an object's state waits for the object's next track (0: per-object state dies with its track)
        self.occlusion_grace_s: float = getattr(rule, "occlusion_grace_s", 0.0)
        self.ghosts: list[tuple[int, _ObjectState]] = []  # (track id it belonged to, state), oldest first
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
        if isinstance(state, _ObjectState) and state.donor and ts - state.seen_ts <= self.occlusion_grace_s:
            self.ghosts.append((tid, state))

    def claim(
        self,
        states: dict[int, Any],
        obj: TrackedObject,
        heir: _ObjectState,
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
            if isinstance(g, _ObjectState)
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


class _Stay(_ObjectState):
    """Where a track stands still: its anchor (smoothed bottom-centre), since when, and its box there."""

    __slots__ = ("anchor_ts", "recent", "resumed", "still", "unattended_since")

    def __init__(
        self,
        family: str,
        xyxy: tuple[float, float, float, float],
        ts: float,
        anchor: tuple[float, float] | None = None,
        recent: Sequence[tuple[float, float]] = (),
        born_ts: float | None = None,
    ) -> None:
        super().__init__(family, xyxy, ts, born_ts)
        if anchor is not None:
            self.point = anchor
        self.anchor_ts = ts
        self.recent: deque[tuple[float, float]] = deque(recent or [self.point], maxlen=3)
        self.unattended_since = ts
        self.still = 1  # observations at this anchor
        self.resumed = False  # took over a lost stop here (or gave up looking)

    @property
    def anchor(self) -> tuple[float, float]:
        return self.point

    @property
    def since(self) -> float:
        return self.anchor_ts

    @property
    def donor(self) -> bool:
        return self.still >= 2

    def leapt(self, xyxy: tuple[float, float, float, float]) -> bool:
        """The box changed at a stroke rather than rolled away: another object took the track's id, or a
        part of the object is hidden (its box shrank)."""
        ratio = box_area(xyxy) / max(box_area(self.xyxy), 1e-9)
        return not 2 / 3 <= ratio <= 3 / 2 or box_iou(xyxy, self.xyxy) < 0.3


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

    def hidden(self, ts: float) -> set[int]:
        """Also tracks coasting unseen where they stood still (an occluded parked car)."""
        return super().hidden(ts) | {
            tid
            for tid, st in self.stays.items()
            if st.donor and st.seen_ts < ts and ts - st.seen_ts <= self.occlusion_grace_s
        }

    def resume(self, o: TrackedObject, st: _Stay, ts: float, seen: set[int]) -> None:
        """A track that has just stopped where a stopped object was lost moments ago is that object: its
        stationary time (and unattended time) goes on from the lost stop, under the same incident."""
        if ts - st.anchor_ts > self.occlusion_grace_s:
            st.resumed = True  # too late for any lost stop to be this one
            return
        lost = self.claim(self.stays, o, st, self.rule.max_motion_px, ts, seen)
        if lost is None:
            return
        g = lost[1]
        st.resumed = True
        st.anchor_ts, st.unattended_since = min(st.anchor_ts, g.anchor_ts), min(st.unattended_since, g.unattended_since)
        if math.dist(g.anchor, st.anchor) <= self.rule.max_motion_px:
            st.point = g.anchor  # the same stop: the same incident key

    def evaluate(self, frame: FrameView) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        holding = set()
        ts = frame.ts
        seen = {o.track_id for o in frame.objects if o.seen}
        people = [o.bottom_centre for o in frame.objects if o.class_name == "person" and o.seen]
        for o in frame.objects:
            if not o.seen:
                continue
            if not (self.qualifies(o) and self.in_zone(o)):
                lost = self.stays.pop(o.track_id, None)
                if lost is not None:  # e.g. its scores sank while half hidden: it may be back
                    self.bury(o.track_id, lost, ts)
                continue
            st = self.stays.get(o.track_id)
            if st is None:
                self.stays[o.track_id] = _Stay(class_family(o.class_name), o.xyxy, ts)
                continue
            st.recent.append(o.bottom_centre)
            mx = sum(p[0] for p in st.recent) / len(st.recent)
            my = sum(p[1] for p in st.recent) / len(st.recent)
            if math.hypot(mx - st.anchor[0], my - st.anchor[1]) > self.rule.max_motion_px:
                if st.donor and st.leapt(o.xyxy):
                    self.bury(o.track_id, st, ts)  # the stopped object may be back under another id
                self.stays[o.track_id] = _Stay(st.family, o.xyxy, ts, (mx, my), st.recent, st.born_ts)
                continue
            st.still += 1
            st.seen_ts, st.xyxy = ts, o.xyxy
            if not st.resumed:
                self.resume(o, st, ts, seen)
            since = st.anchor_ts
            if self.owner_radius is not None:
                if any(math.hypot(px - mx, py - my) <= self.owner_radius for px, py in people):
                    st.unattended_since = ts
                since = max(since, st.unattended_since)
            still = ts - since
            if still >= self.rule.stationary_s:
                holding.add(o.track_id)
                ev = self.book.hold(
                    o.track_id,
                    f"{self.rule.zone or '*'}:{round(st.anchor[0])},{round(st.anchor[1])}",
                    ts,
                    since,
                    [o],
                    {"stationary_s": round(still, 1)},
                )
                if ev:
                    events.append(ev)
        self.prune(self.stays, frame)
        return events + self.book.sweep(ts, holding | self.hidden(ts))


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
