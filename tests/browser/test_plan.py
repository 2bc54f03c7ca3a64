"""The planning page in Debian's Chromium, from upload to report: an engineer uploads a village's demand
layer and candidate poles, runs a plan of 2 cameras as a job with progress, reads coverage before/after (0.8 % → 86.1 %, the
API's own figures), the ranked poles with cost and marginal gain and the blind spots marked fixed /
partly / left, downloads the plan as GeoJSON and finds the proposed cameras on the map. Operators do
not get the page. Saves docs/screenshots/plan-zh-desktop.png."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_kit import SHOTS, launch, login, require_browser

from xueliang.api.testing import ApiEnv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_plan_from_upload_to_report(tmp_path):
    sync_api = require_browser()
    from test_console import village_plan_input

    demand, poles = village_plan_input()
    (tmp_path / "demand.geojson").write_text(json.dumps(demand))
    (tmp_path / "poles.geojson").write_text(json.dumps(poles))
    env = ApiEnv.create(tmp_path)
    with env.serve() as base, sync_api.sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, base, "eng-keqiao")
        assert page.is_visible("#nav-plan") and page.is_hidden("#nav-supervise")
        page.click("#nav-plan")
        page.set_input_files("#plan-demand", str(tmp_path / "demand.geojson"))
        page.set_input_files("#plan-candidates", str(tmp_path / "poles.geojson"))
        page.fill("#plan-k", "2")
        page.select_option("#plan-centre", "dajiaqiao")
        page.fill("#plan-layer", "dajiaqiao-plan")
        polls: list[str] = []
        page.on("request", lambda r: polls.append(r.url) if "/api/v1/coverage/jobs" in r.url else None)
        page.click("#plan-run")
        page.wait_for_selector("#plan-result:not([hidden])", timeout=60_000)
        assert polls and polls[0].endswith("/api/v1/coverage/jobs")  # run as a job, its progress polled
        assert page.evaluate("document.querySelector('#plan-bar').value") == 1
        assert page.text_content("#plan-before") == "0.8%" and page.text_content("#plan-after") == "86.1%"
        assert page.text_content("#plan-status").startswith("最优解")
        sites = page.eval_on_selector_all("#plan-poles tbody tr", "rs => rs.map(r => r.dataset.site)")
        assert sites == ["pole-2", sites[1]] and len(sites) == 2
        gains = page.eval_on_selector_all(
            "#plan-poles tbody tr td:nth-child(5)", "ts => ts.map(t => Number(t.textContent))"
        )
        assert gains == sorted(gains, reverse=True) and gains[0] == 283.5
        states = page.eval_on_selector_all("#plan-blind tbody tr", "rs => rs.map(r => r.dataset.state)")
        assert len(states) == 6 and states[0] == "fixed" and "left" in states
        page.screenshot(path=str(SHOTS / "plan-zh-desktop.png"), full_page=True)
        with page.expect_download() as dl:
            page.click("#plan-download")
        fc = json.loads(Path(dl.value.path()).read_text())
        kinds = [f["properties"]["kind"] for f in fc["features"]]
        assert kinds.count("camera") == 2 and kinds.count("blind_spot") == 6
        assert fc["properties"]["report"]["after"]["share"] == pytest.approx(0.8614, abs=1e-3)
        page.click("#plan-map")
        page.wait_for_selector("#layer-candidates .map-candidate", timeout=5_000)
        assert page.locator("#layer-candidates .map-candidate").count() == 2
        assert errors == []

        op = browser.new_context().new_page()
        login(op, base, "op-dajiaqiao")
        assert op.is_hidden("#nav-plan")
        browser.close()
