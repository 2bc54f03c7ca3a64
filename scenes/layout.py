"""Static backgrounds of the four scene kinds, and the perspective that sizes actors.

Perspective: a flat ground plane seen by a camera above it. A ground point at image row ``y``
is drawn at ``ppm(y) = k * (y - horizon)`` pixels per metre, so objects shrink towards the
horizon and vanish on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# fraction of the frame height where the horizon lies, per scene kind
HORIZON = {"village_entrance": 0.30, "crossroads": 0.28, "riverbank": 0.32, "school_gate": 0.30}
# a 1.7 m person standing on the bottom row is this share of the frame height
PERSON_SHARE_AT_BOTTOM = 0.38


@dataclass(frozen=True)
class Perspective:
    width: int
    height: int
    horizon_y: float
    k: float  # px per metre per px below the horizon

    @classmethod
    def for_kind(cls, kind: str, width: int, height: int) -> Perspective:
        hy = HORIZON[kind] * height
        ppm_bottom = PERSON_SHARE_AT_BOTTOM * height / 1.7
        return cls(width, height, hy, ppm_bottom / (height - hy))

    def ppm(self, y: float) -> float:
        """Pixels per metre for an object standing at image row ``y`` (0 at and above the horizon)."""
        return max(0.0, self.k * (y - self.horizon_y))

    def y_for_ppm(self, ppm: float) -> float:
        return self.horizon_y + ppm / self.k


def _texture(
    rng: np.random.Generator, h: int, w: int, base: tuple[int, int, int], amp: float, cell: int = 3
) -> np.ndarray:
    """A noisy colour field (grass, soil, water), blocky at ``cell`` px."""
    small = rng.normal(0.0, amp, size=(max(1, h // cell + 1), max(1, w // cell + 1), 1)).astype(np.float32)
    tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if tex.ndim == 2:
        tex = tex[:, :, None]
    out = np.asarray(base, np.float32)[None, None, :] + tex
    return np.clip(out, 0, 255).astype(np.uint8)


def _vary(rng: np.random.Generator, colour: tuple[int, int, int], amount: int = 18) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)
    return r, g, b


def _poly(img: np.ndarray, pts: list[tuple[float, float]], colour: tuple[int, int, int]) -> None:
    cv2.fillPoly(img, [np.round(np.asarray(pts)).astype(np.int32)], colour, lineType=cv2.LINE_AA)


def _fill_region(img: np.ndarray, pts: list[tuple[float, float]], tex: np.ndarray) -> None:
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(pts)).astype(np.int32)], 255)
    np.copyto(img, tex, where=mask[:, :, None] > 0)


def _tree(img: np.ndarray, persp: Perspective, rng: np.random.Generator, x: float, y: float) -> None:
    ppm = persp.ppm(y)
    if ppm < 1.0:
        return
    h = rng.uniform(4.0, 8.0) * ppm
    trunk_w = max(1, int(0.3 * ppm))
    cv2.rectangle(
        img, (int(x - trunk_w / 2), int(y - 0.45 * h)), (int(x + trunk_w / 2), int(y)), _vary(rng, (40, 60, 85), 10), -1
    )
    green = _vary(rng, (45, 110, 55), 20)
    for _ in range(4):
        cx = x + rng.uniform(-0.18, 0.18) * h
        cy = y - rng.uniform(0.55, 0.85) * h
        r = max(1, int(rng.uniform(0.18, 0.3) * h))
        cv2.circle(img, (int(cx), int(cy)), r, _vary(rng, green, 12), -1, lineType=cv2.LINE_AA)


def _house(img: np.ndarray, persp: Perspective, rng: np.random.Generator, x: float, y: float, facing: int) -> None:
    ppm = persp.ppm(y)
    if ppm < 1.0:
        return
    w, h = rng.uniform(7, 11) * ppm, rng.uniform(3.2, 4.2) * ppm
    wall = _vary(rng, (200, 205, 210), 25) if rng.random() < 0.6 else _vary(rng, (90, 110, 160), 20)
    x0, x1 = x - w / 2, x + w / 2
    cv2.rectangle(img, (int(x0), int(y - h)), (int(x1), int(y)), wall, -1)
    roof = _vary(rng, (60, 60, 70), 15) if rng.random() < 0.5 else _vary(rng, (50, 70, 150), 20)
    _poly(
        img,
        [
            (x0 - 0.06 * w, y - h),
            (x1 + 0.06 * w, y - h),
            (x1 - 0.1 * w, y - h - 0.45 * h),
            (x0 + 0.1 * w, y - h - 0.45 * h),
        ],
        roof,
    )
    door_x = x + facing * 0.15 * w
    cv2.rectangle(
        img,
        (int(door_x - 0.06 * w), int(y - 0.55 * h)),
        (int(door_x + 0.06 * w), int(y)),
        _vary(rng, (30, 50, 90), 10),
        -1,
    )
    for fx in (-0.3, 0.3):
        wx = x + fx * w
        cv2.rectangle(
            img, (int(wx - 0.07 * w), int(y - 0.75 * h)), (int(wx + 0.07 * w), int(y - 0.45 * h)), (70, 60, 50), -1
        )


def _sky_and_hills(img: np.ndarray, persp: Perspective, rng: np.random.Generator) -> None:
    h, w = img.shape[:2]
    hy = int(persp.horizon_y)
    top = np.array(_vary(rng, (235, 210, 170), 15), np.float32)
    bottom = np.array(_vary(rng, (230, 225, 215), 10), np.float32)
    ramp = np.linspace(0, 1, max(hy, 1), dtype=np.float32)[:, None, None]
    img[:hy] = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    # distant hills
    xs = np.linspace(0, w, 24)
    base = hy - rng.uniform(0.02, 0.05) * h
    ys = base - np.abs(np.sin(xs / w * rng.uniform(3, 7) + rng.uniform(0, 6))) * rng.uniform(0.03, 0.09) * h
    pts = [(0, hy), *list(zip(xs, ys, strict=False)), (w, hy)]
    _poly(img, pts, _vary(rng, (120, 135, 115), 12))


def _road(
    persp: Perspective, x_bottom: tuple[float, float], x_horizon: tuple[float, float]
) -> list[tuple[float, float]]:
    h = persp.height
    hy = persp.horizon_y
    return [(x_bottom[0], h), (x_bottom[1], h), (x_horizon[1], hy), (x_horizon[0], hy)]


@dataclass(frozen=True)
class _Site:
    """What a scene kind's painter draws with: the image, its perspective and random stream, the main road
    (centre ``cx`` on the bottom row, vanishing point ``vanish``, half-width ``road_w`` at the bottom) and the
    ground textures."""

    img: np.ndarray
    persp: Perspective
    rng: np.random.Generator
    cx: float
    vanish: float
    road_w: float
    soil: np.ndarray
    asphalt: np.ndarray


def _village_entrance(site: _Site) -> None:
    """A village entrance: a road to the vanishing point, houses on both sides, a gate (paifang) across it."""
    img, persp, rng = site.img, site.persp, site.rng
    height = img.shape[0]
    hy = persp.horizon_y
    road = _road(persp, (site.cx - site.road_w, site.cx + site.road_w), (site.vanish - 4, site.vanish + 4))
    _fill_region(img, road, site.soil if rng.random() < 0.4 else site.asphalt)
    # houses on both sides, far to near
    for side in (-1, 1):
        for frac in sorted(rng.uniform(0.08, 0.45, size=3)):
            y = hy + frac * (height - hy)
            ppm = persp.ppm(y)
            x = site.vanish + side * (site.road_w * frac * 1.2 + rng.uniform(4, 8) * ppm)
            _house(img, persp, rng, x, y, -side)
    # village gate (paifang): two posts and a beam across the road
    yg = hy + rng.uniform(0.25, 0.35) * (height - hy)
    ppm = persp.ppm(yg)
    f = (yg - hy) / (height - hy)
    half = (site.road_w * f + 6) * 1.05
    gx = site.vanish + (site.cx - site.vanish) * f
    post = _vary(rng, (40, 40, 150), 15)
    for sx in (-1, 1):
        cv2.rectangle(
            img,
            (int(gx + sx * half - 0.25 * ppm), int(yg - 5 * ppm)),
            (int(gx + sx * half + 0.25 * ppm), int(yg)),
            post,
            -1,
        )
    cv2.rectangle(
        img,
        (int(gx - half - ppm), int(yg - 5.6 * ppm)),
        (int(gx + half + ppm), int(yg - 4.8 * ppm)),
        _vary(rng, (40, 40, 120), 10),
        -1,
    )
    cv2.rectangle(
        img,
        (int(gx - 0.25 * half), int(yg - 5.6 * ppm)),
        (int(gx + 0.25 * half), int(yg - 4.6 * ppm)),
        (30, 140, 200),
        -1,
    )


def _crossroads(site: _Site) -> None:
    """A crossroads: two asphalt roads, lane markings, houses at the far corners, a sign pole."""
    img, persp, rng = site.img, site.persp, site.rng
    height, width = img.shape[:2]
    hy = persp.horizon_y
    road = _road(persp, (site.cx - site.road_w * 0.8, site.cx + site.road_w * 0.8), (site.vanish - 3, site.vanish + 3))
    _fill_region(img, road, site.asphalt)
    yc = hy + rng.uniform(0.28, 0.4) * (height - hy)
    band = persp.ppm(yc) * rng.uniform(5, 7)
    _fill_region(
        img,
        [(0, yc - band * 0.45), (width, yc - band * 0.45), (width, yc + band * 0.55), (0, yc + band * 0.55)],
        site.asphalt,
    )
    # lane markings
    for i in range(0, width, max(8, int(band))):
        cv2.line(img, (i, int(yc + band * 0.05)), (i + int(band * 0.5), int(yc + band * 0.05)), (220, 220, 220), 1)
    for frac in np.linspace(0.05, 1.0, 9):
        y0 = hy + frac * (height - hy)
        x0 = site.vanish + (site.cx - site.vanish) * frac
        cv2.line(
            img,
            (int(x0), int(y0)),
            (int(x0), int(min(height, y0 + 0.04 * (height - hy) * frac))),
            (210, 210, 210),
            max(1, int(2 * frac)),
        )
    for side in (-1, 1):
        y = hy + rng.uniform(0.08, 0.2) * (height - hy)
        _house(img, persp, rng, site.vanish + side * rng.uniform(0.25, 0.4) * width, y, -side)
    # a pole with a sign near the corner
    yp = yc + band * 0.6
    xp = site.cx + site.road_w * 0.9 * ((yp - hy) / (height - hy)) + 10
    ppm = persp.ppm(yp)
    cv2.rectangle(img, (int(xp), int(yp - 5 * ppm)), (int(xp + 0.15 * ppm) + 1, int(yp)), (80, 80, 80), -1)


def _riverbank(site: _Site) -> None:
    """A riverbank: water across the view, reeds along it, an embankment path in the foreground."""
    img, persp, rng = site.img, site.persp, site.rng
    height, width = img.shape[:2]
    hy = persp.horizon_y
    yr0 = hy + rng.uniform(0.12, 0.2) * (height - hy)
    yr1 = yr0 + rng.uniform(0.14, 0.22) * (height - hy)
    water = _texture(rng, height, width, _vary(rng, (120, 105, 70), 12), 9.0, cell=5)
    tilt = rng.uniform(-0.06, 0.06) * height
    _fill_region(img, [(0, yr0 - tilt), (width, yr0 + tilt), (width, yr1 + tilt), (0, yr1 - tilt)], water)
    # embankment path in the foreground
    yp = yr1 + rng.uniform(0.12, 0.2) * (height - hy)
    _fill_region(
        img,
        [(0, yp), (width, yp + tilt), (width, yp + tilt + 0.22 * (height - hy)), (0, yp + 0.2 * (height - hy))],
        site.soil,
    )
    # reeds along the water
    for x in rng.uniform(0, width, size=40):
        y = yr1 + tilt * (2 * x / width - 1) + rng.uniform(-2, 4)
        ppm = persp.ppm(y)
        cv2.line(
            img,
            (int(x), int(y)),
            (int(x + rng.uniform(-1, 1) * ppm), int(y - rng.uniform(0.6, 1.2) * ppm)),
            _vary(rng, (60, 120, 110), 15),
            1,
        )


def _school_gate(site: _Site) -> None:
    """A school gate: a road across the view, the school wall with its gate, a zebra crossing."""
    img, persp, rng = site.img, site.persp, site.rng
    height, width = img.shape[:2]
    hy = persp.horizon_y
    road = _road(persp, (-width * 0.2, width * 1.2), (site.vanish - width * 0.6, site.vanish + width * 0.6))
    _fill_region(img, road, site.asphalt)
    yw = hy + rng.uniform(0.12, 0.2) * (height - hy)
    ppm = persp.ppm(yw)
    wall_h = 2.6 * ppm
    wall = _vary(rng, (200, 210, 215), 10)
    cv2.rectangle(img, (0, int(yw - wall_h)), (width, int(yw)), wall, -1)
    cv2.rectangle(img, (0, int(yw - wall_h)), (width, int(yw - wall_h + 0.3 * ppm)), _vary(rng, (60, 60, 170), 15), -1)
    gx = width * rng.uniform(0.4, 0.6)
    gw = 6 * ppm
    cv2.rectangle(img, (int(gx - gw / 2), int(yw - wall_h * 0.95)), (int(gx + gw / 2), int(yw)), (110, 110, 110), -1)
    for i in range(int(gx - gw / 2), int(gx + gw / 2), max(2, int(0.4 * ppm))):
        cv2.line(img, (i, int(yw - wall_h * 0.95)), (i, int(yw)), (70, 70, 70), 1)
    for sx in (-1, 1):
        cv2.rectangle(
            img,
            (int(gx + sx * gw / 2 - 0.4 * ppm), int(yw - 3.4 * ppm)),
            (int(gx + sx * gw / 2 + 0.4 * ppm), int(yw)),
            (180, 180, 190),
            -1,
        )
    cv2.rectangle(
        img, (int(gx - gw * 0.4), int(yw - 3.6 * ppm)), (int(gx + gw * 0.4), int(yw - 2.9 * ppm)), (40, 40, 170), -1
    )
    # zebra crossing in front of the gate
    yz = yw + 0.18 * (height - hy)
    zppm = persp.ppm(yz)
    for i in range(-4, 5):
        x = gx + i * 1.0 * zppm
        cv2.rectangle(
            img, (int(x), int(yz - 1.2 * zppm)), (int(x + 0.5 * zppm), int(yz + 1.2 * zppm)), (225, 225, 225), -1
        )


_SCENES = {
    "village_entrance": _village_entrance,
    "crossroads": _crossroads,
    "riverbank": _riverbank,
    "school_gate": _school_gate,
}


def render_background(kind: str, width: int, height: int, seed: int) -> tuple[np.ndarray, Perspective]:
    """The static scene (day colours, no actors, no effects) and its perspective."""
    rng = np.random.default_rng([seed, 7919])
    persp = Perspective.for_kind(kind, width, height)
    img = np.zeros((height, width, 3), np.uint8)
    hy = persp.horizon_y
    _sky_and_hills(img, persp, rng)
    ground = np.zeros_like(img)
    ground[:] = 0
    grass = _texture(rng, height, width, _vary(rng, (70, 140, 105), 18), 10.0)
    field = _texture(rng, height, width, _vary(rng, (90, 170, 185), 20), 12.0)
    soil = _texture(rng, height, width, _vary(rng, (110, 135, 150), 12), 8.0)
    asphalt = _texture(rng, height, width, _vary(rng, (105, 105, 100), 8), 5.0)
    _fill_region(img, [(0, hy), (width, hy), (width, height), (0, height)], grass)
    # crop fields as bands on both sides
    for side in (-1, 1):
        if rng.random() < 0.7:
            x_far = width / 2 + side * rng.uniform(0.15, 0.45) * width
            x_near = width / 2 + side * width * 1.4
            _fill_region(
                img,
                [
                    (x_far, hy + 2),
                    (width / 2 + side * width * 0.9, hy + 2),
                    (width / 2 + side * width * 2.2, height),
                    (x_near, height),
                ],
                field,
            )
    cx = width * rng.uniform(0.42, 0.58)
    vanish = width * rng.uniform(0.45, 0.55)
    road_w = width * rng.uniform(0.30, 0.42)
    scene = _SCENES.get(kind)
    if scene is not None:
        scene(_Site(img, persp, rng, cx, vanish, road_w, soil, asphalt))
    # scattered trees near the horizon and at the sides
    for _ in range(int(rng.integers(4, 10))):
        y = hy + rng.uniform(0.01, 0.25) * (height - hy)
        x = rng.choice([rng.uniform(0, 0.25), rng.uniform(0.75, 1.0)]) * width
        _tree(img, persp, rng, x, y)
    # utility poles and wires along one side
    side = rng.choice([-1, 1])
    prev = None
    for frac in (0.1, 0.3, 0.6, 1.0):
        y = hy + frac * (height - hy)
        ppm = persp.ppm(y)
        x = vanish + side * (road_w * frac + 2.5 * ppm)
        top = (int(x), int(y - 7 * ppm))
        cv2.line(img, top, (int(x), int(y)), (60, 70, 80), max(1, int(0.25 * ppm)))
        if prev is not None:
            cv2.line(img, prev, top, (40, 40, 40), 1, lineType=cv2.LINE_AA)
        prev = top
    return img, persp
