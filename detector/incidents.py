"""After inference, in the detector worker: drop classes no rule knows and fires without flame colour,
track, run the camera's rules, and publish each rule event as an incident (snapshot stored first,
an evidence clip started for a new one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from xueliang.bus.base import Producer
from xueliang.contracts import Box, Incident, utc_from_ts
from xueliang.detector import metrics
from xueliang.detector.clips import ClipRecorder
from xueliang.detector.hazards import verify_fire, verify_smoke
from xueliang.detector.rules import FrameView, RawDetection, RuleEvent, TrackedObject, local_time
from xueliang.detector.snapshots import SnapshotStore, annotate, encode_jpeg
from xueliang.detector.types import Detections
from xueliang.geometry import as_box

if TYPE_CHECKING:
    from xueliang.config.detector import DetectorConfig
    from xueliang.contracts import Topics
    from xueliang.detector.worker import CameraState, WorkerStats, _Pending


class IncidentsMixin:
    """The tracking, rules and publishing part of :class:`~xueliang.detector.worker.DetectorWorker`."""

    config: DetectorConfig
    topics: Topics
    snapshots: SnapshotStore
    clips: ClipRecorder | None
    class_names_of: dict[str | None, dict[int, str]]
    tz: ZoneInfo
    clock: Callable[[], float]
    stats: WorkerStats

    if TYPE_CHECKING:  # the worker's own

        def state(self, camera_id: str) -> CameraState: ...
        def _advance_quiet(self, st: CameraState, item: _Pending) -> None: ...

    def _after_inference(self, item: _Pending, dets: Detections, producer: Producer) -> None:
        msg = item.msg
        st = self.state(msg.camera_id)
        if self.clips is not None:
            self.clips.add(msg.camera_id, msg.capture_ts, msg.jpeg)
        st.last_inferred_ts = msg.capture_ts
        # classes no rule of this camera knows (a COCO model's 'dog', 'sports_ball'...) never reach the tracker,
        # nor do fires without flame colour, nor smoke that is a person's face
        class_names = self.class_names_of[st.camera.detector_backend]
        names = [class_names.get(int(c), "") for c in dets.class_id]
        known = np.asarray([n in st.classes for n in names], bool) if len(names) else np.zeros(0, bool)
        flame = np.ones(len(dets), bool)
        if item.image is not None and known.any():
            flame = verify_fire(dets, names, item.image, item.scale, self.config.hazard_check)
        not_person = verify_smoke(dets, names, self.config.hazard_check)  # people of any class count as evidence
        keep = known & flame & not_person
        for name, kn, fl, alone in zip(names, known, flame, not_person, strict=True):
            outcome = "unknown_class" if not kn else "not_flame" if not fl else "inside_person" if not alone else "kept"
            metrics.DETECTIONS.labels(class_name=name or "unmapped", outcome=outcome).inc()
        dets = dets[keep]
        names = [n for n, k in zip(names, keep, strict=True) if k]
        tracked = st.tracker.update(dets, msg.capture_ts)
        metrics.TRACKS.labels(camera=msg.camera_id).set(len(st.tracker.tracks))
        objects = []
        for t in st.tracker.tracks:
            objects.append(
                TrackedObject(
                    t.track_id,
                    class_names.get(t.class_id, ""),
                    as_box(t.xyxy),
                    t.median_score,
                    t.confirmed,
                    t.seen_now,
                )
            )
        raw = tuple(
            RawDetection(n, as_box(box), float(c))
            for n, box, c in zip(names, tracked.xyxy, tracked.confidence, strict=False)
        )
        frame = FrameView(msg.capture_ts, local_time(msg.capture_ts, self.tz), tuple(objects), raw)
        for ev in st.rules.step(frame):
            self._publish(ev, st, item, frame, producer)
        self._advance_quiet(st, item)
        item.handled = True

    def _publish(self, ev: RuleEvent, st: CameraState, item: _Pending, frame: FrameView, producer: Producer) -> None:
        rule = st.rules.rule(ev.rule_name)
        if ev.is_new:
            assert item.image is not None
            full = (
                item.image
                if item.scale == 1
                else cv2.imdecode(np.frombuffer(item.msg.jpeg, np.uint8), cv2.IMREAD_COLOR)
            )
            assert full is not None  # decoded once already, when the frame came in
            picture = annotate(full, st.camera, ev, [o for o in frame.objects if o.seen])
            url = self.snapshots.put(ev.incident_id, encode_jpeg(picture, self.config.snapshot_jpeg_quality))
            if self.clips is not None:
                self.clips.start(ev.incident_id, st.camera.id, item.msg.capture_ts, fps=st.camera.sample_fps)
        else:
            url = self.snapshots.url_for(ev.incident_id)
        boxes = [
            Box(
                xyxy=o.xyxy,
                class_name=o.class_name,
                confidence=min(1.0, max(0.0, o.confidence)),
                track_id=o.track_id if isinstance(o, TrackedObject) else None,
            )
            for o in ev.objects
        ]
        incident = Incident(
            id=ev.incident_id,
            camera_id=st.camera.id,
            rule=ev.rule_name,
            rule_type=ev.rule_type,
            severity=rule.graded_severity(ev.details),
            zone=ev.zone,
            class_names=sorted({o.class_name for o in ev.objects}),
            started_at=utc_from_ts(ev.started_ts),
            updated_at=utc_from_ts(ev.ts),
            revision=ev.revision,
            boxes=boxes,
            track_ids=sorted({o.track_id for o in ev.objects if isinstance(o, TrackedObject)}),
            snapshot_url=url,
            details=ev.details,
            source_frame_seq=item.msg.seq,
        )
        producer.send(
            self.topics.incidents, incident.to_bytes(), key=st.camera.id, headers={"schema": b"xl.incident/1"}
        )
        self.stats.incidents_published += 1
        metrics.INCIDENTS.labels(
            rule_type=ev.rule_type, severity=incident.severity.value, kind="new" if ev.is_new else "update"
        ).inc()
        if ev.is_new:
            metrics.CAPTURE_TO_INCIDENT_SECONDS.observe(max(0.0, self.clock() - item.msg.capture_ts))
