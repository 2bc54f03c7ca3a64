"""An incident's evidence clip plays in Debian's Chromium on the detail page (duration and the number
of frames shown checked against what was recorded), fetched with the operator's token; the snapshot
zooms on click; another village's operator gets 404 for the clip, from inside the browser too."""

from __future__ import annotations

import pytest
from browser_kit import SHOTS, launch, login, require_browser

from xueliang.api.testing import ApiEnv, _scene_frame, make_incident

pytestmark = [pytest.mark.browser, pytest.mark.slow]
av = pytest.importorskip("av")


PLAY = """async () => {
  const v = document.querySelector('#detail-clip');
  if (v.readyState < 1) await new Promise((ok, bad) => { v.onloadedmetadata = ok; v.onerror = () => bad(String(v.error && v.error.message)); });
  let shown = 0;
  const count = () => { shown++; v.requestVideoFrameCallback(count); };
  v.requestVideoFrameCallback(count);
  v.currentTime = 0;
  await v.play();
  await new Promise((ok) => { if (v.ended) ok(); else v.onended = ok; });
  return { duration: v.duration, shown, decoded: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth };
}"""


def test_clip_plays_in_the_detail_page(tmp_path):
    sync_api = require_browser()
    import cv2

    from xueliang.detector.clips import write_clip

    env = ApiEnv.create(tmp_path)
    inc = make_incident("cam-dajiaqiao-entrance", episode="clip")
    env.write_snapshot(inc, scenario="intrusion_day")
    frames = [
        cv2.imencode(".jpg", _scene_frame("intrusion_day", 4.0 + i * 0.5, inc.rule))[1].tobytes() for i in range(8)
    ]
    write_clip(env.settings.detector.snapshot_dir / f"{inc.id}.mp4", frames, 2.0)
    env.service.ingest_incident(inc)
    with env.serve() as base, sync_api.sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, base, "op-dajiaqiao")
        page.goto(base + f"/#/incident/{inc.id}")
        page.wait_for_selector("#clip-box:not([hidden])", timeout=10_000)
        got = page.evaluate(PLAY)
        assert got["duration"] == pytest.approx(4.0, abs=0.05)  # 8 frames at 2 fps
        assert got["decoded"] == 8 and got["width"] == 768
        assert 6 <= got["shown"] <= 8, got  # frames painted during playback (the first may precede the callback)
        page.click("#detail-snapshot")
        assert "zoomed" in page.get_attribute("#detail-snapshot", "class")
        page.screenshot(path=str(SHOTS / "incident-clip.png"))
        assert errors == []

        other = browser.new_context().new_page()
        login(other, base, "op-xishi")
        status = other.evaluate(
            "async (id) => (await fetch('/clips/' + id + '.mp4', {headers: {Authorization: 'Bearer ' + window.XL.token}})).status",
            inc.id,
        )
        assert status == 404
        browser.close()
