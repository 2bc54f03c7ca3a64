"""The JSON payloads (incidents, camera health, dead letters, camera registry), each versioned by its
``schema`` field and validated when read off the bus (:meth:`_Payload.from_bytes`)."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from xueliang.contracts.checks import (
    MAX_HEADER_BYTES,
    MAX_ID_CHARS,
    MAX_INT,
    MAX_LIST_ITEMS,
    MAX_MESSAGE_BYTES,
    MAX_TEXT_CHARS,
    ContractError,
    check_time,
    valid_id,
)
from xueliang.ranked import RankedStrEnum

INCIDENT_SCHEMA: Final = "xl.incident/1"
HEALTH_SCHEMA: Final = "xl.camera-health/1"
DEAD_LETTER_SCHEMA: Final = "xl.dead-letter/1"
ASSIGNMENT_SCHEMA: Final = "xl.camera-assignment/1"

Id = Annotated[str, AfterValidator(valid_id)]
"""1 to 64 printable characters (every id column of the store)."""
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Name = Annotated[str, Field(max_length=MAX_ID_CHARS)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Int64 = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]
AwareTime = Annotated[datetime, AfterValidator(check_time)]
"""Timezone-aware (converted to UTC), not far in the future: naive times are refused."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        try:
            return cls.model_validate_json(raw, context={"now": time.time()})
        except ValidationError as exc:
            raise ContractError(f"{cls.__name__}: {_describe(exc)}") from exc
        except (ValueError, RecursionError) as exc:  # pydantic-core refuses absurdly deep JSON this way
            raise ContractError(f"{cls.__name__}: {type(exc).__name__}: {str(exc)[:200]}") from exc


def _describe(exc: ValidationError) -> str:
    """The errors of a validation, short: field path and message, never the (possibly huge) input."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))[:80] or "value"
        msg = str(err.get("msg", ""))[:300]
        if err.get("type") == "value_error":  # ours: "camera_id longer than 64 characters"
            parts.append(f"{where} {msg.removeprefix('Value error, ')}")
        else:
            parts.append(f"{where}: {msg} [{err.get('type')}]")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class Severity(RankedStrEnum):
    """Incident grades: 一般 / 较大 / 重大 / 特别重大 (ranked in this order)."""

    general = "general"
    serious = "serious"
    major = "major"
    critical = "critical"


class RuleType(StrEnum):
    """What kind of rule raised an incident (the detector's rule types, and ingest's camera faults)."""

    intrusion = "intrusion"
    loitering = "loitering"
    crowding = "crowding"
    line_crossing = "line_crossing"
    stalled_vehicle = "stalled_vehicle"
    abandoned_object = "abandoned_object"
    fire_smoke = "fire_smoke"
    camera_fault = "camera_fault"


class Box(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    xyxy: tuple[Finite, Finite, Finite, Finite]
    class_name: Name
    confidence: float = Field(ge=0, le=1)
    track_id: Count | None = None


class Incident(_Payload):
    """An incident as the detector (or the ingest tier, for camera faults) reports it.

    ``id`` is deterministic for one real event (camera, rule, zone, track or episode
    start), so a repeated or updated report of the same event updates the record
    downstream instead of creating a new case. ``revision`` grows with each update.
    """

    schema_: Literal["xl.incident/1"] = Field(INCIDENT_SCHEMA, alias="schema")
    id: Id
    camera_id: Id
    rule: Id = Field(description="rule name from the camera's config")
    rule_type: RuleType
    severity: Severity
    zone: Id | None = None
    class_names: list[Name] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    started_at: AwareTime
    updated_at: AwareTime
    revision: int = Field(0, ge=0, le=2**31 - 1)
    boxes: list[Box] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    track_ids: list[Count] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    snapshot_url: Text | None = None
    details: dict[Name, Finite | Int64 | Text] = Field(
        default_factory=dict, max_length=64, description="rule measurements: dwell_s, count, ..."
    )
    source_frame_seq: Count | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @staticmethod
    def make_id(camera_id: str, rule: str, episode: str) -> str:
        """Deterministic incident id for one event episode of one rule on one camera."""
        digest = hashlib.sha1(f"{camera_id}|{rule}|{episode}".encode()).hexdigest()[:20]
        return f"inc-{digest}"


class CameraStatus(StrEnum):
    online = "online"
    degraded = "degraded"
    offline = "offline"


class CameraHealth(_Payload):
    """A camera's status or video-quality diagnosis changed (or a periodic snapshot)."""

    schema_: Literal["xl.camera-health/1"] = Field(HEALTH_SCHEMA, alias="schema")
    camera_id: Id
    status: CameraStatus
    at: AwareTime
    reason: Text = ""
    faults: list[Name] = Field(
        default_factory=list,
        max_length=32,
        description="failing diagnoses: blur, covered, moved, frozen, signal_loss, colour_cast, too_dark, too_bright, noise",
    )
    scores: dict[Name, Finite] = Field(default_factory=dict, max_length=32)
    fps: float | None = Field(None, ge=0, le=1e6, allow_inf_nan=False)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class DeadLetter(_Payload):
    """A message a stage could not process, with where it came from and why."""

    schema_: Literal["xl.dead-letter/1"] = Field(DEAD_LETTER_SCHEMA, alias="schema")
    stage: str
    reason: str
    source_topic: str
    source_partition: int | None = None
    source_offset: int | None = None
    key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="base64 of each header value")
    payload_b64: str = ""
    at: datetime

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def of(
        cls,
        stage: str,
        reason: str,
        topic: str,
        partition: int | None,
        offset: int | None,
        key: str | None,
        value: bytes,
        headers: dict[str, bytes] | None = None,
    ) -> DeadLetter:
        # keep the evidence but never exceed the topic's size limit (base64 grows it by 4/3):
        # at most 2 MiB of raw evidence, headers first (each cut at 64 KiB), then the payload
        budget = MAX_MESSAGE_BYTES // 2
        kept: dict[str, str] = {}
        for k, header in list((headers or {}).items())[:64]:
            v = header[: min(MAX_HEADER_BYTES, max(0, budget))]
            budget -= len(v) + len(k)
            kept[k[:256]] = base64.b64encode(v).decode()
        return cls(
            stage=stage,
            reason=reason,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            key=key[:1024] if key is not None else None,
            headers=kept,
            payload_b64=base64.b64encode(value[: max(0, budget)]).decode(),
            at=datetime.now(UTC),
        )

    def payload(self) -> bytes:
        return base64.b64decode(self.payload_b64)


class CameraAssignment(_Payload):
    """Entry of the compacted camera registry that ingest workers share by group membership."""

    schema_: Literal["xl.camera-assignment/1"] = Field(ASSIGNMENT_SCHEMA, alias="schema")
    camera_id: str
    enabled: bool = True

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
