"""Cameras: where frames come from (a discriminated union of sources), zones, rules,
motion gating and video-quality diagnosis thresholds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, ValidationInfo, field_validator

from xueliang.config._base import Identifier, Point, Polygon, StrictModel
from xueliang.config.rules import Rule

_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://")
_SECRET_PARAMS = re.compile(
    r"(?P<name>[?&;](?:[^=&;#\s]*(?:user|usr|login|pass|pwd|token|secret|key|auth|sig|credential)[^=&;#\s]*)=)"
    r"(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)


def mask_url(url: str) -> str:
    """``rtsp://admin:pw@host/x`` → ``rtsp://***@host/x``: the only form of a URL that is logged or returned.

    The user-info ends at the *last* ``@`` before the query (a password may hold ``@`` or ``/``:
    ``rtsp://admin:Admin@123@host/`` → ``rtsp://***@host/``); query parameters that carry
    credentials (``?loginuse=admin&loginpas=...``, ``password=``, ``token=``, ``key=`` ...) are
    masked too. When in doubt it masks more, never less."""

    out, pos = [], 0
    for m in _SCHEME.finditer(url):
        if m.start() < pos:
            continue
        start = m.end()
        end = start
        while end < len(url) and not url[end].isspace() and url[end] not in "?#":
            end += 1
        at = url.rfind("@", start, end)
        out.append(url[pos:start])
        if at >= 0:
            out.append("***")
            pos = at
        else:
            pos = start
    out.append(url[pos:])
    masked = "".join(out)
    return _SECRET_PARAMS.sub(lambda m: f"{m.group('name')}***", masked)


Decoder = Literal["opencv", "pyav"]
_DECODER_DOC = (
    "opencv: OpenCV's FFmpeg backend, frames converted to BGR; pyav: PyAV, frames kept in YUV "
    "(grey = Y plane, JPEG encoded from the planes): no colour conversion of kept frames "
    "(needs the 'ingest' extra: av, simplejpeg); keyframes_only always decodes with PyAV"
)


class _UrlSource(StrictModel):
    url: str = Field(description="may hold credentials; ${ENV} references are expanded at load time")
    detect_url: str | None = Field(None, description="low-resolution substream fed to detection, if the camera has one")

    @property
    def masked(self) -> str:
        return mask_url(self.detect_url or self.url)


class RtspSource(_UrlSource):
    type: Literal["rtsp"]
    transport: Literal["tcp", "udp"] = "tcp"
    decoder: Decoder = Field("opencv", description=_DECODER_DOC)
    keyframes_only: bool | Literal["auto"] = Field(
        "auto",
        description="decode key frames only (PyAV): far less CPU, the sample rate then bounded by the stream's "
        "key-frame rate; auto: measure the key-frame spacing, decode key frames only when they come at least "
        "at the sample rate, else every frame (the choice and its reason logged; auto needs the 'ingest' extra, "
        "without it every frame is decoded with OpenCV)",
    )


class HttpSource(_UrlSource):
    """HTTP MJPEG (multipart/x-mixed-replace) or a snapshot URL polled at the sample rate."""

    type: Literal["http"]
    mode: Literal["mjpeg", "snapshot"] = Field(
        "mjpeg",
        description="mjpeg: one multipart stream; snapshot: GET one "
        "JPEG per sampled frame (Basic auth from the URL's user:password)",
    )


class FileSource(StrictModel):
    type: Literal["file"]
    path: Path
    loop: bool = True
    realtime: bool = Field(True, description="pace reading at the file's frame rate, like a live camera")
    decoder: Decoder = Field("opencv", description=_DECODER_DOC)
    keyframes_only: bool | Literal["auto"] = Field(
        False, description="decode key frames only (PyAV); sample rate ≤ key-frame rate; auto: as for rtsp"
    )

    @property
    def masked(self) -> str:
        return str(self.path)


class SceneSource(StrictModel):
    """Frames rendered live by the scene generator from a scenario file (demo and tests)."""

    type: Literal["scene"]
    scenario: Path
    seed: int = 0
    loop: bool = True
    realtime: bool = True

    @property
    def masked(self) -> str:
        return f"scene:{self.scenario}#seed={self.seed}"


Source = Annotated[RtspSource | HttpSource | FileSource | SceneSource, Field(discriminator="type")]


class Zone(StrictModel):
    name: Identifier
    label: str = Field("", max_length=100, description="display name in the console (e.g. 村口大门); empty: the name")
    polygon: Polygon


class Line(StrictModel):
    name: Identifier
    label: str = Field("", max_length=100, description="display name in the console (e.g. 村口大门); empty: the name")
    a: Point
    b: Point


class MotionConfig(StrictModel):
    enabled: bool = True
    downscale_width: int = Field(320, ge=64, le=1920)
    threshold: int = Field(25, ge=1, le=255, description="grey-level difference that counts as change")
    min_area_ratio: float = Field(0.0005, ge=0, le=1, description="changed share of the frame that counts as motion")
    ignore: list[Polygon] = Field(
        default_factory=list, description="image polygons where motion is ignored (trees, clocks)"
    )
    keepalive_s: float = Field(
        1.5,
        gt=0,
        description="without motion, still publish one frame this often; keep it "
        "below detector.tracker.lost_ttl_s or still objects lose their tracks (and dwell times)",
    )


class QualityConfig(StrictModel):
    """Video quality diagnosis (视频质量诊断): each score in [0, 1], 1 = worst; a fault when above its threshold."""

    enabled: bool = True
    interval_s: float = Field(5.0, gt=0, description="diagnose one sampled frame this often")
    blur: float = Field(0.7, ge=0, le=1)
    covered: float = Field(0.8, ge=0, le=1)
    moved: float = Field(
        0.6,
        ge=0,
        le=1,
        description="camera turned or moved (tamper): the view's edges no longer match the learnt reference view",
    )
    moved_rebaseline_s: float = Field(
        600.0,
        gt=0,
        description="a new view kept this long becomes the reference "
        "(the fault clears; its incident keeps the history)",
    )
    frozen_s: float = Field(20.0, gt=0, description="identical picture this long = frozen")
    signal_loss: float = Field(0.9, ge=0, le=1)
    colour_cast: float = Field(0.6, ge=0, le=1)
    too_dark: float = Field(0.85, ge=0, le=1)
    too_bright: float = Field(0.85, ge=0, le=1)
    noise: float = Field(0.7, ge=0, le=1)
    fault_grace_s: float = Field(60.0, ge=0, description="a fault lasting this long becomes a camera_fault incident")


class ReconnectConfig(StrictModel):
    initial_backoff_s: float = Field(1.0, gt=0)
    max_backoff_s: float = Field(30.0, gt=0)
    jitter: float = Field(0.2, ge=0, le=1)
    stall_timeout_s: float = Field(5.0, gt=0, description="no frame this long → reconnect and mark degraded/offline")
    offline_after_s: float = Field(8.0, gt=0, description="no frame this long → offline")


class GeoPlacement(StrictModel):
    """Where the camera is and what it looks at (for the map and coverage planning)."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    height_m: float = Field(6.0, gt=0)
    azimuth_deg: float = Field(0.0, ge=0, lt=360)
    hfov_deg: float = Field(60.0, gt=0, le=360)
    range_m: float = Field(80.0, gt=0)


_Named = TypeVar("_Named", Zone, Line)


class CameraConfig(StrictModel):
    id: Annotated[Identifier, Field(description="camera id; a GB/T 28181 20-digit code carries its division code")]
    name: str = ""
    village: Identifier | None = Field(
        None,
        description="id of the village centre whose grid holds the camera; derived from a GB/T 28181 id when omitted",
    )
    source: Source
    sample_fps: float = Field(2.0, gt=0, le=30, description="frames per second sent to detection")
    enabled: bool = True
    zones: list[Zone] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    motion: MotionConfig = MotionConfig()
    quality: QualityConfig = QualityConfig()
    reconnect: ReconnectConfig = ReconnectConfig()
    jpeg_quality: int = Field(80, ge=30, le=100)
    max_width: int = Field(960, ge=160, description="frames wider than this are downscaled before publishing")
    zoom: bool | None = Field(
        None,
        description="detector zoom for this camera (a far-field view: on, a near one: "
        "off); unset: detector.zoom.enabled",
    )
    placement: GeoPlacement | None = None
    detector_backend: Identifier | None = Field(
        None,
        description="a name in detector.backends: the model this camera is inferred with (e.g. a generated "
        "scene's camera on the project's model, real cameras on the real-world ensemble); unset: detector.backend",
    )

    @field_validator("zones", "lines")
    @classmethod
    def _unique_names(cls, items: list[_Named]) -> list[_Named]:
        names = [i.name for i in items]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate names: {sorted(dup)}")
        return items

    @field_validator("rules")
    @classmethod
    def _rules_reference_geometry(cls, rules: list[Rule], info: ValidationInfo) -> list[Rule]:
        zones = {z.name for z in info.data.get("zones", [])}
        lines = {ln.name for ln in info.data.get("lines", [])}
        names: set[str] = set()
        for rule in rules:
            if rule.name in names:
                raise ValueError(f"duplicate rule name {rule.name!r}")
            names.add(rule.name)
            zone = getattr(rule, "zone", None)
            if zone is not None and zone not in zones:
                raise ValueError(
                    f"rule {rule.name!r} names zone {zone!r}, which this camera does not define "
                    f"(zones: {sorted(zones) or 'none'})"
                )
            line = getattr(rule, "line", None)
            if line is not None and line not in lines:
                raise ValueError(
                    f"rule {rule.name!r} names line {line!r}, which this camera does not define "
                    f"(lines: {sorted(lines) or 'none'})"
                )
        return rules

    @property
    def gb28181_division(self) -> str | None:
        """The 8-digit division prefix of a GB/T 28181 20-digit id, if the id is one."""
        return self.id[:8] if len(self.id) == 20 and self.id.isdigit() else None
