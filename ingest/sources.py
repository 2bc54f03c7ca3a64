"""Camera sources behind one small interface, chosen by the config's discriminated union.

A source mirrors OpenCV's two-step read so that frames the sample rate drops are
never converted: :meth:`FrameSource.grab` advances to the next frame of the
stream and returns its capture time; :meth:`FrameSource.picture` hands over the
frame just grabbed (converted lazily, only as far as its uses need) and
:meth:`FrameSource.retrieve` as a BGR array; both are only called for frames that are kept.

* ``rtsp`` / ``http`` (MJPEG) / ``file`` (H.264, MJPEG, ... anything FFmpeg reads):
  :class:`OpenCvSource`, OpenCV's FFmpeg backend, with open/read timeouts and the
  RTSP transport through ``OPENCV_FFMPEG_CAPTURE_OPTIONS``. A camera's ``detect_url``
  (its low-resolution substream) is preferred over ``url``.
* ``decoder: pyav`` on rtsp/file: :class:`PyAvSource`, PyAV decoding into YUV planes that the
  camera loop uses as they are (grey = Y, JPEG from the planes; see :mod:`xueliang.ingest.picture`).
  With ``keyframes_only: true`` (which implies PyAV) non-key packets are dropped before the
  decoder and the codec is told ``skip_frame=NONKEY``; the sample rate is then bounded by the
  key-frame rate.
* ``scene``: :class:`SceneFrameSource`, frames rendered live by
  :mod:`xueliang.scenes.render`; capture time = start wall time + scene time.

Capture times are wall-clock epoch seconds. Files in ``realtime`` mode are paced at
their frame rate like a live camera (capture time = the frame's due time); files
not in realtime run as fast as they decode, stamped start + n / fps.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from xueliang.config.cameras import (
    CameraConfig,
    FileSource,
    HttpSource,
    RtspSource,
    SceneSource,
    mask_url,
)
from xueliang.ingest.picture import BgrPicture, Picture, picture_of

if TYPE_CHECKING:
    from collections.abc import Iterator

    import av

    from xueliang.scenes.render import RenderedFrame

log = logging.getLogger(__name__)

# OpenCV reads OPENCV_FFMPEG_CAPTURE_OPTIONS from the environment when a capture is
# opened: one lock so that cameras with different transports do not race.
_ENV_LOCK = threading.Lock()
#: FFmpeg decoder threads per camera. One: a worker runs many cameras in parallel already, and
#: frame threading costs CPU (≈15 % at 576p here) and adds a frame of latency per thread.
DECODE_THREADS = 1


class SourceError(RuntimeError):
    """The stream cannot be opened or stopped delivering frames (message names the camera, never credentials)."""


class FrameSource(abc.ABC):
    """One camera stream. Not thread-safe: one camera thread owns it."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id

    @abc.abstractmethod
    def open(self) -> None:
        """Connect; raise :class:`SourceError` if the stream cannot be opened."""

    @abc.abstractmethod
    def grab(self) -> float | None:
        """Advance to the next frame; return its capture time, or None at the end of a non-looping stream.

        Raises :class:`SourceError` when the stream fails (read timeout, broken connection)."""

    @abc.abstractmethod
    def retrieve(self) -> np.ndarray:
        """The frame last grabbed, as a BGR ``uint8`` array."""

    def picture(self) -> Picture:
        """The frame last grabbed in the decoder's own format (the camera loop's read: converted lazily)."""
        return BgrPicture(self.retrieve())

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    def nominal_fps(self) -> float | None:
        """The stream's frame rate if it announces one."""
        return None


def _ffmpeg_options(transport: str | None) -> str:
    return f"rtsp_transport;{transport}" if transport else ""


class OpenCvSource(FrameSource):
    """RTSP / HTTP MJPEG / file through OpenCV's FFmpeg backend."""

    def __init__(
        self,
        camera_id: str,
        target: str,
        *,
        transport: str | None = None,
        timeout_s: float = 5.0,
        is_file: bool = False,
        loop: bool = False,
        realtime: bool = True,
    ) -> None:
        super().__init__(camera_id)
        self.target = target
        self.transport = transport
        self.timeout_ms = int(timeout_s * 1000)
        self.is_file = is_file
        self.loop = loop
        self.realtime = realtime
        self._cap: cv2.VideoCapture | None = None
        self._fps: float | None = None
        self._t0 = 0.0
        self._n = 0  # frames since _t0 (files: timestamps and pacing)

    @property
    def nominal_fps(self) -> float | None:
        return self._fps

    def _open_capture(self) -> cv2.VideoCapture:
        if self.is_file and not Path(self.target).is_file():
            raise SourceError(f"camera {self.camera_id}: file {self.target} does not exist")
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self.timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self.timeout_ms,
            cv2.CAP_PROP_N_THREADS,
            DECODE_THREADS,
        ]
        with _ENV_LOCK:
            before = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = _ffmpeg_options(self.transport)
            try:
                cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
            finally:
                if before is None:
                    os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
                else:
                    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = before
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera {self.camera_id}: cannot open {mask_url(self.target)}")
        return cap

    def open(self) -> None:
        self.close()
        self._cap = self._open_capture()
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self._fps = fps if fps and 0 < fps < 121 else None
        self._t0 = time.time()
        self._n = 0

    def grab(self) -> float | None:
        if self._cap is None:
            raise SourceError(f"camera {self.camera_id}: grab before open")
        if self.is_file:
            return self._grab_file()
        if not self._cap.grab():
            raise SourceError(
                f"camera {self.camera_id}: no frame from {mask_url(self.target)} "
                f"within {self.timeout_ms} ms (stream stalled or closed)"
            )
        return time.time()

    def _grab_file(self) -> float | None:
        assert self._cap is not None
        fps = self._fps or 25.0
        due = self._t0 + self._n / fps
        if self.realtime:
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        if not self._cap.grab():
            if not self.loop:
                return None
            # rewind: reopening is the reliable way across containers (seeking MJPEG/AVI is not)
            self._cap.release()
            self._cap = self._open_capture()
            if not self._cap.grab():
                raise SourceError(f"camera {self.camera_id}: file {self.target} has no readable frame")
        self._n += 1
        return due

    def retrieve(self) -> np.ndarray:
        assert self._cap is not None
        ok, frame = self._cap.retrieve()
        if not ok or frame is None:
            raise SourceError(f"camera {self.camera_id}: frame could not be decoded")
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class PyAvSource(FrameSource):
    """RTSP / file through PyAV (FFmpeg's libraries directly); frames stay in the decoder's YUV.

    :meth:`picture` hands the camera loop the decoded planes (:class:`~xueliang.ingest.picture.Yuv420Picture`):
    grey is the Y plane and the JPEG is encoded from the planes, so a kept frame is never converted to
    BGR unless the quality diagnosis asks for it.

    ``keyframes_only``: non-key packets never reach the decoder (and the codec is told
    ``skip_frame=NONKEY``). A 25 fps stream with a 1 s GOP costs one decode per second instead of 25;
    use it when the sample rate is at or below the key-frame rate (capture times still come from
    the stream, so a stalled stream is noticed as quickly)."""

    #: undecodable packets in a row (damaged stream) before the stream counts as failed
    MAX_BAD_PACKETS = 50

    def __init__(
        self,
        camera_id: str,
        target: str,
        *,
        transport: str | None = None,
        timeout_s: float = 5.0,
        is_file: bool = False,
        loop: bool = False,
        realtime: bool = True,
        keyframes_only: bool = False,
    ) -> None:
        super().__init__(camera_id)
        self.target = target
        self.transport = transport
        self.timeout_s = timeout_s
        self.is_file = is_file
        self.loop = loop
        self.realtime = realtime
        self.keyframes_only = keyframes_only
        self._container: av.container.InputContainer | None = None
        self._packets: Iterator[av.Packet] | None = None
        self._decoded: deque[av.VideoFrame] = deque()
        self._frame: av.VideoFrame | None = None
        self._picture: Picture | None = None  # of _frame, built on first use
        self._t0 = 0.0
        self._offset = 0.0  # scene seconds of earlier loops of a file
        self._last_pts_s = 0.0
        self._fps: float | None = None

    @property
    def nominal_fps(self) -> float | None:
        return self._fps

    def open(self) -> None:
        try:  # optional dependencies (extra "ingest"): only cameras with decoder pyav or keyframes_only need them
            import av
            import simplejpeg  # noqa: F401  (the JPEG from the planes)
        except ImportError as exc:
            raise SourceError(
                f"camera {self.camera_id}: decoder pyav / keyframes_only needs the 'ingest' extra "
                f"(pip install 'xueliang[ingest]'): {exc}"
            ) from None

        self.close()
        if self.is_file and not Path(self.target).is_file():
            raise SourceError(f"camera {self.camera_id}: file {self.target} does not exist")
        options = {"timeout": str(int(self.timeout_s * 1e6))}
        if self.transport:
            options["rtsp_transport"] = self.transport
        try:
            self._container = av.open(self.target, options=options if not self.is_file else {}, timeout=self.timeout_s)
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(
                f"camera {self.camera_id}: cannot open {mask_url(self.target)}: {type(exc).__name__}"
            ) from None
        stream = self._container.streams.video[0]
        if self.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        stream.codec_context.thread_count = DECODE_THREADS
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else None
        self._stream = stream
        self._time_base: float | None = None  # of the decoded frames, as a float (Fractions are slow)
        self._packets = self._container.demux(stream)
        self._decoded.clear()
        if not self._t0:
            self._t0 = time.time()

    def _next_frame(self) -> av.VideoFrame | None:
        import av

        assert self._packets is not None
        bad = 0
        try:
            while not self._decoded:
                packet = next(self._packets, None)
                if packet is None:
                    return None
                if self.keyframes_only and (packet.size == 0 or not packet.is_keyframe):
                    continue
                try:
                    self._decoded.extend(self._stream.codec_context.decode(packet))  # size 0: flush
                    bad = 0
                except av.error.InvalidDataError:
                    bad += 1  # a damaged packet (lost RTP data): the decoder resyncs at the next one
                    if bad >= self.MAX_BAD_PACKETS:
                        raise
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(
                f"camera {self.camera_id}: stream {mask_url(self.target)} failed: {type(exc).__name__}"
            ) from None
        return self._decoded.popleft()

    def grab(self) -> float | None:
        if self._packets is None:
            raise SourceError(f"camera {self.camera_id}: grab before open")
        frame = self._next_frame()
        if frame is None:
            if not self.is_file:
                raise SourceError(f"camera {self.camera_id}: stream {mask_url(self.target)} ended")
            if not self.loop:
                return None
            self._offset += self._last_pts_s + (1.0 / self._fps if self._fps else 0.04)
            self.open()
            frame = self._next_frame()
            if frame is None:
                raise SourceError(f"camera {self.camera_id}: file {self.target} has no decodable frame")
        self._frame, self._picture = frame, None
        if not self.is_file:
            return time.time()
        if self._time_base is None:
            self._time_base = float(frame.time_base) if frame.time_base else 0.0
        pts_s = frame.pts * self._time_base if frame.pts is not None else self._last_pts_s
        self._last_pts_s = pts_s
        due = self._t0 + self._offset + pts_s
        if self.realtime:
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        return due

    def retrieve(self) -> np.ndarray:
        return self.picture().bgr()

    def picture(self) -> Picture:
        if self._frame is None:
            raise SourceError(f"camera {self.camera_id}: retrieve before grab")
        if self._picture is None:  # one Picture per frame: its conversions are cached there
            self._picture = picture_of(self._frame)
        return self._picture

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._packets = None
        self._decoded.clear()


def _snapshot_opener() -> Any:
    """urllib with redirects that never carry the camera's ``Authorization`` header to another origin
    (scheme, host or port): urllib's own handler copies every header to wherever the camera redirects."""
    import urllib.parse
    import urllib.request

    class SameOriginAuth(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # urllib's hook
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None:
                old_o, new_o = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(new.full_url)
                if (old_o.scheme, old_o.hostname, old_o.port) != (new_o.scheme, new_o.hostname, new_o.port):
                    new.headers.pop("Authorization", None)
                    new.unredirected_hdrs.pop("Authorization", None)
            return new

    return urllib.request.build_opener(SameOriginAuth)


class SnapshotSource(FrameSource):
    """An HTTP snapshot URL (one JPEG per GET), polled at the camera's sample rate."""

    def __init__(self, camera_id: str, url: str, *, fps: float, timeout_s: float = 5.0) -> None:
        import base64
        import urllib.parse

        super().__init__(camera_id)
        parts = urllib.parse.urlsplit(url)
        self.masked = mask_url(url)
        self._headers: dict[str, str] = {}
        if parts.username is not None:
            token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            parts = parts._replace(netloc=netloc)
        self._url = urllib.parse.urlunsplit(parts)
        self.period = 1.0 / fps
        self.timeout_s = timeout_s
        self._body = b""
        self._next = 0.0

    def _fetch(self) -> bytes:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self._url, headers=self._headers)
        try:
            with _snapshot_opener().open(request, timeout=self.timeout_s) as resp:
                return bytes(resp.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise SourceError(f"camera {self.camera_id}: snapshot {self.masked} failed: {reason}") from None

    def open(self) -> None:
        self._body = self._fetch()
        self._next = time.time()

    def grab(self) -> float | None:
        delay = self._next - time.time()
        if delay > 0:
            time.sleep(delay)
        now = time.time()
        self._next = now + self.period  # never ahead of the sampler's grid (a sleep only overshoots)
        if not self._body:
            self._body = self._fetch()
        return now

    def retrieve(self) -> np.ndarray:
        body, self._body = self._body, b""
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) if body else None
        if image is None:
            raise SourceError(f"camera {self.camera_id}: snapshot {self.masked} is not a decodable image")
        return image

    def close(self) -> None:
        self._body = b""


class SceneFrameSource(FrameSource):
    """Frames rendered live by the scene generator; capture time = start wall time + scene t."""

    def __init__(self, camera_id: str, source: SceneSource) -> None:
        super().__init__(camera_id)
        self.source = source
        self._frames: Iterator[RenderedFrame] | None = None
        self._image: np.ndarray | None = None
        self._t0 = 0.0
        self._offset = 0.0
        self._last_t = 0.0
        self._dt = 0.1

    def _start(self) -> None:
        from xueliang.scenes.render import SceneRenderer
        from xueliang.scenes.scenario import load_scenario

        try:
            scenario = load_scenario(self.source.scenario)
        except (OSError, ValueError) as exc:
            raise SourceError(f"camera {self.camera_id}: scenario {self.source.scenario}: {exc}") from exc
        self._frames = iter(SceneRenderer(scenario, self.source.seed).frames())

    def open(self) -> None:
        self._start()
        self._t0 = time.time()
        self._offset = 0.0
        self._last_t = 0.0

    def grab(self) -> float | None:
        assert self._frames is not None
        frame = next(self._frames, None)
        if frame is None:
            if not self.source.loop:
                return None
            self._offset += self._last_t + self._dt
            self._start()
            frame = next(self._frames, None)
            if frame is None:
                raise SourceError(f"camera {self.camera_id}: scenario {self.source.scenario} renders no frame")
        t = float(frame.t)
        if t > self._last_t:
            self._dt = t - self._last_t
        self._last_t = t
        self._image = frame.image
        ts = self._t0 + self._offset + t
        if self.source.realtime:
            delay = ts - time.time()
            if delay > 0:
                time.sleep(delay)
        return ts

    def retrieve(self) -> np.ndarray:
        if self._image is None:
            raise SourceError(f"camera {self.camera_id}: retrieve before grab")
        return self._image

    def close(self) -> None:
        self._frames = None


def make_source(camera: CameraConfig) -> FrameSource:
    """The source the camera's config names (the detect substream preferred)."""
    src = camera.source
    timeout = camera.reconnect.stall_timeout_s
    if isinstance(src, HttpSource) and src.mode == "snapshot":
        return SnapshotSource(camera.id, src.detect_url or src.url, fps=camera.sample_fps, timeout_s=timeout)
    if isinstance(src, RtspSource) and (src.decoder == "pyav" or src.keyframes_only):
        return PyAvSource(
            camera.id,
            src.detect_url or src.url,
            transport=src.transport,
            timeout_s=timeout,
            keyframes_only=src.keyframes_only,
        )
    if isinstance(src, RtspSource | HttpSource):
        transport = src.transport if isinstance(src, RtspSource) else None
        return OpenCvSource(camera.id, src.detect_url or src.url, transport=transport, timeout_s=timeout)
    if isinstance(src, FileSource):
        if src.decoder == "pyav" or src.keyframes_only:
            return PyAvSource(
                camera.id,
                str(src.path),
                timeout_s=timeout,
                is_file=True,
                loop=src.loop,
                realtime=src.realtime,
                keyframes_only=src.keyframes_only,
            )
        return OpenCvSource(
            camera.id, str(src.path), timeout_s=timeout, is_file=True, loop=src.loop, realtime=src.realtime
        )
    if isinstance(src, SceneSource):
        return SceneFrameSource(camera.id, src)
    raise TypeError(f"camera {camera.id}: unsupported source type {type(src).__name__}")
