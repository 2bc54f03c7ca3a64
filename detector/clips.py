"""Evidence clips: a few seconds of sampled frames before and after an incident, as H.264 MP4.

The detector keeps a short ring buffer of each camera's sampled JPEG frames (the bytes the frame
message carries: nothing is decoded or copied to keep them). When an incident starts, the clip is
opened with the buffered frames from ``pre_s`` before it; frames keep joining it until ``post_s``
after, then it is encoded (PyAV, libx264, ``ultrafast``) on a background thread and written beside
the snapshot as ``<snapshot_dir>/<incident id>.mp4`` (write-then-rename). The API serves it at
``/clips/<incident id>.mp4`` with the snapshot's authorisation. A clip is best-effort evidence: one
still open when the worker stops is not written. Retention: at most ``max_files`` clips and none
older than ``retention_s`` (the oldest are deleted after each write).

Usage::

    rec = ClipRecorder(Path("var/snapshots"), pre_s=4, post_s=4, fps=2)
    rec.add("cam-1", ts, jpeg)            # every sampled frame, in capture order
    rec.start("inc-…", "cam-1", ts)       # when an incident starts (after adding its frame)
    rec.close()                           # wait for the clips being written
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class _Clip:
    incident_id: str
    end_ts: float
    fps: float
    frames: list[tuple[float, bytes]] = field(default_factory=list)


class ClipRecorder:
    """See the module docstring. Not thread-safe: one detector worker thread calls ``add``/``start``."""

    def __init__(
        self,
        directory: Path,
        *,
        pre_s: float = 4.0,
        post_s: float = 4.0,
        fps: float = 2.0,
        max_frames: int = 120,
        retention_s: float = 7 * 86400,
        max_files: int = 2000,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pre_s, self.post_s, self.fps = pre_s, post_s, max(fps, 0.1)
        self.max_frames, self.retention_s, self.max_files = max_frames, retention_s, max_files
        self._ring: dict[str, deque[tuple[float, bytes]]] = {}
        self._open: dict[str, list[_Clip]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-writer")
        self._futures: list[Future[Path | None]] = []
        self._lock = threading.Lock()
        self.written = 0
        self.failed = 0

    def path_of(self, incident_id: str) -> Path:
        return self.directory / f"{incident_id}.mp4"

    def add(self, camera_id: str, ts: float, jpeg: bytes) -> None:
        """Buffer one sampled frame; clips whose window has passed are handed to the writer."""
        ring = self._ring.setdefault(camera_id, deque(maxlen=self.max_frames))
        if ring and ts <= ring[-1][0]:
            return  # a replayed or reordered frame: the buffer is in capture order
        ring.append((ts, jpeg))
        while ring and ring[0][0] < ts - self.pre_s - self.post_s:
            ring.popleft()
        clips = self._open.get(camera_id)
        if not clips:
            return
        still = []
        for clip in clips:
            if ts <= clip.end_ts and len(clip.frames) < self.max_frames:
                clip.frames.append((ts, jpeg))
            if ts >= clip.end_ts or len(clip.frames) >= self.max_frames:
                self._submit(clip)
            else:
                still.append(clip)
        self._open[camera_id] = still

    def start(self, incident_id: str, camera_id: str, ts: float, fps: float | None = None) -> None:
        """Open the clip of an incident that started at ``ts`` (its frame already added); ``fps``:
        the camera's sampling rate (the clip plays at it; default the recorder's)."""
        if (
            any(c.incident_id == incident_id for c in self._open.get(camera_id, []))
            or self.path_of(incident_id).exists()
        ):
            return  # replay after a restart: the clip is being or was written
        ring = self._ring.get(camera_id, deque())
        clip = _Clip(incident_id, ts + self.post_s, fps or self.fps, [f for f in ring if f[0] >= ts - self.pre_s])
        self._open.setdefault(camera_id, []).append(clip)

    def close(self, timeout: float = 30.0) -> None:
        """Wait for the clips handed to the writer (open ones stay open: a later run may finish them)."""
        deadline = time.monotonic() + timeout
        for f in list(self._futures):
            with contextlib.suppress(Exception):  # counted and logged by the writer
                f.result(timeout=max(0.0, deadline - time.monotonic()))

    def _submit(self, clip: _Clip) -> None:
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(self._pool.submit(self._write, clip))

    def _write(self, clip: _Clip) -> Path | None:
        try:
            ts = [t for t, _ in clip.frames]
            span = ts[-1] - ts[0] if len(ts) > 1 else 0.0
            fps = (len(ts) - 1) / span if span > 0 else clip.fps  # the frames' own rate: real time on replay
            path = write_clip(self.path_of(clip.incident_id), [j for _, j in clip.frames], fps)
        except Exception:
            self.failed += 1
            log.exception("clip of incident %s could not be written", clip.incident_id)
            return None
        with self._lock:
            self.written += 1
            self._prune()
        return path

    def _prune(self) -> None:
        clips = sorted(self.directory.glob("*.mp4"), key=lambda p: p.stat().st_mtime)
        cutoff = time.time() - self.retention_s
        for i, p in enumerate(clips):
            if len(clips) - i > self.max_files or p.stat().st_mtime < cutoff:
                p.unlink(missing_ok=True)


def write_clip(path: Path, jpegs: list[bytes], fps: float) -> Path | None:
    """Encode JPEG frames as an H.264 MP4 (yuv420p, even size, constant ``fps``) at ``path``."""
    import av  # the 'ingest' extra (PyAV); imported here so the detector runs without it

    frames = [f for f in (cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in jpegs) if f is not None]
    if not frames:
        return None
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".mp4")
    os.close(fd)
    try:
        with av.open(tmp, "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "28"}
            for original in frames:
                img = original
                if img.shape[:2] != (h, w):
                    img = cv2.resize(img, (w, h)) if img.shape[0] < h or img.shape[1] < w else img[:h, :w]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")  # type: ignore[arg-type]  # uint8 BGR; cv2.resize's stub widens the dtype
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
