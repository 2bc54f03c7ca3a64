"""What a record may carry (everything downstream, database columns, arrays, JSON, can hold it) and
the checks every contract applies: ids, epoch and aware times; :class:`ContractError` for a refusal."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from pydantic import ValidationInfo

MAX_MESSAGE_BYTES = 4 * 1024 * 1024

MAX_ID_CHARS = 64
"""Camera, incident, rule and zone ids (the store's ``String(64)`` columns)."""
MAX_FUTURE_S = 24 * 3600.0
"""A capture or report time later than now plus this is refused (a clock that far off is broken)."""
MAX_FRAME_SIDE = 8192
MAX_MOTION_BOXES = 256
MAX_HEADER_BYTES = 64 * 1024
MAX_LIST_ITEMS = 1024
MAX_TEXT_CHARS = 2000
MAX_INT = 2**63 - 1


class ContractError(ValueError):
    """A message that does not satisfy its contract (bad schema, missing header...)."""


def utc_from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _refuse(problem: str | None, what: str = "") -> None:
    """A ``ValueError`` for ``problem`` (prefixed with ``what``), if there is one."""
    if problem:
        raise ValueError(f"{what} {problem}" if what else problem)


def _id_problem(value: str) -> str | None:
    if not value:
        return "is empty"
    if len(value) > MAX_ID_CHARS:
        return f"longer than {MAX_ID_CHARS} characters ({len(value)}: {value[:20]!r}...)"
    if not value.isprintable():
        return f"{value[:40]!r} has control characters"
    return None


def check_id(value: str, what: str) -> str:
    """An id the store can hold: 1 to 64 printable characters."""
    _refuse(_id_problem(value), what)
    return value


def valid_id(value: str) -> str:
    """:func:`check_id` for pydantic fields (the field's name says what)."""
    _refuse(_id_problem(value))
    return value


def _epoch_problem(ts: float, now: float | None = None) -> str | None:
    if not math.isfinite(ts) or ts < 0:
        return f"{ts!r} is not a finite, non-negative epoch time"
    if ts > (time.time() if now is None else now) + MAX_FUTURE_S:
        return f"{utc_from_ts(ts).isoformat()} is in the future (more than {MAX_FUTURE_S:.0f} s ahead of this clock)"
    return None


def check_epoch(ts: float, what: str) -> float:
    """A finite, non-negative epoch time no later than now + ``MAX_FUTURE_S``."""
    _refuse(_epoch_problem(ts), what)
    return ts


def check_time(value: datetime, info: ValidationInfo) -> datetime:
    """An aware datetime, converted to UTC. When a record is read off the bus (``from_bytes``
    passes the reader's clock as the validation context ``now``), also not far in the future;
    a producer with a simulated clock may construct any time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be timezone-aware (UTC), not naive")
    value = value.astimezone(UTC)
    now = info.context.get("now") if isinstance(info.context, dict) else None
    if now is not None:
        _refuse(_epoch_problem(value.timestamp(), now))
    return value
