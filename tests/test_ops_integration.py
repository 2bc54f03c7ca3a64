"""The real Prometheus (Debian's binary) scrapes the running pipeline on loopback; every PromQL
expression of every dashboard panel must return data and every rule must evaluate without error.

The pipeline is the demo's, in-process: scene camera → ingest → detector (ONNX Runtime) →
dispatch (SQLite) on the embedded bus, with SLA clocks shortened so supervision flags and
escalations happen within the test, and an operator accepting and closing one incident so the
MTTA/MTTR histograms have observations. /metrics is the process's default registry (every
stage's metrics, the API's, the dispatch store collector and the ops collectors).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))
RULES = REPO / "deploy/prometheus/rules/xueliang.yml"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None and not Path("/usr/bin/prometheus").exists(),
        reason="prometheus missing (Debian package prometheus; scripts/setup.sh installs it)",
    ),
]
log = logging.getLogger(__name__)


def panel_expressions() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        for p in json.loads(path.read_text())["panels"]:
            out += [(f"{path.stem} / {p['title']} / {t['refId']}", t["expr"]) for t in p["targets"]]
    return out


def rule_expressions() -> list[tuple[str, str]]:
    return [
        (r.get("alert") or r["record"], r["expr"])
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
    ]


def _wait(what: str, cond, timeout_s: float, every_s: float = 0.25):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture
def pipeline(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The demo pipeline running in threads, /metrics on a free loopback port."""
    from prometheus_client import REGISTRY, start_http_server

    from tests.prometheus_server import free_port
    from xueliang.bus.memory import MemoryBus
    from xueliang.config.dispatch import DispatchConfig, Sla
    from xueliang.contracts import Severity, topic_specs
    from xueliang.demo import demo_settings
    from xueliang.detector.worker import DetectorWorker
    from xueliang.dispatch.metrics import StoreCollector, get_metrics
    from xueliang.dispatch.store import Store
    from xueliang.dispatch.worker import Dispatcher
    from xueliang.ingest.worker import IngestWorker
    from xueliang.ops.exporter import install_collectors

    settings = demo_settings(tmp_path)
    short = {s: Sla(accept_s=3, close_s=6, warn_share=0.5) for s in Severity}
    # a second village camera playing the same scene (another seed): two incidents by the first events
    cam = settings.cameras[0]
    twin = cam.model_copy(
        update={"id": "cam-xishi-square", "village": "xishi", "source": cam.source.model_copy(update={"seed": 11})}
    )
    settings = settings.model_copy(update={"dispatch": DispatchConfig(sla=short, tick_s=0.5), "cameras": [cam, twin]})
    settings.detector.snapshot_dir.mkdir(parents=True, exist_ok=True)
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(settings.bus.topics, settings.bus.frame_partitions))
    store = Store.from_url(settings.store.url)
    store.migrate()
    get_metrics()
    store_collector = StoreCollector(store)
    REGISTRY.register(store_collector)
    installed = install_collectors(settings, bus, lag_interval_s=0.5)
    port = free_port()
    server, server_thread = start_http_server(port, addr="127.0.0.1")
    from fastapi.testclient import TestClient

    from xueliang.api.app import create_app

    client = TestClient(create_app(settings, store))
    client.__enter__()  # the API's start-up (its tables) before the stages write to the database
    dispatcher = Dispatcher(settings, bus, store)
    stop = threading.Event()
    threads = [
        threading.Thread(target=run, args=(stop,), name=name, daemon=True)
        for name, run in [
            ("dispatch", dispatcher.run),
            ("detect", DetectorWorker(settings, bus).run),
            ("ingest", IngestWorker(settings, bus).run),
        ]
    ]
    started_at = time.monotonic()
    for t in threads:
        t.start()
    try:
        yield settings, store, dispatcher, port, bus, client, started_at
    finally:
        stop.set()
        for t in reversed(threads):
            t.join(15)
        client.__exit__(None, None, None)
        server.shutdown()
        server_thread.join(5)
        installed.uninstall()
        REGISTRY.unregister(store_collector)
        store.dispose()


DETECTOR_DEADLINE_S = 40.0  # from the pipeline's start
DETECTOR_INCIDENT_PANELS = {"xl_detector_incidents_total", "xl_detector_capture_to_incident_seconds"}


def _stand_in_incidents(settings, bus) -> None:  # type: ignore[no-untyped-def]
    """Publish incidents as the detector would (same contract, same topic), so the dispatch, SLA
    and operator path is exercised when the detector raised none within the wait."""
    from datetime import UTC, datetime

    from xueliang.contracts import Incident, Severity

    cam = settings.cameras[0]
    producer = bus.producer()
    now = datetime.now(UTC)
    for i, rule in enumerate(cam.rules[:3]):
        inc = Incident(
            id=Incident.make_id(cam.id, rule.name, f"stand-in-{i}"),
            camera_id=cam.id,
            rule=rule.name,
            rule_type=rule.type,
            severity=Severity(rule.effective_severity),
            started_at=now,
            updated_at=now,
            class_names=["person"],
        )
        producer.send(settings.bus.topics.incidents, inc.to_bytes(), key=cam.id, headers={"schema": b"xl.incident/1"})
    producer.flush()


def _operator_actions(dispatcher, client) -> None:  # type: ignore[no-untyped-def]
    """Take an incident from acceptance to closure (MTTA/MTTR observations);
    exercise the API so its request metrics exist."""
    from xueliang.dispatch.workflow import SYSTEM

    service = dispatcher.service

    def awaiting() -> list[str] | None:
        items = service.list_incidents(limit=20).items
        log.info("incidents: %s", [(i.rule, i.state) for i in items])
        ids = [i.id for i in items if i.state in ("reported", "escalated")]
        return ids if len(ids) >= 2 else None  # one is closed, the other stays open (and overdue)

    first = _wait("two incidents awaiting acceptance", awaiting, timeout_s=40, every_s=0.5)[0]
    for action, kw in [
        ("accept", {}),
        ("dispatch", {"target": "village-patrol"}),
        ("receive", {}),
        ("handle", {}),
        ("feedback", {}),
        ("verify", {}),
        ("close", {}),
    ]:
        service.transition(first, action, SYSTEM, **kw)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200


def _coverage_plan(tmp_path: Path) -> None:
    """One small camera-placement plan (a generated county), as `xueliang coverage plan` runs it."""
    from xueliang.coverage.planner import PlanOptions, run_plan
    from xueliang.coverage.synth import generate_county

    county = generate_county(tmp_path / "county")
    run_plan(county.demand, county.candidates, PlanOptions(k=4, time_limit_s=1), cameras=county.cameras)


def test_prometheus_scrapes_the_pipeline_and_every_query_returns_data(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.prometheus_server import PrometheusServer, render_config

    settings, _store, dispatcher, port, bus, client, started_at = pipeline
    started = time.monotonic()
    config = render_config([f"127.0.0.1:{port}"], scrape_interval_s=1.0)
    with PrometheusServer(config, tmp_path / "prometheus") as prom:
        planner = threading.Thread(target=_coverage_plan, args=(tmp_path,), name="coverage-plan")
        planner.start()  # while the scene plays towards its first events
        prom.wait_for_scrapes(2, timeout_s=20)
        try:
            # the demo scene's first events come 4–30 s into its 40 s loop; the model must see them
            _wait(
                "an incident raised by the detector",
                lambda: prom.query("sum(xl_detector_incidents_total) > 0"),
                timeout_s=max(5.0, DETECTOR_DEADLINE_S - (time.monotonic() - started_at)),
                every_s=1,
            )
            detector_raised = True
        except AssertionError:
            detector_raised = False
            _stand_in_incidents(settings, bus)
        log.info("t=%.1f detector_raised=%s", time.monotonic() - started_at, detector_raised)
        # the SLA tick flags and escalates an unaccepted incident within seconds (accept_s = 3) ...
        _wait(
            "an SLA breach and an escalation",
            lambda: prom.query("sum(xl_dispatch_overdue_total)") and prom.query("sum(xl_dispatch_escalations_total)"),
            timeout_s=20,
        )
        log.info("t=%.1f SLA breach seen", time.monotonic() - started_at)
        # ... then an operator takes it from acceptance to closure
        _operator_actions(dispatcher, client)
        planner.join(60)
        log.info("t=%.1f operator actions done", time.monotonic() - started_at)
        scrapes_at = prom.query('count_over_time(up{job="xueliang"}[1h])')[0]["value"][1]
        prom.wait_for_scrapes(int(float(scrapes_at)) + 3, timeout_s=20)  # rate() windows need ≥ 2 fresh samples

        # every metric the dashboards and rules name is known to Prometheus (metadata from the scrapes)
        metadata = set(prom.api("metadata"))
        recorded = {name for name, _ in rule_expressions() if ":" in name}
        named = {
            re.sub(r"_(bucket|sum|count)$", "", m)
            for _, e in panel_expressions() + rule_expressions()
            for m in re.findall(r"\bxl_[a-z0-9_]+", e)
        }
        unknown = {
            n
            for n in named
            if n not in metadata and f"{n}_total" not in metadata and n.removesuffix("_total") not in metadata
        } - recorded
        assert not unknown, f"metrics no stage exported in this run: {sorted(unknown)}"

        log.info("t=%.1f querying", time.monotonic() - started_at)
        empty, empty_detector = [], []
        for where, expr in panel_expressions():
            if not prom.query(expr):
                needs_detector = any(m in expr for m in DETECTOR_INCIDENT_PANELS)
                (empty_detector if needs_detector and not detector_raised else empty).append(f"{where}: {expr}")
        assert not empty, "panels without data:\n" + "\n".join(empty)

        for _where, expr in rule_expressions():
            prom.query(expr)  # raises PrometheusError on a PromQL error
        groups = prom.rule_groups()
        bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") != "ok"]
        assert not bad, bad
        assert sum(len(g["rules"]) for g in groups) == len(rule_expressions())
        # the values make sense: two cameras, online; the detector's group lag is bounded
        assert float(prom.query("xl:fleet_cameras:count")[0]["value"][1]) == 2
        assert float(prom.query("xl:camera_online:ratio")[0]["value"][1]) == 1.0
        lag = prom.query('sum(xl_kafka_consumer_lag{group="detector"})')
        assert lag and float(lag[0]["value"][1]) < 200
    log.info("t=%.1f done; integration run took %.1f s", time.monotonic() - started_at, time.monotonic() - started)
    if not detector_raised:
        pytest.xfail(
            f"the detector raised no incident from the demo scene within {DETECTOR_DEADLINE_S:.0f} s "
            "(stand-in incidents fed "
            "dispatch); every other check passed; panels left without data: " + "; ".join(empty_detector)
        )
