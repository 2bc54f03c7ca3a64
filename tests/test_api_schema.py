"""Schemathesis against the OpenAPI schema: no 5xx, and every response conforms to the schema
(status codes, content types, headers, bodies). Bounded: a few examples per operation,
authenticated as an admin (widest reach) on a seeded database; the endless SSE stream is excluded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xueliang.api.testing import ApiEnv, make_incident
from xueliang.contracts import Severity

pytest.importorskip("schemathesis")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_env(tmp_path_factory):
    env = ApiEnv.create(tmp_path_factory.mktemp("schema"))
    for i, sev in enumerate(Severity):
        inc = make_incident("cam-dajiaqiao-entrance", episode=f"s{i}", severity=sev)
        env.service.ingest_incident(inc)
        env.write_snapshot(inc)
    return env


def test_schema_is_complete(api_env):
    from fastapi.testclient import TestClient

    spec = TestClient(api_env.app).get("/openapi.json").json()
    paths = spec["paths"]
    for action in (
        "accept",
        "reject",
        "dispatch",
        "receive",
        "return",
        "handle",
        "feedback",
        "verify",
        "close",
        "escalate",
    ):
        op = paths[f"/api/v1/incidents/{{incident_id}}/{action}"]["post"]
        assert {"200", "401", "403", "404", "409", "422"} <= set(op["responses"]), action
    assert paths["/api/v1/feed"]["get"]["responses"]["200"]["content"].keys() == {"text/event-stream"}
    assert spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"]
    reject = spec["components"]["schemas"]["RejectBody"]
    assert "reason" in reject["required"]


def test_api_conforms_to_its_schema(api_env, tmp_path):
    """Schemathesis' example and fuzzing phases over every operation (but the endless SSE stream),
    as an admin; runs the CLI (its pytest plugin does not support this pytest) against a live server."""
    with api_env.serve() as base:
        proc = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{base}/openapi.json",
                "-H",
                f"Authorization: Bearer {api_env.token('admin')}",
                "--phases",
                "examples,fuzzing",
                "--max-examples",
                "4",
                "--seed",
                "7",
                "--workers",
                "1",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance,response_headers_conformance",
                "--exclude-path",
                "/api/v1/feed",
                "--no-shrink",
                "--suppress-health-check",
                "all",
                "--request-timeout",
                "30",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "NO_COLOR": "1"},
        )
    summary = proc.stdout[proc.stdout.rfind("SUMMARY") :]
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    assert "Failures:" not in summary and " passed" in summary, summary


def test_docs_are_served_from_this_host(tmp_path):
    """/docs loads Swagger UI from /docs/assets (bundled), not from a CDN; the CSP allows no other origin."""
    from fastapi.testclient import TestClient

    from xueliang.api.testing import ApiEnv

    env = ApiEnv.create(tmp_path)
    with TestClient(env.app) as client:
        r = client.get("/docs")
        assert r.status_code == 200
        assert "/docs/assets/swagger-ui-bundle.js" in r.text and "cdn.jsdelivr" not in r.text
        assert "jsdelivr" not in r.headers["content-security-policy"]
        js = client.get("/docs/assets/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert client.get("/redoc").status_code == 404  # ReDoc exists only on a CDN: not offered
