"""Incident rules per camera, chosen by ``type`` (a discriminated union).

Geometry is in image pixel coordinates of the camera's frames. An object is *in*
a zone by its box's bottom-centre point. Durations are measured on capture
timestamps (seconds), never on frame counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from xueliang.config._base import Identifier, StrictModel
from xueliang.contracts import RuleType, Severity


class ActiveWindow(StrictModel):
    """Local-time window in which a rule is active; ``start > end`` wraps midnight (e.g. 20:00–06:00)."""

    start: time
    end: time


class _RuleBase(StrictModel):
    name: Identifier
    label: str = Field("", max_length=100, description="display name in the console (e.g. 村口大门); empty: the name")
    enabled: bool = True
    severity: Severity | None = Field(None, description="defaults to the rule type's default severity")
    classes: list[str] = Field(default_factory=lambda: ["person"], min_length=1)
    min_confidence: float = Field(0.4, ge=0, le=1, description="median of the track's recent scores must reach it")
    min_area: float = Field(0.0, ge=0, description="minimum box area in px² (filters far-away noise)")
    schedule: list[ActiveWindow] = Field(default_factory=list, description="empty: always active")
    cooldown_s: float = Field(
        60.0, ge=0, description="after an episode ends, the same (rule, zone/track) re-arms after this"
    )

    default_severity: Severity = Severity.general

    @property
    def effective_severity(self) -> Severity:
        return self.severity or self.default_severity

    def graded_severity(self, details: dict[str, float | int | str]) -> Severity:
        """The severity of an incident with these ``details`` (the rule's own, unless a rule type
        grades by how big the event has grown)."""
        return self.effective_severity


def _occlusion_grace() -> Any:
    return Field(
        5.0,
        ge=0,
        description="an object's timer (dwell, stationary time, crowd duration) survives it being out of sight or "
        "re-identified for this long (capture-time seconds): a track of the same class family that appears where "
        "it was lost takes over its timer and incident; 0 restarts the timer with every new track id",
    )


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
    occlusion_grace_s: float = _occlusion_grace()


class _Grade(StrictModel):
    """One step of a rule's ``grades``: an event whose peak ``MEASURE`` has reached the step's value
    makes the incident ``severity``."""

    MEASURE: ClassVar[str]  # the step's field, also the key of the episode detail it is compared with
    severity: Severity

    @property
    def threshold(self) -> float:
        return float(getattr(self, self.MEASURE))


class CountGrade(_Grade):
    """A crowd whose peak has reached ``count`` people makes the incident ``severity``."""

    MEASURE: ClassVar[str] = "count"
    count: int = Field(ge=2)


class AreaGrade(_Grade):
    """Fire/smoke whose peak total box area has reached ``area_px`` (px²) makes the incident ``severity``."""

    MEASURE: ClassVar[str] = "area_px"
    area_px: float = Field(gt=0)


def check_grades(grades: Sequence[_Grade], floor: Severity, above: float = 0.0) -> None:
    """Steps must ascend in value (past ``above``) and in severity (past the rule's own ``floor``)."""
    prev_value, prev_severity = above, floor
    for step in grades:
        if step.threshold <= prev_value:
            raise ValueError(
                f"grades: {step.MEASURE} {step.threshold:g} must exceed {prev_value:g} "
                "(the rule's own threshold or the previous step)"
            )
        if step.severity.rank <= prev_severity.rank:
            raise ValueError(
                f"grades: severity {step.severity.value} at {step.MEASURE} {step.threshold:g} "
                f"must be above {prev_severity.value}"
            )
        prev_value, prev_severity = step.threshold, step.severity


def graded(grades: Sequence[_Grade], peak: float, default: Severity) -> Severity:
    """The severity of the last step ``peak`` has reached, else ``default``."""
    reached = [g.severity for g in grades if peak >= g.threshold]
    return reached[-1] if reached else default


class CrowdingRule(_RuleBase):
    """人员聚集: at least ``min_count`` objects inside ``zone`` for ``min_duration_s`` seconds."""

    type: Literal["crowding"]
    zone: Identifier
    min_count: int = Field(ge=2)
    min_duration_s: float = Field(0.0, ge=0)
    inertia: int = Field(2, ge=1)
    occlusion_grace_s: float = _occlusion_grace()
    grades: list[CountGrade] = Field(
        default_factory=list,
        description="raise the incident's severity as the crowd grows: the last step whose count the crowd's peak "
        "has reached (counts and severities ascending); dispatch re-routes a raised grade",
    )
    default_severity: Severity = Severity.serious

    @model_validator(mode="after")
    def _grades_ascend(self) -> CrowdingRule:
        check_grades(self.grades, self.effective_severity, above=self.min_count)
        return self

    def graded_severity(self, details: dict[str, float | int | str]) -> Severity:
        return graded(self.grades, float(details.get("max_count", 0)), self.effective_severity)


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
    occlusion_grace_s: float = _occlusion_grace()


class AbandonedObjectRule(_RuleBase):
    """遗留物: an object of ``classes`` stationary for ``stationary_s`` with no person within ``owner_radius_px``."""

    type: Literal["abandoned_object"]
    zone: Identifier | None = None
    classes: list[str] = Field(default_factory=lambda: ["bag"], min_length=1)
    stationary_s: float = Field(gt=0)
    owner_radius_px: float = Field(80.0, gt=0)
    max_motion_px: float = Field(8.0, gt=0)
    occlusion_grace_s: float = _occlusion_grace()


class FireSmokeRule(_RuleBase):
    """烟火: fire or smoke present in at least ``k`` of the last ``n`` inferred frames."""

    type: Literal["fire_smoke"]
    zone: Identifier | None = None
    classes: list[str] = Field(default_factory=lambda: ["fire", "smoke"], min_length=1)
    k: int = Field(3, ge=1)
    n: int = Field(5, ge=1)
    grades: list[AreaGrade] = Field(
        default_factory=list,
        description="raise the incident's severity as the fire spreads: the last step whose area_px (total box area "
        "of the fire/smoke seen in one frame, px²) the episode's peak has reached (ascending); dispatch "
        "re-routes a raised grade",
    )
    default_severity: Severity = Severity.major

    @model_validator(mode="after")
    def _k_le_n(self) -> FireSmokeRule:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) must not exceed n ({self.n})")
        check_grades(self.grades, self.effective_severity)
        return self

    def graded_severity(self, details: dict[str, float | int | str]) -> Severity:
        return graded(self.grades, float(details.get("max_area_px", 0)), self.effective_severity)


Rule = Annotated[
    IntrusionRule
    | LoiteringRule
    | CrowdingRule
    | LineCrossingRule
    | StalledVehicleRule
    | AbandonedObjectRule
    | FireSmokeRule,
    Field(discriminator="type"),
]
RULE_TYPES = tuple(t.value for t in RuleType)
