"""The console in Debian's Chromium (headless, driven by Playwright): an incident produced by the
running pipeline (embedded bus → dispatcher → database → live feed) appears on a village
operator's alert wall within 2 s; accepting it in the page changes its state in the API.
Saves screenshots of the alert wall, an incident detail, camera health and the map to
docs/screenshots/."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser_kit import SHOTS, launch, require_browser

from xueliang.api.testing import PASSWORD, ApiEnv, make_incident
from xueliang.bus.memory import MemoryBus
from xueliang.contracts import CameraHealth, CameraStatus, Severity, topic_specs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def village_plan_input():
    """A small village around the sample cameras: roads, a crossroads, a school, an entrance; candidate poles."""

    def f(geom_type, coords, **props):
        return {"type": "Feature", "geometry": {"type": geom_type, "coordinates": coords}, "properties": props}

    demand = [
        f(
            "LineString",
            [[120.4545, 30.0912], [120.4565, 30.0913], [120.4585, 30.0916], [120.4605, 30.0919]],
            id="main-road",
            category="main_road",
            village="dajiaqiao",
        ),
        f(
            "LineString",
            [[120.4575, 30.0895], [120.4576, 30.0913], [120.4578, 30.0932]],
            id="village-road",
            category="road",
            village="dajiaqiao",
        ),
        f("Point", [120.4576, 30.0913], id="crossroads", category="crossroads", village="dajiaqiao"),
        f("Point", [120.4547, 30.0912], id="entrance-west", category="village_entrance", village="dajiaqiao"),
        f(
            "Polygon",
            [[[120.4580, 30.0924], [120.4588, 30.0924], [120.4588, 30.0930], [120.4580, 30.0930], [120.4580, 30.0924]]],
            id="school",
            category="school",
            village="dajiaqiao",
        ),
        f("Point", [120.4594, 30.0901], id="pond-bank", category="riverbank", village="dajiaqiao"),
    ]
    poles = [
        f("Point", c, id=f"pole-{i}", cost=1.0, capacity=2, height=6.0)
        for i, c in enumerate(
            [
                [120.4550, 30.0915],
                [120.4576, 30.0916],
                [120.4584, 30.0921],
                [120.4592, 30.0905],
                [120.4600, 30.0917],
                [120.4566, 30.0900],
            ]
        )
    ]
    return {"type": "FeatureCollection", "features": demand}, {"type": "FeatureCollection", "features": poles}


def test_alert_wall_live_accept_and_screenshots(tmp_path):
    sync_api = require_browser()
    from xueliang.dispatch.worker import Dispatcher

    SHOTS.mkdir(parents=True, exist_ok=True)
    env = ApiEnv.create(tmp_path)
    bus = MemoryBus()
    topics = env.settings.bus.topics
    bus.ensure_topics(topic_specs(topics))
    # the dispatcher has its own service: its changes reach the API only through the events table
    dispatcher = Dispatcher(env.settings, bus, env.store)
    stop = threading.Event()
    worker = threading.Thread(target=dispatcher.run, args=(stop,), name="dispatcher", daemon=True)
    worker.start()
    producer = bus.producer("test-detector")
    now = datetime.now(UTC)
    # camera health from the ingest tier: one camera lost its signal, one is blurred
    for cam, status, faults, scores in (
        ("cam-dajiaqiao-entrance", CameraStatus.online, [], {"blur": 0.12, "noise": 0.08}),
        ("cam-dajiaqiao-pond", CameraStatus.degraded, ["blur"], {"blur": 0.81, "noise": 0.2}),
    ):
        producer.send(
            topics.camera_health,
            CameraHealth(
                camera_id=cam, status=status, at=now - timedelta(hours=2), faults=faults, scores=scores, fps=2.0
            ).to_bytes(),
            key=cam,
        )
    # an older incident already on the wall
    older = make_incident(
        "cam-dajiaqiao-pond",
        episode="older",
        rule="pond",
        rule_type="loitering",
        severity=Severity.serious,
        at=now - timedelta(minutes=4),
    )
    env.write_snapshot(older, scenario="loitering_school_gate", at_s=21.0)
    producer.send(topics.incidents, older.to_bytes(), key=older.camera_id)
    try:
        with env.serve() as base, sync_api.sync_playwright() as pw:
            api = httpx.Client(base_url=base, timeout=10)
            demand, poles = village_plan_input()
            r = api.post(
                "/api/v1/coverage/plan",
                headers=env.headers("eng-keqiao"),
                json={
                    "demand": demand,
                    "candidates": poles,
                    "options": {"k": 2, "spacing_m": 10},
                    "layer": "dajiaqiao-plan",
                    "centre_id": "dajiaqiao",
                },
            )
            assert r.status_code == 200, r.text
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1360, "height": 820}, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/")
            page.fill("#username", "op-dajiaqiao")
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_selector("#live.on", timeout=10_000)  # the live feed is connected
            page.wait_for_selector(f'article.incident[data-id="{older.id}"]', timeout=10_000)

            inc = make_incident("cam-dajiaqiao-entrance", episode="browser", severity=Severity.serious)
            env.write_snapshot(inc, scenario="intrusion_day")  # the detector writes it before publishing
            t0 = time.monotonic()
            producer.send(topics.incidents, inc.to_bytes(), key=inc.camera_id)
            page.wait_for_selector(f'article.incident[data-id="{inc.id}"]', timeout=2_000)
            latency = time.monotonic() - t0
            assert latency < 2.0
            page.wait_for_function(
                "id => { const i = document.querySelector(`article[data-id='${id}'] img.thumb`);"
                " return i && i.complete && i.naturalWidth > 0; }",
                arg=inc.id,
                timeout=5_000,
            )
            assert page.is_visible("#banner")  # the visual cue
            page.screenshot(path=str(SHOTS / "alert-wall.png"))

            page.click(f'article.incident[data-id="{inc.id}"] button.accept')
            deadline = time.monotonic() + 5
            state = None
            while time.monotonic() < deadline:
                state = api.get(f"/api/v1/incidents/{inc.id}", headers=env.headers("op-dajiaqiao")).json()["state"]
                if state == "accepted":
                    break
                time.sleep(0.05)
            assert state == "accepted"
            audit = api.get(f"/api/v1/incidents/{inc.id}", headers=env.headers("sup-anchang")).json()["audit"]
            assert audit[-1]["actor"] == "op-dajiaqiao" and audit[-1]["action"] == "accept"
            page.wait_for_selector(f'article.incident[data-id="{inc.id}"][data-state="accepted"]', timeout=3_000)

            # resolve with a note from the wall: dispatch to the grid worker
            page.click(f'article.incident[data-id="{inc.id}"] button.resolve')
            page.select_option("#action-select", "dispatch")
            page.fill("#target-input", "网格员张三")
            page.fill("#note-input", "请到村口核实")
            page.click("#action-submit")
            page.wait_for_selector(f'article.incident[data-id="{inc.id}"][data-state="dispatched"]', timeout=3_000)

            page.click(f'article.incident[data-id="{inc.id}"] a.detail-link')
            page.wait_for_selector("#detail-state[data-state='dispatched']", timeout=5_000)
            page.wait_for_function(
                "() => { const i = document.querySelector('#detail-snapshot');"
                " return i && i.complete && i.naturalWidth > 0; }",
                timeout=5_000,
            )
            assert page.locator("#audit tbody tr").count() == 3  # reported, accepted, dispatched
            page.screenshot(path=str(SHOTS / "incident-detail.png"), full_page=True)

            page.click("#nav-cameras")
            page.wait_for_selector("tr[data-camera='cam-dajiaqiao-pond'] .cs-degraded", timeout=5_000)
            # 24 hourly bars of intact rate: degraded for the last two hours, unknown before
            bars = page.eval_on_selector_all(
                "tr[data-camera='cam-dajiaqiao-pond'] svg.spark rect", "rs => rs.map(r => r.dataset.v)"
            )
            assert len(bars) == 24 and bars[-1] == "0.00" and bars[0] == ""
            page.screenshot(path=str(SHOTS / "camera-health.png"))

            page.click("#nav-map")
            page.wait_for_selector("#layer-cameras .map-camera", timeout=5_000)
            assert page.locator("#layer-sectors path").count() == 2
            assert page.locator("#layer-blind path").count() >= 1
            # open incidents are markers at their camera; a click opens a popup that links to the case
            markers = page.eval_on_selector_all("#layer-incidents .map-incident", "ms => ms.map(m => m.dataset.id)")
            assert set(markers) == {inc.id, older.id}
            page.click(f'#layer-incidents .map-incident[data-id="{older.id}"]')
            assert page.is_visible(f'#map-popup .popup-body[data-id="{older.id}"] a.popup-detail')
            page.click('#layer-cameras .map-camera[data-id="cam-dajiaqiao-pond"] circle')
            assert "待办事件 1 件" in page.text_content('#map-popup .popup-body[data-camera="cam-dajiaqiao-pond"]')
            page.click(f'#layer-incidents .map-incident[data-id="{inc.id}"]')
            page.screenshot(path=str(SHOTS / "map.png"), full_page=True)
            page.click("#map-popup a.popup-detail")
            page.wait_for_selector("#detail-state[data-state='dispatched']", timeout=5_000)

            # escalated to the township by its supervisor: it leaves the village wall
            page.click("#nav-wall")
            page.wait_for_selector(f'article.incident[data-id="{older.id}"]', timeout=3_000)
            r = api.post(
                f"/api/v1/incidents/{older.id}/escalate",
                headers=env.headers("sup-anchang"),
                json={"note": "需街道处置"},
            )
            assert r.status_code == 200 and r.json()["owner_centre_id"] == "anchang"
            page.wait_for_selector(f'article.incident[data-id="{older.id}"]', state="detached", timeout=2_000)

            page.click("#lang")  # English labels
            assert page.text_content("#nav-map") == "Map"
            assert errors == []

            # the API docs render from this host alone (no CDN: Chromium here has no internet)
            requests: list[str] = []
            docs = browser.new_page()
            docs.on("request", lambda r: requests.append(r.url))
            docs.goto(base + "/docs")
            docs.wait_for_selector(".opblock", timeout=10_000)
            assert docs.locator(".opblock").count() >= 20
            assert all(u.startswith(base) for u in requests), [u for u in requests if not u.startswith(base)]
            browser.close()
            print(f"alert-wall latency {latency:.3f} s")
    finally:
        stop.set()
        worker.join(10)
