"""Hostile records for every topic a stage consumes (the fuzz suite's generator, seeded).

``hostile_frames(rng, n, good)`` and ``hostile_payloads(rng, n, good)`` yield
:class:`Hostile` records: a value, headers and key that the consuming stage must refuse
(dead-letter, with a reason) without stopping. Every family the contracts guard against is
covered: bad JSON and encodings, wrong schema versions, missing and unknown fields, extreme
numbers (±inf, NaN, 1e999, 2**70, negatives), huge and empty values, bad headers, truncated
and non-JPEG frames, forged frame sizes, unknown cameras, naive and far-future timestamps.

Each family is one small function of a template (:class:`_FrameTemplate`, :class:`_PayloadTemplate`)
that draws from the seeded generator; the poisoned values themselves are the tables below.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from xueliang.contracts import FrameMessage


@dataclass(frozen=True)
class Hostile:
    family: str
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)
    key: str | None = None


def _future_iso(days: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + days * 86400))


def _key(rng: random.Random, default: str) -> str | None:
    return rng.choice([default, default, None, "", "k" * 300, "\u96ea\u4eae-" + str(rng.randrange(1000))])


# ----------------------------------------------------------------- frames
# Poisoned frame header values, one table per family.
_FRAME_SCHEMAS = (b"xl.frame/2", b"", b"\xff\xfe", b"xl.frame/1 ")
_FRAME_REQUIRED = ("schema", "camera", "seq", "ts", "w", "h")
_FRAME_TS = (b"inf", b"-inf", b"nan", b"-1", b"1e308", b"abc", b"")  # and a month ahead (per template)
_FRAME_SEQ = (b"-5", str(2**70).encode(), b"1.5", b"x", b"")
_FRAME_SIDES = (b"0", b"-1", b"99999", b"NaN", b"1e3")
_FRAME_MOTION = (
    b"[[1e999,0,10,10]]",
    b"[[NaN,0,10,10]]",
    b"[[-Infinity,0,1,1]]",
    b"[[1,2]]",
    b"{}",
    b'"gate"',
    b"[" * 5000,
    json.dumps([[0, 0, 1, 1]] * 300).encode(),
    b"[[true,0,1,1]]",
    b"[[1e10,0,1,1]]",
    b"not json",
    b"[[0,0,1,1]" + b" " * 70_000 + b"]",
)
_FRAME_CAMERAS = (b"", b"c" * 65, b"\xff\xfe\xfd", b"cam\nx", b"cam\x00a")  # and an unknown camera (drawn)


@dataclass(frozen=True)
class _FrameTemplate:
    """A valid frame of a configured camera, and the generator the families draw from."""

    rng: random.Random
    good: FrameMessage
    now: float

    def headers(self, **change: bytes | None) -> dict[str, bytes]:
        """The good frame's headers with motion (so that no gate could skip the record unchecked),
        ``change`` applied: a value replaces the header, None removes it."""
        h = dict(self.good.headers(), motion=b"[[0,0,10,10]]")
        for k, v in change.items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        return h


_Frame = tuple[bytes, dict[str, bytes]]


def _frame_schema(t: _FrameTemplate) -> _Frame:
    return t.good.jpeg, t.headers(schema=t.rng.choice(_FRAME_SCHEMAS))


def _frame_missing(t: _FrameTemplate) -> _Frame:
    return t.good.jpeg, t.headers(**{t.rng.choice(_FRAME_REQUIRED): None})


def _frame_ts(t: _FrameTemplate) -> _Frame:
    return t.good.jpeg, t.headers(ts=t.rng.choice([*_FRAME_TS, repr(t.now + 30 * 86400).encode()]))


def _frame_seq(t: _FrameTemplate) -> _Frame:
    return t.good.jpeg, t.headers(seq=t.rng.choice(_FRAME_SEQ))


def _frame_size(t: _FrameTemplate) -> _Frame:
    return t.good.jpeg, t.headers(**{t.rng.choice("wh"): t.rng.choice(_FRAME_SIDES)})


def _frame_motion(t: _FrameTemplate) -> _Frame:
    return t.good.jpeg, t.headers(motion=t.rng.choice(_FRAME_MOTION))


def _frame_camera(t: _FrameTemplate) -> _Frame:
    unknown = f"cam-nobody-{t.rng.randrange(99)}".encode()
    return t.good.jpeg, t.headers(camera=t.rng.choice([*_FRAME_CAMERAS, unknown]))


def _frame_payload(t: _FrameTemplate) -> _Frame:
    """Empty, truncated, non-JPEG and random values, and a JPEG whose announced size is swapped."""
    rng, good, hdr = t.rng, t.good, t.headers
    return rng.choice(
        [
            (b"", hdr()),
            (good.jpeg[: rng.randrange(2, len(good.jpeg) - 2)], hdr()),
            (b"\x89PNG\r\n\x1a\n" + rng.randbytes(200), hdr()),
            (rng.randbytes(rng.randrange(1, 3000)), hdr()),
            (b"\xff\xd8" + rng.randbytes(500), hdr()),
            (good.jpeg, hdr(w=str(good.height).encode(), h=str(good.width).encode())),
        ]
    )


def _frame_headers(t: _FrameTemplate) -> _Frame:
    return t.good.jpeg, t.headers(**{f"x{i}": t.rng.randbytes(8) for i in range(3)}, camera=b"\xc3\x28")


_FRAME_FAMILIES: tuple[tuple[str, Callable[[_FrameTemplate], _Frame]], ...] = (
    ("schema", _frame_schema),
    ("missing", _frame_missing),
    ("ts", _frame_ts),
    ("seq", _frame_seq),
    ("size", _frame_size),
    ("motion", _frame_motion),
    ("camera", _frame_camera),
    ("payload", _frame_payload),
    ("headers", _frame_headers),
)


def hostile_frames(rng: random.Random, n: int, good: FrameMessage, huge_every: int = 400) -> Iterator[Hostile]:
    """``n`` frame records the detector must dead-letter; ``good`` (a valid frame of a configured camera)
    is the template. Payload-level poisons carry motion so that no gate could skip them unchecked."""
    t = _FrameTemplate(rng, good, time.time())
    for i in range(n):
        if huge_every and i % huge_every == huge_every - 1:  # a 3 MiB random value (fits the 4 MiB topic)
            family, (value, headers) = "huge", (rng.randbytes(3 * 1024 * 1024), t.headers())
        else:
            family, make = _FRAME_FAMILIES[i % len(_FRAME_FAMILIES)]
            value, headers = make(t)
        yield Hostile(family, value, headers, _key(rng, good.camera_id))


# --------------------------------------------------------- JSON payloads
_DROP = object()
"""A ``_PayloadTemplate.mutate`` value: remove the field."""
_NUMBER_TOKENS = ("1e999", "-1e999", "NaN", "Infinity", "-Infinity")
_EXTRA_FIELDS = ("admin", "__proto__", "sql")
_INCIDENT_NESTED: tuple[dict[str, Any], ...] = (
    {"details": {"count": "@"}},  # "@" becomes 1e999 in the JSON text
    {"boxes": [{"xyxy": [0, 0, 1, 1], "class_name": "person", "confidence": 5}]},
    {"track_ids": [-1]},
    {"details": {f"k{i}": i for i in range(100)}},
    {"class_names": ["person"] * 2000},
    {"boxes": [{"xyxy": [0, 0], "class_name": "p", "confidence": 0.5}]},
)
_HEALTH_NESTED: tuple[dict[str, Any], ...] = (
    {"faults": ["blur"] * 40},
    {"scores": {"blur": "x"}},
    {"scores": {f"s{i}": 1 for i in range(40)}},
)


@dataclass(frozen=True)
class _PayloadTemplate:
    """A valid incident or camera-health payload (by its fields), and the generator the families draw from."""

    rng: random.Random
    good: dict[str, Any]

    @property
    def is_incident(self) -> bool:
        return "rule" in self.good

    @property
    def time_fields(self) -> list[str]:
        return ["started_at", "updated_at"] if self.is_incident else ["at"]

    @property
    def id_fields(self) -> list[str]:
        return ["id", "camera_id", "rule"] if self.is_incident else ["camera_id"]

    @property
    def number_fields(self) -> list[str]:
        """Scalars whose extreme values the contract refuses."""
        return ["revision", "source_frame_seq"] if self.is_incident else ["fps"]

    def mutate(self, **change: Any) -> bytes:
        """The good payload as JSON with ``change`` applied (``_DROP`` removes a field)."""
        d = dict(self.good)
        for k, v in change.items():
            if v is _DROP:
                d.pop(k, None)
            else:
                d[k] = v
        return json.dumps(d, ensure_ascii=self.rng.random() < 0.5).encode()


def _payload_json(t: _PayloadTemplate) -> bytes:
    rng = t.rng
    return rng.choice(
        [
            b"",
            b"null",
            b"[]",
            b"1e999",
            b"\xff\xfe not json",
            t.mutate()[: rng.randrange(1, 40)],
            b"[" * 10_000,
            b'{"a":' * 3000,
            rng.randbytes(64),
        ]
    )


def _payload_schema(t: _PayloadTemplate) -> bytes:
    return t.mutate(schema=t.rng.choice(["xl.incident/2" if t.is_incident else "xl.camera-health/2", "", 7]))


def _payload_missing(t: _PayloadTemplate) -> bytes:
    return t.mutate(**{t.rng.choice([*t.id_fields, *t.time_fields]): _DROP})


def _payload_extra(t: _PayloadTemplate) -> bytes:
    return t.mutate(**{t.rng.choice(_EXTRA_FIELDS): "'; DROP TABLE incidents; --"})


def _payload_numbers(t: _PayloadTemplate) -> bytes:
    """A number field holding a JSON token no JSON number may be (1e999, NaN, Infinity)."""
    field_name = t.rng.choice(t.number_fields)
    token = t.rng.choice(_NUMBER_TOKENS)
    return t.mutate(**{field_name: "@@"}).replace(b'"@@"', token.encode())


def _payload_ints(t: _PayloadTemplate) -> bytes:
    rng = t.rng
    if t.is_incident:
        return t.mutate(**{rng.choice(["revision", "source_frame_seq"]): rng.choice([-1, 2**70, "seven", 1.5])})
    return t.mutate(fps=rng.choice([-1, 1e7, "fast"]))


def _payload_nested(t: _PayloadTemplate) -> bytes:
    nested = t.rng.choice(_INCIDENT_NESTED if t.is_incident else _HEALTH_NESTED)
    return t.mutate(**nested).replace(b'"@"', b"1e999")


def _payload_huge(t: _PayloadTemplate) -> bytes:
    return t.mutate(**{t.rng.choice(t.id_fields): "x" * t.rng.choice([65, 1000, 100_000])})


def _payload_empty(t: _PayloadTemplate) -> bytes:
    return t.mutate(**{t.rng.choice(t.id_fields): t.rng.choice(["", "\u0000", "a\nb"])})


def _payload_time(t: _PayloadTemplate) -> bytes:
    rng = t.rng
    bad_times = [
        "2026-03-01T09:00:00",  # naive
        _future_iso(30),
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "yesterday",
        1e20,
        "2026-02-30T00:00:00Z",
    ]
    return t.mutate(**{rng.choice(t.time_fields): rng.choice(bad_times)})


def _payload_enum(t: _PayloadTemplate) -> bytes:
    rng = t.rng
    if t.is_incident:
        return t.mutate(**{rng.choice(["severity", "rule_type"]): rng.choice(["apocalyptic", "", None])})
    return t.mutate(status=rng.choice(["exploded", "", None]))


def _payload_text(t: _PayloadTemplate) -> bytes:
    return t.mutate(**{"snapshot_url" if t.is_incident else "reason": "r" * t.rng.choice([2001, 500_000])})


_PAYLOAD_FAMILIES: tuple[tuple[str, Callable[[_PayloadTemplate], bytes]], ...] = (
    ("json", _payload_json),
    ("schema", _payload_schema),
    ("missing", _payload_missing),
    ("extra", _payload_extra),
    ("numbers", _payload_numbers),
    ("ints", _payload_ints),
    ("nested", _payload_nested),
    ("huge", _payload_huge),
    ("empty", _payload_empty),
    ("time", _payload_time),
    ("enum", _payload_enum),
    ("text", _payload_text),
)


def hostile_payloads(rng: random.Random, n: int, good: dict[str, Any]) -> Iterator[Hostile]:
    """``n`` JSON-topic records (incidents or camera health, by the ``good`` template's fields) that the
    dispatcher must dead-letter."""
    t = _PayloadTemplate(rng, good)
    for i in range(n):
        family, make = _PAYLOAD_FAMILIES[i % len(_PAYLOAD_FAMILIES)]
        yield Hostile(family, make(t), {"schema": rng.choice([b"", b"\xff", b"xl.incident/1"])}, _key(rng, "cam-a"))
