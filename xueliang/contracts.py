"""Bus contracts, defined once: topic names, keys, headers and payload schemas.

Every message on the bus is converted from and to these types at the producer and
the consumer, never handled as a loose dict. Each payload carries ``schema``
(name/version); a consumer rejects a version it does not know (the message goes to
the dead-letter topic with that reason).

Topics (all keyed by camera id, so per-camera ordering holds):

========================  =======================  ===============================
topic                     value                    headers
========================  =======================  ===============================
``xl.frames``             raw JPEG bytes           ``schema, camera, seq, ts, w, h,
                                                   motion, keepalive``
``xl.incidents``          :class:`Incident` JSON   ``schema``
``xl.camera-health``      :class:`CameraHealth`    ``schema``
``xl.dead-letters``       :class:`DeadLetter`      ``schema``
``xl.camera-registry``    :class:`CameraAssignment` (compacted, key = camera id)
========================  =======================  ===============================
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

FRAME_SCHEMA = "xl.frame/1"
INCIDENT_SCHEMA = "xl.incident/1"
HEALTH_SCHEMA = "xl.camera-health/1"
DEAD_LETTER_SCHEMA = "xl.dead-letter/1"
ASSIGNMENT_SCHEMA = "xl.camera-assignment/1"

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class Topics(BaseModel):
    """Topic names; a deployment may prefix them (several sites on one cluster)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frames: str = "xl.frames"
    incidents: str = "xl.incidents"
    camera_health: str = "xl.camera-health"
    dead_letters: str = "xl.dead-letters"
    camera_registry: str = "xl.camera-registry"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How the project creates a topic: explicit partitions, retention, size limit."""

    name: str
    partitions: int
    retention_ms: int
    max_message_bytes: int = 1024 * 1024
    compacted: bool = False


def topic_specs(topics: Topics, frame_partitions: int = 6) -> list[TopicSpec]:
    hour = 3600 * 1000
    return [
        TopicSpec(topics.frames, frame_partitions, retention_ms=1 * hour, max_message_bytes=MAX_MESSAGE_BYTES),
        TopicSpec(topics.incidents, 3, retention_ms=7 * 24 * hour),
        TopicSpec(topics.camera_health, 3, retention_ms=7 * 24 * hour),
        TopicSpec(topics.dead_letters, 1, retention_ms=14 * 24 * hour, max_message_bytes=MAX_MESSAGE_BYTES),
        TopicSpec(topics.camera_registry, 1, retention_ms=-1, compacted=True),
    ]


class ContractError(ValueError):
    """A message that does not satisfy its contract (bad schema, missing header...)."""


def utc_from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


# --------------------------------------------------------------------------- frames
@dataclass(frozen=True, slots=True)
class MotionBox:
    """A motion region in frame pixel coordinates (x1, y1, x2, y2)."""

    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True, slots=True)
class FrameMessage:
    """One sampled camera frame: JPEG bytes plus what the detector needs to know.

    ``capture_ts`` is the wall-clock capture time (UTC epoch seconds) the ingest
    worker stamped when it read the frame (or the scene time for generated
    footage); rules measure dwell and durations on it, never on frame counts.
    """

    camera_id: str
    seq: int
    capture_ts: float
    width: int
    height: int
    jpeg: bytes
    motion: tuple[MotionBox, ...] = ()
    keepalive: bool = False

    def headers(self) -> dict[str, bytes]:
        return {
            "schema": FRAME_SCHEMA.encode(),
            "camera": self.camera_id.encode(),
            "seq": str(self.seq).encode(),
            "ts": repr(self.capture_ts).encode(),
            "w": str(self.width).encode(),
            "h": str(self.height).encode(),
            "motion": json.dumps([[b.x1, b.y1, b.x2, b.y2] for b in self.motion]).encode(),
            "keepalive": b"1" if self.keepalive else b"0",
        }

    @classmethod
    def from_record(cls, value: bytes, headers: dict[str, bytes]) -> FrameMessage:
        try:
            schema = headers["schema"].decode()
            if schema != FRAME_SCHEMA:
                raise ContractError(f"unknown frame schema {schema!r} (expected {FRAME_SCHEMA})")
            motion = tuple(MotionBox(*map(int, b)) for b in json.loads(headers.get("motion", b"[]")))
            msg = cls(
                camera_id=headers["camera"].decode(),
                seq=int(headers["seq"]),
                capture_ts=float(headers["ts"]),
                width=int(headers["w"]),
                height=int(headers["h"]),
                jpeg=value,
                motion=motion,
                keepalive=headers.get("keepalive", b"0") == b"1",
            )
        except KeyError as exc:
            raise ContractError(f"frame header {exc.args[0]!r} missing") from exc
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            if isinstance(exc, ContractError):
                raise
            raise ContractError(f"malformed frame headers: {exc}") from exc
        if not value:
            raise ContractError("empty frame payload")
        return msg


# ------------------------------------------------------------------------ payloads
class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes):  # type: ignore[no-untyped-def]
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise ContractError(f"{cls.__name__}: {exc.errors(include_url=False)}") from exc


class Severity(StrEnum):
    """Incident grades: 一般 / 较大 / 重大 / 特别重大."""

    general = "general"
    serious = "serious"
    major = "major"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


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
    model_config = ConfigDict(extra="forbid", frozen=True)

    xyxy: tuple[float, float, float, float]
    class_name: str
    confidence: float = Field(ge=0, le=1)
    track_id: int | None = None


class Incident(_Payload):
    """An incident as the detector (or the ingest tier, for camera faults) reports it.

    ``id`` is deterministic for one real event (camera, rule, zone, track or episode
    start), so a repeated or updated report of the same event updates the record
    downstream instead of creating a new case. ``revision`` grows with each update.
    """

    schema_: Literal["xl.incident/1"] = Field(INCIDENT_SCHEMA, alias="schema")
    id: str
    camera_id: str
    rule: str = Field(description="rule name from the camera's config")
    rule_type: RuleType
    severity: Severity
    zone: str | None = None
    class_names: list[str] = Field(default_factory=list)
    started_at: datetime
    updated_at: datetime
    revision: int = 0
    boxes: list[Box] = Field(default_factory=list)
    track_ids: list[int] = Field(default_factory=list)
    snapshot_url: str | None = None
    details: dict[str, float | int | str] = Field(
        default_factory=dict, description="rule measurements: dwell_s, count, ..."
    )
    source_frame_seq: int | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("started_at", "updated_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware (UTC)")
        return v.astimezone(UTC)

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
    camera_id: str
    status: CameraStatus
    at: datetime
    reason: str = ""
    faults: list[str] = Field(
        default_factory=list,
        description="failing diagnoses: blur, covered, moved, frozen, signal_loss, colour_cast, too_dark, too_bright, noise",
    )
    scores: dict[str, float] = Field(default_factory=dict)
    fps: float | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

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
        # keep the evidence but never exceed the topic's size limit
        value = value[: MAX_MESSAGE_BYTES // 2]
        return cls(
            stage=stage,
            reason=reason,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            key=key,
            headers={k: base64.b64encode(v).decode() for k, v in (headers or {}).items()},
            payload_b64=base64.b64encode(value).decode(),
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


JsonDict = dict[str, Any]
__all__ = [
    "DEAD_LETTER_SCHEMA",
    "FRAME_SCHEMA",
    "HEALTH_SCHEMA",
    "INCIDENT_SCHEMA",
    "MAX_MESSAGE_BYTES",
    "Box",
    "CameraAssignment",
    "CameraHealth",
    "CameraStatus",
    "ContractError",
    "DeadLetter",
    "FrameMessage",
    "Incident",
    "MotionBox",
    "Severity",
    "TopicSpec",
    "Topics",
    "topic_specs",
    "utc_from_ts",
]
