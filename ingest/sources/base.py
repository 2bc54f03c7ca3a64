"""The interface every camera source implements, and what the FFmpeg-backed ones share."""

from __future__ import annotations

import abc
import time
from pathlib import Path
from typing import TypedDict

import numpy as np

from xueliang.ingest.picture import BgrPicture, Picture

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


def sleep_until(due: float) -> None:
    """Wait for the wall-clock time ``due`` (files and scenes in ``realtime`` mode, snapshot polls: paced like a camera)."""
    delay = due - time.time()
    if delay > 0:
        time.sleep(delay)


class StreamOptions(TypedDict, total=False):
    """How a :class:`StreamSource` reads its target (keyword arguments of its constructor)."""

    transport: str | None
    timeout_s: float
    is_file: bool
    loop: bool
    realtime: bool


class StreamSource(FrameSource):
    """A stream FFmpeg reads (RTSP, HTTP MJPEG, a video file), and how to read it: ``transport`` (RTSP
    over tcp/udp), the open/read ``timeout_s``, and for files whether to ``loop`` and to pace at the
    frame rate (``realtime``)."""

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
        self.timeout_s = timeout_s
        self.is_file = is_file
        self.loop = loop
        self.realtime = realtime
        self._fps: float | None = None
        self._t0 = 0.0

    @property
    def nominal_fps(self) -> float | None:
        return self._fps

    def _check_file(self) -> None:
        if self.is_file and not Path(self.target).is_file():
            raise SourceError(f"camera {self.camera_id}: file {self.target} does not exist")
