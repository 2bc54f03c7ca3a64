"""Ground-truth event timeline and expected incidents, derived from a scenario's trajectories.

Everything is evaluated at the scenario's frame times (``index / fps``), on each actor's ground
point (the bottom-centre of its box, before camera shake), with the same conventions as the
detector's rules:

* an object is *in* a zone when its ground point is inside the polygon (even-odd rule);
* a line's side is the sign of the cross product (b − a) × (p − a); ``a_to_b`` goes from the
  −1 side to the +1 side; a crossing counts only where the point passes within the segment;
* an actor is *in the scene* while it is drawn: present by its script, at least partly inside
  the frame, and below the horizon enough to be drawn (see ``render.MIN_PPM``).

The timeline is what happened (enter/exit, dwell, counts, stops, line crossings, fire start);
``expected_incidents`` is what each rule in the scenario's camera block should raise, with its
start time. A detector sees frames at its sample rate and needs a few frames of inertia, so
compare incident times with a tolerance of a few sample periods.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from xueliang.config.cameras import Line, Zone
from xueliang.config.rules import (
    CrowdingRule,
    FireSmokeRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    StalledVehicleRule,
)
from xueliang.geometry import line_side, point_in_polygon, within_segment
from xueliang.scenes.layout import Perspective
from xueliang.scenes.motion import state_at
from xueliang.scenes.scenario import Actor, Scenario

EventKind = Literal[
    "appear",
    "disappear",
    "zone_enter",
    "zone_exit",
    "zone_count",
    "stop",
    "move",
    "line_cross",
    "fire_start",
    "smoke_start",
    "hazard_end",
]
STOP_MIN_S = 1.0  # a stop shorter than this is not an event
MIN_PPM = 1.5  # keep in step with render.MIN_PPM


@dataclass(frozen=True)
class GroundTruthEvent:
    t: float
    kind: EventKind
    track_id: int | None = None
    class_name: str | None = None
    zone: str | None = None
    line: str | None = None
    value: float | None = None  # zone_count: the new count; zone_exit: dwell seconds; stop: -; line_cross: ±1 side
    direction: str | None = None  # line_cross: a_to_b / b_to_a


@dataclass(frozen=True)
class ExpectedIncident:
    rule: str
    type: str
    start_s: float
    zone: str | None = None
    line: str | None = None
    track_ids: tuple[int, ...] = ()
    details: dict[str, float | str] = field(default_factory=dict, compare=False)


def frame_times(scenario: Scenario) -> list[float]:
    return [i / scenario.fps for i in range(scenario.n_frames)]


def ground_points(scenario: Scenario) -> dict[int, list[tuple[float, float] | None]]:
    """Per actor, per frame: its ground point when it is in the scene, else None."""
    persp = Perspective.for_kind(scenario.kind, scenario.width, scenario.height)
    out: dict[int, list[tuple[float, float] | None]] = {}
    for a in scenario.actors:
        pts: list[tuple[float, float] | None] = []
        for t in frame_times(scenario):
            st = state_at(a, t)
            if st is None or persp.ppm(st.y) < MIN_PPM or not _in_frame(a, st.x, st.y, persp, scenario):
                pts.append(None)
            else:
                pts.append((st.x, st.y))
        out[a.id] = pts
    return out


def _in_frame(actor: Actor, x: float, y: float, persp: Perspective, sc: Scenario) -> bool:
    """Whether any part of the actor can be on screen (its ground point within half a body of the frame)."""
    from xueliang.scenes.sprites import SIZES

    half = 0.5 * max(SIZES[actor.class_name][:2]) * persp.ppm(y) * actor.appearance.scale * 1.1
    return -half < x < sc.width + half and y > 0 and y - SIZES[actor.class_name][2] * persp.ppm(y) * 1.1 < sc.height


def ground_truth_events(scenario: Scenario) -> list[GroundTruthEvent]:
    """The event timeline (sorted by time) derived from the trajectories at frame times."""
    times = frame_times(scenario)
    pts = ground_points(scenario)
    actors = {a.id: a for a in scenario.actors}
    ev: list[GroundTruthEvent] = []
    ev += _actor_events(times, pts, actors)
    for zone in scenario.camera.zones:
        ev += _zone_events(zone, times, pts, actors)
    for line in scenario.camera.lines:
        ev += _line_events(line, times, pts, actors)
    order = {
        k: i
        for i, k in enumerate(
            (
                "disappear",
                "zone_exit",
                "appear",
                "zone_enter",
                "zone_count",
                "fire_start",
                "smoke_start",
                "hazard_end",
                "stop",
                "move",
                "line_cross",
            )
        )
    }
    ev.sort(key=lambda e: (e.t, order[e.kind], e.track_id or 0, e.zone or "", e.class_name or ""))
    return ev


_Points = dict[int, list[tuple[float, float] | None]]


def _actor_events(times: list[float], pts: _Points, actors: dict[int, Actor]) -> list[GroundTruthEvent]:
    """Appear/disappear (fire and smoke start/end) and scripted stops of each actor."""
    ev: list[GroundTruthEvent] = []
    for aid, seq in pts.items():
        a = actors[aid]
        c = a.class_name
        prev = None
        for t, p in zip(times, seq, strict=False):
            if p is not None and prev is None:
                ev.append(GroundTruthEvent(t, "appear", aid, c))
                if c in ("fire", "smoke"):
                    ev.append(GroundTruthEvent(t, "fire_start" if c == "fire" else "smoke_start", aid, c))
            elif p is None and prev is not None:
                ev.append(GroundTruthEvent(t, "disappear", aid, c))
                if c in ("fire", "smoke"):
                    ev.append(GroundTruthEvent(t, "hazard_end", aid, c))
            prev = p
        # stops (scripted dwell of moving actors), at least STOP_MIN_S long and on screen
        if c not in ("fire", "smoke"):
            for i, wp in enumerate(a.path):
                if wp.dwell_s >= STOP_MIN_S and len(a.path) > 1:
                    t0, t1 = wp.t, wp.t + wp.dwell_s
                    on = [t for t, p in zip(times, seq, strict=False) if p is not None and t0 <= t <= t1]
                    if on:
                        ev.append(GroundTruthEvent(on[0], "stop", aid, c, value=round(t1 - t0, 3)))
                        if i < len(a.path) - 1 and t1 < times[-1]:
                            ev.append(GroundTruthEvent(_next_frame(times, t1), "move", aid, c))
    return ev


def _zone_events(zone: Zone, times: list[float], pts: _Points, actors: dict[int, Actor]) -> list[GroundTruthEvent]:
    """Entries, exits and per-class counts of one zone."""
    ev: list[GroundTruthEvent] = []
    poly = list(zone.polygon)
    counts: dict[str, int] = {}
    inside_since: dict[int, float] = {}
    for i, t in enumerate(times):
        now: dict[int, bool] = {
            aid: (p := seq[i]) is not None and point_in_polygon(p, poly) for aid, seq in pts.items()
        }
        for aid, inside in now.items():
            c = actors[aid].class_name
            if inside and aid not in inside_since:
                inside_since[aid] = t
                ev.append(GroundTruthEvent(t, "zone_enter", aid, c, zone=zone.name))
            elif not inside and aid in inside_since:
                ev.append(
                    GroundTruthEvent(t, "zone_exit", aid, c, zone=zone.name, value=round(t - inside_since.pop(aid), 3))
                )
        by_class: dict[str, int] = {}
        for aid, inside in now.items():
            if inside:
                by_class[actors[aid].class_name] = by_class.get(actors[aid].class_name, 0) + 1
        for name in sorted(set(by_class) | set(counts)):
            if by_class.get(name, 0) != counts.get(name, 0):
                ev.append(GroundTruthEvent(t, "zone_count", None, name, zone=zone.name, value=by_class.get(name, 0)))
        counts = by_class
    return ev


def _line_events(line: Line, times: list[float], pts: _Points, actors: dict[int, Actor]) -> list[GroundTruthEvent]:
    """Crossings of one line, with their direction."""
    ev: list[GroundTruthEvent] = []
    for aid, seq in pts.items():
        side = 0
        for t, p in zip(times, seq, strict=False):
            if p is None:
                side = 0
                continue
            s = line_side(p, line.a, line.b)
            if s and side and s != side and within_segment(p, line.a, line.b):
                ev.append(
                    GroundTruthEvent(
                        t,
                        "line_cross",
                        aid,
                        actors[aid].class_name,
                        line=line.name,
                        value=s,
                        direction="a_to_b" if (side, s) == (-1, 1) else "b_to_a",
                    )
                )
            if s:
                side = s
    return ev


def _next_frame(times: list[float], t: float) -> float:
    return next((x for x in times if x > t - 1e-9), times[-1])


def _intervals(flags: list[bool], times: list[float]) -> list[tuple[float, float]]:
    """[start, end) times of runs of True; end is the first frame time after the run (or the scene end)."""
    out = []
    start = None
    for t, f in zip(times, flags, strict=False):
        if f and start is None:
            start = t
        elif not f and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, times[-1] + (times[1] - times[0] if len(times) > 1 else 0.0)))
    return out


def _episodes(flags: list[bool], times: list[float], need_s: float, cooldown_s: float) -> Iterator[tuple[float, float]]:
    """The runs of ``flags`` a rule raises on: lasting ``need_s`` at least, and starting after the previous
    one's end plus ``cooldown_s`` (within the cooldown the detector re-opens the same incident)."""
    rearm = -math.inf
    for s, e in _intervals(flags, times):
        if e - s < need_s or s < rearm:
            continue
        yield s, e
        rearm = e + cooldown_s


@dataclass
class _Paths:
    """What the expected incidents are computed from: frame times, each actor's ground point per frame."""

    times: list[float]
    pts: dict[int, list[tuple[float, float] | None]]
    actors: dict[int, Actor]
    zones: dict[str, list[tuple[float, float]]]

    def qualifying(self, rule_classes: list[str]) -> list[int]:
        return [aid for aid, a in self.actors.items() if a.class_name in rule_classes]

    def inside(self, aid: int, zone: str | None) -> list[bool]:
        return [p is not None and (zone is None or point_in_polygon(p, self.zones[zone])) for p in self.pts[aid]]


def expected_incidents(scenario: Scenario) -> list[ExpectedIncident]:
    """What each rule of the camera block should raise, with start times (see module docstring)."""
    paths = _Paths(
        frame_times(scenario),
        ground_points(scenario),
        {a.id: a for a in scenario.actors},
        {z.name: list(z.polygon) for z in scenario.camera.zones},
    )
    lines = {ln.name: ln for ln in scenario.camera.lines}
    out: list[ExpectedIncident] = []
    for rule in scenario.camera.rules:
        if not rule.enabled:
            continue
        if isinstance(rule, (IntrusionRule, LoiteringRule)):
            out += _presences(rule, paths)
        elif isinstance(rule, CrowdingRule):
            out += _crowds(rule, paths)
        elif isinstance(rule, LineCrossingRule):
            out += _crossings(rule, lines[rule.line], paths)
        elif isinstance(rule, StalledVehicleRule):
            out += _stalls(rule, paths)
        elif isinstance(rule, FireSmokeRule):
            out += _hazards(rule, paths)
        # abandoned_object: the generator has no 'bag' class, so no scenario can script one
    out.sort(key=lambda x: (x.start_s, x.rule, x.track_ids))
    return out


def _presences(rule: IntrusionRule | LoiteringRule, paths: _Paths) -> list[ExpectedIncident]:
    out: list[ExpectedIncident] = []
    need = 0.0 if isinstance(rule, IntrusionRule) else rule.dwell_s
    for aid in paths.qualifying(rule.classes):
        for s, _ in _episodes(paths.inside(aid, rule.zone), paths.times, need, rule.cooldown_s):
            out.append(ExpectedIncident(rule.name, rule.type, round(s + need, 3), zone=rule.zone, track_ids=(aid,)))
    return out


def _crowds(rule: CrowdingRule, paths: _Paths) -> list[ExpectedIncident]:
    out: list[ExpectedIncident] = []
    times = paths.times
    members = {aid: paths.inside(aid, rule.zone) for aid in paths.qualifying(rule.classes)}
    crowded = [sum(m[i] for m in members.values()) >= rule.min_count for i in range(len(times))]
    for s, _ in _episodes(crowded, times, rule.min_duration_s, rule.cooldown_s):
        t_inc = s + rule.min_duration_s
        i = min(range(len(times)), key=lambda k: abs(times[k] - t_inc))
        ids = tuple(sorted(aid for aid, m in members.items() if m[i]))
        out.append(
            ExpectedIncident(
                rule.name,
                rule.type,
                round(t_inc, 3),
                zone=rule.zone,
                track_ids=ids,
                details={"count": len(ids)},
            )
        )
    return out


def _crossings(rule: LineCrossingRule, ln: Line, paths: _Paths) -> list[ExpectedIncident]:
    out: list[ExpectedIncident] = []
    for aid in paths.qualifying(rule.classes):
        side = 0
        for t, p in zip(paths.times, paths.pts[aid], strict=False):
            if p is None:
                side = 0
                continue
            s = line_side(p, ln.a, ln.b)
            if s and side and s != side and within_segment(p, ln.a, ln.b):
                d = "a_to_b" if (side, s) == (-1, 1) else "b_to_a"
                if rule.direction in ("any", d):
                    out.append(
                        ExpectedIncident(
                            rule.name,
                            rule.type,
                            round(t, 3),
                            line=rule.line,
                            track_ids=(aid,),
                            details={"direction": d},
                        )
                    )
            if s:
                side = s
    return out


def _stalls(rule: StalledVehicleRule, paths: _Paths) -> list[ExpectedIncident]:
    out: list[ExpectedIncident] = []
    for aid in paths.qualifying(rule.classes):
        a = paths.actors[aid]
        stopped = []
        for t, p in zip(paths.times, paths.pts[aid], strict=False):
            st = state_at(a, t)
            ok = p is not None and st is not None and not st.moving
            stopped.append(
                bool(p is not None and ok and (rule.zone is None or point_in_polygon(p, paths.zones[rule.zone])))
            )
        for s, _ in _episodes(stopped, paths.times, rule.stationary_s, rule.cooldown_s):
            out.append(
                ExpectedIncident(
                    rule.name, rule.type, round(s + rule.stationary_s, 3), zone=rule.zone, track_ids=(aid,)
                )
            )
    return out


def _hazards(rule: FireSmokeRule, paths: _Paths) -> list[ExpectedIncident]:
    out: list[ExpectedIncident] = []
    times = paths.times
    hazard = {aid: paths.inside(aid, rule.zone) for aid in paths.qualifying(rule.classes)}
    present = [any(h[i] for h in hazard.values()) for i in range(len(times))]
    for s, _ in _episodes(present, times, 0.0, rule.cooldown_s):
        i = times.index(s)
        ids = tuple(sorted(aid for aid, h in hazard.items() if h[i]))
        out.append(ExpectedIncident(rule.name, rule.type, round(s, 3), zone=rule.zone, track_ids=ids))
    return out


def frame_truth(scenario: Scenario, seed: int, index: int, fps: float | None = None) -> list:  # list[GroundTruthBox]
    """Per-frame ground truth: the boxes of frame ``index`` (rendered, since visibility depends on the drawing)."""
    from xueliang.scenes.render import SceneRenderer

    return SceneRenderer(scenario, seed).render_frame(index, fps).boxes
