"""One camera's loop: connect (with backoff), grab, sample, diagnose, gate, encode, offer.

Per grabbed frame the loop only decides whether the sample rate keeps it; frames it
drops are never converted (``grab`` without ``retrieve``). A kept frame is:

1. diagnosed, if the diagnosis interval has passed (one frame every few seconds);
2. gated by motion: without motion it goes out only as a keep-alive;
3. downscaled to ``max_width``, JPEG-encoded and offered to the bounded publisher
   (motion boxes scaled to the published size travel in the headers).

Failures to open or read the stream reconnect with exponential backoff and jitter
(``reconnect`` config); the read timeout is the stall watchdog (a blocked read
gives up after ``stall_timeout_s``), and the supervisor's health tick turns a silent
camera offline on time even while a read is blocked.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import zlib

from prometheus_client import Counter

from xueliang.config.cameras import CameraConfig
from xueliang.contracts import FrameMessage, MotionBox
from xueliang.ingest import metrics
from xueliang.ingest.health import HealthTracker
from xueliang.ingest.motion import MotionGate
from xueliang.ingest.picture import Picture
from xueliang.ingest.publisher import Publisher
from xueliang.ingest.quality import QualityDiagnoser
from xueliang.ingest.sources import FrameSource, SourceError, make_source
from xueliang.retry import backoff_delays

log = logging.getLogger(__name__)

_MAX_DECODE_ERRORS = 10  # consecutive failed conversions before the stream is reopened


class Sampler:
    """Keeps frames at ``fps`` on their capture times (e.g. 2 of every 25), without drift.

    Due times are ``anchor + k * period`` (no accumulated float error on epoch-sized
    stamps); a frame within 0.1 % of a period before its due time counts as on time."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self._eps = 1e-3 * self.period
        self._anchor: float | None = None
        self._k = 0

    def keep(self, ts: float) -> bool:
        if self._anchor is not None:
            due = self._anchor + self._k * self.period
            if ts - due <= self.period:
                if ts >= due - self._eps:
                    self._k += 1
                    return True
                return False
        # first frame, or after a gap (reconnect): restart the grid instead of catching up in a burst
        self._anchor, self._k = ts, 1
        return True


def scale_boxes(boxes: tuple[MotionBox, ...], s: float, w: int, h: int) -> tuple[MotionBox, ...]:
    if s == 1.0:
        return boxes
    return tuple(
        MotionBox(min(w, int(b.x1 * s)), min(h, int(b.y1 * s)), min(w, round(b.x2 * s)), min(h, round(b.y2 * s)))
        for b in boxes
    )


class ThreadCpu:
    """Adds the calling thread's CPU time to a counter about once a second of wall time (a camera
    thread decodes in itself, one decoder thread per camera, so this is the camera's whole cost
    apart from the shared publisher). One monotonic clock read per :meth:`tick`."""

    def __init__(self, counter: Counter, interval_s: float = 1.0) -> None:
        self._counter = counter
        self._interval_s = interval_s
        self._last_cpu = time.thread_time()
        self._flush_at = time.monotonic() + interval_s

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._flush_at:
            self._flush_at = now + self._interval_s
            self.flush()

    def flush(self) -> None:
        cpu = time.thread_time()
        self._counter.inc(max(0.0, cpu - self._last_cpu))
        self._last_cpu = cpu


class CameraRunner:
    """Runs one camera in its own thread until :meth:`stop`."""

    def __init__(
        self,
        camera: CameraConfig,
        publisher: Publisher,
        partition: int | None,
        health: HealthTracker | None = None,
        source: FrameSource | None = None,
        seed: int | None = None,
    ) -> None:
        self.camera = camera
        self.publisher = publisher
        self.partition = partition
        self.health = health or HealthTracker(camera)
        self._source = source
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random(seed if seed is not None else zlib.crc32(camera.id.encode()))
        # sequence numbers keep increasing across restarts and moves between workers
        self._seq = int(time.time() * 1000)
        self.published = 0
        self.ended = False

    # ---------------------------------------------------------------- control
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera.id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        cam = self.camera
        rc = cam.reconnect
        source = self._source or make_source(cam)
        delays = backoff_delays(rc.initial_backoff_s, rc.max_backoff_s, rc.jitter, self._rng)
        first = True
        self._cpu = ThreadCpu(metrics.CPU_SECONDS.labels(cam.id))
        try:
            while not self._stop.is_set():
                if not first:
                    metrics.RECONNECTS.labels(cam.id).inc()
                first = False
                try:
                    source.open()
                except SourceError as exc:
                    self.health.disconnected(str(exc))
                    delay = next(delays)
                    log.warning("%s; retrying in %.1f s", exc, delay)
                    self._stop.wait(delay)
                    continue
                log.info("camera %s connected to %s", cam.id, cam.source.masked)
                delays = backoff_delays(rc.initial_backoff_s, rc.max_backoff_s, rc.jitter, self._rng)
                try:
                    if not self._stream(source):
                        self.ended = True
                        self.health.disconnected("end of stream")
                        log.info("camera %s: %s ended (not looping)", cam.id, cam.source.masked)
                        return
                except SourceError as exc:
                    self.health.disconnected(str(exc))
                    delay = next(delays)
                    log.warning("%s; reconnecting in %.1f s", exc, delay)
                    source.close()
                    self._stop.wait(delay)
        finally:
            source.close()
            self._cpu.flush()

    def _stream(self, source: FrameSource) -> bool:
        """Read until stopped (True) or the end of a non-looping stream (False)."""
        cam = self.camera
        sampler = Sampler(cam.sample_fps)
        gate = MotionGate(cam.motion)
        quality = QualityDiagnoser(cam.quality)
        captured = metrics.FRAMES_CAPTURED.labels(cam.id)
        sampled = metrics.FRAMES_SAMPLED.labels(cam.id)
        decode_errors = metrics.DECODE_ERRORS.labels(cam.id)
        no_motion = metrics.FRAMES_DROPPED.labels(cam.id, "no_motion")
        cpu = self._cpu
        consecutive_errors = 0
        while not self._stop.is_set():
            ts = source.grab()
            if ts is None:
                return False
            captured.inc()
            self.health.frame()
            cpu.tick()
            if not sampler.keep(ts):
                continue
            try:
                picture = source.picture()
            except SourceError:
                decode_errors.inc()
                consecutive_errors += 1
                if consecutive_errors >= _MAX_DECODE_ERRORS:
                    raise
                continue
            consecutive_errors = 0
            sampled.inc()
            if quality.due(ts):
                self.health.diagnosed(quality.diagnose(picture.bgr(), ts))
            decision = gate.decide(picture.grey(), ts)
            if not decision.publish:
                no_motion.inc()
                continue
            self._publish(picture, ts, decision.boxes, decision.keepalive)
        return True

    def _publish(self, picture: Picture, ts: float, boxes: tuple[MotionBox, ...], keepalive: bool) -> None:
        cam = self.camera
        t0 = time.perf_counter()
        encoded = picture.jpeg(cam.jpeg_quality, cam.max_width)
        metrics.ENCODE_SECONDS.labels(cam.id).observe(time.perf_counter() - t0)
        if encoded is None:
            metrics.FRAMES_DROPPED.labels(cam.id, "encode_error").inc()
            log.error("camera %s: JPEG encoding failed for a %dx%d frame", cam.id, picture.width, picture.height)
            return
        w, h = encoded.width, encoded.height
        self._seq += 1
        msg = FrameMessage(
            camera_id=cam.id,
            seq=self._seq,
            capture_ts=ts,
            width=w,
            height=h,
            jpeg=encoded.jpeg,
            motion=scale_boxes(boxes, encoded.scale, w, h),
            keepalive=keepalive,
        )
        self.publisher.offer_frame(msg, self.partition)
        self.published += 1
