"""网格员 on a 390-px phone in Debian's Chromium: the village operator dispatches a case to a grid
worker picked from the suggestions; the worker's wall (cases dispatched to them) gets it live, and
签收 → 开始处置 → 反馈 from the phone move it to feedback in the API, audited with their name;
nothing overflows the screen."""

from __future__ import annotations

import time

import httpx
import pytest
from browser_kit import launch, login, require_browser

from xueliang.api.testing import USERS, ApiEnv, make_incident
from xueliang.dispatch.workflow import Action, Actor, Role

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_grid_worker_on_a_phone(tmp_path):
    sync_api = require_browser()
    env = ApiEnv.create(tmp_path, users={**USERS, "grid-zhang": ("grid_worker", "dajiaqiao")})
    inc = make_incident("cam-dajiaqiao-entrance", episode="grid")
    env.write_snapshot(inc)
    env.service.ingest_incident(inc)
    env.service.transition(inc.id, Action.accept, Actor("op-dajiaqiao", Role.operator, "dajiaqiao"), "")
    with env.serve() as base, sync_api.sync_playwright() as pw:
        api = httpx.Client(base_url=base, timeout=10)
        browser = launch(pw)
        errors: list[str] = []
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
        phone.on("pageerror", lambda e: errors.append(str(e)))
        login(phone, base, "grid-zhang")
        assert phone.text_content("#wall-title") == "分拨给我的任务" and phone.is_hidden("#bulk")
        assert phone.is_hidden("#nav-supervise")

        desk = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        desk.on("pageerror", lambda e: errors.append(str(e)))
        login(desk, base, "op-dajiaqiao")
        desk.wait_for_selector(f'article.incident[data-id="{inc.id}"] button.resolve')
        desk.wait_for_function("() => (window.XL.gridWorkers || []).length === 1")
        desk.click(f'article.incident[data-id="{inc.id}"] button.resolve')
        desk.select_option("#action-select", "dispatch")
        assert "grid-zhang" in desk.eval_on_selector_all("#target-options option", "os => os.map(o => o.value)")
        desk.fill("#target-input", "grid-zhang")
        desk.fill("#note-input", "请到村口核实")
        desk.click("#action-submit")

        phone.wait_for_selector(f'article.incident[data-id="{inc.id}"]', timeout=5_000)  # live
        for action in ("receive", "handle", "feedback"):
            phone.click(f'article.incident[data-id="{inc.id}"] button.resolve')
            phone.select_option("#action-select", action)
            if action == "feedback":
                phone.fill("#note-input", "已劝离，现场无异常")
            phone.click("#action-submit")
            phone.wait_for_selector("#action-dialog", state="hidden")
            deadline = time.monotonic() + 5
            want = {"receive": "received", "handle": "handling", "feedback": "feedback"}[action]
            while time.monotonic() < deadline:
                got = api.get(f"/api/v1/incidents/{inc.id}", headers=env.headers("op-dajiaqiao")).json()
                if got["state"] == want:
                    break
                time.sleep(0.05)
            assert got["state"] == want
            phone.wait_for_selector(f'article.incident[data-id="{inc.id}"][data-state="{want}"]', timeout=5_000)
        assert got["audit"][-1]["actor"] == "grid-zhang" and got["audit"][-1]["note"] == "已劝离，现场无异常"
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        assert errors == []
        browser.close()
