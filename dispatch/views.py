"""What the service returns: pydantic models the API can serialise as they are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from xueliang.config._base import Identifier
from xueliang.contracts import Severity
from xueliang.dispatch.workflow import Action, RejectReason, SlaFlag, State


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class IncidentView(_View):
    id: str
    camera_id: str
    rule: str
    rule_type: str
    severity: Severity
    zone: str | None
    state: State
    owner_centre_id: str
    grid_centre_id: str
    route_reason: str
    dispatch_target: str | None
    reject_reason: RejectReason | None
    started_at: datetime
    reported_at: datetime
    updated_at: datetime
    state_changed_at: datetime
    accepted_at: datetime | None
    dispatched_at: datetime | None
    closed_at: datetime | None
    revision: int
    class_names: list[str]
    track_ids: list[int]
    boxes: list[dict[str, Any]]
    details: dict[str, Any]
    snapshot_url: str | None
    escalation_level: int
    sla_flag: SlaFlag = Field(description="none | yellow | red (督办 flags; not a state)")
    accept_flag: SlaFlag
    close_flag: SlaFlag
    accept_due_at: datetime | None
    close_due_at: datetime | None
    occurrence_count: int = Field(1, description="detector incidents merged into this case (事件归并), itself included")
    last_occurrence_at: datetime | None = Field(None, description="the latest occurrence's time")
    version: int = Field(description="row version; pass it back as expected_version for optimistic concurrency")
    allowed_actions: list[Action] = Field(default_factory=list, description="legal in the current state")


class AuditEntry(_View):
    id: int
    at: datetime
    actor: str
    role: str
    centre_id: str | None
    action: str
    from_state: str | None
    to_state: str
    note: str


class NotificationView(_View):
    id: int
    incident_id: str
    centre_id: str
    kind: str
    at: datetime
    note: str
    read_at: datetime | None


class EscalationView(_View):
    id: int
    from_centre_id: str
    to_centre_id: str
    level: int
    reason: str
    due_at: datetime | None
    at: datetime
    actor: str


class SlaFlagView(_View):
    clock: str
    level: SlaFlag
    window_level: int
    centre_id: str
    due_at: datetime
    at: datetime


class OccurrenceView(_View):
    """One detector incident of a case (the first report or a repeated alarm merged into it)."""

    incident_id: str
    revision: int
    severity: Severity
    started_at: datetime
    occurred_at: datetime
    received_at: datetime
    class_names: list[str]
    details: dict[str, Any]
    snapshot_url: str | None


class IncidentDetail(IncidentView):
    audit: list[AuditEntry]
    notifications: list[NotificationView]
    escalations: list[EscalationView]
    sla_flags: list[SlaFlagView]
    occurrences: list[OccurrenceView] = Field(
        default_factory=list, description="newest first, at most 200 (the count is occurrence_count)"
    )


class IncidentPage(BaseModel):
    items: list[IncidentView]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; None at the end")


class IncidentFilterFields(BaseModel):
    """The filters every incident list takes (all optional, combined with AND): the incident list's
    :class:`IncidentFilter` and the alert wall's :class:`~xueliang.dispatch.triage.WallQuery`
    (:func:`xueliang.dispatch.conditions.filter_conditions` turns them into SQL)."""

    model_config = ConfigDict(extra="forbid")

    centre_id: str | None = Field(None, description="owner centre in this centre's subtree (default: the viewer's)")
    states: list[State] | None = None
    severities: list[Severity] | None = None
    rule_types: list[str] | None = None
    camera_ids: list[str] | None = None
    sla_flags: list[SlaFlag] | None = Field(None, description="none | yellow | red")
    since: datetime | None = Field(None, description="reported at or after (inclusive)")
    until: datetime | None = Field(None, description="reported before (exclusive)")


class IncidentFilter(IncidentFilterFields):
    """Filters of :meth:`DispatchService.list_incidents` (all optional, combined with AND)."""

    rules: list[str] | None = Field(None, description="rule names")
    open_only: bool = False


class CameraView(_View):
    id: str
    name: str
    village_id: str | None
    grid_id: str | None
    source: str
    enabled: bool
    masked_url: str
    status: str | None
    status_at: datetime | None
    status_reason: str
    faults: list[str]
    quality_scores: dict[str, float]
    fps: float | None
    health_at: datetime | None


class CameraCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: str = ""
    village: str | None = Field(None, description="village centre id; omitted: derived from a GB/T 28181 id")
    url: str | None = Field(None, description="stored masked (credentials never reach the database)")
    enabled: bool = True


class CameraUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    village: str | None = None
    url: str | None = None
    enabled: bool | None = None


class CameraUptime(BaseModel):
    camera_id: str
    known_s: float = Field(description="seconds of the window with a known status")
    online_s: float
    degraded_s: float
    offline_s: float
    online_rate: float | None = Field(description="(online + degraded) / known; None if nothing known")
    intact_rate: float | None = Field(description="online (usable picture) / known")


class OnlineRate(BaseModel):
    since: datetime
    until: datetime
    online_rate: float | None
    intact_rate: float | None
    cameras: list[CameraUptime]


class DurationStats(BaseModel):
    count: int
    mean_s: float | None
    p50_s: float | None
    p90_s: float | None


class Kpis(BaseModel):
    total: int
    by_state: dict[str, int]
    by_severity: dict[str, int]
    by_centre: dict[str, int]
    by_tier: dict[str, int]
    time_to_accept: DurationStats
    time_to_close: DurationStats
    closed: int
    on_time_closure_rate: float | None = Field(description="closed before the original close SLA / closed")
    overdue_rate: float | None = Field(description="incidents that ever went red / incidents")
    resolved_share_by_tier: dict[str, float] = Field(description="closed incidents by the owner's tier at closure")
    escalations: int
    escalations_by_reason: dict[str, int]
    rejected: int
    false_alarm_rate: float | None = Field(description="rejected as false alarm / incidents")


class TickResult(BaseModel):
    incidents: int = 0
    flags: int = 0
    escalations: int = 0


class IngestResult(BaseModel):
    incident_id: str
    outcome: str = Field(
        description="created | updated | merged (a repeated alarm attached to an open case) | stale (same or older "
        "revision: nothing changed)"
    )
    case_id: str | None = Field(None, description="the case it belongs to (itself unless merged)")
    owner_centre_id: str | None = None


__all__ = [
    "Action",
    "AuditEntry",
    "CameraCreate",
    "CameraUpdate",
    "CameraUptime",
    "CameraView",
    "DurationStats",
    "EscalationView",
    "IncidentDetail",
    "IncidentFilter",
    "IncidentPage",
    "IncidentView",
    "IngestResult",
    "Kpis",
    "NotificationView",
    "OccurrenceView",
    "OnlineRate",
    "RejectReason",
    "SlaFlagView",
    "State",
    "TickResult",
]
