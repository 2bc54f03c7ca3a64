"""Where an actor is at a given scene time: piecewise-linear motion between waypoints, with stops."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from xueliang.scenes.scenario import Actor


@dataclass(frozen=True)
class ActorState:
    x: float
    y: float
    vx: float  # image px / s (0 while stopped)
    vy: float
    heading_x: float  # last non-zero direction of motion (for orientation while stopped)
    heading_y: float
    moving: bool
    age_s: float  # seconds since the actor appeared


def present(actor: Actor, t: float) -> bool:
    return actor.start_s <= t <= actor.stop_s


def state_at(actor: Actor, t: float) -> ActorState | None:
    """The actor's ground point and velocity at ``t``; None when it is not in the scene."""
    if not present(actor, t):
        return None
    path = actor.path
    hx, hy = 1.0, 0.0
    # initial heading: direction of the first moving segment
    for a, b in itertools.pairwise(path):
        dx, dy = b.at[0] - a.at[0], b.at[1] - a.at[1]
        if dx or dy:
            hx, hy = dx, dy
            break
    for i, wp in enumerate(path):
        leave = wp.t + wp.dwell_s
        if t <= leave or i == len(path) - 1:
            if t < wp.t and i > 0:
                prev = path[i - 1]
                t0 = prev.t + prev.dwell_s
                span = wp.t - t0
                f = 0.0 if span <= 0 else (t - t0) / span
                dx, dy = wp.at[0] - prev.at[0], wp.at[1] - prev.at[1]
                vx, vy = (dx / span, dy / span) if span > 0 else (0.0, 0.0)
                if dx or dy:
                    hx, hy = dx, dy
                return ActorState(
                    prev.at[0] + f * dx, prev.at[1] + f * dy, vx, vy, hx, hy, bool(dx or dy), t - actor.start_s
                )
            return ActorState(wp.at[0], wp.at[1], 0.0, 0.0, hx, hy, False, t - actor.start_s)
        # passed this waypoint: remember the heading of the segment just travelled
        if i + 1 < len(path):
            nxt = path[i + 1]
            dx, dy = nxt.at[0] - wp.at[0], nxt.at[1] - wp.at[1]
            if dx or dy:
                hx, hy = dx, dy
    last = path[-1]  # pragma: no cover - loop always returns
    return ActorState(last.at[0], last.at[1], 0.0, 0.0, hx, hy, False, t - actor.start_s)
