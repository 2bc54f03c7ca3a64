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
  key-frame rate. ``keyframes_only: auto`` (the RTSP default, where the ``ingest`` extra is installed)
  chooses from the stream's key-frame spacing and the sample rate (:mod:`.keyframes`).
* ``scene``: :class:`SceneFrameSource`, frames rendered live by
  :mod:`xueliang.scenes.render`; capture time = start wall time + scene time.

Capture times are wall-clock epoch seconds. Files in ``realtime`` mode are paced at
their frame rate like a live camera (capture time = the frame's due time); files
not in realtime run as fast as they decode, stamped start + n / fps.

One module per decoder (:mod:`.opencv`, :mod:`.pyav`, :mod:`.snapshot`, :mod:`.scene`) over the interface
in :mod:`.base`; :func:`make_source` picks one for a camera. Import from ``xueliang.ingest.sources``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging

from xueliang.config.cameras import CameraConfig, FileSource, HttpSource, RtspSource, SceneSource
from xueliang.ingest.sources.base import DECODE_THREADS, FrameSource, SourceError, StreamSource
from xueliang.ingest.sources.opencv import OpenCvSource
from xueliang.ingest.sources.pyav import PyAvSource
from xueliang.ingest.sources.scene import SceneFrameSource
from xueliang.ingest.sources.snapshot import SnapshotSource

log = logging.getLogger(__name__)

__all__ = [
    "DECODE_THREADS",
    "FrameSource",
    "OpenCvSource",
    "PyAvSource",
    "SceneFrameSource",
    "SnapshotSource",
    "SourceError",
    "StreamSource",
    "make_source",
]


def make_source(camera: CameraConfig) -> FrameSource:
    """The source the camera's config names (the detect substream preferred)."""
    src = camera.source
    timeout = camera.reconnect.stall_timeout_s
    if isinstance(src, HttpSource) and src.mode == "snapshot":
        return SnapshotSource(camera.id, src.detect_url or src.url, fps=camera.sample_fps, timeout_s=timeout)
    if isinstance(src, RtspSource) and _decodes_with_pyav(camera.id, src):
        return PyAvSource(
            camera.id,
            src.detect_url or src.url,
            transport=src.transport,
            timeout_s=timeout,
            keyframes_only=src.keyframes_only,
            sample_interval_s=1.0 / camera.sample_fps,
        )
    if isinstance(src, FileSource) and _decodes_with_pyav(camera.id, src):
        return PyAvSource(
            camera.id,
            str(src.path),
            timeout_s=timeout,
            is_file=True,
            loop=src.loop,
            realtime=src.realtime,
            keyframes_only=src.keyframes_only,
            sample_interval_s=1.0 / camera.sample_fps,
        )
    if isinstance(src, RtspSource | HttpSource):
        transport = src.transport if isinstance(src, RtspSource) else None
        return OpenCvSource(camera.id, src.detect_url or src.url, transport=transport, timeout_s=timeout)
    if isinstance(src, FileSource):
        return OpenCvSource(
            camera.id, str(src.path), timeout_s=timeout, is_file=True, loop=src.loop, realtime=src.realtime
        )
    if isinstance(src, SceneSource):
        return SceneFrameSource(camera.id, src)
    raise TypeError(f"camera {camera.id}: unsupported source type {type(src).__name__}")


def _decodes_with_pyav(camera_id: str, src: RtspSource | FileSource) -> bool:
    """PyAV when the config asks for it (decoder pyav, key frames only), and for ``keyframes_only: auto``
    where its extra is installed; without it, auto decodes every frame with OpenCV (logged)."""
    if src.decoder == "pyav" or src.keyframes_only is True:
        return True
    if src.keyframes_only != "auto":
        return False
    if pyav_available():
        return True
    log.info(
        "camera %s: keyframes_only auto needs the 'ingest' extra (PyAV, simplejpeg): decoding every frame with OpenCV",
        camera_id,
    )
    return False


@functools.cache
def pyav_available() -> bool:
    """Whether the 'ingest' extra (PyAV and simplejpeg) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("av", "simplejpeg"))
