"""A bounded buffer between the camera threads and the bus producer.

Camera threads never block on the bus: :meth:`Publisher.offer_frame` appends to a
bounded deque and, when it is full, drops the *oldest* frame (a late frame is worth
less than a fresh one) and counts it (``reason="buffer_full"``). One sender thread
moves records to the producer while fewer than ``max_in_flight`` records are
unacknowledged, so a slow or absent broker holds at most
``max_buffered_frames + max_in_flight`` frames in this process, whatever its outage
lasts. Health and incident messages have their own (larger, also bounded) queue and
go first; they are retried rather than dropped while the broker is away.

The producer itself is created lazily and re-created after failures: a worker
started while the broker is down keeps its cameras running and starts publishing
when the broker answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from xueliang.bus.base import Bus, BusError, Producer
from xueliang.contracts import FrameMessage
from xueliang.ingest import metrics
from xueliang.retry import Backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Event:
    topic: str
    key: str
    value: bytes
    headers: dict[str, bytes]
    partition: int | None


class Publisher:
    def __init__(
        self,
        bus: Bus,
        frames_topic: str,
        *,
        max_buffered_frames: int = 64,
        max_in_flight: int = 32,
        max_events: int = 1000,
        client_id: str = "xueliang-ingest",
    ) -> None:
        self.bus = bus
        self.frames_topic = frames_topic
        self.max_buffered_frames = max_buffered_frames
        self.max_in_flight = max_in_flight
        self.client_id = client_id
        self._frames: deque[tuple[FrameMessage, int | None]] = deque()
        self._events: deque[_Event] = deque()
        self._max_events = max_events
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: Producer | None = None
        self.peak_buffered = 0
        self.sent_frames = 0

    # ---------------------------------------------------------- camera side
    def offer_frame(self, msg: FrameMessage, partition: int | None) -> None:
        with self._cond:
            if len(self._frames) >= self.max_buffered_frames:
                old, _ = self._frames.popleft()
                metrics.FRAMES_DROPPED.labels(old.camera_id, "buffer_full").inc()
            self._frames.append((msg, partition))
            self.peak_buffered = max(self.peak_buffered, len(self._frames))
            metrics.BUFFERED.set(len(self._frames))
            self._cond.notify()

    def offer_event(
        self, topic: str, key: str, value: bytes, headers: dict[str, bytes] | None = None, partition: int | None = None
    ) -> None:
        with self._cond:
            if len(self._events) >= self._max_events:
                dropped = self._events.popleft()
                log.error(
                    "event queue full (%d): dropping the oldest %s message of camera %s",
                    self._max_events,
                    dropped.topic,
                    dropped.key,
                )
            self._events.append(_Event(topic, key, value, headers or {}, partition))
            self._cond.notify()

    def buffered(self) -> int:
        with self._cond:
            return len(self._frames)

    # ---------------------------------------------------------- sender side
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest-publisher", daemon=True)
        self._thread.start()

    def _ensure_producer(self) -> Producer | None:
        if self._producer is None:
            try:
                self._producer = self.bus.producer(self.client_id)
            except BusError as exc:
                log.warning("cannot create the bus producer yet (%s); frames keep dropping oldest-first", exc)
                self._stop.wait(1.0)
                return None
        return self._producer

    def _next(self) -> _Event | tuple[FrameMessage, int | None] | None:
        with self._cond:
            while not self._events and not self._frames:
                if self._stop.is_set():
                    return None
                self._cond.wait(0.2)
            if self._events:
                return self._events.popleft()
            item = self._frames.popleft()
            metrics.BUFFERED.set(len(self._frames))
            return item

    def _requeue_event(self, ev: _Event) -> None:
        with self._cond:
            self._events.appendleft(ev)

    def _run(self) -> None:
        backoff = Backoff(0.2, 5.0)
        while True:
            producer = self._ensure_producer()
            if producer is None:
                if self._stop.is_set():
                    return
                continue
            while producer.pending() >= self.max_in_flight and not self._stop.is_set():
                time.sleep(0.005)  # broker slow or away: frames queue (and drop oldest) in the deque
            item = self._next()
            if item is None:
                return
            try:
                if isinstance(item, _Event):
                    producer.send(item.topic, item.value, key=item.key, headers=item.headers, partition=item.partition)
                else:
                    msg, partition = item
                    producer.send(
                        self.frames_topic, msg.jpeg, key=msg.camera_id, headers=msg.headers(), partition=partition
                    )
                    metrics.FRAMES_PUBLISHED.labels(msg.camera_id).inc()
                    metrics.BYTES_PUBLISHED.labels(msg.camera_id).inc(len(msg.jpeg))
                    self.sent_frames += 1
                backoff.reset()
            except BusError as exc:
                delay = backoff.next()
                if isinstance(item, _Event):
                    log.warning(
                        "cannot publish %s for camera %s (%s); retrying in %.1f s", item.topic, item.key, exc, delay
                    )
                    self._requeue_event(item)
                else:
                    metrics.FRAMES_DROPPED.labels(item[0].camera_id, "bus_error").inc()
                    log.warning("cannot publish a frame of camera %s: %s", item[0].camera_id, exc)
                self._stop.wait(delay)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (events first) for up to ``timeout`` seconds, then close the producer."""
        deadline = time.monotonic() + timeout
        while (
            time.monotonic() < deadline
            and (self._events or self._frames)
            and self._thread is not None
            and self._thread.is_alive()
            and self._producer is not None
        ):
            time.sleep(0.02)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, deadline - time.monotonic()) + 2.0)
        if self._producer is not None:
            try:
                self._producer.flush(timeout=max(0.5, deadline - time.monotonic()))
            except BusError as exc:
                log.warning("records lost at shutdown: %s", exc)
            self._producer.close()
            self._producer = None
