"""Camera health over time: GET /api/v1/cameras/trend gives each camera's hourly 在线率 and 完好率
(oldest first) from its status history; unknown hours are null; scope as for the cameras list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from xueliang.api.testing import ApiEnv
from xueliang.contracts import CameraHealth, CameraStatus
from xueliang.dispatch.clock import ManualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_hourly_trend_from_the_status_history(tmp_path):
    clock = ManualClock(T0)
    env = ApiEnv.create(tmp_path, clock=clock)
    for at, status, faults in (
        (T0 - timedelta(hours=5), CameraStatus.online, []),
        (T0 - timedelta(hours=2), CameraStatus.degraded, ["blur"]),
        (T0 - timedelta(minutes=30), CameraStatus.offline, []),
    ):
        env.service.ingest_health(CameraHealth(camera_id="cam-dajiaqiao-pond", status=status, at=at, faults=faults))
    with TestClient(env.app) as client:
        r = client.get("/api/v1/cameras/trend", headers=env.headers("op-dajiaqiao"), params={"hours": 6})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["bucket_s"] == 3600 and datetime.fromisoformat(body["since"]) == T0 - timedelta(hours=6)
        pond = next(c for c in body["cameras"] if c["camera_id"] == "cam-dajiaqiao-pond")
        assert pond["intact_rate"] == [None, 1.0, 1.0, 1.0, 0.0, 0.0]
        assert pond["online_rate"] == [None, 1.0, 1.0, 1.0, 1.0, pytest.approx(0.5)]
        assert {c["camera_id"] for c in body["cameras"]} == {"cam-dajiaqiao-entrance", "cam-dajiaqiao-pond"}
        xishi = client.get("/api/v1/cameras/trend", headers=env.headers("op-xishi")).json()
        assert {c["camera_id"] for c in xishi["cameras"]} == {"cam-xishi-square"}
        assert len(xishi["cameras"][0]["intact_rate"]) == 24
        for bad in ({"hours": 0}, {"hours": 169}, {"hours": "x"}):
            assert (
                client.get("/api/v1/cameras/trend", headers=env.headers("op-dajiaqiao"), params=bad).status_code == 422
            )
        assert client.get("/api/v1/cameras/trend").status_code == 401
