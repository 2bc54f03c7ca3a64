"""The command line answers bad input with a clear message and exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFIG = """
centres: {id: county, name: 县, tier: county, children: [
  {id: town, name: 镇, tier: township, children: [{id: village, name: 村, tier: village}]}]}
store: {url: "sqlite:///DB"}
"""


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "xueliang.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_user_add_reports_bad_input(tmp_path: Path) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_text(CONFIG.replace("DB", str(tmp_path / "x.db")))
    env = {"XL_NEW_USER_PASSWORD": "a-good-password"}
    for username, centre, message in [
        ("op", "village", "username 'op'"),
        ("wang", "nowhere", "centre 'nowhere' is not in the centre tree"),
    ]:
        out = run(
            "user", "add", "-c", str(cfg), "--username", username, "--role", "operator", "--centre", centre, env=env
        )
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
    ok = run("user", "add", "-c", str(cfg), "--username", "wang", "--role", "operator", "--centre", "village", env=env)
    assert ok.returncode == 0, ok.stderr


def test_missing_or_invalid_config_is_reported(tmp_path: Path) -> None:
    out = run("validate-config", str(tmp_path / "absent.yaml"))
    assert out.returncode == 2 and "cannot read configuration" in out.stderr and "Traceback" not in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("centres: {id: c, name: C, tier: galaxy}\n")
    out = run("validate-config", str(bad))
    assert out.returncode == 2 and f"{bad}:1: centres.tier" in out.stderr, out.stderr


def test_bad_store_urls_are_reported(tmp_path: Path) -> None:
    """In the file or as ``dispatch --store-url``: exit 2 with the reason, before any connection is tried."""
    cfg = tmp_path / "x.yaml"
    cfg.write_text(CONFIG.replace("sqlite:///DB", "mongodb://db"))
    out = run("validate-config", str(cfg))
    assert out.returncode == 2 and "unsupported store URL scheme 'mongodb'" in out.stderr, out.stderr
    cfg.write_text(CONFIG.replace("DB", str(tmp_path / "x.db")))
    out = run("dispatch", "-c", str(cfg), "--store-url", "nonsense://x")
    assert out.returncode == 2 and "--store-url: " in out.stderr and "Traceback" not in out.stderr, out.stderr
