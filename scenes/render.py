"""Render a scenario to frames with per-frame ground truth.

Every frame is a pure function of (scenario, seed, frame index): random choices come from a
generator seeded with ``[seed, index]``, so frames can be rendered in any order, and the same
scenario and seed always give identical bytes.

Pipeline of one frame: cached background (lit once) → actors as sprites, farthest first
(occlusion; the visible fraction of each actor is counted on a label map) → camera shake
(boxes move with it) → sensor noise → JPEG round trip.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from xueliang.scenes import sprites
from xueliang.scenes.classes import class_id
from xueliang.scenes.layout import Perspective, render_background
from xueliang.scenes.motion import state_at
from xueliang.scenes.scenario import Actor, Scenario

MIN_PPM = 1.5  # actors nearer the horizon than this are not drawn (sub-pixel)


@dataclass(frozen=True)
class GroundTruthBox:
    class_name: str
    class_id: int
    track_id: int
    xyxy: tuple[float, float, float, float]  # image pixels, clipped to the frame
    visible_fraction: float  # share of the actor's drawn pixels that are in the frame and not hidden

    @property
    def bottom_centre(self) -> tuple[float, float]:
        return ((self.xyxy[0] + self.xyxy[2]) / 2.0, self.xyxy[3])


@dataclass
class RenderedFrame:
    index: int
    t: float  # scene seconds
    image: np.ndarray  # BGR uint8, H x W x 3
    boxes: list[GroundTruthBox] = field(default_factory=list)
    shake: tuple[float, float] = (0.0, 0.0)


def _lighting_luts(lighting: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(per-channel LUT for ordinary pixels (256x1x3), LUT for emissive pixels or None)."""
    x = np.arange(256, dtype=np.float32)
    if lighting == "day":
        lut = np.stack([x, x, x], axis=1)
        return np.clip(lut, 0, 255).astype(np.uint8).reshape(256, 1, 3), None
    if lighting == "dusk":
        g = (x / 255.0) ** 1.35 * 255.0
        lut = np.stack([g * 0.55 + 8, g * 0.62 + 10, g * 0.78 + 16], axis=1)
        return np.clip(lut, 0, 255).astype(np.uint8).reshape(256, 1, 3), None
    # night: infrared grey, compressed and lifted by the illuminator
    g = 35.0 + (x / 255.0) ** 0.9 * 150.0
    lut = np.stack([g, g, g], axis=1)
    emissive = np.stack([200 + x * 0.2] * 3, axis=1)
    return (
        np.clip(lut, 0, 255).astype(np.uint8).reshape(256, 1, 3),
        np.clip(emissive, 0, 255).astype(np.uint8).reshape(256, 1, 3),
    )


def apply_lighting(img: np.ndarray, lighting: str, emissive: bool = False) -> np.ndarray:
    lut, lut_emissive = _lighting_luts(lighting)
    if lighting == "night":
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        img = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        return cv2.LUT(img, lut_emissive if emissive and lut_emissive is not None else lut)
    if emissive:
        return img
    return cv2.LUT(img, lut)


class SceneRenderer:
    """Frames and ground truth of one scenario with one seed."""

    NOISE_BANK = 3
    NOISE_MARGIN = 16

    def __init__(self, scenario: Scenario, seed: int = 0) -> None:
        self.scenario = scenario
        self.seed = int(seed)
        w, h = scenario.width, scenario.height
        base, self.perspective = render_background(scenario.kind, w, h, self.seed)
        self.background = apply_lighting(base, scenario.lighting)
        self.background.setflags(write=False)
        look_rng = np.random.default_rng([self.seed, 104729])
        self._looks = {
            a.id: sprites.choose_look(look_rng, a.class_name, a.appearance.colour, a.appearance.scale)
            for a in sorted(scenario.actors, key=lambda a: a.id)
        }
        fx = scenario.effects
        night = scenario.lighting == "night"
        self._sigma = fx.noise_sigma * (1.8 if night else 1.0)
        self._noise: list[np.ndarray] = []
        if self._sigma > 0:
            nrng = np.random.default_rng([self.seed, 15485863])
            m = self.NOISE_MARGIN
            for _ in range(self.NOISE_BANK):
                n = nrng.normal(0.0, self._sigma, size=(h + m, w + m, 1 if night else 3)).astype(np.float32)
                self._noise.append(np.round(n).astype(np.int16))
        self._phase = float(np.random.default_rng([self.seed, 31]).uniform(0, 2 * math.pi))

    # -- time ------------------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return self.scenario.n_frames

    def time_of(self, index: int, fps: float | None = None) -> float:
        return index / (fps or self.scenario.fps)

    # -- per-frame -------------------------------------------------------------------------------
    def shake_at(self, index: int, t: float) -> tuple[float, float]:
        amp = self.scenario.effects.shake_px
        if amp <= 0:
            return 0.0, 0.0
        rng = np.random.default_rng([self.seed, index, 2])
        dx = amp * (0.7 * math.sin(2 * math.pi * 0.9 * t + self._phase) + 0.3 * rng.uniform(-1, 1))
        dy = amp * (0.7 * math.sin(2 * math.pi * 1.3 * t + 2 * self._phase) + 0.3 * rng.uniform(-1, 1))
        return round(dx, 2), round(dy, 2)

    def _sprite(self, actor: Actor, t: float, rng: np.random.Generator) -> tuple[sprites.Sprite, float, float] | None:
        st = state_at(actor, t)
        if st is None:
            return None
        ppm = self.perspective.ppm(st.y)
        if ppm < MIN_PPM:
            return None
        look = self._looks[actor.id]
        side = abs(st.heading_x) >= abs(st.heading_y)
        flip = st.heading_x < 0
        c = actor.class_name
        if c == "person":
            sp = sprites.person(ppm, look, t, st.moving, side, flip)
        elif c in ("bicycle", "motorbike"):
            sp = sprites.two_wheeler(c, ppm, look, side, flip)
        elif c == "car":
            sp = sprites.car(ppm, look, side, flip)
        elif c == "truck":
            sp = sprites.truck(ppm, look, side, flip)
        elif c == "fire":
            sp = sprites.fire(ppm, look, st.age_s, rng)
        else:
            sp = sprites.smoke(ppm, look, st.age_s, t)
        return sp, st.x, st.y

    def render_frame(self, index: int, fps: float | None = None) -> RenderedFrame:
        """Frame ``index`` at ``fps`` (default: the scenario's), with its ground truth."""
        sc = self.scenario
        t = self.time_of(index, fps)
        rng = np.random.default_rng([self.seed, index, 1])
        H, W = sc.height, sc.width
        frame = self.background.copy()
        labels = np.zeros((H, W), np.int16)
        drawn: list[tuple[Actor, int, tuple[int, int, int, int], int, bool]] = []
        # farthest first (smallest y); hazards after solid actors standing at the same row
        order = sorted(sc.actors, key=lambda a: a.id)
        placed = []
        for a in order:
            s = self._sprite(a, t, rng)
            if s is not None:
                placed.append((a, *s))
        placed.sort(key=lambda p: (p[3], p[0].class_name in ("fire", "smoke"), p[0].class_name == "smoke", p[0].id))
        for n, (actor, sp, x, y) in enumerate(placed, start=1):
            h, w = sp.alpha.shape
            x0 = round(x - sp.foot[0])
            y0 = round(y - sp.foot[1])
            total = int(np.count_nonzero(sp.alpha))
            fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
            if fx1 <= fx0 or fy1 <= fy0 or total == 0:
                continue
            sub_a = sp.alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
            sub_i = sp.image[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
            lit = apply_lighting(sub_i, sc.lighting, sp.emissive)
            roi = frame[fy0:fy1, fx0:fx1]
            if sp.opaque:
                m = sub_a > 127
                roi[m] = lit[m]
                labels[fy0:fy1, fx0:fx1][m] = n
                inframe = int(np.count_nonzero(m))
                drawn.append((actor, n, (x0, y0, x0 + w, y0 + h), total, True))
            else:
                alpha = (sub_a.astype(np.float32) / 255.0)[:, :, None]
                roi[:] = (roi.astype(np.float32) * (1.0 - alpha) + lit.astype(np.float32) * alpha + 0.5).astype(
                    np.uint8
                )
                inframe = int(np.count_nonzero(sub_a))
                drawn.append((actor, inframe, (x0, y0, x0 + w, y0 + h), total, False))
        counts = np.bincount(labels.ravel(), minlength=len(placed) + 1) if drawn else np.zeros(1, np.int64)
        dx, dy = self.shake_at(index, t)
        boxes: list[GroundTruthBox] = []
        for actor, key, (bx0, by0, bx1, by1), total, opaque in drawn:
            visible = (counts[key] if opaque else key) / total
            xyxy = (
                min(max(bx0 + dx, 0.0), W),
                min(max(by0 + dy, 0.0), H),
                min(max(bx1 + dx, 0.0), W),
                min(max(by1 + dy, 0.0), H),
            )
            if xyxy[2] - xyxy[0] < 1 or xyxy[3] - xyxy[1] < 1 or visible <= 0:
                continue
            boxes.append(
                GroundTruthBox(
                    actor.class_name,
                    class_id(actor.class_name),
                    actor.id,
                    (round(xyxy[0], 2), round(xyxy[1], 2), round(xyxy[2], 2), round(xyxy[3], 2)),
                    round(float(visible), 4),
                )
            )
        if dx or dy:
            shift = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
            frame = cv2.warpAffine(frame, shift, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        frame = self._sensor(frame, rng)
        return RenderedFrame(index=index, t=t, image=frame, boxes=boxes, shake=(dx, dy))

    def _sensor(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self._noise:
            H, W = frame.shape[:2]
            bank = self._noise[int(rng.integers(len(self._noise)))]
            oy, ox = (int(v) for v in rng.integers(0, self.NOISE_MARGIN, size=2))
            noise = bank[oy : oy + H, ox : ox + W]
            frame = (
                cv2.add(frame, noise, dtype=cv2.CV_8U)
                if noise.shape[2] == 3
                else cv2.add(frame, np.repeat(noise, 3, axis=2), dtype=cv2.CV_8U)
            )
        q = self.scenario.effects.jpeg_quality
        if q is not None:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
            if not ok:  # pragma: no cover - OpenCV failure
                raise RuntimeError("JPEG encode failed")
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if decoded is None:  # pragma: no cover - OpenCV failure
                raise RuntimeError("JPEG decode failed")
            frame = decoded
        return frame

    def frames(self, fps: float | None = None, loop: bool = False) -> Iterator[RenderedFrame]:
        """Frames in order at ``fps`` (default: the scenario's) for the scenario's duration; ``loop`` repeats forever
        (the index keeps counting, ``t`` restarts at 0 each pass)."""
        rate = fps or self.scenario.fps
        n = round(self.scenario.duration_s * rate)
        k = 0
        while True:
            for i in range(n):
                f = self.render_frame(i, rate)
                if k:
                    f.index = k * n + i
                yield f
            if not loop:
                return
            k += 1

    def write_video(self, path: str | Path, fps: float | None = None, fourcc: str | None = None) -> Path:
        """Write the scenario to ``path`` (.mp4 → mp4v, .avi → MJPG unless ``fourcc`` is given)."""
        p = Path(path)
        rate = fps or self.scenario.fps
        code = fourcc or ("MJPG" if p.suffix.lower() == ".avi" else "mp4v")
        writer = cv2.VideoWriter(
            str(p), cv2.VideoWriter.fourcc(*code), rate, (self.scenario.width, self.scenario.height)
        )
        if not writer.isOpened():
            raise RuntimeError(f"cannot open video writer for {p} with fourcc {code!r}")
        try:
            for f in self.frames(rate):
                writer.write(f.image)
        finally:
            writer.release()
        return p


def perspective_of(scenario: Scenario) -> Perspective:
    return Perspective.for_kind(scenario.kind, scenario.width, scenario.height)
