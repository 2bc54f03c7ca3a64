"""The README's demo command serves an incident within 60 seconds, on the embedded defaults."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serves_an_incident_within_60_seconds(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "demo.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xueliang.cli",
            "demo",
            "--port",
            str(port),
            "--workdir",
            str(tmp_path / "demo"),
            "--duration",
            "120",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "YOLO_OFFLINE": "1"},
    )
    items: list[dict] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            token = None
            while time.monotonic() - started < 60 and proc.poll() is None:
                try:
                    if token is None:
                        r = client.post("/api/v1/auth/token", data={"username": "village", "password": "xueliang-demo"})
                        token = r.json()["access_token"] if r.status_code == 200 else None
                    if token is not None:
                        items = client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"}).json()[
                            "items"
                        ]
                        if items:
                            break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            text = (tmp_path / "demo.log").read_text(errors="replace")
            assert items, f"no incident within 60 s (exit={proc.poll()})\n{text[-4000:]}"
            assert elapsed <= 60
            assert "console http://127.0.0.1:" in text  # it prints the URL
            inc = items[0]
            assert inc["camera_id"] == "cam-dajiaqiao-entrance"
            snap = client.get(inc["snapshot_url"], headers={"Authorization": f"Bearer {token}"})
            assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
            metrics = client.get("/metrics").text
            assert "xl_ingest_frames_published_total" in metrics and "xl_detector_frames_inferred_total" in metrics
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
