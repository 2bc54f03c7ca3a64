"""Shared fixtures. Real services (Kafka, PostgreSQL, Prometheus, Chromium) are started by
the README test command (``scripts/test.sh``) and announced through environment variables;
outside CI a test that needs an absent service is skipped, in CI it fails."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(env_var: str, what: str) -> str:
    value = os.environ.get(env_var)
    if not value:
        message = f"{what} not running ({env_var} unset; scripts/test.sh starts it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return value


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """A test that runs a command in-process (``xueliang.cli.main``) installs the process's log
    handler on the root logger, bound to that test's captured ``sys.stderr``; pytest closes that
    stream after the test, and every later log line (threads included) would fail on it with
    ``--- Logging error ---``. Put the root logger back as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of the real Kafka broker started by deploy/kafka/kafka.sh."""
    return require_service("XL_KAFKA_BOOTSTRAP", "Kafka broker")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the real PostgreSQL started by deploy/postgres/postgres.sh."""
    return require_service("XL_POSTGRES_URL", "PostgreSQL")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
