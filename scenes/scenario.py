"""Scenario files: a scripted scene (kind, lighting, camera effects, actors with trajectories)
plus the camera block (zones, lines, rules) the detector is configured with.

Coordinates are image pixels of the scenario's frame size. An actor's waypoint is the point
where it touches the ground (its box's bottom-centre), the same point the rules use to decide
whether an object is inside a zone. Perspective comes from the scene: the farther up the image
(closer to the horizon) an actor stands, the smaller it is drawn.

Example::

    kind: village_entrance
    lighting: day
    duration_s: 30
    actors:
      - id: 1
        class: person
        path:
          - {t: 0, at: [60, 400]}
          - {t: 6, at: [380, 300], dwell_s: 10}   # arrives at 6 s, stays until 16 s
          - {t: 22, at: [770, 280]}                # leaves the frame
    camera:
      zones: [{name: gate, polygon: [[300, 260], [460, 260], [480, 340], [280, 340]]}]
      rules: [{name: gate-intrusion, type: intrusion, zone: gate}]
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from xueliang.config._base import Identifier, Point, StrictModel
from xueliang.config.cameras import Line, Zone
from xueliang.config.rules import Rule
from xueliang.scenes.classes import CLASS_NAMES

SceneKind = Literal["village_entrance", "crossroads", "riverbank", "school_gate"]
SCENE_KINDS: tuple[str, ...] = ("village_entrance", "crossroads", "riverbank", "school_gate")
Lighting = Literal["day", "dusk", "night"]
ActorClass = Literal["person", "bicycle", "motorbike", "car", "truck", "fire", "smoke"]
assert set(get_args(ActorClass)) == set(CLASS_NAMES)


class Effects(StrictModel):
    """Camera artefacts; all off gives clean frames (tests compare those with the background)."""

    noise_sigma: float = Field(3.0, ge=0, le=40, description="sensor noise, grey levels (night adds more)")
    shake_px: float = Field(1.0, ge=0, le=10, description="amplitude of slight camera shake, pixels")
    jpeg_quality: int | None = Field(85, ge=10, le=100, description="JPEG round trip per frame; null = none")

    @classmethod
    def none(cls) -> Effects:
        return cls(noise_sigma=0.0, shake_px=0.0, jpeg_quality=None)


class Waypoint(StrictModel):
    t: float = Field(ge=0, description="scene seconds at which the actor reaches this point")
    at: Point = Field(description="ground contact point (box bottom-centre), image pixels")
    dwell_s: float = Field(0.0, ge=0, description="stay here this long after arriving (a stop)")


class Appearance(StrictModel):
    """Optional look of an actor; unset fields are drawn from the seed."""

    colour: tuple[int, int, int] | None = Field(None, description="main colour, BGR 0-255 (clothes, body paint)")
    scale: float = Field(1.0, gt=0.5, le=1.6, description="size relative to a typical object of the class")


class Actor(StrictModel):
    id: int = Field(ge=1, le=99999, description="ground-truth track id")
    class_name: ActorClass = Field(alias="class")
    path: list[Waypoint] = Field(min_length=1, description="fire/smoke: one waypoint (where and when it starts)")
    appearance: Appearance = Appearance()
    end_s: float | None = Field(
        None, gt=0, description="fire/smoke: when it goes out; others leave at their last waypoint"
    )

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)

    @model_validator(mode="after")
    def _increasing(self) -> Actor:
        for i, (prev, nxt) in enumerate(zip(self.path, self.path[1:], strict=False), start=1):
            if nxt.t < prev.t + prev.dwell_s:
                raise ValueError(
                    f"actor {self.id}: waypoint {i} (t={nxt.t}) comes before the previous one is left "
                    f"(t={prev.t} + dwell_s {prev.dwell_s}); waypoint times must increase"
                )
        return self

    @property
    def start_s(self) -> float:
        return self.path[0].t

    @property
    def stop_s(self) -> float:
        """Last moment the actor is in the scene."""
        if self.end_s is not None:
            return self.end_s
        last = self.path[-1]
        return last.t + last.dwell_s


class CameraBlock(StrictModel):
    """Zones, lines and rules in the project's camera config schema (xueliang.config.cameras)."""

    id: Identifier = "scene-cam"
    zones: list[Zone] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> CameraBlock:
        zones = {z.name for z in self.zones}
        lines = {ln.name for ln in self.lines}
        for rule in self.rules:
            zone = getattr(rule, "zone", None)
            if zone is not None and zone not in zones:
                raise ValueError(
                    f"rule {rule.name!r} names zone {zone!r}, not defined (zones: {sorted(zones) or 'none'})"
                )
            line = getattr(rule, "line", None)
            if line is not None and line not in lines:
                raise ValueError(
                    f"rule {rule.name!r} names line {line!r}, not defined (lines: {sorted(lines) or 'none'})"
                )
        return self


class ExpectedCount(StrictModel):
    """Author's check on a rule: how many incidents the trajectories must produce, and roughly when the first starts."""

    rule: Identifier
    count: int = Field(ge=0)
    first_start_s: float | None = Field(None, ge=0)
    tolerance_s: float = Field(1.0, gt=0)


class Scenario(StrictModel):
    name: str = ""
    description: str = ""
    kind: SceneKind = "village_entrance"
    lighting: Lighting = "day"
    width: int = Field(768, ge=160, le=3840, multiple_of=2)
    height: int = Field(432, ge=120, le=2160, multiple_of=2)
    fps: float = Field(10.0, gt=0, le=60)
    duration_s: float = Field(30.0, gt=0, le=3600)
    effects: Effects = Effects()
    actors: list[Actor] = Field(default_factory=list)
    camera: CameraBlock = CameraBlock()
    tags: list[str] = Field(
        default_factory=list, description="e.g. 'no-incident' for scenes where nothing must be flagged"
    )
    expect: list[ExpectedCount] = Field(default_factory=list, description="author's checks on the derived incidents")

    @field_validator("actors")
    @classmethod
    def _unique_ids(cls, actors: list[Actor]) -> list[Actor]:
        ids = [a.id for a in actors]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate actor ids: {dup}")
        return actors

    @model_validator(mode="after")
    def _hazards_static(self) -> Scenario:
        for a in self.actors:
            if a.class_name in ("fire", "smoke") and len(a.path) != 1:
                raise ValueError(f"actor {a.id} ({a.class_name}) must have exactly one waypoint (where it burns)")
            if a.class_name not in ("fire", "smoke") and a.end_s is not None:
                raise ValueError(
                    f"actor {a.id}: end_s is only for fire/smoke; other actors leave at their last waypoint"
                )
        return self

    @model_validator(mode="after")
    def _expect_names_rules(self) -> Scenario:
        rules = {r.name for r in self.camera.rules}
        for e in self.expect:
            if e.rule not in rules:
                raise ValueError(f"expect names rule {e.rule!r}, which the camera block does not define")
        return self

    @property
    def n_frames(self) -> int:
        return round(self.duration_s * self.fps)


class ScenarioError(ValueError):
    """A scenario file that cannot be read or validated; the message names the file."""


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"scenario {p}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {p}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {p}: expected a mapping at the top level")
    data.setdefault("name", p.stem)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors())
        raise ScenarioError(f"scenario {p}: {problems}") from exc


SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def public_scenarios() -> list[Path]:
    """The public scenario set shipped under scenes/scenarios/."""
    return sorted(SCENARIO_DIR.glob("*.yaml"))
