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
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo

FRAME_SCHEMA: Final = "xl.frame/1"
INCIDENT_SCHEMA: Final = "xl.incident/1"
HEALTH_SCHEMA: Final = "xl.camera-health/1"
DEAD_LETTER_SCHEMA: Final = "xl.dead-letter/1"
ASSIGNMENT_SCHEMA: Final = "xl.camera-assignment/1"

MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# What a record may carry: everything downstream (database columns, arrays, JSON) can hold these.
MAX_ID_CHARS = 64
"""Camera, incident, rule and zone ids (the store's ``String(64)`` columns)."""
MAX_FUTURE_S = 24 * 3600.0
"""A capture or report time later than now plus this is refused (a clock that far off is broken)."""
MAX_FRAME_SIDE = 8192
MAX_MOTION_BOXES = 256
MAX_HEADER_BYTES = 64 * 1024
MAX_LIST_ITEMS = 1024
MAX_TEXT_CHARS = 2000
MAX_INT = 2**63 - 1


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
        """Parse and check a frame record; :class:`ContractError` (naming the camera when it is known)
        for anything the detector could not represent: a missing or oversized header, a
        non-finite or out-of-range number, a naive or far-future time, too many motion boxes."""
        try:
            schema = headers["schema"].decode()
            if schema != FRAME_SCHEMA:
                raise ContractError(f"unknown frame schema {schema[:80]!r} (expected {FRAME_SCHEMA})")
            for name, raw in headers.items():
                if len(raw) > MAX_HEADER_BYTES:
                    raise ContractError(f"frame header {name[:40]!r} is {len(raw)} bytes (at most {MAX_HEADER_BYTES})")
            camera_id = check_id(headers["camera"].decode(), "camera")
        except KeyError as exc:
            raise ContractError(f"frame header {exc.args[0]!r} missing") from exc
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            if isinstance(exc, ContractError):
                raise
            raise ContractError(f"malformed frame headers: {exc}") from exc
        try:
            motion = _motion_boxes(json.loads(headers.get("motion", b"[]")))
            msg = cls(
                camera_id=camera_id,
                seq=_bounded_int(headers["seq"], "seq", 0, MAX_INT),
                capture_ts=check_epoch(float(headers["ts"]), "ts"),
                width=_bounded_int(headers["w"], "w", 1, MAX_FRAME_SIDE),
                height=_bounded_int(headers["h"], "h", 1, MAX_FRAME_SIDE),
                jpeg=value,
                motion=motion,
                keepalive=headers.get("keepalive", b"0") == b"1",
            )
        except KeyError as exc:
            raise ContractError(f"frame header {exc.args[0]!r} missing (camera {camera_id})") from exc
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError, OverflowError, RecursionError) as exc:
            raise ContractError(f"malformed frame headers (camera {camera_id}): {exc}") from exc
        if not value:
            raise ContractError(f"empty frame payload (camera {camera_id})")
        return msg


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header, read without decoding it; ``ValueError`` with the
    reason for anything that is not a complete-enough baseline/progressive JPEG."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ValueError(f"corrupt JPEG (no marker at byte {i})")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        if marker == 0xD9 or marker == 0xDA:  # end of image / start of scan before any frame header
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            raise ValueError(f"corrupt JPEG (segment length {length} at byte {i})")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                break
            h = int.from_bytes(data[i + 5 : i + 7], "big")
            w = int.from_bytes(data[i + 7 : i + 9], "big")
            return w, h
        i += 2 + length
    raise ValueError("truncated JPEG (no frame header)")


def _id_problem(value: str) -> str | None:
    if not value:
        return "is empty"
    if len(value) > MAX_ID_CHARS:
        return f"longer than {MAX_ID_CHARS} characters ({len(value)}: {value[:20]!r}...)"
    if not value.isprintable():
        return f"{value[:40]!r} has control characters"
    return None


def check_id(value: str, what: str) -> str:
    """An id the store can hold: 1 to 64 printable characters."""
    if problem := _id_problem(value):
        raise ValueError(f"{what} {problem}")
    return value


def _epoch_problem(ts: float, now: float | None = None) -> str | None:
    if not math.isfinite(ts) or ts < 0:
        return f"{ts!r} is not a finite, non-negative epoch time"
    if ts > (time.time() if now is None else now) + MAX_FUTURE_S:
        return f"{utc_from_ts(ts).isoformat()} is in the future (more than {MAX_FUTURE_S:.0f} s ahead of this clock)"
    return None


def check_epoch(ts: float, what: str) -> float:
    """A finite, non-negative epoch time no later than now + ``MAX_FUTURE_S``."""
    if problem := _epoch_problem(ts):
        raise ValueError(f"{what} {problem}")
    return ts


def check_time(value: datetime, info: ValidationInfo) -> datetime:
    """An aware datetime, converted to UTC. When a record is read off the bus (``from_bytes``
    passes the reader's clock as the validation context ``now``), also not far in the future;
    a producer with a simulated clock may construct any time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be timezone-aware (UTC), not naive")
    value = value.astimezone(UTC)
    now = info.context.get("now") if isinstance(info.context, dict) else None
    if now is not None and (problem := _epoch_problem(value.timestamp(), now)):
        raise ValueError(problem)
    return value


def _bounded_int(raw: bytes, what: str, low: int, high: int) -> int:
    text = raw.decode()
    if len(text) > 24:
        raise ValueError(f"{what} header too long")
    v = int(text)
    if not low <= v <= high:
        raise ValueError(f"{what} {v} outside [{low}, {high}]")
    return v


def _motion_boxes(raw: Any) -> tuple[MotionBox, ...]:
    if not isinstance(raw, list):
        raise ValueError("motion is not a list of [x1, y1, x2, y2] boxes")
    if len(raw) > MAX_MOTION_BOXES:
        raise ValueError(f"{len(raw)} motion boxes (at most {MAX_MOTION_BOXES})")
    boxes = []
    for b in raw:
        if not isinstance(b, list) or len(b) != 4:
            raise ValueError(f"motion box {str(b)[:60]} is not [x1, y1, x2, y2]")
        coords = []
        for v in b:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"motion box {str(b)[:80]} has a non-finite or non-numeric coordinate")
            if abs(v) > 4 * MAX_FRAME_SIDE:
                raise ValueError(f"motion box {str(b)[:80]} is far outside any frame")
            coords.append(int(v))
        boxes.append(MotionBox(*coords))
    return tuple(boxes)


# ------------------------------------------------------------------------ payloads
def _id(v: str) -> str:
    if problem := _id_problem(v):
        raise ValueError(problem)
    return v


Id = Annotated[str, AfterValidator(_id)]
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
    "jpeg_size",
    "topic_specs",
    "utc_from_ts",
]
