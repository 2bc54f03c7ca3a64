"""Complete zh/en in Debian's Chromium: on every page of the console (login, wall as cards and list,
history, escalated-away, incident detail with its audit trail, the action and urge dialogs, 督办,
camera health, map, the engineers' planning page with a report) and in both languages, no visible text is left untranslated.

A text fails in Chinese when Latin words remain, and in English when Chinese characters remain,
after removing what is not the console's to translate: identifiers (marked ``.ident``: ids, user
names, configuration names without a display name), proper names from the configuration (centres,
cameras, zone and rule display names), what people typed (notes, a dispatch target) and the
format names CSV / GeoJSON, EN and the 中文 toggle. Option lists and placeholders are checked too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from browser_kit import launch, require_browser

from xueliang.api.testing import PASSWORD, USERS, ApiEnv, make_incident
from xueliang.contracts import CameraHealth, CameraStatus, Severity
from xueliang.dispatch.workflow import Action, Actor, Role

pytestmark = [pytest.mark.browser, pytest.mark.slow]


FIND_UNTRANSLATED = """([lang, allow]) => {
  const bad = [];
  const wrong = lang === "zh" ? /[A-Za-z]{2,}/ : /[\\u3400-\\u9fff]/;
  const check = (text, where) => {
    let rest = text;
    for (const a of allow) rest = rest.split(a).join(" ");
    if (wrong.test(rest)) bad.push(where + ": " + text.trim());
  };
  const shown = (el) => {
    if (!el || el.closest(".ident, script, style, [hidden]")) return false;
    if (!el.getClientRects().length) return false;
    return getComputedStyle(el).visibility !== "hidden";
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode, el = n.parentElement;
    if (!n.nodeValue.trim() || !el || el.tagName === "OPTION") continue;
    if (shown(el)) check(n.nodeValue, el.tagName.toLowerCase() + (el.id ? "#" + el.id : ""));
  }
  for (const sel of document.querySelectorAll("select")) {
    if (shown(sel)) for (const o of sel.options) check(o.text, "option of #" + sel.id);
  }
  for (const inp of document.querySelectorAll("input[placeholder], textarea[placeholder]")) {
    if (shown(inp)) check(inp.placeholder, "placeholder of #" + inp.id);
  }
  return bad;
}"""


def test_every_page_is_fully_translated_in_both_languages(tmp_path):
    sync_api = require_browser()
    env = ApiEnv.create(tmp_path, users={**USERS, "grid-zhang": ("grid_worker", "dajiaqiao")})
    svc = env.service
    now = datetime.now(UTC)
    op = Actor("op-dajiaqiao", Role.operator, "dajiaqiao")
    sup = Actor("sup-anchang", Role.supervisor, "anchang")
    typed = ["请到村口核实", "派出所", "需街道处置", "请立即受理"]

    def add(camera, episode, severity, ago_s, **kw):
        inc = make_incident(camera, episode=episode, severity=severity, at=now - timedelta(seconds=ago_s), **kw)
        env.write_snapshot(inc)
        svc.ingest_incident(inc)
        return inc.id

    handled = add("cam-dajiaqiao-entrance", "h", Severity.general, 120)
    svc.transition(handled, Action.accept, op, "")
    svc.transition(handled, Action.dispatch, op, typed[0], target=typed[1])
    gridded = add("cam-dajiaqiao-entrance", "g", Severity.general, 90)
    svc.transition(gridded, Action.accept, op, "")
    svc.transition(gridded, Action.dispatch, op, "", target="grid-zhang")  # a 网格员 by user name
    red = add("cam-xishi-square", "red", Severity.serious, 1500, rule="square", rule_type="crowding")
    add("cam-dajiaqiao-pond", "yel", Severity.serious, 780, rule="pond", rule_type="loitering")
    rejected = add("cam-dajiaqiao-pond", "rej", Severity.general, 60, rule="pond", rule_type="loitering")
    svc.transition(rejected, Action.reject, op, "", reason="duplicate")
    manual = add("cam-dajiaqiao-entrance", "m", Severity.general, 30)
    svc.transition(manual, Action.escalate, sup, typed[2])
    fire = add("cam-dajiaqiao-entrance", "f", Severity.major, 10, rule="gate-fire", rule_type="fire_smoke")
    svc.tick()
    svc.ingest_health(
        CameraHealth(
            camera_id="cam-dajiaqiao-pond",
            status=CameraStatus.degraded,
            at=now - timedelta(minutes=5),
            faults=["blur", "too_dark"],
            scores={"blur": 0.8, "too_dark": 0.7},
            fps=2.0,
        )
    )
    svc.urge(fire, Actor("sup-keqiao", Role.supervisor, "keqiao"), typed[3])

    import json

    from test_console import village_plan_input

    demand, poles = village_plan_input()
    (tmp_path / "demand.geojson").write_text(json.dumps(demand))
    (tmp_path / "poles.geojson").write_text(json.dumps(poles))

    names = [c.name for c in env.settings.cameras]
    names += [n.name for n, _ in env.settings.centres.walk()]
    names += [x.label for c in env.settings.cameras for x in (*c.zones, *c.rules) if x.label]
    allow = {"zh": ["CSV", "GeoJSON", "EN"], "en": ["中文", *names, *typed]}

    with env.serve() as base, sync_api.sync_playwright() as pw:
        browser = launch(pw)
        problems: list[str] = []
        for lang in ("zh", "en"):
            for user in ("sup-anchang", "op-dajiaqiao"):
                page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.goto(base + "/")
                page.evaluate("lang => localStorage.setItem('xl.lang', lang)", lang)
                page.reload()

                def scan(where: str, page=page, lang=lang, user=user) -> None:
                    page.wait_for_timeout(150)
                    for text in page.evaluate(FIND_UNTRANSLATED, [lang, allow[lang]]):
                        problems.append(f"[{lang} {user} {where}] {text}")

                scan("login")
                page.fill("#username", user)
                page.fill("#password", PASSWORD)
                page.click("#login-submit")
                page.wait_for_selector("#live.on", timeout=10_000)
                page.wait_for_selector("article.incident")
                page.wait_for_function("() => document.querySelector('#kpis').textContent.length > 0")
                scan("wall")
                page.click("#view-list")
                page.wait_for_selector("#wall-list tr.incident-row")
                scan("wall list")
                page.click("#scope-closed")
                page.wait_for_function("() => location.hash.includes('scope=closed')")
                page.wait_for_selector("#wall-list tr.incident-row")
                scan("history")
                page.click("#scope-away")
                page.wait_for_function("() => location.hash.includes('scope=away')")
                page.wait_for_timeout(300)
                scan("escalated away")
                page.click("#scope-open")
                page.click("#view-cards")
                page.wait_for_selector("article.incident button.resolve")
                page.click("article.incident button.resolve")
                page.select_option("#action-select", "reject")
                scan("action dialog")
                page.click("#action-cancel")
                for iid in (handled, red, manual, gridded) if user == "sup-anchang" else (handled, manual, gridded):
                    page.goto(base + f"/#/incident/{iid}")
                    page.wait_for_selector("#audit tbody tr")
                    scan(f"detail {iid}")
                page.click("#nav-supervise")
                page.wait_for_selector("#inbox li")
                if user == "sup-anchang":
                    page.wait_for_selector("#sup-kpis tbody tr")
                    page.click("#sup-overdue button.urge")
                    scan("urge dialog")
                    page.click("#urge-cancel")
                scan("supervise")
                page.click("#nav-cameras")
                page.wait_for_selector("tr[data-camera='cam-dajiaqiao-pond'] .cs-degraded")
                scan("cameras")
                page.click("#nav-map")
                page.wait_for_selector("#layer-cameras .map-camera")
                scan("map")
                assert errors == [], errors
                page.context.close()
            # the engineers' planning page, with a plan's report on it
            page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            page.goto(base + "/")
            page.evaluate("lang => localStorage.setItem('xl.lang', lang)", lang)
            page.reload()
            page.fill("#username", "eng-keqiao")
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_selector("#live.on", timeout=10_000)
            page.click("#nav-plan")
            page.set_input_files("#plan-demand", str(tmp_path / "demand.geojson"))
            page.set_input_files("#plan-candidates", str(tmp_path / "poles.geojson"))
            page.fill("#plan-k", "2")
            page.click("#plan-run")
            page.wait_for_selector("#plan-result:not([hidden])", timeout=60_000)
            page.wait_for_timeout(150)
            for text in page.evaluate(FIND_UNTRANSLATED, [lang, allow[lang]]):
                problems.append(f"[{lang} eng-keqiao plan] {text}")
            page.context.close()
        browser.close()
    assert problems == [], "\n".join(problems)
