"""Bus payloads convert at the edges and reject what breaks their contract."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from xueliang.contracts import (
    CameraHealth,
    CameraStatus,
    ContractError,
    DeadLetter,
    FrameMessage,
    Incident,
    MotionBox,
    Severity,
)


def frame() -> FrameMessage:
    return FrameMessage("cam1", 42, 1764240000.125, 640, 360, b"\xff\xd8jpeg", (MotionBox(1, 2, 30, 40),), False)


def test_frame_round_trip() -> None:
    f = frame()
    assert FrameMessage.from_record(f.jpeg, f.headers()) == f


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.pop("camera"), "frame header 'camera' missing"),
        (lambda h: h.update(schema=b"xl.frame/9"), "unknown frame schema"),
        (lambda h: h.update(seq=b"x"), "malformed frame headers"),
        (lambda h: h.update(motion=b"[[1,2]]"), "malformed frame headers"),
    ],
)
def test_frame_contract_errors(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    headers = frame().headers()
    mutate(headers)
    with pytest.raises(ContractError, match=reason):
        FrameMessage.from_record(b"x", headers)


def test_empty_frame_rejected() -> None:
    with pytest.raises(ContractError, match="empty frame payload"):
        FrameMessage.from_record(b"", frame().headers())


def test_incident_round_trip_and_deterministic_id() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    a = Incident.make_id("cam1", "gate", "zone:gate@1764240000")
    assert a == Incident.make_id("cam1", "gate", "zone:gate@1764240000")
    assert a != Incident.make_id("cam1", "gate", "zone:gate@1764240100")
    inc = Incident(
        id=a,
        camera_id="cam1",
        rule="gate",
        rule_type="intrusion",
        severity=Severity.serious,
        started_at=now,
        updated_at=now,
        details={"count": 2},
    )
    back = Incident.from_bytes(inc.to_bytes())
    assert back == inc and b'"schema":"xl.incident/1"' in inc.to_bytes()


def test_incident_rejects_naive_time_and_unknown_fields() -> None:
    with pytest.raises(ContractError, match="timezone-aware"):
        Incident.from_bytes(
            b'{"id":"i","camera_id":"c","rule":"r","rule_type":"intrusion","severity":"major",'
            b'"started_at":"2026-11-27T12:00:00","updated_at":"2026-11-27T12:00:00"}'
        )
    with pytest.raises(ContractError, match="extra_forbidden"):
        CameraHealth.from_bytes(b'{"camera_id":"c","status":"online","at":"2026-11-27T12:00:00Z","x":1}')
    with pytest.raises(ContractError):
        Incident.from_bytes(b"not json")


def test_severity_rank_and_health() -> None:
    assert [s.rank for s in Severity] == [0, 1, 2, 3]
    h = CameraHealth(camera_id="c", status=CameraStatus.offline, at=datetime.now(UTC), reason="no frames for 8 s")
    assert CameraHealth.from_bytes(h.to_bytes()).status is CameraStatus.offline


def test_dead_letter_keeps_evidence() -> None:
    dl = DeadLetter.of("detector", "undecodable JPEG", "xl.frames", 2, 17, "cam1", b"\x00garbage", {"seq": b"3"})
    back = DeadLetter.from_bytes(dl.to_bytes())
    assert back.payload() == b"\x00garbage" and back.source_offset == 17 and back.reason == "undecodable JPEG"
