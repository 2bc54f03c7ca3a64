"""Whether a stream may be decoded key frames only, chosen from the stream itself.

Decoding only a stream's key frames costs one decode per GOP instead of one per frame (a 25 fps camera with a
0.48 s GOP: 2 decodes a second instead of 25), but it serves the camera's detection sample rate only when key
frames come at least that often. ``keyframes_only: auto`` (the RTSP default) measures the spacing of the key
frames while decoding every frame, then decodes key frames only if the widest of the first gaps is within the
sample interval, and logs the choice and its reason. A stream whose key frames later spread out (a "smart"
codec stretching its GOP on a quiet scene) goes back to decoding every frame, logged, for the rest of the
connection; the next connection measures again.
"""

from __future__ import annotations

import logging
from typing import Literal

log = logging.getLogger(__name__)

KeyframeMode = bool | Literal["auto"]

#: key-frame gaps measured before choosing
GAPS_TO_MEASURE = 3
#: a gap may exceed the sample interval by this much (timestamp jitter) and still count as within it
TOLERANCE = 1.05


class KeyframeChoice:
    """Per connection: which packets to decode. ``True``/``False`` are fixed choices; ``"auto"`` decides from
    the key frames' presentation times (seconds) against ``sample_interval_s`` (1 / the camera's sample rate)."""

    def __init__(self, camera_id: str, mode: KeyframeMode, sample_interval_s: float) -> None:
        self.camera_id = camera_id
        self.mode = mode
        self.sample_interval_s = sample_interval_s
        self.reset()

    def reset(self) -> None:
        """A new connection: an automatic choice is measured again."""
        self.keyframes_only = self.mode is True
        self._deciding = self.mode == "auto"
        self._last_key_s: float | None = None
        self._gaps: list[float] = []

    def decode(self, is_keyframe: bool, pts_s: float | None) -> bool:
        """Whether to decode this packet (and, under ``auto``, learn from it)."""
        if is_keyframe and pts_s is not None and self.mode == "auto":
            self._observe(pts_s)
        return is_keyframe or not self.keyframes_only

    def _observe(self, pts_s: float) -> None:
        last, self._last_key_s = self._last_key_s, pts_s
        if last is None or pts_s <= last:  # the first key frame, or a file looped / timestamps reset
            return
        gap = pts_s - last
        allowed = self.sample_interval_s * TOLERANCE
        if self._deciding:
            self._gaps.append(gap)
            if len(self._gaps) < GAPS_TO_MEASURE:
                return
            self._deciding = False
            widest = max(self._gaps)
            self.keyframes_only = widest <= allowed
            if self.keyframes_only:
                log.info(
                    "camera %s: key frames every %.2f s at most, within the sample interval %.2f s: "
                    "decoding key frames only",
                    self.camera_id,
                    widest,
                    self.sample_interval_s,
                )
            else:
                log.info(
                    "camera %s: key frames up to %.2f s apart, wider than the sample interval %.2f s: decoding "
                    "every frame (set the camera's key-frame interval to %.2f s or less to decode key frames only)",
                    self.camera_id,
                    widest,
                    self.sample_interval_s,
                    self.sample_interval_s,
                )
        elif self.keyframes_only and gap > allowed:
            self.keyframes_only = False
            log.warning(
                "camera %s: key frames now %.2f s apart, wider than the sample interval %.2f s: decoding every "
                "frame until the stream reconnects",
                self.camera_id,
                gap,
                self.sample_interval_s,
            )
