"""Event-level benchmark on real footage: the hand-labelled events of ``events.json``, scored like the scenarios.

    python bench/realfootage/events.py [--clips vtest bikes] [--fps 2] [--tolerance 2] [--runtime openvino]

Each labelled clip plays once (not looped) as one camera, sampled at ``--fps`` (2, the deployment default), through
the real detector worker on the embedded bus with the production setup (``real_world_backend``, confidence 0.25,
the motion gate, tracker and rules at their shipped defaults). The camera carries the clip's zones, lines and rules
from ``events.json``; its incidents are scored with ``detector/evaluate.py``'s ``score`` (an incident matches a
labelled event of the same rule when it is raised within ``--tolerance`` seconds of the labelled time, one to one):
the table of the scenarios (recall, precision, max |Δt|), each event's offset, the tolerance at which the set meets
the scenarios' goal (recall and precision >= 0.95) if any, and a results JSON in ``results/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sources import CLIPS

from xueliang.config._base import StrictModel
from xueliang.config.cameras import CameraConfig
from xueliang.detector.evaluate import Evaluation, Replay, first_revisions, replay, score

REPO = HERE.parents[1]
EVENTS = HERE / "events.json"
GOAL = 0.95  # the scenarios' goal for recall and precision (tests/test_detector_scenarios.py)
TOLERANCES_S = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0)


class LabelledEvent(StrictModel):
    """One event a rule is specified to raise, labelled by eye (see ``check``)."""

    rule: str
    frame: int = Field(ge=0, description="first frame of the event (events.json's event_time)")
    time_s: float = Field(ge=0, description="frame / the clip's native frame rate")
    direction: Literal["a_to_b", "b_to_a"] | None = None
    what: str
    check: str = Field(min_length=1, description="how the event was checked by eye")

    @property
    def start_s(self) -> float:
        return self.time_s


class LabelledClip(StrictModel):
    native_fps: float = Field(gt=0)
    frames: int = Field(gt=0)
    size: tuple[int, int]
    camera: dict[str, Any] = Field(description="the camera's zones, lines and rules (CameraConfig fields)")
    events: list[LabelledEvent]
    not_events: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _events_fit(self) -> LabelledClip:
        rules = {r["name"] for r in self.camera.get("rules", [])}
        for e in self.events:
            if e.rule not in rules:
                raise ValueError(f"event at frame {e.frame} names rule {e.rule!r}, not one of {sorted(rules)}")
            if e.frame >= self.frames:
                raise ValueError(f"event frame {e.frame} is past the clip's {self.frames} frames")
            if abs(e.time_s - e.frame / self.native_fps) > 1e-6:
                raise ValueError(f"event at frame {e.frame}: time_s {e.time_s} != frame / {self.native_fps}")
        return self


class EventSet(StrictModel):
    about: str
    anchor: str
    event_time: str
    method: str
    clips: dict[str, LabelledClip]


def load_events(path: Path = EVENTS) -> EventSet:
    return EventSet.model_validate(json.loads(path.read_text()))


def camera_config(name: str, clip: LabelledClip, fps: float, path: Path | None = None) -> CameraConfig:
    """The clip's camera: its labelled geometry and rules, the clip file as its source (played once)."""
    source = path if path is not None else Path(f"{name}.clip")
    return CameraConfig.model_validate(
        {
            "id": f"events-{name}",
            "village": "v1",
            "source": {"type": "file", "path": str(source), "loop": False, "realtime": False},
            "sample_fps": fps,
            **clip.camera,
        }
    )


@dataclass
class ClipReplay:
    """The clips' replay through the worker, with what the report needs of their cameras."""

    got: Replay
    camera_of: dict[str, str]  # clip -> camera id
    rates: dict[str, float]  # clip -> the rate actually sampled


def replay_clips(clips: list[str], events: EventSet, fps: float, backend: dict[str, Any]) -> ClipReplay:
    """The clips once through one detector worker on the embedded bus (:func:`xueliang.detector.evaluate.replay`)."""
    from phantoms import sampled

    from xueliang.detector.testing import minimal_settings

    cams = {name: camera_config(name, events.clips[name], fps, CLIPS[name].path()) for name in clips}
    settings = minimal_settings(
        list(cams.values()),
        # the production thresholds (deploy/config/county-production.yaml): confidence 0.25; frames are replayed
        # faster than real time, so the age limit is lifted
        detector={"backend": backend, "confidence": 0.25, "max_age_s": 1e9, "snapshot_dir": "var/bench-snapshots"},
    )
    frames = {name: sampled(name, fps)[0] for name in clips}
    # every k-th frame of the clip: the rate actually sampled (vtest at --fps 4: every 2nd of 10, 5 fps)
    rates = {name: round(1 / (f[1][0] - f[0][0]), 2) if len(f) > 1 else fps for name, f in frames.items()}
    got = replay(settings, cams, frames, "realfootage-events")
    return ClipReplay(got, {name: cam.id for name, cam in cams.items()}, rates)


def run(
    events: EventSet, clips: list[str], fps: float, backend: dict[str, Any], tolerance_s: float = 2.0
) -> tuple[Evaluation, dict[str, Any]]:
    """The clips once through one detector worker (embedded bus); their incidents scored against the labels."""
    clip_run = replay_clips(clips, events, fps, backend)
    got, camera_of = clip_run.got, clip_run.camera_of
    expected = {name: events.clips[name].events for name in clips}
    ev = score(expected, got.incidents, got.t0, camera_of, tolerance_s)
    report = {
        "fps": fps,
        "sampled_fps": clip_run.rates,
        "tolerance_s": tolerance_s,
        "frames": got.frames,
        "inferred": got.stats.frames_inferred,
        "skipped": dict(got.stats.skipped),
        "wall_s": round(got.wall_s, 1),
        "recall": round(ev.recall, 3),
        "precision": round(ev.precision, 3),
        "max_abs_dt_s": round(max((abs(o) for o in ev.totals().offsets), default=0.0), 2),
        "rules": {
            f"{clip}/{rule}": {
                "expected": s.expected,
                "raised": s.raised,
                "matched": s.matched,
                "offsets_s": [round(o, 2) for o in s.offsets],
            }
            for (clip, rule), s in sorted(ev.rules.items())
        },
        "matches": [
            {"clip": c, "rule": r, "labelled_s": round(w, 2), "raised_s": round(g, 2), "offset_s": round(g - w, 2)}
            for c, r, w, g in ev.matches
        ],
        "unmatched": ev.unmatched,
        "raised": [{"clip": c, "rule": r, "raised_s": t} for c, r, t in raised_times(got, camera_of)],
        **tolerance_sweep(expected, got, camera_of),
    }
    return ev, report


def raised_times(got: Replay, camera_of: dict[str, str]) -> list[tuple[str, str, float]]:
    """(clip, rule, seconds of clip time) of each incident's first revision."""
    clip_of_camera = {cam: name for name, cam in camera_of.items()}
    return sorted(
        (clip_of_camera[i.camera_id], i.rule, round(i.updated_at.timestamp() - got.t0[clip_of_camera[i.camera_id]], 2))
        for i in first_revisions(got.incidents).values()
        if i.camera_id in clip_of_camera
    )


def tolerance_sweep(expected: dict[str, list[Any]], got: Replay, camera_of: dict[str, str]) -> dict[str, Any]:
    """Recall and precision at each of TOLERANCES_S, in all and per clip, and the least tolerance that passes."""
    sweep = {tol: score(expected, got.incidents, got.t0, camera_of, tol) for tol in TOLERANCES_S}
    per_clip: dict[str, dict[str, Any]] = {}
    for name in expected:
        one = {name: camera_of[name]}
        evs = {tol: score({name: expected[name]}, got.incidents, got.t0, one, tol) for tol in TOLERANCES_S}
        per_clip[name] = {
            "tolerance_sweep": {str(t): [round(e.recall, 3), round(e.precision, 3)] for t, e in evs.items()},
            "passes_at_tolerance_s": next(
                (t for t, e in evs.items() if e.recall >= GOAL and e.precision >= GOAL), None
            ),
        }
    return {
        "tolerance_sweep": {
            str(tol): {"recall": round(e.recall, 3), "precision": round(e.precision, 3)} for tol, e in sweep.items()
        },
        "passes_at_tolerance_s": next(
            (tol for tol, e in sweep.items() if e.recall >= GOAL and e.precision >= GOAL), None
        ),
        "per_clip": per_clip,
    }


def main(argv: list[str] | None = None) -> None:
    from phantoms import setup_backend

    from xueliang.config.detector import real_world_backend

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    events = load_events()
    ap.add_argument("--clips", nargs="+", default=list(events.clips), choices=list(events.clips))
    ap.add_argument("--fps", type=float, default=2.0, help="frames per second sampled (deployment default 2)")
    ap.add_argument("--tolerance", type=float, default=2.0, help="seconds (the scenarios use 2)")
    ap.add_argument("--setup", default="production", choices=["production", "project"])
    ap.add_argument("--runtime", default="openvino", choices=["openvino", "onnxruntime"], help="production setup's")
    args = ap.parse_args(argv)
    backend = real_world_backend(runtime=args.runtime) if args.setup == "production" else setup_backend(args.setup)
    ev, report = run(events, args.clips, args.fps, backend, args.tolerance)
    print(ev.table("clip"))
    rates = ", ".join(f"{c} {r:g} fps" for c, r in report["sampled_fps"].items())
    print(f"max |Δt| {report['max_abs_dt_s']:.2f} s at tolerance {args.tolerance:g} s; sampled: {rates}")
    print("\nper event (labelled → raised, offset):")
    for m in report["matches"]:
        print(f"  {m['clip']}/{m['rule']}: {m['labelled_s']:.2f} s → {m['raised_s']:.2f} s ({m['offset_s']:+.2f} s)")
    for line in ev.unmatched:
        print("  ", line)
    sweep = ", ".join(f"{t} s: {v['recall']:.2f}/{v['precision']:.2f}" for t, v in report["tolerance_sweep"].items())
    print(f"\nrecall/precision by tolerance: {sweep}")
    for name, passes in [("all clips", report["passes_at_tolerance_s"])] + [
        (c, v["passes_at_tolerance_s"]) for c, v in report["per_clip"].items()
    ]:
        print(
            f"{name}: meets the scenarios' goal (recall and precision >= {GOAL}) from tolerance {passes:g} s"
            if passes is not None
            else f"{name}: does not meet the scenarios' goal (>= {GOAL}) at any tolerance up to {TOLERANCES_S[-1]:g} s"
        )
    print("(beyond 2 s a tolerance may pair an event with an unrelated incident: read the per-event offsets)")
    print(
        f"{report['frames']} frames, {report['inferred']} inferred, skipped {report['skipped']}, {report['wall_s']} s"
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%MZ")
    out = HERE / "results" / f"events-{args.setup}-{args.fps:g}fps-{stamp}.json"
    out.write_text(json.dumps({"setup": args.setup, "runtime": args.runtime, "clips": args.clips, **report}, indent=1))
    print(f"written {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
