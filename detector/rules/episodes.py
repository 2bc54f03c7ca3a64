"""One incident per real event: episodes per subject with grace, cooldown and re-arm, and stable ids."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from xueliang.contracts import Incident
from xueliang.detector.rules.frames import RawDetection, RuleEvent, TrackedObject

UPDATE_INTERVAL_S = 5.0


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
