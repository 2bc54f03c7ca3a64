"""Run a real Prometheus server (Debian's ``prometheus`` binary) on loopback, and query it.

A test helper (tests/test_ops_integration.py): render a configuration that
scrapes given ``host:port`` targets and loads the project's alert rules, start
Prometheus with a throw-away storage directory on a free port, wait until it is
ready, run PromQL over its HTTP API, stop it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
TEST_CONFIG = PROMETHEUS_DIR / "prometheus.test.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))


class PrometheusError(RuntimeError):
    """Prometheus could not be started, or answered a query with an error."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        raise PrometheusError(f"{name} not found: install Debian's `prometheus` package (apt-get install prometheus)")
    return path


def render_config(
    targets: list[str],
    scrape_interval_s: float = 1.0,
    template: Path = TEST_CONFIG,
    rule_files: list[Path] | None = None,
) -> dict[str, Any]:
    """The test configuration with its ``xueliang`` job pointed at ``targets`` and rule paths made absolute."""
    config = yaml.safe_load(template.read_text(encoding="utf-8"))
    interval = f"{int(scrape_interval_s * 1000)}ms"
    config.setdefault("global", {}).update(scrape_interval=interval, evaluation_interval=interval)
    jobs = [j for j in config.get("scrape_configs", []) if j.get("job_name") == "xueliang"]
    if not jobs:
        raise PrometheusError(f"{template}: no scrape job named 'xueliang'")
    jobs[0]["static_configs"] = [{"targets": list(targets)}]
    config["rule_files"] = [str(p) for p in (RULE_FILES if rule_files is None else rule_files)]
    return config


@dataclass
class PrometheusServer:
    """A Prometheus process; use as a context manager."""

    config: dict[str, Any]
    workdir: Path
    port: int = field(default_factory=free_port)
    startup_timeout_s: float = 30.0
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        log = (self.workdir / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(
            [
                find_binary("prometheus"),
                f"--config.file={cfg}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "GOMAXPROCS": "1"},
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self._proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            time.sleep(0.2)
        self.stop()
        raise PrometheusError(f"prometheus not ready after {self.startup_timeout_s} s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ API
    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector (raises on a PromQL error)."""
        data = self.api("query", query=expr)
        result = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    def targets_up(self) -> list[dict[str, Any]]:
        return [t for t in self.api("targets")["activeTargets"] if t.get("health") == "up"]

    def wait_for_scrapes(self, n: int, timeout_s: float = 30.0, job: str = "xueliang") -> None:
        """Wait until every target of ``job`` has been scraped successfully ``n`` times."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            res = self.query(f'min(count_over_time(up{{job="{job}"}}[1h]) * up{{job="{job}"}})')
            if res and float(res[0]["value"][1]) >= n:
                return
            time.sleep(0.25)
        raise PrometheusError(
            f"targets of job {job} not scraped {n} times within {timeout_s} s: {self.api('targets')['activeTargets']}"
        )

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.api("rules")["groups"])
