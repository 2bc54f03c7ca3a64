"""RTSP / files through PyAV, frames kept in the decoder's YUV (optional extra ``ingest``)."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Unpack

import numpy as np

from xueliang.config.cameras import mask_url
from xueliang.ingest.picture import Picture, picture_of
from xueliang.ingest.sources.base import DECODE_THREADS, SourceError, StreamOptions, StreamSource, sleep_until
from xueliang.ingest.sources.keyframes import KeyframeChoice, KeyframeMode

if TYPE_CHECKING:
    from collections.abc import Iterator

    import av


class PyAvSource(StreamSource):
    """RTSP / file through PyAV (FFmpeg's libraries directly); frames stay in the decoder's YUV.

    :meth:`picture` hands the camera loop the decoded planes (:class:`~xueliang.ingest.picture.Yuv420Picture`):
    grey is the Y plane and the JPEG is encoded from the planes, so a kept frame is never converted to
    BGR unless the quality diagnosis asks for it.

    ``keyframes_only``: non-key packets never reach the decoder (and, when fixed to ``True``, the codec is
    told ``skip_frame=NONKEY``). A 25 fps stream with a 0.5 s GOP costs two decodes per second instead of 25;
    it serves when the sample rate is at or below the key-frame rate (capture times still come from
    the stream, so a stalled stream is noticed as quickly). ``"auto"`` measures the key-frame spacing
    against ``sample_interval_s`` and chooses (:mod:`xueliang.ingest.sources.keyframes`)."""

    #: undecodable packets in a row (damaged stream) before the stream counts as failed
    MAX_BAD_PACKETS = 50

    def __init__(
        self,
        camera_id: str,
        target: str,
        *,
        keyframes_only: KeyframeMode = False,
        sample_interval_s: float = 0.5,
        **options: Unpack[StreamOptions],
    ) -> None:
        super().__init__(camera_id, target, **options)
        self._keys = KeyframeChoice(camera_id, keyframes_only, sample_interval_s)
        self._container: av.container.InputContainer | None = None
        self._packets: Iterator[av.Packet] | None = None
        self._decoded: deque[av.VideoFrame] = deque()
        self._frame: av.VideoFrame | None = None
        self._picture: Picture | None = None  # of _frame, built on first use
        self._offset = 0.0  # scene seconds of earlier loops of a file
        self._last_pts_s = 0.0

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
        self._check_file()
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
        self._keys.reset()
        if self._keys.mode is True:
            stream.codec_context.skip_frame = "NONKEY"
        self._packet_time_base: float | None = float(stream.time_base) if stream.time_base else None
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
                if packet.size == 0 and self._keys.keyframes_only:
                    continue
                pts_s = (
                    None if packet.pts is None or not self._packet_time_base else packet.pts * self._packet_time_base
                )
                if not self._keys.decode(packet.is_keyframe, pts_s):
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

    @property
    def keyframes_only(self) -> bool:
        """Whether only key frames are decoded now (fixed, or as ``auto`` chose for this connection)."""
        return self._keys.keyframes_only

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
            sleep_until(due)
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
