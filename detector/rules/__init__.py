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

The package: ``frames`` (what the rules read and write), ``episodes`` (one incident per event),
``runner`` (the engine every family shares), then one module per rule family: ``zones`` (intrusion,
loitering, crowding), ``lines`` (line crossing), ``stationary`` (stalled vehicle, abandoned object) and
``fire_smoke``; this module runs a camera's enabled rules.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from xueliang.config import rules as rule_config
from xueliang.config.cameras import CameraConfig
from xueliang.detector.rules.episodes import UPDATE_INTERVAL_S, EpisodeBook
from xueliang.detector.rules.fire_smoke import FireSmokeRunner
from xueliang.detector.rules.frames import FrameView, RawDetection, RuleEvent, TrackedObject
from xueliang.detector.rules.lines import LineCrossingRunner
from xueliang.detector.rules.runner import CLASS_FAMILIES, HANDOVER_IOU, RuleRunner, box_iou, class_family, in_schedule
from xueliang.detector.rules.stationary import StationaryRunner
from xueliang.detector.rules.zones import CrowdingRunner, IntrusionRunner, LoiteringRunner

__all__ = [
    "CLASS_FAMILIES",
    "HANDOVER_IOU",
    "RUNNERS",
    "UPDATE_INTERVAL_S",
    "CameraRules",
    "CrowdingRunner",
    "EpisodeBook",
    "FireSmokeRunner",
    "FrameView",
    "IntrusionRunner",
    "LineCrossingRunner",
    "LoiteringRunner",
    "RawDetection",
    "RuleEvent",
    "RuleRunner",
    "StationaryRunner",
    "TrackedObject",
    "box_iou",
    "class_family",
    "in_schedule",
    "local_time",
]


RUNNERS: dict[type, type[RuleRunner]] = {
    rule_config.IntrusionRule: IntrusionRunner,
    rule_config.LoiteringRule: LoiteringRunner,
    rule_config.CrowdingRule: CrowdingRunner,
    rule_config.LineCrossingRule: LineCrossingRunner,
    rule_config.StalledVehicleRule: StationaryRunner,
    rule_config.AbandonedObjectRule: StationaryRunner,
    rule_config.FireSmokeRule: FireSmokeRunner,
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
