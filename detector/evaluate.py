"""Score the detector against the scene generator's ground truth: event recall, precision, timing.

An incident (deduplicated by id) matches an expected incident of the same scenario and rule when
the moment it was raised (``updated_at`` of its first revision, in scene time) is within
``tolerance_s`` of the expected start; matching is one-to-one, an optimal assignment (:func:`pair_within`).

    .venv/bin/python -m xueliang.detector.evaluate            # every public scenario, embedded bus
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import yaml

from xueliang.bus.base import Bus
from xueliang.config.cameras import CameraConfig
from xueliang.contracts import Incident
from xueliang.geometry import as_box
from xueliang.scenes.scenario import Scenario, load_scenario, public_scenarios

if TYPE_CHECKING:
    from xueliang.config import Settings
    from xueliang.detector.worker import DetectorWorker, WorkerStats

DEFAULT_SAMPLE_FPS = 4.0
# capture time of the first scenario's t=0: fixed (reproducible ids) and in the past (the frame contract
# refuses capture times more than a day ahead of the reader's clock)
EVAL_T0 = 1_700_000_000.0


def scenario_camera(scenario: Scenario, name: str) -> CameraConfig:
    """The camera config a scenario's ``camera:`` block describes (id made unique by the scenario name)."""
    block = scenario.camera
    cam_id = block.id if block.id != "scene-cam" else f"scene-{name}"
    return CameraConfig.model_validate(
        {
            "id": cam_id,
            "source": {"type": "scene", "scenario": f"{name}.yaml"},
            "zones": [z.model_dump() for z in block.zones],
            "lines": [ln.model_dump() for ln in block.lines],
            "rules": [r.model_dump() for r in block.rules],
        }
    )


def scenario_frames(scenario: Scenario, seed: int, sample_fps: float) -> Iterable[tuple[float, np.ndarray]]:
    from xueliang.scenes.render import SceneRenderer

    for f in SceneRenderer(scenario, seed).frames(fps=min(sample_fps, scenario.fps)):
        yield f.t, f.image


class Expected(Protocol):
    """An expected incident: the rule that should raise it and when (seconds after the source's t=0);
    the scene generator's ``ExpectedIncident`` and the real-footage labels both fit."""

    @property
    def rule(self) -> str: ...

    @property
    def start_s(self) -> float: ...


@dataclass
class RuleScore:
    expected: int = 0
    raised: int = 0
    matched: int = 0
    offsets: list[float] = field(default_factory=list)


@dataclass
class Evaluation:
    rules: dict[tuple[str, str], RuleScore]  # (scenario, rule) → score
    unmatched: list[str]
    # each match: (scenario, rule, expected start, moment raised), seconds after the scenario's t=0
    matches: list[tuple[str, str, float, float]] = field(default_factory=list)

    def totals(self) -> RuleScore:
        t = RuleScore()
        for s in self.rules.values():
            t.expected += s.expected
            t.raised += s.raised
            t.matched += s.matched
            t.offsets += s.offsets
        return t

    @property
    def recall(self) -> float:
        t = self.totals()
        return t.matched / t.expected if t.expected else 1.0

    @property
    def precision(self) -> float:
        t = self.totals()
        return t.matched / t.raised if t.raised else 1.0

    def table(self, source: str = "scenario") -> str:
        """The markdown table; ``source`` names the first column (a scenario, a real clip)."""
        lines = [f"| {source} | rule | expected | raised | matched | max |Δt| s |", "|---|---|---|---|---|---|"]
        for (sc, rule), s in sorted(self.rules.items()):
            dt = f"{max(abs(o) for o in s.offsets):.2f}" if s.offsets else "-"
            lines.append(f"| {sc} | {rule} | {s.expected} | {s.raised} | {s.matched} | {dt} |")
        t = self.totals()
        lines.append(
            f"| **all** | | {t.expected} | {t.raised} | {t.matched} | "
            f"{max((abs(o) for o in t.offsets), default=0):.2f} |"
        )
        lines.append(f"recall {self.recall:.3f}, precision {self.precision:.3f}")
        return "\n".join(lines)


def first_revisions(incidents: Iterable[Incident]) -> dict[str, Incident]:
    """Each incident (by id) as first raised: its lowest revision."""
    first: dict[str, Incident] = {}
    for inc in incidents:
        if inc.id not in first or inc.revision < first[inc.id].revision:
            first[inc.id] = inc
    return first


def pair_within(raised: np.ndarray, wanted: np.ndarray, tolerance_s: float) -> list[tuple[int, int]]:
    """One-to-one pairs (raised index, wanted index) within ``tolerance_s`` of each other: as many pairs as any
    assignment can make, and among those the smallest total |Δt| (an optimal assignment, as CLEAR-MOT scoring
    does; pairing nearest-first can leave two events unpaired that an incident each would match)."""
    if not len(raised) or not len(wanted):
        return []
    from scipy.optimize import linear_sum_assignment

    dt = np.abs(raised[:, None] - wanted[None, :])
    # a pair beyond the tolerance costs more than every feasible pair together: the count of pairs comes first
    cost = np.where(dt <= tolerance_s, dt, tolerance_s * (dt.size + 1) + 1.0)
    rows, cols = linear_sum_assignment(cost)
    return sorted((int(r), int(c)) for r, c in zip(rows, cols, strict=True) if dt[r, c] <= tolerance_s)


def score(
    expected: Mapping[str, Sequence[Expected]],
    incidents: Sequence[Incident],
    t0: Mapping[str, float],
    camera_of: Mapping[str, str],
    tolerance_s: float = 2.0,
) -> Evaluation:
    """``expected``: scenario (or clip) → expected incidents; ``t0``: scenario → capture time of its t=0;
    ``camera_of``: scenario → the id of the camera that shows it."""
    first = first_revisions(incidents)
    scenario_of_camera = {cam: sc for sc, cam in camera_of.items()}
    rules: dict[tuple[str, str], RuleScore] = defaultdict(RuleScore)
    raised: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for inc in first.values():
        sc = scenario_of_camera.get(inc.camera_id)
        if sc is None:
            continue
        raised[(sc, inc.rule)].append((inc.updated_at.timestamp() - t0[sc], inc.id))
    for sc, exp in expected.items():
        for e in exp:
            rules[(sc, e.rule)].expected += 1
    unmatched: list[str] = []
    matches: list[tuple[str, str, float, float]] = []
    for key in set(raised) | {k for k in rules}:
        got = sorted(raised.get(key, []))
        rules[key].raised = len(got)
        want = sorted(e.start_s for e in expected.get(key[0], []) if e.rule == key[1])
        used_g, used_w = set(), set()
        for gi, wi in pair_within(np.array([g for g, _ in got]), np.array(want), tolerance_s):
            used_g.add(gi)
            used_w.add(wi)
            rules[key].matched += 1
            rules[key].offsets.append(got[gi][0] - want[wi])
            matches.append((key[0], key[1], want[wi], got[gi][0]))
        unmatched += [
            f"{key[0]}/{key[1]}: raised at {got[i][0]:.2f}s, nothing expected near"
            for i in range(len(got))
            if i not in used_g
        ]
        unmatched += [
            f"{key[0]}/{key[1]}: expected at {want[i]:.2f}s, not raised" for i in range(len(want)) if i not in used_w
        ]
    return Evaluation(dict(rules), unmatched, sorted(matches))


def render(scenario: Scenario, seed: int, sample_fps: float, quality: int = 90) -> list[tuple[float, bytes, list]]:
    """Frames of a scenario at ``sample_fps`` as (scene t, JPEG bytes, ground-truth boxes)."""
    import cv2

    from xueliang.scenes.render import SceneRenderer

    out = []
    for f in SceneRenderer(scenario, seed).frames(fps=min(sample_fps, scenario.fps)):
        ok, buf = cv2.imencode(".jpg", f.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError(f"JPEG encoding of frame {f.index} failed")
        out.append((f.t, buf.tobytes(), f.boxes))
    return out


def oracle_incidents(
    scenario: Scenario, name: str, frames: Iterable[tuple[float, list]], t0: float, min_visible: float = 0.3
) -> list[Incident]:
    """Tracker + rules fed with the renderer's ground-truth boxes (``frames``: scene t, boxes) instead of
    a network: checks the rule semantics against the truth timeline independently of the model."""
    from zoneinfo import ZoneInfo

    import numpy as np

    from xueliang.config.detector import DetectorConfig
    from xueliang.contracts import utc_from_ts
    from xueliang.detector.rules import CameraRules, FrameView, RawDetection, TrackedObject, local_time
    from xueliang.detector.tracking import ByteTracker
    from xueliang.detector.types import Detections
    from xueliang.scenes.classes import CLASS_NAMES

    cfg = DetectorConfig()
    tz = ZoneInfo(cfg.timezone)
    cam = scenario_camera(scenario, name)
    tracker, rules = ByteTracker(cfg.tracker), CameraRules(cam, cfg.episode_grace_s)
    out: list[Incident] = []
    for t, gt in frames:
        boxes = [b for b in gt if b.visible_fraction >= min_visible]
        dets = Detections(
            np.asarray([b.xyxy for b in boxes], np.float32).reshape(-1, 4),
            np.full(len(boxes), 0.9, np.float32),
            np.asarray([b.class_id for b in boxes], np.int32),
        )
        ts = t0 + t
        tracker.update(dets, ts)
        objects = tuple(
            TrackedObject(
                tr.track_id,
                CLASS_NAMES[tr.class_id],
                as_box(tr.xyxy),
                tr.median_score,
                tr.confirmed,
                tr.seen_now,
            )
            for tr in tracker.tracks
        )
        raw = tuple(RawDetection(b.class_name, b.xyxy, 0.9) for b in boxes)
        for ev in rules.step(FrameView(ts, local_time(ts, tz), objects, raw)):
            out.append(
                Incident(
                    id=ev.incident_id,
                    camera_id=cam.id,
                    rule=ev.rule_name,
                    rule_type=ev.rule_type,
                    severity="general",
                    started_at=utc_from_ts(ev.started_ts),
                    updated_at=utc_from_ts(ev.ts),
                    revision=ev.revision,
                    details=ev.details,
                )
            )
    return out


def run_worker(worker: DetectorWorker, n_frames: int) -> float:
    """Run ``worker`` in a thread until it has handled ``n_frames`` published frames, then stop it;
    returns the wall time in seconds."""
    stop = threading.Event()
    th = threading.Thread(target=worker.run, args=(stop,))
    started = time.perf_counter()
    th.start()
    while sum(worker.done.values()) < n_frames:
        time.sleep(0.1)
    stop.set()
    th.join()
    return time.perf_counter() - started


def read_incidents(bus: Bus, topic: str, group: str, idle_s: float = 2.0) -> list[Incident]:
    consumer = bus.consumer(group, [topic], offset_reset="earliest", client_id=group)
    out: list[Incident] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s:
            recs = consumer.poll(timeout=0.2)
            if recs:
                last = time.monotonic()
                out += [Incident.from_bytes(r.value) for r in recs]
    finally:
        consumer.close()
    return out


@dataclass
class Replay:
    """What one replay of recorded sources through a detector worker gave."""

    incidents: list[Incident]
    t0: dict[str, float]  # source (scenario or clip) -> capture time of its t=0
    frames: int
    stats: WorkerStats
    wall_s: float


def replay(
    settings: Settings,
    cams: Mapping[str, CameraConfig],
    frames: Mapping[str, Iterable[tuple[float, np.ndarray]]],
    worker_id: str,
) -> Replay:
    """Every source's frames (its camera ``cams[name]``) published on a fresh embedded bus, then one detector
    worker over all of them; the incidents it raised. Capture times start at :data:`EVAL_T0`, 10,000 s apart per
    source (fixed and in the past: reproducible incident ids)."""
    from xueliang.bus.memory import MemoryBus
    from xueliang.contracts import topic_specs
    from xueliang.detector.testing import publish_frames
    from xueliang.detector.worker import DetectorWorker

    # every frame is published before the worker starts, so no retention.bytes-like trim: with the default
    # 64 MiB per partition a long clip loses its oldest frames unread (vtest at 10 fps: 40 of 795)
    bus = MemoryBus(max_partition_bytes=None)
    bus.ensure_topics(topic_specs(settings.bus.topics))
    worker = DetectorWorker(settings, bus, worker_id=worker_id)
    producer = bus.producer()
    t0: dict[str, float] = {}
    n = 0
    for name, source in frames.items():
        t0[name] = EVAL_T0 + 10_000 * len(t0)
        n += publish_frames(producer, settings.bus.topics.frames, cams[name], source, t0[name])
    wall = run_worker(worker, n)
    incidents = read_incidents(bus, settings.bus.topics.incidents, f"{worker_id}-reader", idle_s=0.5)
    return Replay(incidents, t0, n, worker.stats, wall)


def main(argv: list[str] | None = None) -> None:
    from xueliang.detector.testing import minimal_settings
    from xueliang.scenes.truth import expected_incidents

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--fps", type=float, default=DEFAULT_SAMPLE_FPS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", type=Path, default=None, help="ONNX model (default: the config's)")
    ap.add_argument("--roi", action="store_true", help="infer on crops around motion and tracks")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra detector settings, e.g. --set confidence=0.1 --set tracker.high_score=0.3",
    )
    args = ap.parse_args(argv)
    paths = args.scenarios or public_scenarios()
    scenarios = {p.stem: load_scenario(p) for p in paths}
    cams = {name: scenario_camera(sc, name) for name, sc in scenarios.items()}
    detector: dict = {"max_age_s": 1e9, "snapshot_dir": "var/eval-snapshots"}
    if args.model:
        detector["backend"] = {"type": "onnxruntime", "model": str(args.model)}
    detector["roi_crops"] = args.roi
    for item in args.set:
        key, value = item.split("=", 1)
        *parents, leaf = key.split(".")
        node = detector
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    settings = minimal_settings(list(cams.values()), detector=detector)
    frames = {name: scenario_frames(sc, args.seed, args.fps) for name, sc in scenarios.items()}
    got = replay(settings, cams, frames, "eval")
    ev = score(
        {name: expected_incidents(sc) for name, sc in scenarios.items()},
        got.incidents,
        got.t0,
        {name: cam.id for name, cam in cams.items()},
    )
    print(ev.table())
    zoom = f", {got.stats.zoom_crops} zoom crops" if got.stats.zoom_crops else ""
    print(f"{got.frames} frames, {got.stats.frames_inferred} inferred{zoom}, {got.wall_s:.1f}s")
    for line in ev.unmatched:
        print("  ", line)


if __name__ == "__main__":
    main()
