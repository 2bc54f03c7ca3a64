"""Request and response models of the API (the service's views, plus what this user may do)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from xueliang.config._base import ID_MAX_LEN, ID_PATTERN
from xueliang.config.cameras import GeoPlacement, Line, Zone
from xueliang.dispatch.views import CameraView, IncidentDetail, IncidentView
from xueliang.dispatch.workflow import Action, RejectReason

IdPath = Annotated[str, Path(min_length=1, max_length=ID_MAX_LEN, pattern=ID_PATTERN)]
"""A path parameter holding an identifier (:data:`xueliang.config._base.Identifier`)."""


class IncidentPublic(IncidentView):
    permitted_actions: list[Action] = Field(
        default_factory=list,
        description="actions this user may take now (legal in the state, allowed to the role and centre)",
    )


class IncidentDetailPublic(IncidentDetail):
    permitted_actions: list[Action] = Field(default_factory=list)


class IncidentPagePublic(BaseModel):
    items: list[IncidentPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at the end")


# ------------------------------------------------------------------ workflow action bodies
Note = Field("", max_length=2000, description="处置意见: free text recorded in the audit trail")


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Note
    expected_version: int | None = Field(
        None, ge=1, le=2**31 - 1, description="the incident `version` you saw; a different one gets 409 (reload)"
    )


class RejectBody(ActionBody):
    reason: RejectReason = Field(description="false_alarm (误报) or duplicate (重复)")


class DispatchBody(ActionBody):
    target: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="a centre id below the owner, or the name of a unit (派出所, 网格员...)",
    )


class ReturnBody(ActionBody):
    note: str = Field(min_length=1, max_length=2000, pattern=r"\S", description="why it is returned (required)")


ACTION_BODIES: dict[Action, type[ActionBody]] = {
    Action.reject: RejectBody,
    Action.dispatch: DispatchBody,
    Action.return_: ReturnBody,
}
ACTION_SUMMARIES: dict[Action, str] = {
    Action.accept: "Accept (受理)",
    Action.reject: "Reject as false alarm or duplicate (退回)",
    Action.dispatch: "Dispatch to a unit or centre (分拨); starts the close SLA",
    Action.receive: "Receive (签收)",
    Action.return_: "Return to the dispatcher (退单)",
    Action.handle: "Start handling (处置)",
    Action.feedback: "Report the result (反馈)",
    Action.verify: "Verify the result (核查)",
    Action.close: "Close (办结)",
    Action.escalate: "Escalate to the parent centre (上报/督办)",
}


# ------------------------------------------------------------------ cameras
class CameraPublic(CameraView):
    placement: GeoPlacement | None = Field(None, description="map position and view (from the configuration)")
    configured: bool = Field(description="defined in the configuration file (zones and rules come from there)")
    labels: dict[str, str] = Field(
        default_factory=dict, description="display names of the camera's zones, lines and rules (name -> label)"
    )


class RulePublic(BaseModel):
    name: str
    type: str
    enabled: bool
    severity: str
    zone: str | None = None
    line: str | None = None
    classes: list[str]
    settings: dict[str, Any] = Field(description="the rule's full configuration")


class CameraGeometry(BaseModel):
    camera_id: str
    zones: list[Zone]
    lines: list[Line]


# ------------------------------------------------------------------ map (GeoJSON)
class Geometry(BaseModel):
    type: Literal["Point", "LineString", "Polygon", "MultiPolygon"]
    coordinates: Any


class Feature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: Geometry
    properties: dict[str, Any] = Field(description="`kind`: camera | sector | coverage | blind | candidate, and more")


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
