"""Walking skeleton over the real Kafka broker, each stage its own process:

    xueliang ingest → xl.frames → xueliang detect → xl.incidents → xueliang dispatch → SQLite → xueliang api

The camera is a scene-generator camera playing a public scenario once in real time;
the test asserts the incident's camera, rule and start time against the scenario's
ground truth, and that the operator API serves it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from xueliang.bus.kafka import KafkaBus
from xueliang.config import KafkaBusConfig
from xueliang.contracts import FrameMessage, Incident, Topics
from xueliang.scenes.scenario import load_scenario
from xueliang.scenes.truth import expected_incidents

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenes" / "scenarios" / "demo.yaml"  # the newcomer's scene: an intruder at the gate within seconds

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, bootstrap: str, topics: Topics, api_port: int) -> Path:
    scenario = load_scenario(SCENARIO)
    camera = scenario.camera.model_dump(mode="json", exclude_none=True)
    config = {
        "centres": {
            "id": "county",
            "name": "县综治中心",
            "tier": "county",
            "children": [
                {
                    "id": "town",
                    "name": "镇综治中心",
                    "tier": "township",
                    "children": [{"id": "village", "name": "村", "tier": "village"}],
                }
            ],
        },
        "cameras": [
            {
                "id": "cam-e2e",
                "village": "village",
                "source": {"type": "scene", "scenario": str(SCENARIO), "seed": 3, "loop": False, "realtime": True},
                "sample_fps": 5,
                "zones": camera.get("zones", []),
                "lines": camera.get("lines", []),
                "rules": camera.get("rules", []),
            }
        ],
        "detector": {
            "backend": {
                "type": "onnxruntime",
                "model": str(REPO / "detector/models/xueliang-yolo-n.onnx"),
                "threads": 1,
            },
            "imgsz": 320,
            "snapshot_dir": str(tmp_path / "snapshots"),
        },
        "bus": {
            "type": "kafka",
            "bootstrap_servers": [bootstrap],
            "frame_partitions": 2,
            "topics": topics.model_dump(),
        },
        "store": {"url": f"sqlite:///{tmp_path / 'xueliang.db'}"},
        "api": {"port": api_port, "jwt_secret": "e2e-secret-" + uuid.uuid4().hex},
    }
    path = tmp_path / "xueliang.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    return path


def _stage(stack: ExitStack, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "YOLO_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    out = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "xueliang.cli", *args], stdout=out, stderr=subprocess.STDOUT, env=env
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

    stack.callback(stop)
    return proc


def test_incident_crosses_real_kafka_topics(tmp_path: Path, kafka_bootstrap: str) -> None:
    scenario = load_scenario(SCENARIO)
    truth = [e for e in expected_incidents(scenario) if e.type == "intrusion"]
    assert truth, "the scenario must script an intrusion"
    uid = uuid.uuid4().hex[:8]
    topics = Topics(
        frames=f"e2e-{uid}.frames",
        incidents=f"e2e-{uid}.incidents",
        camera_health=f"e2e-{uid}.health",
        dead_letters=f"e2e-{uid}.dlq",
        camera_registry=f"e2e-{uid}.registry",
    )
    api_port = _free_port()
    cfg = _config(tmp_path, kafka_bootstrap, topics, api_port)
    bus = KafkaBus(KafkaBusConfig(bootstrap_servers=[kafka_bootstrap], topics=topics))

    with ExitStack() as stack:
        subprocess.run(
            [sys.executable, "-m", "xueliang.cli", "topics", "-c", str(cfg)], check=True, capture_output=True
        )
        stack.callback(bus.close)
        frames = bus.consumer(f"e2e-frames-{uid}", [topics.frames], offset_reset="earliest")
        incidents = bus.consumer(f"e2e-incidents-{uid}", [topics.incidents], offset_reset="earliest")
        stack.callback(frames.close)
        stack.callback(incidents.close)
        # downstream first, as a deployment would start them
        _stage(stack, ["api", "-c", str(cfg)], tmp_path / "api.log")
        _stage(stack, ["dispatch", "-c", str(cfg)], tmp_path / "dispatch.log")
        _stage(stack, ["detect", "-c", str(cfg), "--worker-id", "det-1"], tmp_path / "detect.log")
        _stage(stack, ["ingest", "-c", str(cfg), "--camera", "cam-e2e"], tmp_path / "ingest.log")

        first_capture: float | None = None
        frame_count = 0
        found: Incident | None = None
        deadline = time.monotonic() + scenario.duration_s + 45
        while time.monotonic() < deadline and found is None:
            for rec in frames.poll(0.2):
                msg = FrameMessage.from_record(rec.value, rec.headers)
                assert msg.camera_id == "cam-e2e" and rec.key == "cam-e2e"
                frame_count += 1
                first_capture = msg.capture_ts if first_capture is None else min(first_capture, msg.capture_ts)
            for rec in incidents.poll(0.2):
                inc = Incident.from_bytes(rec.value)
                if inc.rule_type == "intrusion":
                    found = inc
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in tmp_path.glob("*.log"))
        assert frame_count > 0, f"no frames crossed {topics.frames}\n{logs}"
        assert found is not None, f"no intrusion incident on {topics.incidents} after {frame_count} frames\n{logs}"
        assert found.camera_id == "cam-e2e"
        assert found.rule == truth[0].rule and found.zone == truth[0].zone
        # scene time 0 is the first frame's capture time (the scene source stamps t0 + scene t)
        assert first_capture is not None
        started_scene_s = found.started_at.timestamp() - first_capture
        assert abs(started_scene_s - truth[0].start_s) <= 2.0, (started_scene_s, truth[0].start_s)
        assert found.snapshot_url

        # the dispatcher stored it and the operator API serves it to the village's operator
        env = {**os.environ, "XL_NEW_USER_PASSWORD": "e2e-password-1"}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "xueliang.cli",
                "user",
                "add",
                "-c",
                str(cfg),
                "--username",
                "op-village",
                "--role",
                "operator",
                "--centre",
                "village",
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        base = f"http://127.0.0.1:{api_port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            token = None
            for _ in range(100):
                try:
                    r = client.post("/api/v1/auth/token", data={"username": "op-village", "password": "e2e-password-1"})
                    if r.status_code == 200:
                        token = r.json()["access_token"]
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            assert token, f"API never answered\n{logs}"
            items: list[dict] = []
            for _ in range(50):
                items = client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"}).json()["items"]
                if any(i["id"] == found.id for i in items):
                    break
                time.sleep(0.2)
            stored = next((i for i in items if i["id"] == found.id), None)
            assert stored is not None, f"incident {found.id} not served by the API: {items}\n{logs}"
            assert stored["camera_id"] == "cam-e2e" and stored["rule"] == found.rule
            assert datetime.fromisoformat(stored["started_at"]).astimezone(UTC) == found.started_at
