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

By concern: :mod:`.checks` (the limits of what a record may carry and the checks every contract
applies), :mod:`.topics` (names and how each topic is created), :mod:`.frames` (the frame record and
its headers), :mod:`.payloads` (the versioned JSON payloads). Import from ``xueliang.contracts``.
"""

from __future__ import annotations

from typing import Any

from xueliang.contracts.checks import (
    MAX_FRAME_SIDE,
    MAX_FUTURE_S,
    MAX_HEADER_BYTES,
    MAX_ID_CHARS,
    MAX_INT,
    MAX_LIST_ITEMS,
    MAX_MESSAGE_BYTES,
    MAX_MOTION_BOXES,
    MAX_TEXT_CHARS,
    ContractError,
    check_epoch,
    check_id,
    check_time,
    utc_from_ts,
)
from xueliang.contracts.frames import FRAME_SCHEMA, FrameMessage, MotionBox, jpeg_size
from xueliang.contracts.payloads import (
    ASSIGNMENT_SCHEMA,
    DEAD_LETTER_SCHEMA,
    HEALTH_SCHEMA,
    INCIDENT_SCHEMA,
    AwareTime,
    Box,
    CameraAssignment,
    CameraHealth,
    CameraStatus,
    Count,
    DeadLetter,
    Finite,
    Id,
    Incident,
    Int64,
    Name,
    RuleType,
    Severity,
    Text,
)
from xueliang.contracts.topics import Topics, TopicSpec, topic_specs

JsonDict = dict[str, Any]
__all__ = [
    "ASSIGNMENT_SCHEMA",
    "DEAD_LETTER_SCHEMA",
    "FRAME_SCHEMA",
    "HEALTH_SCHEMA",
    "INCIDENT_SCHEMA",
    "MAX_FRAME_SIDE",
    "MAX_FUTURE_S",
    "MAX_HEADER_BYTES",
    "MAX_ID_CHARS",
    "MAX_INT",
    "MAX_LIST_ITEMS",
    "MAX_MESSAGE_BYTES",
    "MAX_MOTION_BOXES",
    "MAX_TEXT_CHARS",
    "AwareTime",
    "Box",
    "CameraAssignment",
    "CameraHealth",
    "CameraStatus",
    "ContractError",
    "Count",
    "DeadLetter",
    "Finite",
    "FrameMessage",
    "Id",
    "Incident",
    "Int64",
    "JsonDict",
    "MotionBox",
    "Name",
    "RuleType",
    "Severity",
    "Text",
    "TopicSpec",
    "Topics",
    "check_epoch",
    "check_id",
    "check_time",
    "jpeg_size",
    "topic_specs",
    "utc_from_ts",
]
