"""The one dead-letter path every consuming stage uses.

A record a stage cannot process (it breaks its contract, the store refuses it, the stage's own
code fails on it) is published to the dead-letter topic as a :class:`DeadLetter` with the stage,
the reason and where it came from, and the stage goes on with the next record. Only failures of
the connection itself (the broker, the database server) are retried; see :func:`is_outage`.

Every dead letter carries the headers ``schema`` (``xl.dead-letter/1``), ``stage`` and ``kind``
(a short, bounded category: ``contract``, ``invalid``, ``database``, ``error``), is keyed by the
source record's key and always fits the topic (evidence is truncated, never the reason).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from xueliang.bus.base import BusError, Producer, Record
from xueliang.contracts import DEAD_LETTER_SCHEMA, ContractError, DeadLetter

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000
LOG_WINDOW_S, LOG_PER_WINDOW = 10.0, 20
"""At most 20 dead letters a stage logs one by one per 10 s; the rest are counted in one line (every
one is still in the topic and in the stage's dead-letter counter)."""


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the connection (retry the batch later) rather than of the record.

    The bus (:class:`BusError`) and SQLAlchemy's ``OperationalError`` / ``InterfaceError`` (and any
    DBAPI error that invalidated its connection) are outages; ``IntegrityError``, ``DataError``,
    ``StatementError`` and everything else are the record's own problem."""
    if isinstance(exc, BusError):
        return True
    try:
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    except ImportError:  # pragma: no cover - every stage installs SQLAlchemy
        return False
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def kind_of(exc: BaseException) -> str:
    """The bounded metric label of a per-record failure."""
    if isinstance(exc, ContractError):
        return "contract"
    if type(exc).__name__ in ("InvalidRequest", "Forbidden", "NotFound"):
        return "invalid"
    if type(exc).__module__.startswith("sqlalchemy"):
        return "database"
    return "error"


class DeadLetters:
    """``DeadLetters(stage, topic, count=metric_callback).send(producer, record, reason, kind)``.

    ``count(kind)`` is called once per dead letter (each stage's own Prometheus counter)."""

    def __init__(self, stage: str, topic: str, count: Callable[[str], None] | None = None) -> None:
        self.stage = stage
        self.topic = topic
        self.count = count
        self.sent = 0
        self._window_start, self._logged, self._suppressed = float("-inf"), 0, 0

    def send(self, producer: Producer, rec: Record, reason: str, kind: str = "contract") -> DeadLetter:
        reason = reason[:MAX_REASON_CHARS]
        now = time.monotonic()
        if now - self._window_start >= LOG_WINDOW_S:
            if self._suppressed:
                log.warning("%s: %d more records dead-lettered (not logged one by one)", self.stage, self._suppressed)
            self._window_start, self._logged, self._suppressed = now, 0, 0
        if self._logged < LOG_PER_WINDOW:  # a flood of bad records must not flood the log too
            self._logged += 1
            log.warning(
                "%s: dead-lettering %s[%d]@%d (key %.64r): %s",
                self.stage,
                rec.topic,
                rec.partition,
                rec.offset,
                rec.key,
                reason,
            )
        else:
            self._suppressed += 1
        dl = DeadLetter.of(self.stage, reason, rec.topic, rec.partition, rec.offset, rec.key, rec.value, rec.headers)
        key = rec.key[:256] if rec.key is not None else None
        headers = {"schema": DEAD_LETTER_SCHEMA.encode(), "stage": self.stage.encode(), "kind": kind.encode()}
        producer.send(self.topic, dl.to_bytes(), key=key, headers=headers)
        self.sent += 1
        if self.count is not None:
            self.count(kind)
        return dl

    def failed(self, producer: Producer, rec: Record, exc: BaseException, what: str = "") -> DeadLetter:
        """Dead-letter ``rec`` because processing it raised ``exc`` (``what``: which camera or file)."""
        detail = str(exc) if isinstance(exc, ContractError) else f"{type(exc).__name__}: {exc}"
        return self.send(producer, rec, f"{what}: {detail}" if what else detail, kind_of(exc))
