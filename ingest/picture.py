"""A decoded frame in the decoder's own pixel format, converted only as far as each use needs.

The camera loop needs three views of a kept frame: grey for the motion gate, a JPEG for the
bus, and (every few seconds) BGR for the quality diagnosis. From a BGR array (OpenCV, HTTP
snapshots, the scene renderer) these are the array itself, one ``cvtColor`` and one
``imencode``. From a 4:2:0 YUV frame (PyAV) the grey view is the Y plane and the JPEG is
encoded straight from the planes (libjpeg-turbo through simplejpeg): the frame is never
converted to BGR unless the diagnosis asks for it. At 576p that skips the ≈ 0.25-ms YUV→BGR
conversion and the ≈ 0.12-ms BGR→grey one of every kept frame.

Video YUV is usually limited range (Y 16–235, chroma 16–240) while JPEG (JFIF) is full range,
so limited-range planes are stretched first (luma by a saturating scale, chroma through a lookup
table), as FFmpeg's conversion to BGR would (BT.601, the matrix JFIF uses and OpenCV's conversion assumes).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

if TYPE_CHECKING:
    import av

_C_FULL = np.clip(np.round((np.arange(256) - 128) * 255.0 / 224.0 + 128), 0, 255).astype(np.uint8)


_Y_GAIN = 255.0 / 219.0


def _full_luma(y: np.ndarray) -> np.ndarray:
    """Limited-range luma to full range, (Y − 16) · 255/219 rounded and saturated: one SIMD pass
    (``addWeighted`` with a zero second weight; equal to the exact lookup table for all 256 levels).
    0.07 ms at 576p, against 0.13 ms for a LUT and 0.4 ms for subtract-then-scale, whose
    intermediate frame costs fresh pages on every call."""
    return cv2.addWeighted(y, _Y_GAIN, y, 0.0, -16.0 * _Y_GAIN)


def _full_chroma(c: np.ndarray) -> np.ndarray:
    """Limited-range chroma to full range around 128 (signed: a lookup table)."""
    return cv2.LUT(c, _C_FULL)


#: 4:2:0 planar formats whose planes can go to the JPEG encoder as they are (after the range stretch)
_LIMITED_420 = {"yuv420p"}
_FULL_420 = {"yuvj420p"}


class Encoded(NamedTuple):
    jpeg: bytes
    width: int
    height: int
    scale: float  # encoded pixels per frame pixel (1.0 unless the frame was wider than max_width)


class Picture(abc.ABC):
    """One decoded frame; each view is computed at most once."""

    width: int
    height: int

    @abc.abstractmethod
    def bgr(self) -> np.ndarray:
        """The frame as a BGR ``uint8`` array (height × width × 3)."""

    @abc.abstractmethod
    def grey(self) -> np.ndarray:
        """The frame's luma, full range, as a ``uint8`` array (height × width; may be a strided view)."""

    def jpeg(self, quality: int, max_width: int) -> Encoded | None:
        """JPEG of the frame, downscaled to ``max_width`` when wider; None if the encoder fails."""
        return _encode_bgr(self.bgr(), quality, max_width)


def _encode_bgr(image: np.ndarray, quality: int, max_width: int) -> Encoded | None:
    h, w = image.shape[:2]
    s = 1.0
    if w > max_width:
        s = max_width / w
        exact = w % max_width == 0  # integer factor: INTER_AREA's fast path; otherwise bilinear
        image = cv2.resize(
            image, (max_width, round(h * s)), interpolation=cv2.INTER_AREA if exact else cv2.INTER_LINEAR
        )
        h, w = image.shape[:2]
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return Encoded(buf.tobytes(), w, h, s) if ok else None


class BgrPicture(Picture):
    """A frame that is already BGR."""

    def __init__(self, image: np.ndarray) -> None:
        self._bgr = image
        self.height, self.width = image.shape[:2]
        self._grey: np.ndarray | None = None

    def bgr(self) -> np.ndarray:
        return self._bgr

    def grey(self) -> np.ndarray:
        if self._grey is None:
            img = self._bgr
            self._grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
        return self._grey


class Yuv420Picture(Picture):
    """A PyAV frame in 4:2:0 planar YUV (``yuv420p`` or full-range ``yuvj420p``)."""

    def __init__(self, frame: av.VideoFrame) -> None:
        self._frame = frame
        self.width, self.height = frame.width, frame.height
        self._full_range = frame.format.name in _FULL_420
        self._y: np.ndarray | None = None
        self._planes: list[np.ndarray] | None = None
        self._bgr: np.ndarray | None = None

    @staticmethod
    def supports(frame: av.VideoFrame) -> bool:
        return frame.format.name in _LIMITED_420 | _FULL_420 and frame.width % 2 == 0 and frame.height % 2 == 0

    def _plane(self, i: int) -> np.ndarray:
        plane = self._frame.planes[i]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)  # type: ignore[call-overload]  # a plane is a buffer; its stubs omit it
        return rows[: plane.height, : plane.width]

    def planes(self) -> list[np.ndarray]:
        """Full-range Y, U (Cb) and V (Cr) planes, contiguous."""
        if self._planes is None:
            if self._full_range:
                chroma = [np.ascontiguousarray(self._plane(i)) for i in (1, 2)]
            else:
                chroma = [_full_chroma(self._plane(i)) for i in (1, 2)]
            self._planes = [self.grey(), *chroma]
        return self._planes

    def bgr(self) -> np.ndarray:
        if self._bgr is None:
            self._bgr = self._frame.to_ndarray(format="bgr24")
        return self._bgr

    def grey(self) -> np.ndarray:
        if self._y is None:
            y = self._plane(0)
            self._y = np.ascontiguousarray(y) if self._full_range else _full_luma(y)
        return self._y

    def _shrunk_planes(self, width: int, height: int) -> list[np.ndarray]:
        """Full-range planes resized to ``width`` × ``height`` (even): resize first, stretch the fewer pixels."""
        exact = self.width % width == 0 and self.height % height == 0  # INTER_AREA's fast path; else bilinear
        mode = cv2.INTER_AREA if exact else cv2.INTER_LINEAR
        y, u, v = (
            cv2.resize(self._plane(i), size, interpolation=mode)
            for i, size in ((0, (width, height)), (1, (width // 2, height // 2)), (2, (width // 2, height // 2)))
        )
        if self._full_range:
            return [y, u, v]
        return [_full_luma(y), _full_chroma(u), _full_chroma(v)]

    def jpeg(self, quality: int, max_width: int) -> Encoded | None:
        import simplejpeg

        if self.width > max_width:
            width = max_width - max_width % 2
            height = round(self.height * width / self.width / 2) * 2
            planes, scale = self._shrunk_planes(width, height), width / self.width
        else:
            planes, width, height, scale = self.planes(), self.width, self.height, 1.0
        try:
            data = simplejpeg.encode_jpeg_yuv_planes(*planes, quality=quality)
        except (ValueError, RuntimeError):
            return None
        return Encoded(data, width, height, scale)


def picture_of(frame: av.VideoFrame) -> Picture:
    """The cheapest :class:`Picture` for a PyAV frame: its planes when 4:2:0, else a BGR conversion."""
    return Yuv420Picture(frame) if Yuv420Picture.supports(frame) else BgrPicture(frame.to_ndarray(format="bgr24"))
