"""The dispatcher: consumes incidents and camera health from the bus into the database,
and runs the SLA tick.

Delivery: records are applied one by one, each in its own database transaction
(idempotent: incidents upsert by id and revision, health by time); the consumer's
offsets are committed only after every record of the batch is durable, so a crash
(even SIGKILL) re-delivers at most the uncommitted tail, which changes nothing the
second time. A record that fails on its own (it breaks its contract, the database refuses
it with an IntegrityError or DataError, the service raises) goes to the dead-letter topic
(flushed before the offsets are committed) and the partition moves on. Only an outage
(the bus, or the database connection: OperationalError/InterfaceError) is not the record's
fault: the dispatcher backs off and re-reads from the last committed offsets.

Run: ``python -m xueliang.dispatch.worker --config xueliang.yaml`` (SIGINT/SIGTERM stop it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import DBAPIError, OperationalError

from xueliang.bus.base import Bus, BusError, Consumer, Producer, Record
from xueliang.bus.deadletter import DeadLetters, is_outage
from xueliang.config import Settings
from xueliang.contracts import (
    CameraHealth,
    ContractError,
    Incident,
    topic_specs,
)
from xueliang.dispatch.clock import Clock, system_clock
from xueliang.dispatch.service import DispatchService
from xueliang.dispatch.store import Store
from xueliang.retry import Backoff

log = logging.getLogger(__name__)

GROUP = "dispatch"
PRUNE_EVERY_S = 3600.0
STAGE = "dispatch"


class Dispatcher:
    """``Dispatcher(settings, bus, store).run(stop)``; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        store: Store,
        *,
        clock: Clock | None = None,
        service: DispatchService | None = None,
        poll_timeout_s: float | None = None,
        max_records: int = 200,
        group_id: str = GROUP,
        events_retention_s: float = 7 * 86400,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.store = store
        self.clock = clock or system_clock
        self.service = service or DispatchService(store, settings, self.clock)
        self.topics = settings.bus.topics
        self.poll_timeout_s = poll_timeout_s if poll_timeout_s is not None else min(1.0, settings.dispatch.tick_s)
        self.max_records = max_records
        self.group_id = group_id
        self.events_retention_s = events_retention_s
        """Change-feed rows older than this are pruned hourly (the audit trail and history stay)."""
        self.metrics = self.service.metrics
        self.dead_letters = DeadLetters(
            STAGE, self.topics.dead_letters, count=lambda kind: self.metrics.dead_letters.labels(kind).inc()
        )
        self.after_db_commit: Callable[[list[Record]], None] | None = None
        """Test hook: called after a batch is in the database, before offsets are committed."""
        self._last_tick: float | None = None

    def prepare(self) -> None:
        """Create topics (idempotent), migrate the schema, load centres and cameras from the config."""
        # only the topics this stage uses: its principal may describe no others (xueliang.bus.acls)
        used = {self.topics.incidents, self.topics.camera_health, self.topics.dead_letters}
        self.bus.ensure_topics(
            [s for s in topic_specs(self.topics, self.settings.bus.frame_partitions) if s.name in used]
        )
        self.store.migrate()
        self.service.sync_config()

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set. The SLA tick runs in its own thread from the start, so
        timers fire on schedule even while the consumer waits for a group rebalance or the bus."""
        self.prepare()
        halt = threading.Event()
        ticker = threading.Thread(target=self._tick_loop, args=(stop, halt), name="dispatch-sla-tick", daemon=True)
        ticker.start()
        try:
            self._consume(stop)
        finally:
            halt.set()
            ticker.join(30)

    def _tick_loop(self, stop: threading.Event, halt: threading.Event) -> None:
        last_prune = float("-inf")
        while not (stop.is_set() or halt.is_set()):
            try:
                self.maybe_tick(force=True)
                if time.monotonic() - last_prune >= PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    cutoff = self.clock() - timedelta(seconds=self.events_retention_s)
                    if n := self.store.prune_events(before=cutoff):
                        log.info("pruned %d change-feed events older than %s", n, cutoff.isoformat())
            except (OperationalError, DBAPIError) as exc:
                log.error("SLA tick: database error (retrying next tick): %s", exc)
            halt.wait(self.settings.dispatch.tick_s)

    def _consume(self, stop: threading.Event) -> None:
        backoff = Backoff(1.0, 30.0)
        while not stop.is_set():
            try:
                consumer = self.bus.consumer(
                    self.group_id,
                    [self.topics.incidents, self.topics.camera_health],
                    offset_reset="earliest",
                    client_id="dispatcher",
                )
            except BusError as exc:
                delay = backoff.next()
                log.error("dispatcher: cannot join group %s, retrying in %.0fs: %s", self.group_id, delay, exc)
                stop.wait(delay)
                continue
            producer = self.bus.producer("dispatcher")
            try:
                self._loop(stop, consumer, producer)
                backoff.reset()
            except (OperationalError, DBAPIError, BusError) as exc:
                # the database or the bus is down: do not commit, re-read from the committed offsets
                what = "bus" if isinstance(exc, BusError) else "database"
                delay = backoff.next()
                log.error("dispatcher: %s error, retrying in %.0fs: %s", what, delay, exc)
                stop.wait(delay)
            finally:
                consumer.close()
                producer.close()

    def _loop(self, stop: threading.Event, consumer: Consumer, producer: Producer) -> None:
        while not stop.is_set():
            records = consumer.poll(timeout=self.poll_timeout_s, max_records=self.max_records)
            if records:
                self.process(records, producer)
                if self.after_db_commit is not None:
                    self.after_db_commit(records)
                consumer.commit()

    def maybe_tick(self, force: bool = False) -> None:
        """Run the SLA tick if ``tick_s`` has passed since the last one (or ``force``)."""
        now = time.monotonic()
        if force or self._last_tick is None or now - self._last_tick >= self.settings.dispatch.tick_s:
            self._last_tick = now
            result = self.service.tick()
            if result.flags or result.escalations:
                log.info("SLA tick: %d flags, %d escalations", result.flags, result.escalations)

    def process(self, records: list[Record], producer: Producer) -> None:
        """Apply records to the database; dead-letter each one that fails on its own (flushed before
        returning). An outage (:func:`~xueliang.bus.deadletter.is_outage`) propagates: the batch is retried."""
        dead = 0
        for rec in records:
            try:
                if rec.topic == self.topics.incidents:
                    self.service.ingest_incident(Incident.from_bytes(rec.value))
                elif rec.topic == self.topics.camera_health:
                    self.service.ingest_health(CameraHealth.from_bytes(rec.value))
                else:
                    raise ContractError(f"unexpected topic {rec.topic}")
            except Exception as exc:  # per record: dead-lettered unless the connection failed
                if is_outage(exc):
                    raise
                if not isinstance(exc, ContractError):
                    log.warning("dispatcher: %s[%d]@%d failed", rec.topic, rec.partition, rec.offset, exc_info=exc)
                self.dead_letters.failed(producer, rec, exc, what=f"key {rec.key[:64]!r}" if rec.key else "")
                self.metrics.messages.labels(rec.topic, "dead_letter").inc()
                dead += 1
                continue
            self.metrics.messages.labels(rec.topic, "ok").inc()
        if dead:
            producer.flush(timeout=30)


def main(argv: list[str] | None = None) -> int:
    """``python -m xueliang.dispatch.worker ARGS`` is ``xueliang dispatch ARGS`` (one entry point)."""
    import sys

    from xueliang.cli import main as cli_main

    return cli_main(["dispatch", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
