"""Authenticated Kafka: a broker from deploy/kafka/kafka.sh with XL_KAFKA_SECURE=1 (SASL/SCRAM-SHA-512
over TLS with the CA it makes, StandardAuthorizer, no access without an ACL). An incident goes end to
end with each stage as its own principal holding only its ACLs; a stage whose principal lacks an
ACL is refused with an error naming principal and topic and retried, not crash-looped; bad
credentials are refused."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from xueliang.bus import acls
from xueliang.contracts import Topics
from xueliang.detector.testing import BlobBackend, minimal_settings, publish_frames, walker_frames, yard_camera
from xueliang.detector.worker import DetectorWorker
from xueliang.dispatch.models import IncidentRow
from xueliang.dispatch.store import Store
from xueliang.dispatch.worker import Dispatcher
from xueliang.ingest.worker import IngestWorker
from xueliang.runtime import Lifecycle

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.kafka]
CAMERA = yard_camera()


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


@pytest.fixture(scope="module")
def secure_broker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A second, authenticated broker for this module (the plaintext one stays for the other tests)."""
    data = tmp_path_factory.mktemp("kafka-secure")
    port = free_port_pair()
    env = {**os.environ, "XL_KAFKA_SECURE": "1", "XL_KAFKA_PORT": str(port), "XL_KAFKA_DATA": str(data)}
    script = REPO / "deploy" / "kafka" / "kafka.sh"
    r = subprocess.run([str(script), "start"], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    creds = dict(line.split("=", 1) for line in (data / "credentials").read_text().split())
    assert (data / "credentials").stat().st_mode & 0o077 == 0  # passwords readable by the owner only
    try:
        yield {"bootstrap": f"127.0.0.1:{port}", "creds": creds, "ca": str(data / "tls" / "ca.pem")}
    finally:
        subprocess.run([str(script), "stop"], env=env, capture_output=True, timeout=60)


def settings_for(broker: dict[str, Any], user: str, topics: Topics, tmp_path: Path, password: str | None = None):
    return minimal_settings(
        [CAMERA],
        bus={
            "type": "kafka",
            "bootstrap_servers": [broker["bootstrap"]],
            "topics": topics.model_dump(),
            "frame_partitions": 2,
            "session_timeout_s": 6.0,
            "heartbeat_interval_s": 1.0,
            "client_timeout_s": 8.0,
            "security": {
                "protocol": "SASL_SSL",
                "username": user,
                "password": password if password is not None else broker["creds"][user],
                "ca_file": broker["ca"],
            },
        },
        detector={"max_age_s": 1e9, "snapshot_dir": str(tmp_path / "snaps"), "full_pass_s": 3.0},
    )


def prepared(broker: dict[str, Any], tmp_path: Path) -> tuple[Topics, dict[str, str]]:
    """Topics created and each stage's ACLs granted, by the admin principal."""
    from xueliang.bus.kafka import KafkaBus
    from xueliang.contracts import topic_specs

    prefix = f"t-sec-{uuid.uuid4().hex[:8]}"
    topics = Topics(**{k: f"{prefix}.{v}" for k, v in Topics().model_dump().items()})
    groups = {"ingest": f"{prefix}-ingest", "detector": f"{prefix}-detector", "dispatch": f"{prefix}-dispatch"}
    admin = KafkaBus(settings_for(broker, "admin", topics, tmp_path).bus)  # type: ignore[arg-type]
    try:
        admin.ensure_topics(topic_specs(topics, 2))
        users = {"ingest": "xl-ingest", "detector": "xl-detector", "dispatch": "xl-dispatch"}
        assert acls.apply(admin, users, topics, groups) > 20
    finally:
        admin.close()
    return topics, groups


def test_an_incident_end_to_end_through_scram_tls_with_per_stage_acls(secure_broker, tmp_path: Path) -> None:
    from xueliang.bus.kafka import KafkaBus

    topics, groups = prepared(secure_broker, tmp_path)
    ingest_bus = KafkaBus(settings_for(secure_broker, "xl-ingest", topics, tmp_path).bus)  # type: ignore[arg-type]
    det_settings = settings_for(secure_broker, "xl-detector", topics, tmp_path)
    disp_settings = settings_for(secure_broker, "xl-dispatch", topics, tmp_path)
    det_bus, disp_bus = KafkaBus(det_settings.bus), KafkaBus(disp_settings.bus)  # type: ignore[arg-type]
    assert (ingest_bus.principal, det_bus.principal) == ("User:xl-ingest", "User:xl-detector")
    # the ingest worker's own topic set-up works with only its ACLs (no CREATE, no other topics)
    ingest = IngestWorker(settings_for(secure_broker, "xl-ingest", topics, tmp_path), ingest_bus, share=True)
    assert ingest._setup_topics(threading.Event())
    prod = ingest_bus.producer("ingest")
    publish_frames(prod, topics.frames, det_settings.cameras[0], walker_frames([(1, 9)], 14), time.time() - 60)
    prod.close()
    store = Store.from_url(f"sqlite:///{tmp_path}/secure.db")
    store.migrate()
    life = Lifecycle(access_retry_s=1.0)
    det = DetectorWorker(det_settings, det_bus, backend=BlobBackend(), group_id=groups["detector"])
    life.add("detector", det.run)
    life.add("dispatch", Dispatcher(disp_settings, disp_bus, store, group_id=groups["dispatch"]).run)
    life.start()
    try:
        deadline, rows = time.monotonic() + 90, []
        while time.monotonic() < deadline and not life.stop.is_set():
            with store.read() as s:
                rows = s.scalars(select(IncidentRow)).all()
            if rows:
                break
            time.sleep(0.3)
        assert [(r.camera_id, r.rule) for r in rows] == [("cam-a", "yard-intrusion")]
        assert all(s.error is None and s.denied == 0 for s in life.stages)
    finally:
        life.stop.set()
        life.join(timeout_per_stage=20)
        for b in (ingest_bus, det_bus, disp_bus):
            b.close()
        store.dispose()


def test_a_stage_without_its_acl_is_refused_clearly_and_not_crash_looped(
    secure_broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The detector run as the dispatcher's principal (no READ on frames): a clear error naming
    User:xl-dispatch and the frames topic, retried every access_retry_s, the process stays up."""
    from xueliang.bus.base import BusAccessDenied
    from xueliang.bus.kafka import KafkaBus

    topics, groups = prepared(secure_broker, tmp_path)
    settings = settings_for(secure_broker, "xl-dispatch", topics, tmp_path)
    bus = KafkaBus(settings.bus)  # type: ignore[arg-type]
    life = Lifecycle(access_retry_s=1.0)
    worker = DetectorWorker(settings, bus, backend=BlobBackend(), group_id=groups["detector"])
    life.add("detector", worker.run)
    with caplog.at_level(logging.ERROR, logger="xueliang.runtime"):
        life.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and life.stages[0].denied < 2:
            time.sleep(0.2)
        alive = life.stages[0].thread is not None and life.stages[0].thread.is_alive()
        life.stop.set()
        assert life.join(timeout_per_stage=20) == 0  # stopped cleanly, never "failed"
    bus.close()
    assert alive and not life.stages[0].error and life.stages[0].denied >= 2
    refusals = [r.getMessage() for r in caplog.records if "refused by Kafka" in r.getMessage()]
    assert refusals, caplog.text
    assert "User:xl-dispatch" in refusals[0] and topics.frames in refusals[0], refusals[0]
    assert isinstance(BusAccessDenied("User:x", "READ", "topic 't'"), Exception)


def test_wrong_credentials_are_refused_with_a_clear_error(secure_broker, tmp_path: Path) -> None:
    from xueliang.bus.base import BusError
    from xueliang.bus.kafka import KafkaBus

    topics = Topics()
    bad = settings_for(secure_broker, "xl-detector", topics, tmp_path, password="not-the-password")
    with pytest.raises(BusError, match=r"refused User:xl-detector's SCRAM credentials"):
        KafkaBus(bad.bus).list_topics()  # type: ignore[arg-type]
    nothing = settings_for(secure_broker, "xl-detector", topics, tmp_path).bus.model_copy(
        update={"security": bad.bus.security.model_copy(update={"username": None, "password": None})}  # type: ignore[union-attr]
    )
    env = {k: os.environ.pop(k) for k in ("XL_KAFKA_USERNAME", "XL_KAFKA_PASSWORD") if k in os.environ}
    try:
        with pytest.raises(BusError, match="set the stage's SCRAM user and password"):
            KafkaBus(nothing)  # type: ignore[arg-type]
    finally:
        os.environ.update(env)


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from xueliang.bus.kafka import security_options
    from xueliang.config.bus import KafkaSecurityConfig

    monkeypatch.setenv("XL_KAFKA_USERNAME", "xl-detector")
    monkeypatch.setenv("XL_KAFKA_PASSWORD", "s3cret")
    monkeypatch.setenv("XL_KAFKA_CA_FILE", "/run/secrets/kafka-ca.pem")
    opts = security_options(KafkaSecurityConfig(protocol="SASL_SSL"))
    assert opts == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "xl-detector",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": "/run/secrets/kafka-ca.pem",
        "ssl_check_hostname": True,
    }
    assert security_options(KafkaSecurityConfig()) == {}


def test_strimzi_users_grant_what_the_acl_table_grants() -> None:
    """deploy/k8s/11-kafka-users.yaml: one KafkaUser (SCRAM) per stage with exactly xueliang.bus.acls' grants."""
    docs = [d for d in yaml.safe_load_all((REPO / "deploy/k8s/11-kafka-users.yaml").read_text()) if d]
    users = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaUser"}
    assert set(users) == {f"xl-{s}" for s in acls.STAGES}
    for stage in acls.STAGES:
        spec = users[f"xl-{stage}"]["spec"]
        assert spec["authentication"]["type"] == "scram-sha-512"
        got = set()
        for rule in spec["authorization"]["acls"]:
            res = rule["resource"]
            for op in rule["operations"]:
                got.add(acls.Grant(res["type"], res["name"], op.upper().replace("DESCRIBECONFIGS", "DESCRIBE_CONFIGS")))
        assert got == set(acls.stage_grants(stage, Topics())), stage
