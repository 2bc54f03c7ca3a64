#!/usr/bin/env bash
# The static checks, run by scripts/test.sh before the tests (so CI fails on a new finding):
# ruff (lint and format) and mypy, all configured in pyproject.toml. Needs the `test` extra.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=.venv/bin
"$BIN/ruff" check .
"$BIN/ruff" format --check .
"$BIN/python" scripts/typecheck_tree.py   # the package-dir mapping as links mypy can follow
"$BIN/mypy"
