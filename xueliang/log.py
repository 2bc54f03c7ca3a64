"""One logging setup for every process, with credentials scrubbed from every line."""

from __future__ import annotations

import logging
import re
import sys

_CRED = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s]+@")
_SECRET_QUERY = re.compile(r"((?:password|passwd|pwd|token|secret)=)[^&\s]+", re.IGNORECASE)


def scrub(text: str) -> str:
    """Remove ``user:password@`` from URLs and secret query parameters."""
    return _SECRET_QUERY.sub(r"\1***", _CRED.sub(r"\1***@", text))


class ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kafka", "uvicorn.access", "ultralytics", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kafka-python warns whenever its I/O loop is starved for >100 ms, which a busy 2-core host does often
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
