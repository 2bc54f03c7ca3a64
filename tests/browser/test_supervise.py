"""督办 in Debian's Chromium: the township supervisor's table ranks its villages (the one that let a
case go red last, charged with it although the township owns the case now), lists the overdue and
warned cases and urges a village's case; the village operator gets an urgent banner and the
notification in its inbox, marks it read; the village that escalated a case still sees it,
read-only, under 已上报上级. Saves docs/screenshots/supervise-zh-desktop.png."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser_kit import SHOTS, launch, login, require_browser

from xueliang.api.testing import ApiEnv, make_incident
from xueliang.contracts import Severity
from xueliang.dispatch.workflow import Action, Actor, Role

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_supervision_page_urge_inbox_and_read_only(tmp_path):
    sync_api = require_browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = ApiEnv.create(tmp_path)
    now = datetime.now(UTC)
    svc = env.service

    def add(camera, episode, severity, ago_s, rule="gate-intrusion", rule_type="intrusion"):
        inc = make_incident(
            camera,
            episode=episode,
            severity=severity,
            at=now - timedelta(seconds=ago_s),
            rule=rule,
            rule_type=rule_type,
        )
        env.write_snapshot(inc)
        svc.ingest_incident(inc)
        return inc.id

    quick = [add("cam-dajiaqiao-entrance", f"q{i}", Severity.general, 600 - i) for i in range(3)]
    for iid in quick:
        svc.transition(iid, Action.accept, Actor("op-dajiaqiao", Role.operator, "dajiaqiao"), "")
    red = add("cam-xishi-square", "red", Severity.serious, 1500, "square", "crowding")  # accept window missed
    yellow = add("cam-dajiaqiao-pond", "yel", Severity.serious, 780, "pond", "loitering")  # 80 % of it gone
    svc.tick()
    assert svc.get_incident(red).owner_centre_id == "anchang"

    with env.serve() as base, sync_api.sync_playwright() as pw:
        api = httpx.Client(base_url=base, timeout=10)
        browser = launch(pw)
        errors: list[str] = []
        village = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        village.on("pageerror", lambda e: errors.append(str(e)))
        login(village, base, "op-dajiaqiao")
        village.wait_for_selector(f'article.incident[data-id="{yellow}"]')

        sup = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN").new_page()
        sup.on("pageerror", lambda e: errors.append(str(e)))
        login(sup, base, "sup-anchang")
        sup.click("#nav-supervise")
        sup.wait_for_selector("#sup-kpis tbody tr")
        ranked = sup.eval_on_selector_all("#sup-kpis tbody tr", "rs => rs.map(r => r.dataset.centre)")
        assert ranked == ["dajiaqiao", "xishi"]
        assert sup.text_content('#sup-kpis tr[data-centre="xishi"] .overdue-rate') == "100.0%"
        assert sup.text_content('#sup-kpis tr[data-centre="dajiaqiao"] .overdue-rate') == "0.0%"
        shown = sup.eval_on_selector_all("#sup-overdue tbody tr", "rs => rs.map(r => r.dataset.id)")
        assert shown == [red, yellow]  # red first
        assert sup.locator(f'#sup-overdue tr[data-id="{red}"] button.urge').count() == 0  # its own case: act, not urge
        sup.wait_for_selector("#inbox li")
        sup.screenshot(path=str(SHOTS / "supervise-zh-desktop.png"), full_page=True)

        # urge the village's warned case
        sup.click(f'#sup-overdue tr[data-id="{yellow}"] button.urge')
        assert sup.is_disabled("#urge-submit") is False
        sup.fill("#urge-note", "请立即受理并核实")
        sup.click("#urge-submit")
        sup.wait_for_selector("#urge-dialog", state="hidden")
        audit = api.get(f"/api/v1/incidents/{yellow}", headers=env.headers("sup-anchang")).json()["audit"]
        assert audit[-1]["action"] == "urge" and audit[-1]["note"] == "请立即受理并核实"

        # the village: an urgent banner naming camera and rule, and the notification in its inbox
        village.wait_for_selector(f'#banner .alert-urgent[data-id="{yellow}"][data-reason="urged"]', timeout=5_000)
        assert "大家桥村池塘" in village.text_content(f'#banner .alert-urgent[data-id="{yellow}"]')
        village.wait_for_function("() => !document.querySelector('#inbox-count').hidden", timeout=5_000)
        village.click("#nav-supervise")
        village.wait_for_selector('#inbox li[data-kind="urge"].unread')
        assert "请立即受理并核实" in village.text_content('#inbox li[data-kind="urge"]')
        assert village.is_hidden("#sup-kpi-block")  # operators: inbox only
        village.click("#inbox-read")
        village.wait_for_selector('#inbox li[data-kind="urge"].read')
        village.wait_for_function("() => document.querySelector('#inbox-count').hidden", timeout=5_000)

        # 西市村 escalated its case away: still visible there, read-only
        xishi = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        xishi.on("pageerror", lambda e: errors.append(str(e)))
        login(xishi, base, "op-xishi")
        xishi.click("#scope-away")
        xishi.wait_for_selector(f'article.incident[data-id="{red}"]')
        assert xishi.locator(f'article.incident[data-id="{red}"] button').count() == 0
        assert xishi.is_hidden("#bulk")
        xishi.click(f'article.incident[data-id="{red}"] a.detail-link')
        xishi.wait_for_selector("#read-only")
        assert xishi.locator("#detail button[data-action]").count() == 0
        time.sleep(0.2)
        assert errors == []
        browser.close()
