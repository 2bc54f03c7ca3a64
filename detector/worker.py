"""The detector worker: frames in (group ``detector``), incidents out, losing none.

Loop: poll a bounded number of frame records → per camera, in order: skip stale frames
(older than ``max_age_s`` by capture time), skip frames without motion unless the camera
has live tracks, a keep-alive arrives or a periodic full pass is due → decode → infer in
micro-batches *across cameras* (one frame per camera per batch, so each camera's tracker
and rules see its frames in order with up-to-date state) → track → rules → incidents
(annotated snapshot stored first) → ``producer.flush()`` → commit frame offsets.

Offsets are committed only after the incidents are acknowledged, and never past the first
frame of a camera's open episode or live tracks ("quiet point"): a successor that takes
the partition after a crash replays from there, rebuilds the same tracks and episodes and
re-publishes the same incident ids (deduplicated downstream), capped at ``max_replay_s``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

from xueliang.bus.base import Bus, BusAccessDenied, BusError, Consumer, Producer, Record, TopicPartition
from xueliang.bus.deadletter import DeadLetters
from xueliang.config import Settings
from xueliang.config.cameras import CameraConfig
from xueliang.config.rules import AbandonedObjectRule
from xueliang.contracts import (
    ContractError,
    FrameMessage,
    topic_specs,
)
from xueliang.detector import metrics
from xueliang.detector.backends import InferenceBackend, make_backend
from xueliang.detector.clips import ClipRecorder
from xueliang.detector.incidents import IncidentsMixin
from xueliang.detector.inference import InferenceMixin, jpeg_problem
from xueliang.detector.rules import (
    CameraRules,
)
from xueliang.detector.snapshots import (
    LocalSnapshotStore,
    SnapshotStore,
)
from xueliang.detector.tracking import ByteTracker
from xueliang.detector.zoom import ZoomSpot

log = logging.getLogger(__name__)

GROUP = "detector"
STAGE = "detector"


def rule_classes(camera: CameraConfig) -> frozenset[str]:
    """The project classes the camera's enabled rules look at (an abandoned-object rule also looks for
    owners: people). Detections of any other class are dropped before tracking."""
    classes = {c for r in camera.rules if r.enabled for c in r.classes}
    if any(isinstance(r, AbandonedObjectRule) and r.enabled for r in camera.rules):
        classes.add("person")
    return frozenset(classes)


@dataclass
class CameraState:
    """Everything the worker keeps for one camera: tracker, rules, gating clock, replay anchor."""

    camera: CameraConfig
    tracker: ByteTracker
    rules: CameraRules
    last_inferred_ts: float | None = None
    anchor: tuple[TopicPartition, int, float] | None = None  # first record of the current busy stretch
    zoom_spots: list[ZoomSpot] = field(default_factory=list)  # small, uncertain detections of the last zoom.hold_s
    classes: frozenset[str] = frozenset()  # the project classes this camera's rules know; others are dropped

    def __post_init__(self) -> None:
        self.classes = rule_classes(self.camera)

    def quiet(self) -> bool:
        return not self.tracker.tracks and not self.rules.busy


@dataclass
class _Pending:
    record: Record
    tp: TopicPartition
    msg: FrameMessage
    image: np.ndarray | None = None
    scale: float = 1.0  # frame pixels per decoded pixel (a reduced JPEG decode: 2, 4 or 8)
    handled: bool = False  # inferred and through the rules

    @property
    def decoded(self) -> np.ndarray:
        """The decoded image (every item of a batch is decoded before inference)."""
        assert self.image is not None, "frame not decoded"
        return self.image


@dataclass
class WorkerStats:
    """Counters a test or the demo can read without scraping metrics."""

    frames_seen: int = 0
    frames_inferred: int = 0
    zoom_crops: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    incidents_published: int = 0
    dead_letters: int = 0
    commits: int = 0


class DetectorWorker(InferenceMixin, IncidentsMixin):
    """One detector worker (member of consumer group ``detector``); see the module docstring.

    ``backend``, ``snapshots`` and ``clock`` default to what the settings name (tests inject fakes).
    """

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        *,
        worker_id: str | None = None,
        backend: InferenceBackend | None = None,
        snapshots: SnapshotStore | None = None,
        group_id: str = GROUP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config = settings.detector
        self.bus = bus
        self.topics = settings.bus.topics
        self.worker_id = worker_id or f"detector-{uuid.uuid4().hex[:8]}"
        self.group_id = group_id
        self.backend = backend or make_backend(self.config)
        self.snapshots = snapshots or LocalSnapshotStore(self.config.snapshot_dir, self.config.snapshot_url_prefix)
        self.clock = clock
        self.tz = ZoneInfo(self.config.timezone)
        self.cameras = {c.id: c for c in settings.cameras if c.enabled}
        self.disabled = {c.id for c in settings.cameras if not c.enabled}
        self.dead_letters = DeadLetters(
            STAGE, self.topics.dead_letters, count=lambda kind: metrics.DEAD_LETTERS.labels(reason=kind).inc()
        )
        self.states: dict[str, CameraState] = {}
        self.camera_tp: dict[str, TopicPartition] = {}
        self.done: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.stats = WorkerStats()
        # cameras that name another backend (cameras[].detector_backend) are inferred with it
        self.backends: dict[str | None, InferenceBackend] = {None: self.backend}
        for name in sorted({c.detector_backend for c in self.cameras.values() if c.detector_backend}):
            self.backends[name] = make_backend(self.config, self.config.backends[name])
        # per backend: model class id → project class name ('' = dropped)
        self.class_names_of = {
            key: {i: self.config.class_map.get(n, n) for i, n in b.names.items()} for key, b in self.backends.items()
        }
        self._assignment: set[TopicPartition] = set()
        self._warned: set[str] = set()
        self.clips = self._clip_recorder()

    def _clip_recorder(self) -> ClipRecorder | None:
        """Evidence clips beside local snapshots (detector.clips; needs PyAV, the 'ingest' extra)."""
        cfg = self.config.clips
        if not cfg.enabled or not isinstance(self.snapshots, LocalSnapshotStore):
            return None
        try:
            import av  # noqa: F401
        except ImportError:
            log.warning("detector.clips: PyAV is not installed (extra 'ingest'); incidents get no clip")
            return None
        return ClipRecorder(
            self.snapshots.directory,
            pre_s=cfg.pre_s,
            post_s=cfg.post_s,
            retention_s=cfg.retention_s,
            max_files=cfg.max_files,
        )

    # ----------------------------------------------------------------- state
    def state(self, camera_id: str) -> CameraState:
        st = self.states.get(camera_id)
        if st is None:
            cam = self.cameras[camera_id]
            st = CameraState(cam, ByteTracker(self.config.tracker), CameraRules(cam, self.config.episode_grace_s))
            self.states[camera_id] = st
        return st

    def _reset_partition(self, tp: TopicPartition, queues: dict[str, deque[_Pending]]) -> None:
        log.info(
            "%s: %s[%d] replays from an earlier offset; its cameras' state is rebuilt",
            self.worker_id,
            tp.topic,
            tp.partition,
        )
        for cam, ctp in list(self.camera_tp.items()):
            if ctp == tp:
                self.states.pop(cam, None)
                self.camera_tp.pop(cam, None)
                queues.pop(cam, None)
        self.done.pop(tp, None)
        self.committed.pop(tp, None)

    def _on_assignment(self, consumer: Consumer) -> None:
        now = consumer.assignment()
        if now == self._assignment:
            return
        moved = now ^ self._assignment
        for cam, tp in list(self.camera_tp.items()):
            if tp in moved:  # revoked, or (re)assigned: replay starts from the committed offset
                self.states.pop(cam, None)
                self.camera_tp.pop(cam, None)
        for tp in moved:
            self.done.pop(tp, None)
            self.committed.pop(tp, None)
        log.info("%s: partitions now %s", self.worker_id, sorted((t.topic, t.partition) for t in now))
        self._assignment = now

    # ------------------------------------------------------------------ loop
    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set. A bus failure (the broker away longer than the clients wait)
        is retried with backoff on fresh clients: nothing past the committed offsets was acknowledged,
        so the partitions replay from there and the cameras' state is rebuilt. A refusal for lack of an
        ACL (:class:`BusAccessDenied`) is not retried here (the process's Lifecycle reports it)."""
        # only the topics this stage uses: its principal may describe no others (xueliang.bus.acls)
        used = {self.topics.frames, self.topics.incidents, self.topics.dead_letters}
        self.bus.ensure_topics(
            [s for s in topic_specs(self.topics, self.settings.bus.frame_partitions) if s.name in used]
        )
        backoff = 1.0
        while not stop.is_set():
            try:
                self._consume(stop)
                return
            except BusAccessDenied:
                raise
            except BusError as exc:
                log.error(
                    "%s: bus error, rejoining in %.0f s (uncommitted frames are replayed): %s",
                    self.worker_id,
                    backoff,
                    exc,
                )
                self._forget_all()
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _forget_all(self) -> None:
        self.states.clear()
        self.camera_tp.clear()
        self.done.clear()
        self.committed.clear()
        self._assignment = set()

    def _consume(self, stop: threading.Event) -> None:
        consumer = self.bus.consumer(
            self.group_id, [self.topics.frames], offset_reset="earliest", client_id=self.worker_id
        )
        producer = self.bus.producer(client_id=self.worker_id)
        timeout = max(self.config.batch_timeout_ms / 1000.0, 0.01)
        clean = False
        try:
            while not stop.is_set():
                records = consumer.poll(timeout=timeout, max_records=self.config.queue_frames)
                self._on_assignment(consumer)
                records = (
                    [r for r in records if TopicPartition(r.topic, r.partition) in self._assignment]
                    if self._assignment
                    else records
                )
                if records:
                    self.process(records, producer)
                    self._commit(consumer, producer)
            clean = True
        finally:
            try:
                if clean:  # after a failure nothing more is flushed or committed: the successor replays
                    producer.flush()
                    self._commit(consumer, producer)
            finally:
                consumer.close()
                producer.close()
                if self.clips is not None:
                    self.clips.close()

    def process(self, records: list[Record], producer: Producer) -> None:
        """Handle one poll's records (any partitions, any cameras)."""
        queues: dict[str, deque[_Pending]] = defaultdict(deque)
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            if rec.offset < self.done.get(tp, 0):
                # the consumer went back (a rebalance restarts every partition at its committed offset,
                # even one this member keeps): rebuild that partition's cameras from the replay
                self._reset_partition(tp, queues)
            self.stats.frames_seen += 1
            try:
                msg = FrameMessage.from_record(rec.value, rec.headers)
            except ContractError as exc:
                self._dead_letter(producer, rec, str(exc))
                self._done(tp, rec.offset)
                continue
            if problem := jpeg_problem(msg):  # header-only check, so frames the gate skips are checked too
                self._dead_letter(producer, rec, f"undecodable JPEG (camera {msg.camera_id}, seq {msg.seq}): {problem}")
                self._done(tp, rec.offset)
                continue
            if msg.camera_id not in self.cameras:
                if msg.camera_id in self.disabled:  # reconfiguration in progress: not an error
                    self._skip("disabled_camera")
                    if msg.camera_id not in self._warned:
                        self._warned.add(msg.camera_id)
                        log.warning("frames from camera %r, which the configuration disables: skipped", msg.camera_id)
                else:
                    self._dead_letter(
                        producer, rec, f"unknown camera {msg.camera_id!r} (not in the detector's configuration)"
                    )
                self._done(tp, rec.offset)
                continue
            self.camera_tp[msg.camera_id] = tp
            queues[msg.camera_id].append(_Pending(rec, tp, msg))
        # rounds: one frame per camera per round, batched across cameras (B at most)
        while queues:
            round_items: list[_Pending] = []
            for cam in list(queues):
                q = queues[cam]
                while q:
                    item = q.popleft()
                    if self._gate(item, producer):
                        round_items.append(item)
                        break
                if not q:
                    del queues[cam]
            for start in range(0, len(round_items), self.config.batch_size):
                self._infer_batch(round_items[start : start + self.config.batch_size], producer)

    def _gate(self, item: _Pending, producer: Producer) -> bool:
        """Whether to infer this frame; if not, it is counted and its offset is done."""
        msg = item.msg
        st = self.state(msg.camera_id)
        age = self.clock() - msg.capture_ts
        reason = None
        if age > self.config.max_age_s:
            reason = "stale"
        elif not (
            not st.camera.motion.enabled
            or msg.motion
            or msg.keepalive
            or st.tracker.tracks
            or st.last_inferred_ts is None
            or msg.capture_ts - st.last_inferred_ts >= self.config.full_pass_s
        ):
            reason = "no_motion"
        if reason is None:
            img, problem = self._decode(msg)
            if img is None:
                self._dead_letter(
                    producer, item.record, f"undecodable JPEG (camera {msg.camera_id}, seq {msg.seq}): {problem}"
                )
                self._done(item.tp, item.record.offset)
                return False
            item.image, item.scale = img, (msg.width / img.shape[1] if img.shape[1] != msg.width else 1.0)
            return True
        self._skip(reason)
        self._advance_quiet(st, item)
        return False

    def _advance_quiet(self, st: CameraState, item: _Pending) -> None:
        """Track where a successor would have to replay from (see the module docstring)."""
        if st.quiet():
            st.anchor = None
        elif st.anchor is None or item.msg.capture_ts - st.anchor[2] > self.config.max_replay_s:
            st.anchor = (item.tp, item.record.offset, item.msg.capture_ts)
        self._done(item.tp, item.record.offset)

    def _dead_letter(self, producer: Producer, rec: Record, reason: str, kind: str = "contract") -> None:
        self.dead_letters.send(producer, rec, reason, kind)
        self.stats.dead_letters += 1

    def _skip(self, reason: str) -> None:
        metrics.FRAMES_SKIPPED.labels(reason=reason).inc()
        self.stats.skipped[reason] += 1

    def _done(self, tp: TopicPartition, offset: int) -> None:
        self.done[tp] = max(self.done.get(tp, 0), offset + 1)

    def _commit(self, consumer: Consumer, producer: Producer) -> None:
        producer.flush()  # incidents (and dead letters) acknowledged before their frames are committed
        offsets: dict[TopicPartition, int] = {}
        for tp, nxt in self.done.items():
            if tp not in self._assignment and self._assignment:
                continue
            held = [st.anchor[1] for st in self.states.values() if st.anchor is not None and st.anchor[0] == tp]
            target = min([nxt, *held])
            if target > self.committed.get(tp, -1):
                offsets[tp] = target
        if offsets:
            try:
                consumer.commit(offsets)
            except BusError as exc:  # partitions moved meanwhile: their records go to the new owner
                log.warning(
                    "%s: commit of %s failed (%s); the next poll picks up the new assignment",
                    self.worker_id,
                    sorted((t.topic, t.partition) for t in offsets),
                    exc,
                )
                return
            self.committed.update(offsets)
            self.stats.commits += 1


def main(argv: list[str] | None = None) -> int:
    """``python -m xueliang.detector.worker ARGS`` is ``xueliang detect ARGS`` (one entry point)."""
    import sys

    from xueliang.cli import main as cli_main

    return cli_main(["detect", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
