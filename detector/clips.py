"""Evidence clips: a few seconds of sampled frames before and after an incident, as H.264 MP4.

The detector keeps a short ring buffer of each camera's sampled JPEG frames (the bytes the frame
message carries: nothing is decoded or copied to keep them). When an incident starts, the clip is
opened with the buffered frames from ``pre_s`` before it; frames keep joining it until ``post_s``
after, then it is written on a background thread beside the snapshot as
``<snapshot_dir>/<incident id>.mp4`` (write-then-rename).

Each camera's frames are encoded once (PyAV, libx264 ``ultrafast``, a key frame every ``KEYINT``
frames) by a :class:`ClipEncoder` that lives as long as the camera's clips follow on from each other;
a clip is the encoded packets from the key frame at or before its first frame to its last, put in an
MP4 without encoding again. Incidents that come often on one camera (a crowd crossing a line) have
overlapping clips, and the frames they share are not decoded and encoded again for each: the writer's
cost is at most that of encoding the camera's sampled frames once, however many incidents there are. The API serves it at
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

import bisect
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
from typing import TYPE_CHECKING

from xueliang.detector import metrics

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

MAX_WAITING = 200  # clips handed to the writer and not yet written (each holds its JPEGs: ~1 MB)
KEYINT = 4  # a key frame every 4 frames (2 s at 2 fps): where a clip may start
CLIP_PIX_FMT = "yuvj420p"  # what libavcodec decodes a 4:2:0 JPEG to: full-range 4:2:0, which browsers play


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
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-writer", initializer=_background)
        self._futures: list[Future[Path | None]] = []
        self._lock = threading.Lock()
        # the writer thread's own: each camera's running encoder, and the clips on disk, oldest first
        self._encoders: dict[str, ClipEncoder] = {}
        self._files: deque[Path] | None = None
        self._files_listed = 0.0
        self.written = 0
        self.failed = 0
        self.skipped = 0  # clips dropped because MAX_WAITING were already waiting for the writer
        self.frames_encoded = 0  # by all encoders: at most once each sampled frame that a clip covers

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
                self._submit(camera_id, clip)
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

    def _submit(self, camera_id: str, clip: _Clip) -> None:
        self._futures = [f for f in self._futures if not f.done()]
        if (
            len(self._futures) >= MAX_WAITING
        ):  # the writer cannot keep up (it yields to inference): memory stays bounded
            self.skipped += 1
            metrics.CLIPS.labels(outcome="skipped").inc()
            log.warning(
                "clip of incident %s (camera %s) not written: %d clips are waiting for the writer",
                clip.incident_id,
                camera_id,
                len(self._futures),
            )
            return
        self._futures.append(self._pool.submit(self._write, camera_id, clip))

    def _write(self, camera_id: str, clip: _Clip) -> Path | None:
        try:
            ts = [t for t, _ in clip.frames]
            span = ts[-1] - ts[0] if len(ts) > 1 else 0.0
            fps = (len(ts) - 1) / span if span > 0 else clip.fps  # the frames' own rate: real time on replay
            encoder = self._encoders.get(camera_id)
            if encoder is None or not encoder.follows(clip.frames, fps):
                if encoder is not None:
                    encoder.close()
                encoder = self._encoders[camera_id] = ClipEncoder(fps)
            encoded = encoder.add(clip.frames)
            self.frames_encoded += encoded
            metrics.CLIP_FRAMES_ENCODED.inc(encoded)
            path = encoder.write(self.path_of(clip.incident_id), ts[0], ts[-1])
            encoder.forget_before(ts[-1] - self.pre_s - self.post_s)
            self._close_idle(camera_id, ts[-1])
        except Exception:
            self._encoders.pop(camera_id, None)
            self.failed += 1
            metrics.CLIPS.labels(outcome="failed").inc()
            log.exception("clip of incident %s could not be written", clip.incident_id)
            return None
        metrics.CLIPS.labels(outcome="written").inc()
        with self._lock:
            self.written += 1
            if path is not None:
                self._prune(path)
        return path

    def _close_idle(self, camera_id: str, now_ts: float) -> None:
        """Encoders of cameras whose last clip ended long before this one are closed (their memory freed)."""
        for cam, enc in list(self._encoders.items()):
            if cam != camera_id and enc.last_ts < now_ts - 10 * (self.pre_s + self.post_s):
                enc.close()
                del self._encoders[cam]

    def _prune(self, written: Path) -> None:
        """Retention: at most ``max_files`` clips, none older than ``retention_s``. The directory is listed once
        (and again every 10 minutes, for clips other workers write there); between listings the writer keeps
        the list, so a write does not stat every clip on disk."""
        now = time.time()
        if self._files is None or now - self._files_listed > 600:
            listed = sorted(self.directory.glob("*.mp4"), key=lambda p: p.stat().st_mtime)
            self._files, self._files_listed = deque(listed), now
        elif written not in self._files:
            self._files.append(written)
        files = self._files
        while files and (len(files) > self.max_files or _mtime(files[0]) < now - self.retention_s):
            files.popleft().unlink(missing_ok=True)


def _background() -> None:
    """The writer thread yields the CPU to inference (Linux: a thread's own nice value, +10): a clip may be
    written a few seconds later, an incident may not be raised later. It catches up whenever a core is idle."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed: the same thread at normal priority
        log.debug("clip writer keeps its priority: %s", exc)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0  # gone already: dropped from the list


class ClipEncoder:
    """One camera's sampled frames encoded once, in capture order, for the clips that cover them.

    Frames are JPEGs, decoded by libavcodec straight into their own planes (full-range 4:2:0, ``yuvj420p``,
    for the ingest's and OpenCV's JPEGs) and encoded from them with no BGR picture in between; a frame of
    another size or layout (a resolution change) is converted to the first frame's. An undecodable frame is
    left out. A key frame every ``KEYINT`` frames lets a clip start near any frame."""

    def __init__(self, fps: float) -> None:
        self.fps = Fraction(fps).limit_denominator(1000)
        self._decoder: av.VideoCodecContext | None = None
        self._encoder: av.VideoCodecContext | None = None
        self.size: tuple[int, int] | None = None
        self.frames: list[tuple[float, int]] = []  # (ts, index into packets or -1: undecodable), in capture order
        self.packets: list[tuple[bytes, bool]] = []  # (H.264 access unit, is a key frame); pts = its index
        self._dropped = 0  # packets forgotten from the front (indices stay those of the whole run)
        self.last_ts = float("-inf")

    def follows(self, frames: list[tuple[float, bytes]], fps: float) -> bool:
        """Whether this encoder can serve a clip of these frames (consecutive sampled frames of its camera): about
        the same rate (a camera's sampled frames come at uneven intervals: key frames every 0.48 s sampled at
        2 fps), and its encoded frames run on from the clip's first frame exactly as the clip's do."""
        if not frames or not self.frames or abs(float(self.fps) - fps) > 0.25 * fps:
            return False
        ours = [t for t, _ in self.frames]
        first = bisect.bisect_left(ours, frames[0][0])
        if first == len(ours) or ours[first] != frames[0][0]:
            return False  # starts before what is kept, or after what was encoded (a gap: a new key frame)
        overlap = [t for t, _ in frames if t <= self.last_ts]
        return ours[first : first + len(overlap)] == overlap

    def add(self, frames: list[tuple[float, bytes]]) -> int:
        """Encode the frames after the last one encoded; how many were new."""
        import av

        before = len(self.frames)
        for ts, jpeg in frames:
            if ts <= self.last_ts:
                continue
            self.last_ts = ts
            try:
                if self._decoder is None:
                    decoder = av.CodecContext.create("mjpeg", "r")
                    assert isinstance(decoder, av.VideoCodecContext)
                    self._decoder = decoder
                decoded = list(self._decoder.decode(av.Packet(jpeg)))
            except av.error.FFmpegError:
                decoded = []
            if not decoded or not isinstance(decoded[0], av.VideoFrame):
                self.frames.append((ts, -1))
                continue
            self.frames.append((ts, self._dropped + len(self.packets)))
            self._encode(decoded[0])
        return len(self.frames) - before

    def _encode(self, frame: av.VideoFrame) -> None:
        import av

        if self._encoder is None:
            w, h = frame.width - frame.width % 2, frame.height - frame.height % 2
            enc = av.CodecContext.create("libx264", "w")
            assert isinstance(enc, av.VideoCodecContext)
            enc.width, enc.height, enc.pix_fmt = w, h, CLIP_PIX_FMT
            enc.time_base, enc.framerate = 1 / self.fps, self.fps
            # one packet per frame at once (zerolatency: no B-frames, no look-ahead); one thread: a few dozen
            # small frames at a time, which x264's frame threads would only wait on
            enc.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "crf": "28",
                "threads": "1",
                "x264-params": f"keyint={KEYINT}:min-keyint={KEYINT}:scenecut=0:repeat-headers=1",
            }
            self._encoder, self.size = enc, (w, h)
        assert self.size is not None
        if (frame.width, frame.height, frame.format.name) != (*self.size, CLIP_PIX_FMT):
            frame = frame.reformat(width=self.size[0], height=self.size[1], format=CLIP_PIX_FMT)
        frame.pts = self._dropped + len(self.packets)
        frame.pict_type = av.video.frame.PictureType.NONE  # a JPEG decodes as a key frame: x264 chooses
        out = self._encoder.encode(frame)
        if len(out) != 1:
            raise RuntimeError(f"x264 gave {len(out)} packets for one frame (zero-latency encoding expected)")
        self.packets.append((bytes(out[0]), bool(out[0].is_keyframe)))

    def write(self, path: Path, first_ts: float, last_ts: float) -> Path | None:
        """The clip of the encoded frames from ``first_ts`` to ``last_ts`` as an MP4 at ``path`` (from the key
        frame at or before ``first_ts``: up to ``KEYINT`` - 1 frames earlier); None if no frame decoded."""
        import av

        held = [i for t, i in self.frames if first_ts <= t <= last_ts and i >= 0]
        if not held or self.size is None:
            return None
        start = held[0] - self._dropped
        while start > 0 and not self.packets[start][1]:
            start -= 1
        if not self.packets[start][1]:
            raise RuntimeError("no key frame before the clip's first frame")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".mp4")
        os.close(fd)
        try:
            with av.open(tmp, "w", format="mp4") as out:
                stream = out.add_mux_stream("h264", rate=self.fps, width=self.size[0], height=self.size[1])
                for n, (data, key) in enumerate(self.packets[start : held[-1] - self._dropped + 1]):
                    packet = av.Packet(data)
                    packet.pts = packet.dts = n
                    packet.time_base = 1 / self.fps
                    packet.is_keyframe = key
                    packet.stream = stream
                    out.mux(packet)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    def forget_before(self, ts: float) -> None:
        """Drop what was encoded before ``ts``, whole key-frame intervals only."""
        wanted = next((i for t, i in self.frames if t >= ts and i >= 0), self._dropped + len(self.packets))
        keys = [n for n, (_, key) in enumerate(self.packets[: wanted - self._dropped + 1]) if key]
        cut = keys[-1] if keys else 0
        if cut <= 0:
            return
        self.packets = self.packets[cut:]
        self._dropped += cut
        self.frames = [(t, i) for t, i in self.frames if i >= self._dropped or (i < 0 and t >= ts)]

    def close(self) -> None:
        self._encoder = self._decoder = None


def write_clip(path: Path, jpegs: list[bytes], fps: float) -> Path | None:
    """Encode JPEG frames as an H.264 MP4 (4:2:0, even size, constant ``fps``) at ``path``; undecodable frames
    are left out, and without any decodable frame nothing is written."""
    encoder = ClipEncoder(fps)
    frames = [(i / fps, jpeg) for i, jpeg in enumerate(jpegs)]
    encoder.add(frames)
    return encoder.write(path, frames[0][0], frames[-1][0]) if frames else None
