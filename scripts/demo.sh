#!/usr/bin/env bash
# The one demo command: sets up a fresh machine (lean runtime, no torch) and runs
# the whole pipeline in one process on the embedded bus + SQLite. Args go to `xueliang demo`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/setup.sh demo
exec .venv/bin/xueliang demo "$@"
