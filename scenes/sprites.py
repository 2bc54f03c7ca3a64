"""Actors drawn as small sprites: a BGR patch, an alpha mask (0-255) and the foot point in the patch.

Every sprite is drawn so that its ground contact point is the bottom-centre of the non-zero
alpha, so a ground-truth box's bottom-centre is where the actor stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# physical sizes, metres: (side-view length, front-view width, height)
SIZES = {
    "person": (0.5, 0.5, 1.7),
    "bicycle": (1.7, 0.6, 1.05),
    "motorbike": (2.0, 0.8, 1.15),
    "car": (4.2, 1.8, 1.5),
    "truck": (7.0, 2.4, 3.0),
    "fire": (1.0, 1.0, 1.4),
    "smoke": (3.0, 3.0, 5.0),
}

SKIN = [(140, 170, 210), (110, 140, 190), (90, 120, 165), (160, 185, 225)]
CLOTHES = [
    (40, 40, 180),
    (150, 60, 30),
    (40, 120, 40),
    (30, 30, 30),
    (200, 200, 200),
    (30, 160, 220),
    (120, 70, 120),
    (70, 90, 110),
    (180, 120, 60),
    (20, 20, 120),
]
TROUSERS = [(40, 30, 20), (90, 60, 30), (60, 60, 60), (30, 30, 30), (110, 100, 90)]
PAINT = [
    (200, 200, 205),
    (30, 30, 30),
    (40, 40, 170),
    (150, 90, 30),
    (170, 170, 170),
    (40, 110, 40),
    (40, 160, 210),
    (120, 40, 40),
]


@dataclass(frozen=True)
class Sprite:
    image: np.ndarray  # BGR uint8, h x w x 3
    alpha: np.ndarray  # uint8, h x w (255 = opaque)
    foot: tuple[float, float]  # foot point (x, y) in patch pixels
    emissive: bool = False  # fire: keeps its brightness at dusk and night
    opaque: bool = True  # smoke is translucent and does not hide what is behind it


@dataclass(frozen=True)
class Look:
    """Per-actor appearance chosen once from the seed."""

    main: tuple[int, int, int]
    second: tuple[int, int, int]
    skin: tuple[int, int, int]
    scale: float
    phase: float


def choose_look(rng: np.random.Generator, class_name: str, colour: tuple[int, int, int] | None, scale: float) -> Look:
    if class_name == "person":
        main = colour or CLOTHES[int(rng.integers(len(CLOTHES)))]
        second = TROUSERS[int(rng.integers(len(TROUSERS)))]
    else:
        main = colour or PAINT[int(rng.integers(len(PAINT)))]
        second = PAINT[int(rng.integers(len(PAINT)))]
    skin = SKIN[int(rng.integers(len(SKIN)))]
    return Look(
        (int(main[0]), int(main[1]), int(main[2])),
        second,
        skin,
        scale * float(rng.uniform(0.93, 1.07)),
        float(rng.uniform(0, 2 * math.pi)),
    )


def _canvas(w: float, h: float, pad: int = 2) -> tuple[np.ndarray, np.ndarray, int, int]:
    W, H = math.ceil(w) + 2 * pad, math.ceil(h) + 2 * pad
    return np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.uint8), W, H


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    r, g, b = (int(min(255, max(0, v * f))) for v in c)
    return r, g, b


def _fill(img: np.ndarray, alpha: np.ndarray, pts: list[tuple[float, float]], colour: tuple[int, int, int]) -> None:
    arr = [np.round(np.asarray(pts, np.float64) * 4).astype(np.int32)]
    cv2.fillPoly(img, arr, colour, shift=2)
    cv2.fillPoly(alpha, arr, 255, shift=2)


def _rect(
    img: np.ndarray,
    alpha: np.ndarray,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    colour: tuple[int, int, int],
) -> None:
    """An axis-aligned rectangle from (x0, y0) to (x1, y1)."""
    _fill(img, alpha, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour)


def _fill_frac(
    img: np.ndarray,
    alpha: np.ndarray,
    pad: float,
    w: float,
    h: float,
    fracs: tuple[tuple[float, float], ...],
    colour: tuple[int, int, int],
) -> None:
    """A polygon whose corners are fractions of the ``w`` x ``h`` box drawn from (``pad``, ``pad``)."""
    _fill(img, alpha, [(pad + fx * w, pad + fy * h) for fx, fy in fracs], colour)


def _circle(
    img: np.ndarray,
    alpha: np.ndarray,
    c: tuple[float, float],
    r: float,
    colour: tuple[int, int, int],
    thickness: int = -1,
) -> None:
    ci = (round(c[0] * 4), round(c[1] * 4))
    ri = max(1, round(r * 4))
    cv2.circle(img, ci, ri, colour, thickness, shift=2)
    cv2.circle(alpha, ci, ri, 255, thickness, shift=2)


def _line(
    img: np.ndarray,
    alpha: np.ndarray,
    a: tuple[float, float],
    b: tuple[float, float],
    colour: tuple[int, int, int],
    width: float,
) -> None:
    t = max(1, round(width))
    pa = (round(a[0] * 4), round(a[1] * 4))
    pb = (round(b[0] * 4), round(b[1] * 4))
    cv2.line(img, pa, pb, colour, t, shift=2)
    cv2.line(alpha, pa, pb, 255, t, shift=2)


def _finish(img: np.ndarray, alpha: np.ndarray, flip: bool, **kw: bool) -> Sprite:
    """Crop to the drawn pixels and put the foot at the bottom-centre of what was drawn."""
    ys, xs = np.nonzero(alpha)
    if len(xs) == 0:
        return Sprite(img[:1, :1], alpha[:1, :1], (0.5, 1.0), **kw)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    img, alpha = img[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    if flip:
        img, alpha = img[:, ::-1], alpha[:, ::-1]
    return Sprite(np.ascontiguousarray(img), np.ascontiguousarray(alpha), ((x1 - x0) / 2.0, float(y1 - y0)), **kw)


def person(ppm: float, look: Look, t: float, moving: bool, side: bool, flip: bool) -> Sprite:
    H = SIZES["person"][2] * look.scale * ppm
    W = H * 0.6
    img, alpha, cw, _ch = _canvas(W, H)
    cx = cw / 2.0
    top = 2.0
    swing = math.sin(2 * math.pi * 1.8 * t + look.phase) if moving else 0.0
    head_r = max(1.0, 0.075 * H)
    hip_y = top + 0.53 * H
    shoulder_y = top + 0.19 * H
    torso_w = 0.26 * H if not side else 0.18 * H
    leg_w = max(1.0, 0.075 * H)
    foot_y = top + H - leg_w / 2
    stride = (0.2 * H if side else 0.06 * H) * swing
    trousers = look.second
    # legs
    for s in (-1, 1):
        hx = cx + s * torso_w * 0.25
        _line(
            img, alpha, (hx, hip_y), (hx + s * stride if side else hx + s * abs(stride) * 0.3, foot_y), trousers, leg_w
        )
    # torso
    _fill(
        img,
        alpha,
        [
            (cx - torso_w / 2, shoulder_y),
            (cx + torso_w / 2, shoulder_y),
            (cx + torso_w * 0.45, hip_y),
            (cx - torso_w * 0.45, hip_y),
        ],
        look.main,
    )
    # arms
    arm_w = max(1.0, 0.06 * H)
    for s in (-1, 1):
        sx = cx + s * torso_w * (0.35 if side else 0.5)
        ex = sx - s * stride * 0.8 if side else sx + s * 0.04 * H
        _line(img, alpha, (sx, shoulder_y + arm_w / 2), (ex, top + 0.5 * H), _shade(look.main, 0.8), arm_w)
    # head and hair
    hc = (cx, top + head_r + 0.01 * H)
    _circle(img, alpha, hc, head_r, look.skin)
    _circle(img, alpha, (hc[0], hc[1] - head_r * 0.35), head_r * 0.75, (25, 25, 30))
    _circle(img, alpha, (hc[0], hc[1] + head_r * 0.15), head_r * 0.8, look.skin)
    return _finish(img, alpha, flip)


def _wheel(img: np.ndarray, alpha: np.ndarray, c: tuple[float, float], r: float, spokes: bool) -> None:
    _circle(img, alpha, c, r, (25, 25, 25), thickness=max(1, round(r * (0.22 if spokes else 0.45))))
    if spokes:
        _line(img, alpha, (c[0] - r, c[1]), (c[0] + r, c[1]), (120, 120, 120), 1)
        _line(img, alpha, (c[0], c[1] - r), (c[0], c[1] + r), (120, 120, 120), 1)
    else:
        _circle(img, alpha, c, r * 0.35, (150, 150, 150))


def two_wheeler(kind: str, ppm: float, look: Look, side: bool, flip: bool) -> Sprite:
    L, Wf, H = (v * look.scale * ppm for v in SIZES[kind])
    if side:
        img, alpha, _, _ = _canvas(L, H)
        pad = 2.0
        r = 0.34 * H if kind == "bicycle" else 0.3 * H
        ground = pad + H
        back = (pad + r, ground - r)
        front = (pad + L - r, ground - r)
        _wheel(img, alpha, back, r, spokes=kind == "bicycle")
        _wheel(img, alpha, front, r, spokes=kind == "bicycle")
        lw = max(1.0, 0.05 * H)
        if kind == "bicycle":
            seat = (back[0] + 0.35 * L, pad + 0.12 * H)
            crank = (back[0] + 0.45 * (front[0] - back[0]), back[1])
            bar = (front[0] - 0.08 * L, pad + 0.05 * H)
            for a, b in ((back, seat), (seat, crank), (crank, back), (seat, bar), (bar, front), (crank, bar)):
                _line(img, alpha, a, b, look.main, lw)
            _line(img, alpha, (seat[0] - 0.06 * L, seat[1]), (seat[0] + 0.06 * L, seat[1]), (20, 20, 20), lw * 1.5)
            _line(img, alpha, bar, (bar[0] + 0.05 * L, pad), (40, 40, 40), lw)
        else:
            body = [
                (back[0], back[1] - 0.1 * H),
                (back[0] + 0.2 * L, pad + 0.25 * H),
                (front[0] - 0.25 * L, pad + 0.2 * H),
                (front[0] - 0.1 * L, back[1] - 0.25 * H),
                (front[0] - 0.3 * L, back[1]),
                (back[0] + 0.15 * L, back[1]),
            ]
            _fill(img, alpha, body, look.main)
            _fill(
                img,
                alpha,
                [
                    (back[0] + 0.05 * L, pad + 0.3 * H),
                    (back[0] + 0.38 * L, pad + 0.22 * H),
                    (back[0] + 0.38 * L, pad + 0.32 * H),
                    (back[0] + 0.05 * L, pad + 0.4 * H),
                ],
                (20, 20, 20),
            )
            _line(img, alpha, (front[0], front[1]), (front[0] - 0.12 * L, pad), (60, 60, 60), max(1.0, 0.06 * H))
            _circle(img, alpha, (front[0] - 0.08 * L, pad + 0.22 * H), max(1.0, 0.06 * H), (200, 230, 240))
    else:
        img, alpha, _cw, _ch = _canvas(Wf, H)
        pad = 2.0
        cx = pad + Wf / 2
        tyre_w = max(1.0, (0.1 if kind == "bicycle" else 0.22) * Wf)
        _line(img, alpha, (cx, pad + 0.45 * H), (cx, pad + H - tyre_w / 2), (25, 25, 25), tyre_w)
        _line(img, alpha, (pad, pad + 0.08 * H), (pad + Wf, pad + 0.08 * H), (40, 40, 40), max(1.0, 0.05 * H))
        _line(img, alpha, (cx, pad + 0.08 * H), (cx, pad + 0.5 * H), look.main, max(1.0, 0.1 * Wf))
        if kind == "motorbike":
            _fill(
                img,
                alpha,
                [
                    (cx - 0.35 * Wf, pad + 0.25 * H),
                    (cx + 0.35 * Wf, pad + 0.25 * H),
                    (cx + 0.25 * Wf, pad + 0.6 * H),
                    (cx - 0.25 * Wf, pad + 0.6 * H),
                ],
                look.main,
            )
            _circle(img, alpha, (cx, pad + 0.3 * H), max(1.0, 0.12 * Wf), (200, 230, 240))
    return _finish(img, alpha, flip)


def car(ppm: float, look: Look, side: bool, flip: bool) -> Sprite:
    L, Wf, H = (v * look.scale * ppm for v in SIZES["car"])
    pad = 2.0
    dark = (45, 35, 30)
    img, alpha = _car_side(L, H, look, pad, dark) if side else _car_front(Wf, H, look, pad, dark)
    return _finish(img, alpha, flip)


def _car_side(L: float, H: float, look: Look, pad: float, dark: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    img, alpha, _, _ = _canvas(L, H)
    ground = pad + H
    r = 0.2 * H
    _fill(
        img,
        alpha,
        [(pad, pad + 0.42 * H), (pad + L, pad + 0.45 * H), (pad + L, ground - r * 0.6), (pad, ground - r * 0.6)],
        look.main,
    )
    _fill_frac(img, alpha, pad, L, H, ((0.22, 0.42), (0.32, 0.0), (0.68, 0.0), (0.8, 0.43)), _shade(look.main, 0.9))
    _fill_frac(img, alpha, pad, L, H, ((0.27, 0.4), (0.35, 0.08), (0.49, 0.08), (0.49, 0.4)), dark)
    _fill_frac(img, alpha, pad, L, H, ((0.52, 0.4), (0.52, 0.08), (0.66, 0.08), (0.75, 0.4)), dark)
    for fx in (0.2, 0.8):
        _circle(img, alpha, (pad + fx * L, ground - r), r, (20, 20, 20))
        _circle(img, alpha, (pad + fx * L, ground - r), r * 0.45, (150, 150, 150))
    _rect(img, alpha, pad + L - 0.04 * L, pad + 0.5 * H, pad + L, pad + 0.6 * H, (200, 230, 240))
    return img, alpha


def _car_front(
    Wf: float, H: float, look: Look, pad: float, dark: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    img, alpha, _cw, _ch = _canvas(Wf, H)
    ground = pad + H
    _rect(img, alpha, pad + 0.08 * Wf, ground - 0.12 * H, pad + 0.25 * Wf, ground, (20, 20, 20))
    _rect(img, alpha, pad + 0.75 * Wf, ground - 0.12 * H, pad + 0.92 * Wf, ground, (20, 20, 20))
    _rect(img, alpha, pad, pad + 0.42 * H, pad + Wf, ground - 0.1 * H, look.main)
    _fill_frac(img, alpha, pad, Wf, H, ((0.1, 0.42), (0.2, 0.0), (0.8, 0.0), (0.9, 0.42)), _shade(look.main, 0.9))
    _fill_frac(img, alpha, pad, Wf, H, ((0.16, 0.4), (0.24, 0.06), (0.76, 0.06), (0.84, 0.4)), dark)
    for fx in (0.15, 0.85):
        _circle(img, alpha, (pad + fx * Wf, pad + 0.58 * H), max(1.0, 0.06 * Wf), (200, 230, 240))
    _rect(img, alpha, pad + 0.35 * Wf, pad + 0.6 * H, pad + 0.65 * Wf, pad + 0.72 * H, (60, 60, 60))
    return img, alpha


def truck(ppm: float, look: Look, side: bool, flip: bool) -> Sprite:
    L, Wf, H = (v * look.scale * ppm for v in SIZES["truck"])
    pad = 2.0
    cab = look.second
    cargo = look.main
    img, alpha = _truck_side(L, H, pad, cab, cargo) if side else _truck_front(Wf, H, pad, cab, cargo)
    return _finish(img, alpha, flip)


def _truck_side(
    L: float, H: float, pad: float, cab: tuple[int, int, int], cargo: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    img, alpha, _, _ = _canvas(L, H)
    ground = pad + H
    r = 0.13 * H
    _rect(img, alpha, pad, pad, pad + 0.72 * L, ground - r, cargo)
    for i in range(1, 5):
        x = pad + 0.72 * L * i / 5
        _line(img, alpha, (x, pad + 0.05 * H), (x, ground - r - 0.05 * H), _shade(cargo, 0.75), max(1.0, 0.015 * L))
    _fill(
        img,
        alpha,
        [
            (pad + 0.74 * L, pad + 0.25 * H),
            (pad + 0.93 * L, pad + 0.25 * H),
            (pad + L, pad + 0.5 * H),
            (pad + L, ground - r),
            (pad + 0.74 * L, ground - r),
        ],
        cab,
    )
    _fill_frac(img, alpha, pad, L, H, ((0.8, 0.3), (0.92, 0.3), (0.97, 0.48), (0.8, 0.48)), (60, 45, 35))
    _rect(img, alpha, pad, ground - r - 0.05 * H, pad + L, ground - r, (30, 30, 30))
    for fx in (0.12, 0.27, 0.86):
        _circle(img, alpha, (pad + fx * L, ground - r), r, (20, 20, 20))
        _circle(img, alpha, (pad + fx * L, ground - r), r * 0.45, (140, 140, 140))
    return img, alpha


def _truck_front(
    Wf: float, H: float, pad: float, cab: tuple[int, int, int], cargo: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    img, alpha, _cw, _ch = _canvas(Wf, H)
    ground = pad + H
    _rect(img, alpha, pad, pad, pad + Wf, pad + 0.3 * H, cargo)
    _rect(img, alpha, pad + 0.04 * Wf, pad + 0.3 * H, pad + 0.96 * Wf, ground - 0.08 * H, cab)
    _rect(img, alpha, pad + 0.1 * Wf, pad + 0.35 * H, pad + 0.9 * Wf, pad + 0.6 * H, (60, 45, 35))
    _rect(img, alpha, pad + 0.3 * Wf, pad + 0.7 * H, pad + 0.7 * Wf, pad + 0.85 * H, (50, 50, 50))
    for fx in (0.12, 0.88):
        _circle(img, alpha, (pad + fx * Wf, pad + 0.78 * H), max(1.0, 0.06 * Wf), (200, 230, 240))
        _rect(img, alpha, pad + (fx - 0.08) * Wf, ground - 0.1 * H, pad + (fx + 0.08) * Wf, ground, (20, 20, 20))
    return img, alpha


def fire(ppm: float, look: Look, age_s: float, rng: np.random.Generator) -> Sprite:
    """Flickering flame: tongues whose heights change every frame; grows over its first 3 s."""
    grow = min(1.0, 0.35 + 0.65 * age_s / 3.0)
    _L, Wf, H = (v * look.scale * ppm * grow for v in SIZES["fire"])
    W = Wf
    img, alpha, _cw, _ch = _canvas(W, H)
    pad = 2.0
    base_y = pad + H
    n = 5
    xs = np.linspace(pad, pad + W, n + 1)
    heights = H * np.clip(0.55 + 0.45 * rng.random(n) * np.array([0.6, 0.9, 1.0, 0.9, 0.6]), 0.3, 1.0)
    heights[n // 2] = H  # the tallest tongue fixes the height
    outer: list[tuple[float, float]] = [(pad, base_y)]
    for i in range(n):
        mid = (xs[i] + xs[i + 1]) / 2 + rng.uniform(-0.08, 0.08) * W / n
        outer += [(mid, base_y - heights[i]), (xs[i + 1], base_y - heights[i] * 0.35)]
    outer[-1] = (pad + W, base_y)
    _fill(img, alpha, outer, (0, 90, 240))
    inner = [(x * 0.7 + (pad + W / 2) * 0.3, base_y - (base_y - y) * 0.7) for x, y in outer]
    cv2.fillPoly(img, [np.round(np.asarray(inner) * 4).astype(np.int32)], (0, 190, 255), shift=2)
    core = [(x * 0.4 + (pad + W / 2) * 0.6, base_y - (base_y - y) * 0.4) for x, y in outer]
    cv2.fillPoly(img, [np.round(np.asarray(core) * 4).astype(np.int32)], (150, 245, 255), shift=2)
    return _finish(img, alpha, False, emissive=True)


def smoke(ppm: float, look: Look, age_s: float, t: float) -> Sprite:
    """A grey translucent plume rising from its foot point and drifting sideways; grows over 8 s."""
    grow = min(1.0, 0.3 + 0.7 * age_s / 8.0)
    _L, Wf, H = (v * look.scale * ppm for v in SIZES["smoke"])
    H *= grow
    W = Wf * (0.5 + 0.5 * grow)
    drift = 0.35 * W * math.sin(0.3 * t + look.phase)
    img, alpha, cw, _ch = _canvas(W + abs(drift) * 2, H)
    pad = 2.0
    cx = cw / 2.0
    base_y = pad + H
    a = np.zeros(alpha.shape, np.float32)
    n = 7
    for i in range(n):
        f = (i + ((0.4 * t + look.phase) % 1.0)) / n  # puffs travel upwards
        r = (0.12 + 0.25 * f) * W
        y = base_y - r - f * (H - 2 * r)
        x = cx + drift * f * f + 0.08 * W * math.sin(3.0 * f + t)
        cv2.circle(a, (round(x), round(y)), max(1, round(r)), 0.55 * (1.0 - 0.5 * f), -1)
    cv2.circle(a, (round(cx), round(base_y - 0.12 * W)), max(1, round(0.12 * W)), 0.55, -1)
    k = max(3, int(0.08 * W) | 1)
    blurred = cv2.GaussianBlur(a, (k, k), 0)
    alpha = np.where(blurred > 0.12, np.clip(blurred * 255 * 1.3, 0, 255), 0).astype(np.uint8)
    grey = int(look.main[0] * 0.15 + 165)
    img[:] = (grey, grey, grey + 4)
    return _finish(img, alpha, False, opaque=False)
