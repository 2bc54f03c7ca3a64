"""RTSP / HTTP MJPEG / files through OpenCV's FFmpeg backend."""

from __future__ import annotations

import os
import threading
import time
from typing import Unpack

import cv2
import numpy as np

from xueliang.config.cameras import mask_url
from xueliang.ingest.sources.base import DECODE_THREADS, SourceError, StreamOptions, StreamSource, sleep_until

# OpenCV reads OPENCV_FFMPEG_CAPTURE_OPTIONS from the environment when a capture is
# opened: one lock so that cameras with different transports do not race.
_ENV_LOCK = threading.Lock()


def _ffmpeg_options(transport: str | None) -> str:
    return f"rtsp_transport;{transport}" if transport else ""


class OpenCvSource(StreamSource):
    """RTSP / HTTP MJPEG / file through OpenCV's FFmpeg backend."""

    def __init__(self, camera_id: str, target: str, **options: Unpack[StreamOptions]) -> None:
        super().__init__(camera_id, target, **options)
        self.timeout_ms = int(self.timeout_s * 1000)
        self._cap: cv2.VideoCapture | None = None
        self._n = 0  # frames since _t0 (files: timestamps and pacing)

    def _open_capture(self) -> cv2.VideoCapture:
        self._check_file()
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
            sleep_until(due)
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
