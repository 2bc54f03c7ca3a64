"""The console tests share ``browser_kit`` (and test_console's sample data) from this folder: pytest runs with
``--import-mode=importlib``, which puts no test folder on ``sys.path``, so this one is put there once."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
