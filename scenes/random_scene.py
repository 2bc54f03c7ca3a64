"""Random scenes for training data: many actors on random straight paths, every kind and lighting.

``random_scenario(seed)`` is a pure function of the seed. Training takes one frame per scenario
(at ``RANDOM_SNAPSHOT_S``), where every actor is guaranteed to be on screen and large enough.
"""

from __future__ import annotations

import numpy as np

from xueliang.scenes.layout import Perspective
from xueliang.scenes.scenario import (
    SCENE_KINDS,
    Actor,
    Appearance,
    Effects,
    Scenario,
    Waypoint,
)

RANDOM_SNAPSHOT_S = 5.0
# class frequencies in random scenes (person most common, as on village cameras)
CLASS_WEIGHTS = {
    "person": 0.36,
    "bicycle": 0.12,
    "motorbike": 0.12,
    "car": 0.16,
    "truck": 0.09,
    "fire": 0.07,
    "smoke": 0.08,
}
# the smallest drawn size per class, as pixels per metre: keeps objects learnable at imgsz 320
MIN_PPM = {"person": 17.0, "bicycle": 15.0, "motorbike": 14.0, "car": 8.0, "truck": 6.0, "fire": 14.0, "smoke": 7.0}
LIGHTING_WEIGHTS = {"day": 0.45, "dusk": 0.2, "night": 0.35}


def random_scenario(
    seed: int,
    width: int = 768,
    height: int = 432,
    kind: str | None = None,
    lighting: str | None = None,
    n_actors: tuple[int, int] = (5, 16),
    duration_s: float = 10.0,
) -> Scenario:
    rng = np.random.default_rng([seed, 2718])
    kind = kind or str(rng.choice(SCENE_KINDS))
    if lighting is None:
        lighting = str(rng.choice(list(LIGHTING_WEIGHTS), p=list(LIGHTING_WEIGHTS.values())))
    persp = Perspective.for_kind(kind, width, height)
    names = list(CLASS_WEIGHTS)
    p = np.array(list(CLASS_WEIGHTS.values()))
    p = p / p.sum()
    actors: list[Actor] = []
    n = int(rng.integers(n_actors[0], n_actors[1] + 1))
    snap = RANDOM_SNAPSHOT_S
    hazards = 0
    for i in range(n):
        c = str(rng.choice(names, p=p))
        if c in ("fire", "smoke"):
            hazards += 1
            if hazards > 3:
                c = "person"
        y_min = persp.y_for_ppm(MIN_PPM[c])
        y = float(rng.uniform(y_min, height * 1.02))
        x = float(rng.uniform(0.03 * width, 0.97 * width))
        scale = float(rng.uniform(0.88, 1.12))
        if c in ("fire", "smoke"):
            start = float(rng.uniform(0.0, snap - 0.5))
            actors.append(
                Actor(
                    id=i + 1,
                    class_name=c,
                    path=[Waypoint(t=start, at=(x, y))],
                    appearance=Appearance(scale=scale),
                    end_s=duration_s,
                )
            )
            continue
        # a straight path through (x, y) at the snapshot time; sometimes standing still
        speed_ppm = {"person": 1.4, "bicycle": 4.0, "motorbike": 8.0, "car": 9.0, "truck": 7.0}[c]
        ang = float(rng.uniform(0, 2 * np.pi))
        ppm = persp.ppm(y)
        v = speed_ppm * ppm * float(rng.uniform(0.5, 1.2))
        if rng.random() < 0.25:
            v = 0.0
        dx, dy = np.cos(ang) * v, np.sin(ang) * v * 0.35
        t0, t1 = 0.0, duration_s
        a = (x - dx * snap, y - dy * snap)
        b = (x + dx * (t1 - snap), y + dy * (t1 - snap))
        path = [Waypoint(t=t0, at=a), Waypoint(t=t1, at=b)] if v > 0 else [Waypoint(t=t0, at=(x, y), dwell_s=t1)]
        actors.append(Actor(id=i + 1, class_name=c, path=path, appearance=Appearance(scale=scale)))
    effects = Effects(
        noise_sigma=float(rng.uniform(0.0, 6.0)),
        shake_px=float(rng.uniform(0.0, 2.0)),
        jpeg_quality=int(rng.integers(45, 96)),
    )
    return Scenario(
        name=f"random-{seed}",
        kind=kind,
        lighting=lighting,
        width=width,
        height=height,
        fps=10.0,
        duration_s=duration_s,
        effects=effects,
        actors=actors,
        tags=["random"],
    )
