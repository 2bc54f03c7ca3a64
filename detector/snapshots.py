"""Incident snapshots: an annotated JPEG per incident, kept in a snapshot store.

URL contract with the API: an incident's ``snapshot_url`` is ``<prefix><incident id>.jpg``
(prefix ``/snapshots/`` by default), and the local store writes the file as
``<snapshot_dir>/<incident id>.jpg`` — the API serves ``snapshot_dir`` at ``/snapshots/``.
An S3-compatible store (boto3, optional) returns ``s3://bucket/key`` style or a public base URL.
"""

from __future__ import annotations

import abc
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from xueliang.config.cameras import CameraConfig
from xueliang.detector.rules import RawDetection, RuleEvent, TrackedObject

_COLOURS = {"person": (60, 200, 60), "fire": (0, 0, 255), "smoke": (160, 160, 160)}


class SnapshotStore(abc.ABC):
    @abc.abstractmethod
    def put(self, incident_id: str, jpeg: bytes) -> str:
        """Store the snapshot durably; return the URL the incident references."""

    @abc.abstractmethod
    def url_for(self, incident_id: str) -> str:
        """The URL of an incident's snapshot (deterministic: updates reference the creation snapshot)."""


class LocalSnapshotStore(SnapshotStore):
    def __init__(self, directory: Path, url_prefix: str = "/snapshots/") -> None:
        self.directory = Path(directory)
        self.url_prefix = url_prefix
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_of(self, incident_id: str) -> Path:
        return self.directory / f"{incident_id}.jpg"

    def url_for(self, incident_id: str) -> str:
        return f"{self.url_prefix}{incident_id}.jpg"

    def put(self, incident_id: str, jpeg: bytes) -> str:
        target = self.path_of(incident_id)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".jpg")
        with os.fdopen(fd, "wb") as fh:  # write-then-rename: a reader never sees half a file
            fh.write(jpeg)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        return self.url_for(incident_id)


class S3SnapshotStore(SnapshotStore):
    """Any S3-compatible object store (MinIO, Ceph RGW...); needs ``boto3``."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        prefix: str = "snapshots/",
        public_base_url: str | None = None,
    ) -> None:
        import boto3  # optional dependency

        self.client = boto3.client("s3", endpoint_url=endpoint_url)
        self.bucket, self.prefix, self.public_base_url = bucket, prefix, public_base_url

    def put(self, incident_id: str, jpeg: bytes) -> str:
        key = f"{self.prefix}{incident_id}.jpg"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=jpeg, ContentType="image/jpeg")
        return self.url_for(incident_id)

    def url_for(self, incident_id: str) -> str:
        key = f"{self.prefix}{incident_id}.jpg"
        return f"{self.public_base_url.rstrip('/')}/{key}" if self.public_base_url else f"s3://{self.bucket}/{key}"


def annotate(
    image: np.ndarray, camera: CameraConfig, event: RuleEvent, others: Sequence[TrackedObject | RawDetection] = ()
) -> np.ndarray:
    """The frame with the rule's zone/line, the incident's boxes (thick) and other objects (thin)."""
    out = image.copy()
    zone = next((z for z in camera.zones if z.name == event.zone), None)
    if zone is not None:
        pts = np.asarray(zone.polygon, np.int32).reshape(-1, 1, 2)
        overlay = out.copy()
        cv2.fillPoly(overlay, [pts], (0, 165, 255))
        cv2.addWeighted(overlay, 0.2, out, 0.8, 0, out)
        cv2.polylines(out, [pts], True, (0, 165, 255), 2)
    for line in camera.lines:
        cv2.line(out, tuple(map(int, line.a)), tuple(map(int, line.b)), (255, 0, 255), 2)
    involved = {id(o) for o in event.objects}
    for obj in list(others) + list(event.objects):
        x1, y1, x2, y2 = (int(round(v)) for v in obj.xyxy)
        main = id(obj) in involved
        colour = (0, 0, 255) if main else _COLOURS.get(obj.class_name, (200, 200, 0))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2 if main else 1)
        score = obj.confidence
        label = f"{obj.class_name} {score:.2f}"
        if isinstance(obj, TrackedObject):
            label += f" #{obj.track_id}"
        cv2.putText(out, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    title = f"{camera.id} {event.rule_name} ({event.rule_type})"
    cv2.putText(out, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding of a snapshot failed")
    return buf.tobytes()
