"""Incident rules per camera, chosen by ``type`` (a discriminated union).

Geometry is in image pixel coordinates of the camera's frames. An object is *in*
a zone by its box's bottom-centre point. Durations are measured on capture
timestamps (seconds), never on frame counts.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from pydantic import Field, model_validator

from xueliang.config._base import Identifier, StrictModel
from xueliang.contracts import Severity


class ActiveWindow(StrictModel):
    """Local-time window in which a rule is active; ``start > end`` wraps midnight (e.g. 20:00–06:00)."""

    start: time
    end: time


class _RuleBase(StrictModel):
    name: Identifier
    enabled: bool = True
    severity: Severity | None = Field(None, description="defaults to the rule type's default severity")
    classes: list[str] = Field(default_factory=lambda: ["person"], min_length=1)
    min_confidence: float = Field(0.4, ge=0, le=1, description="median of the track's recent scores must reach it")
    min_area: float = Field(0.0, ge=0, description="minimum box area in px² (filters far-away noise)")
    schedule: list[ActiveWindow] = Field(default_factory=list, description="empty: always active")
    cooldown_s: float = Field(60.0, ge=0, description="after an episode ends, the same (rule, zone/track) re-arms after this")

    default_severity: Severity = Severity.general

    @property
    def effective_severity(self) -> Severity:
        return self.severity or self.default_severity

    def graded_severity(self, details: dict[str, float | int | str]) -> Severity:
        """The severity of an incident with these ``details`` (the rule's own, unless a rule type
        grades by how big the event has grown)."""
        return self.effective_severity


class IntrusionRule(_RuleBase):
    """区域入侵: an object of ``classes`` inside ``zone``."""

    type: Literal["intrusion"]
    zone: Identifier
    inertia: int = Field(3, ge=1, description="consecutive frames inside before it counts")
    default_severity: Severity = Severity.serious


class LoiteringRule(_RuleBase):
    """徘徊: one track inside ``zone`` for at least ``dwell_s`` seconds."""

    type: Literal["loitering"]
    zone: Identifier
    dwell_s: float = Field(gt=0)
    inertia: int = Field(3, ge=1)


class CountGrade(StrictModel):
    """A crowd that has reached ``count`` makes the incident ``severity``."""

    count: int = Field(ge=2)
    severity: Severity


class CrowdingRule(_RuleBase):
    """人员聚集: at least ``min_count`` objects inside ``zone`` for ``min_duration_s`` seconds."""

    type: Literal["crowding"]
    zone: Identifier
    min_count: int = Field(ge=2)
    min_duration_s: float = Field(0.0, ge=0)
    inertia: int = Field(2, ge=1)
    grades: list[CountGrade] = Field(
        default_factory=list,
        description="raise the incident's severity as the crowd grows: the last step whose count the crowd's peak "
                    "has reached (counts and severities ascending); dispatch re-routes a raised grade")
    default_severity: Severity = Severity.serious

    @model_validator(mode="after")
    def _grades_ascend(self) -> CrowdingRule:
        floor = self.effective_severity
        for prev, step in zip([None, *self.grades], self.grades):
            if step.count <= (prev.count if prev else self.min_count):
                raise ValueError(f"grades: count {step.count} must exceed min_count {self.min_count} "
                                 "and the previous step's count")
            if step.severity.rank <= (prev.severity if prev else floor).rank:
                raise ValueError(f"grades: severity {step.severity.value} at count {step.count} must be above "
                                 f"{(prev.severity if prev else floor).value}")
        return self

    def graded_severity(self, details: dict[str, float | int | str]) -> Severity:
        peak = int(details.get("max_count", 0))
        reached = [g.severity for g in self.grades if peak >= g.count]
        return reached[-1] if reached else self.effective_severity


class LineCrossingRule(_RuleBase):
    """越线: a confirmed track crosses ``line`` in ``direction`` and stays across for ``min_frames`` frames."""

    type: Literal["line_crossing"]
    line: Identifier
    direction: Literal["a_to_b", "b_to_a", "any"] = "any"
    min_frames: int = Field(3, ge=1)


class StalledVehicleRule(_RuleBase):
    """车辆违停/滞留: a vehicle stationary (moves less than ``max_motion_px``) for ``stationary_s``."""

    type: Literal["stalled_vehicle"]
    zone: Identifier | None = None
    classes: list[str] = Field(default_factory=lambda: ["car", "truck"], min_length=1)
    stationary_s: float = Field(gt=0)
    max_motion_px: float = Field(8.0, gt=0)


class AbandonedObjectRule(_RuleBase):
    """遗留物: an object of ``classes`` stationary for ``stationary_s`` with no person within ``owner_radius_px``."""

    type: Literal["abandoned_object"]
    zone: Identifier | None = None
    classes: list[str] = Field(default_factory=lambda: ["bag"], min_length=1)
    stationary_s: float = Field(gt=0)
    owner_radius_px: float = Field(80.0, gt=0)
    max_motion_px: float = Field(8.0, gt=0)


class FireSmokeRule(_RuleBase):
    """烟火: fire or smoke present in at least ``k`` of the last ``n`` inferred frames."""

    type: Literal["fire_smoke"]
    zone: Identifier | None = None
    classes: list[str] = Field(default_factory=lambda: ["fire", "smoke"], min_length=1)
    k: int = Field(3, ge=1)
    n: int = Field(5, ge=1)
    default_severity: Severity = Severity.major

    @model_validator(mode="after")
    def _k_le_n(self) -> FireSmokeRule:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) must not exceed n ({self.n})")
        return self


Rule = Annotated[
    IntrusionRule | LoiteringRule | CrowdingRule | LineCrossingRule | StalledVehicleRule
    | AbandonedObjectRule | FireSmokeRule,
    Field(discriminator="type"),
]
RULE_TYPES = ("intrusion", "loitering", "crowding", "line_crossing", "stalled_vehicle", "abandoned_object", "fire_smoke", "camera_fault")
