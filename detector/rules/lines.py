"""Line crossing: a confirmed track that stays on the other side ``min_frames`` observations in a row."""

from __future__ import annotations

from typing import Any

from xueliang.detector.rules.frames import FrameView, RuleEvent
from xueliang.detector.rules.runner import RuleRunner
from xueliang.geometry import line_side, within_segment


class _Side:
    __slots__ = ("candidate", "count", "stable")

    def __init__(self, side: int) -> None:
        self.stable, self.candidate, self.count = side, 0, 0


class LineCrossingRunner(RuleRunner):
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
