"""Stalled vehicle and abandoned object: a track that stands still for ``stationary_s`` (with an owner test
for abandoned objects), its stop surviving occlusions and id switches."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from xueliang.config.rules import AbandonedObjectRule
from xueliang.detector.rules.frames import FrameView, RuleEvent, TrackedObject
from xueliang.detector.rules.runner import ObjectState, RuleRunner, box_iou, class_family
from xueliang.geometry import box_area


class _Stay(ObjectState):
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


class StationaryRunner(RuleRunner):
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
