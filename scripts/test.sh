#!/usr/bin/env bash
# The one test command: sets up a fresh machine, starts the real services (Kafka,
# PostgreSQL), runs the whole suite, stops the services. Extra args go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/setup.sh test
scripts/lint.sh   # ruff + mypy first: a new finding fails CI before the slow part

cleanup() {
  deploy/kafka/kafka.sh stop >/dev/null 2>&1 || true
  deploy/postgres/postgres.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

deploy/kafka/kafka.sh fetch
deploy/kafka/kafka.sh start
export XL_KAFKA_BOOTSTRAP="127.0.0.1:${XL_KAFKA_PORT:-9092}"
eval "$(deploy/postgres/postgres.sh start)"   # exports XL_POSTGRES_URL
export YOLO_OFFLINE=1 PYTHONUNBUFFERED=1

.venv/bin/pytest "$@"
