"""What every console test in headless Chromium shares: Debian's Chromium (never a downloaded browser), how it
is launched, where screenshots go, and the login."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from xueliang.api.testing import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def require_browser() -> Any:
    """Playwright's sync API, with Debian's Chromium present: skipped where it is missing, a failure in CI."""
    if not Path(CHROMIUM).exists():
        msg = f"{CHROMIUM} missing (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return pytest.importorskip("playwright.sync_api")


def launch(pw: Any) -> Any:
    """Debian's Chromium, headless, through Playwright ``pw``."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def login(page: Any, base: str, user: str) -> None:
    """Sign ``user`` in on the console at ``base`` and wait for the live feed."""
    page.goto(base + "/")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#live.on", timeout=10_000)
