"""Hostile records for every topic a stage consumes (the fuzz suite's generator, seeded).

``hostile_frames(rng, n, good)`` and ``hostile_payloads(rng, n, kind, good)`` yield
:class:`Hostile` records: a value, headers and key that the consuming stage must refuse
(dead-letter, with a reason) without stopping. Every family the contracts guard against is
covered: bad JSON and encodings, wrong schema versions, missing and unknown fields, extreme
numbers (±inf, NaN, 1e999, 2**70, negatives), huge and empty values, bad headers, truncated
and non-JPEG frames, forged frame sizes, unknown cameras, naive and far-future timestamps.
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
def hostile_frames(rng: random.Random, n: int, good: FrameMessage, huge_every: int = 400) -> Iterator[Hostile]:
    """``n`` frame records the detector must dead-letter; ``good`` (a valid frame of a configured camera)
    is the template. Payload-level poisons carry motion so that no gate could skip them unchecked."""
    base = good.headers()
    cam = good.camera_id
    now = time.time()

    def hdr(**change: bytes | None) -> dict[str, bytes]:
        h = dict(base, motion=b"[[0,0,10,10]]")
        for k, v in change.items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        return h

    families: list[tuple[str, Callable[[], tuple[bytes, dict[str, bytes]]]]] = [
        ("schema", lambda: (good.jpeg, hdr(schema=rng.choice([b"xl.frame/2", b"", b"\xff\xfe", b"xl.frame/1 "])))),
        ("missing", lambda: (good.jpeg, hdr(**{rng.choice(["schema", "camera", "seq", "ts", "w", "h"]): None}))),
        (
            "ts",
            lambda: (
                good.jpeg,
                hdr(
                    ts=rng.choice(
                        [b"inf", b"-inf", b"nan", b"-1", b"1e308", b"abc", b"", repr(now + 30 * 86400).encode()]
                    )
                ),
            ),
        ),
        ("seq", lambda: (good.jpeg, hdr(seq=rng.choice([b"-5", str(2**70).encode(), b"1.5", b"x", b""])))),
        (
            "size",
            lambda: (good.jpeg, hdr(**{rng.choice("wh"): rng.choice([b"0", b"-1", b"99999", b"NaN", b"1e3"])})),
        ),
        (
            "motion",
            lambda: (
                good.jpeg,
                hdr(
                    motion=rng.choice(
                        [
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
                        ]
                    )
                ),
            ),
        ),
        (
            "camera",
            lambda: (
                good.jpeg,
                hdr(
                    camera=rng.choice(
                        [
                            b"",
                            b"c" * 65,
                            b"\xff\xfe\xfd",
                            b"cam\nx",
                            b"cam\x00a",
                            f"cam-nobody-{rng.randrange(99)}".encode(),
                        ]
                    )
                ),
            ),
        ),
        (
            "payload",
            lambda: rng.choice(
                [
                    (b"", hdr()),
                    (good.jpeg[: rng.randrange(2, len(good.jpeg) - 2)], hdr()),
                    (b"\x89PNG\r\n\x1a\n" + rng.randbytes(200), hdr()),
                    (rng.randbytes(rng.randrange(1, 3000)), hdr()),
                    (b"\xff\xd8" + rng.randbytes(500), hdr()),
                    (good.jpeg, hdr(w=str(good.height).encode(), h=str(good.width).encode())),
                ]
            ),
        ),
        ("headers", lambda: (good.jpeg, hdr(**{f"x{i}": rng.randbytes(8) for i in range(3)}, camera=b"\xc3\x28"))),
    ]
    for i in range(n):
        if huge_every and i % huge_every == huge_every - 1:  # a 3 MiB random value (fits the 4 MiB topic)
            family, (value, headers) = "huge", (rng.randbytes(3 * 1024 * 1024), hdr())
        else:
            family, make = families[i % len(families)]
            value, headers = make()
        yield Hostile(family, value, headers, _key(rng, cam))


# --------------------------------------------------------- JSON payloads
def hostile_payloads(rng: random.Random, n: int, good: dict[str, Any]) -> Iterator[Hostile]:
    """``n`` JSON-topic records (incidents or camera health, by the ``good`` template's fields) that the
    dispatcher must dead-letter."""
    is_incident = "rule" in good
    time_fields = ["started_at", "updated_at"] if is_incident else ["at"]
    id_fields = ["id", "camera_id", "rule"] if is_incident else ["camera_id"]

    def mutate(**change: Any) -> bytes:
        d = dict(good)
        for k, v in change.items():
            if v is _DROP:
                d.pop(k, None)
            else:
                d[k] = v
        return json.dumps(d, ensure_ascii=rng.random() < 0.5).encode()

    def raw_numbers(field_name: str) -> bytes:
        token = rng.choice(["1e999", "-1e999", "NaN", "Infinity", "-Infinity"])
        return mutate(**{field_name: "@@"}).replace(b'"@@"', token.encode())

    number_fields = (
        ["revision", "source_frame_seq"] if is_incident else ["fps"]
    )  # scalars whose extreme values the contract refuses
    families: list[tuple[str, Callable[[], bytes]]] = [
        (
            "json",
            lambda: rng.choice(
                [
                    b"",
                    b"null",
                    b"[]",
                    b"1e999",
                    b"\xff\xfe not json",
                    mutate()[: rng.randrange(1, 40)],
                    b"[" * 10_000,
                    b'{"a":' * 3000,
                    rng.randbytes(64),
                ]
            ),
        ),
        (
            "schema",
            lambda: mutate(schema=rng.choice(["xl.incident/2" if is_incident else "xl.camera-health/2", "", 7])),
        ),
        ("missing", lambda: mutate(**{rng.choice([*id_fields, *time_fields]): _DROP})),
        ("extra", lambda: mutate(**{rng.choice(["admin", "__proto__", "sql"]): "'; DROP TABLE incidents; --"})),
        ("numbers", lambda: raw_numbers(rng.choice(number_fields))),
        (
            "ints",
            lambda: mutate(
                **(
                    {rng.choice(["revision", "source_frame_seq"]): rng.choice([-1, 2**70, "seven", 1.5])}
                    if is_incident
                    else {"fps": rng.choice([-1, 1e7, "fast"])}
                )
            ),
        ),
        (
            "nested",
            lambda: mutate(
                **(
                    rng.choice(
                        [
                            {"details": {"count": "@"}},
                            {"boxes": [{"xyxy": [0, 0, 1, 1], "class_name": "person", "confidence": 5}]},
                            {"track_ids": [-1]},
                            {"details": {f"k{i}": i for i in range(100)}},
                            {"class_names": ["person"] * 2000},
                            {"boxes": [{"xyxy": [0, 0], "class_name": "p", "confidence": 0.5}]},
                        ]
                    )
                    if is_incident
                    else rng.choice(
                        [
                            {"faults": ["blur"] * 40},
                            {"scores": {"blur": "x"}},
                            {"scores": {f"s{i}": 1 for i in range(40)}},
                        ]
                    )
                )
            ).replace(b'"@"', b"1e999"),
        ),
        ("huge", lambda: mutate(**{rng.choice(id_fields): "x" * rng.choice([65, 1000, 100_000])})),
        ("empty", lambda: mutate(**{rng.choice(id_fields): rng.choice(["", "\u0000", "a\nb"])})),
        (
            "time",
            lambda: mutate(
                **{
                    rng.choice(time_fields): rng.choice(
                        [
                            "2026-03-01T09:00:00",  # naive
                            _future_iso(30),
                            "9999-12-31T23:59:59Z",
                            "0001-01-01T00:00:00Z",
                            "yesterday",
                            1e20,
                            "2026-02-30T00:00:00Z",
                        ]
                    )
                }
            ),
        ),
        (
            "enum",
            lambda: mutate(
                **(
                    {rng.choice(["severity", "rule_type"]): rng.choice(["apocalyptic", "", None])}
                    if is_incident
                    else {"status": rng.choice(["exploded", "", None])}
                )
            ),
        ),
        ("text", lambda: mutate(**{"snapshot_url" if is_incident else "reason": "r" * rng.choice([2001, 500_000])})),
    ]
    for i in range(n):
        family, make = families[i % len(families)]
        yield Hostile(family, make(), {"schema": rng.choice([b"", b"\xff", b"xl.incident/1"])}, _key(rng, "cam-a"))


_DROP = object()
