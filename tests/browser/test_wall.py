"""The alert wall on a busy shift, in Debian's Chromium (headless, Playwright): a township with 164
open cases, 5 of them red (accept SLA missed, escalated from a village) and 3 escalated by hand,
behind 150 newer general ones. Every red and escalated case is on the first screen in both the
card and the list view; filters live in the URL and survive a reload; bulk accept and
reject-as-duplicate change the cases in the API; the action dialog shows only the fields of the
chosen action and never opens on 退回; a live update keeps the keyboard focus; graded alerts fire
for cases escalated to the user's centre and never for an engineer; white-on-blue buttons reach
4.5:1; nothing overflows a 390-px phone. Saves zh/en desktop/phone screenshots to docs/screenshots/."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from browser_kit import SHOTS, launch, login, require_browser

from xueliang.api.testing import ApiEnv, make_incident
from xueliang.contracts import Severity
from xueliang.dispatch.workflow import Action, Actor, Role

pytestmark = [pytest.mark.browser, pytest.mark.slow]


SUP = Actor("sup-anchang", Role.supervisor, "anchang")


def _luminance(rgb: str) -> float:
    parts = [float(x) for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    lin = [(c / 255) / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in parts]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def fill_township(env: ApiEnv) -> dict[str, list[str]]:
    """164 open cases at 安昌街道 and its villages (times relative to now, real clock)."""
    now = datetime.now(UTC)
    svc = env.service
    ids: dict[str, list[str]] = {"red": [], "manual": [], "yellow": [], "major": [], "general": []}

    def add(kind, camera, episode, severity, ago_s, rule="gate-intrusion", rule_type="intrusion", scene=None):
        inc = make_incident(
            camera,
            episode=episode,
            severity=severity,
            at=now - timedelta(seconds=ago_s),
            rule=rule,
            rule_type=rule_type,
        )
        env.write_snapshot(inc, scenario=scene)
        svc.ingest_incident(inc)
        ids[kind].append(inc.id)
        return inc.id

    for i in range(5):  # serious, accept window 900 s missed: red and escalated to the township by the tick
        add(
            "red",
            "cam-xishi-square",
            f"red{i}",
            Severity.serious,
            1500 - i * 30,
            "square-crowd",
            "crowding",
            "crowding_crossroads",
        )
    for i in range(4):  # serious, past 80 % of the accept window: yellow
        add(
            "yellow",
            "cam-dajiaqiao-pond",
            f"yel{i}",
            Severity.serious,
            780 - i * 10,
            "pond",
            "loitering",
            "loitering_school_gate",
        )
    for i in range(5):  # major: owned by the township itself, fresh
        add(
            "major",
            "cam-dajiaqiao-entrance",
            f"maj{i}",
            Severity.major,
            60 - i,
            "gate-fire",
            "fire_smoke",
            "fire_smoke_dusk",
        )
    cams = ["cam-dajiaqiao-entrance", "cam-dajiaqiao-pond", "cam-xishi-square"]
    for i in range(150):  # general, all newer than the red ones
        add(
            "general",
            cams[i % 3],
            f"gen{i}",
            Severity.general,
            1200 - i * 7,
            scene="intrusion_day" if 40 <= i < 43 else None,
        )
    svc.tick()
    for gid in ids["general"][40:43]:  # escalated to the township by its supervisor
        svc.transition(gid, Action.escalate, SUP, "需街道协调")
        ids["manual"].append(gid)
    return ids


def in_first_screen(page, selector: str) -> bool:
    return page.evaluate(
        "sel => { const e = document.querySelector(sel); if (!e) return false; const r = e.getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }",
        selector,
    )


def wait_state(api, env, iid: str, state: str, user: str = "sup-anchang") -> None:
    deadline = time.monotonic() + 5
    got = None
    while time.monotonic() < deadline:
        got = api.get(f"/api/v1/incidents/{iid}", headers=env.headers(user)).json()["state"]
        if got == state:
            return
        time.sleep(0.05)
    raise AssertionError(f"{iid}: {got} != {state}")


def test_busy_township_wall(tmp_path):
    sync_api = require_browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = ApiEnv.create(tmp_path)
    ids = fill_township(env)
    urgent = ids["red"] + ids["manual"]
    assert sum(len(v) for k, v in ids.items() if k != "manual") == 164
    with env.serve() as base, sync_api.sync_playwright() as pw:
        api = httpx.Client(base_url=base, timeout=10)
        browser = launch(pw)
        ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, base, "sup-anchang")
        page.wait_for_selector("article.incident", timeout=10_000)

        # every red and escalated case is on the first screen, ahead of 150 newer general ones
        for iid in urgent:
            assert in_first_screen(page, f'article.incident[data-id="{iid}"]'), iid
        order = page.eval_on_selector_all("article.incident", "els => els.map(e => e.dataset.id)")
        assert (
            order[:5] == ids["red"] and set(order[5:8]) == set(ids["manual"]) and set(order[8:12]) == set(ids["yellow"])
        )
        assert page.get_attribute("#chip-red", "data-count") == "5"
        assert page.get_attribute("#chip-escalated_to_me", "data-count") == "8"
        assert page.text_content("#wall-count") == "(164)"
        page.wait_for_function(
            "() => [...document.querySelectorAll('article.incident img.thumb')].slice(0, 9)"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=10_000,
        )
        page.screenshot(path=str(SHOTS / "wall-zh-desktop.png"))

        # white-on-blue buttons and the red badge reach 4.5:1
        for sel in ("button.primary", ".badge.sla-red", ".seg button.on"):
            fg, bg = page.eval_on_selector(
                sel, "e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; }"
            )
            assert contrast(fg, bg) >= 4.5, (sel, fg, bg, contrast(fg, bg))

        # the dense list: same order, more on a screen
        page.click("#view-list")
        page.wait_for_selector("#wall-list tr.incident-row")
        assert "view=list" in page.evaluate("location.hash")
        for iid in urgent + ids["yellow"]:
            assert in_first_screen(page, f'tr.incident-row[data-id="{iid}"]'), iid
        page.screenshot(path=str(SHOTS / "wall-list-zh-desktop.png"))

        # filters bound to the URL, surviving a reload
        page.select_option("#f-severity", "serious")
        page.wait_for_function("() => location.hash.includes('severity=serious')")
        page.wait_for_function("() => document.querySelectorAll('#wall-list tr.incident-row').length === 9")
        page.fill("#f-q", "西市")
        page.wait_for_function("() => location.hash.includes('q=')")
        page.wait_for_function("() => document.querySelectorAll('#wall-list tr.incident-row').length === 5")
        page.reload()
        page.wait_for_function("() => document.querySelectorAll('#wall-list tr.incident-row').length === 5")
        assert page.input_value("#f-severity") == "serious" and page.input_value("#f-q") == "西市"
        shown = page.eval_on_selector_all("#wall-list tr.incident-row", "els => els.map(e => e.dataset.id)")
        assert shown == ids["red"]
        assert page.get_attribute("#chip-red", "data-count") == "5"  # counts ignore the filters
        page.click("#f-clear")
        page.wait_for_function("() => document.querySelectorAll('#wall-list tr.incident-row').length === 60")
        assert page.text_content("#page-info").startswith("第 1/3 页")
        page.click("#page-next")
        page.wait_for_function("() => location.hash.includes('page=2')")
        page.wait_for_function(
            "id => !document.querySelector(`tr.incident-row[data-id='${id}']`)", arg=ids["red"][0], timeout=5_000
        )
        page.click("#page-prev")
        page.wait_for_selector(f'tr.incident-row[data-id="{ids["red"][0]}"]')

        # CSV export of the filtered view
        page.select_option("#f-sla", "red")
        page.wait_for_function("() => document.querySelectorAll('#wall-list tr.incident-row').length === 5")
        with page.expect_download() as dl:
            page.click("#export")
        rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8-sig"))))
        assert [r["id"] for r in rows] == ids["red"] and {r["urgency"] for r in rows} == {"red"}
        page.click("#f-clear")

        # bulk accept the 4 yellow cases
        page.wait_for_function("() => document.querySelectorAll('#wall-list tr.incident-row').length === 60")
        for iid in ids["yellow"]:
            page.check(f'tr.incident-row[data-id="{iid}"] input.pick')
        assert page.text_content("#bulk-count") == "已选 4 件"
        page.click("#bulk-accept")
        page.wait_for_function("() => document.querySelector('#bulk-msg').textContent.includes('4')")
        for iid in ids["yellow"]:
            wait_state(api, env, iid, "accepted")
        audit = api.get(f"/api/v1/incidents/{ids['yellow'][0]}", headers=env.headers("sup-anchang")).json()["audit"]
        assert audit[-1]["actor"] == "sup-anchang" and audit[-1]["action"] == "accept"
        # reject three as duplicates: the first click only asks for confirmation
        dups = ids["general"][100:103]
        page.fill("#f-q", "gen")  # search narrows nothing useful here; clear it and pick from page 1
        page.click("#f-clear")
        page.wait_for_function("() => document.querySelectorAll('#wall-list tr.incident-row').length === 60")
        visible = page.eval_on_selector_all("#wall-list tr.incident-row", "els => els.map(e => e.dataset.id)")
        dups = [i for i in visible if i in ids["general"] and i not in ids["manual"]][:3]
        for iid in dups:
            page.check(f'tr.incident-row[data-id="{iid}"] input.pick')
        page.click("#bulk-reject")
        assert "确认" in page.text_content("#bulk-reject")
        assert api.get(f"/api/v1/incidents/{dups[0]}", headers=env.headers("sup-anchang")).json()["state"] == "reported"
        page.click("#bulk-reject")
        for iid in dups:
            wait_state(api, env, iid, "rejected")
        page.click("#scope-closed")
        page.wait_for_function("() => document.querySelectorAll('#wall-list tr.incident-row').length === 3")
        assert page.text_content("#wall-title") == "历史事件"
        page.click("#scope-open")
        page.click("#view-cards")
        page.wait_for_selector("article.incident")

        # the action dialog: from the wall it opens on no action; reason and target only when needed
        major = ids["major"][0]
        page.click(f'article.incident[data-id="{major}"] button.accept')
        wait_state(api, env, major, "accepted")
        page.wait_for_selector(f'article.incident[data-id="{major}"][data-state="accepted"]')
        page.click(f'article.incident[data-id="{major}"] button.resolve')
        assert page.input_value("#action-select") == ""
        assert page.is_hidden("#reason-row") and page.is_hidden("#target-row")
        assert page.is_disabled("#action-submit")
        page.select_option("#action-select", "reject")
        assert page.is_visible("#reason-row") and page.is_hidden("#target-row")
        page.select_option("#action-select", "dispatch")
        assert page.is_hidden("#reason-row") and page.is_visible("#target-row")
        page.click("#action-cancel")
        # 分拨 on the detail page opens on 分拨, not on 退回
        page.goto(base + f"/#/incident/{ids['major'][0]}")
        page.wait_for_selector("#detail button[data-action='dispatch']")
        page.click("#detail button[data-action='dispatch']")
        assert page.input_value("#action-select") == "dispatch"
        assert page.is_hidden("#reason-row") and page.is_visible("#target-row")
        page.fill("#target-input", "xishi")
        page.click("#action-submit")
        wait_state(api, env, ids["major"][0], "dispatched")
        assert page.is_hidden("#topbar") is False and page.is_hidden("#view-login")

        # a live update keeps the keyboard focus on the same control
        page.click("#detail-back")
        page.wait_for_selector("article.incident")
        key = f"{ids['red'][2]}:accept"
        page.focus(f'[data-key="{key}"]')
        new = make_incident("cam-dajiaqiao-pond", episode="live", severity=Severity.general)
        env.service.ingest_incident(new)
        page.wait_for_function("() => window.XL.alertLog.length >= 1", timeout=5_000)
        time.sleep(0.4)  # the wall reloads 150 ms after the event
        assert page.evaluate("document.activeElement && document.activeElement.dataset.key") == key

        # graded alerts: escalated to my centre → urgent, persistent banner naming camera and rule
        victim = ids["general"][60]
        env.service.transition(victim, Action.escalate, SUP, "")
        page.wait_for_selector(f'#banner .alert-urgent[data-id="{victim}"]', timeout=5_000)
        text = page.text_content(f'#banner .alert-urgent[data-id="{victim}"]')
        assert "升级至本中心" in text and "区域入侵" in text
        assert any(a["reason"] == "escalated" and a["id"] == victim for a in page.evaluate("window.XL.alertLog"))
        time.sleep(4.3)  # a normal banner would be gone by now
        assert page.is_visible(f'#banner .alert-urgent[data-id="{victim}"]')
        page.click(f'#banner .alert-urgent[data-id="{victim}"] a')
        page.wait_for_function("id => location.hash === '#/incident/' + id", arg=victim)
        assert page.is_hidden(f'#banner .alert-urgent[data-id="{victim}"]')

        # English desktop
        page.goto(base + "/#/wall")
        page.click("#lang")
        page.wait_for_function("() => document.querySelector('#wall-title').textContent === 'Open incidents'")
        page.wait_for_function(
            "() => [...document.querySelectorAll('article.incident img.thumb')].slice(0, 9)"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=10_000,
        )
        assert page.text_content("#chip-red").startswith("Overdue")
        page.screenshot(path=str(SHOTS / "wall-en-desktop.png"))
        page.click("#lang")
        assert errors == []

        # an engineer cannot act: no alert, no bulk bar
        eng = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        login(eng, base, "eng-keqiao")
        eng.wait_for_selector("article.incident")
        assert eng.is_hidden("#bulk")
        env.service.ingest_incident(make_incident("cam-xishi-square", episode="eng", severity=Severity.critical))
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            eng.wait_for_timeout(100)
        assert eng.evaluate("window.XL.alertLog") == [] and eng.is_hidden("#banner")

        # a 390-px phone: nothing wider than the screen, in both languages
        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
        ).new_page()
        login(phone, base, "sup-anchang")
        phone.wait_for_selector("article.incident")
        phone.wait_for_function(
            "() => [...document.querySelectorAll('article.incident img.thumb')].slice(0, 4)"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=10_000,
        )
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        assert in_first_screen(phone, f'article.incident[data-id="{ids["red"][0]}"]')
        phone.screenshot(path=str(SHOTS / "wall-zh-phone.png"))
        phone.goto(base + f"/#/incident/{ids['red'][0]}")
        phone.wait_for_selector("#detail-state")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        phone.goto(base + "/#/wall?view=list")
        phone.wait_for_selector("#wall-list tr.incident-row")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # the table scrolls inside its box
        phone.goto(base + "/#/wall")
        phone.click("#lang")
        phone.wait_for_function("() => document.querySelector('#wall-title').textContent === 'Open incidents'")
        phone.wait_for_selector("article.incident")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        phone.screenshot(path=str(SHOTS / "wall-en-phone.png"))
        browser.close()
