"""The frame record: raw JPEG bytes as the value, what the detector needs in its headers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

from xueliang.contracts.checks import (
    MAX_FRAME_SIDE,
    MAX_HEADER_BYTES,
    MAX_INT,
    MAX_MOTION_BOXES,
    ContractError,
    check_epoch,
    check_id,
)

FRAME_SCHEMA: Final = "xl.frame/1"


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
