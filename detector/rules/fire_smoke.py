"""Fire and smoke: raw detections present in ``k`` of the last ``n`` frames (no tracks needed)."""

from __future__ import annotations

from collections import deque
from typing import Any

from xueliang.detector.rules.frames import FrameView, RuleEvent
from xueliang.detector.rules.runner import RuleRunner


class FireSmokeRunner(RuleRunner):
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
