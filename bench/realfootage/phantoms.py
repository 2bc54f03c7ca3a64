"""Phantom alarms on real footage: the detector worker with a given setup over held-out real clips, looped.

    python bench/realfootage/phantoms.py [--minutes 10] [--clips vtest tree bikes carphone] [--setup production]

Each clip plays as one camera sampled at ``--fps`` (2, the deployment default), looped to ``--minutes`` of
capture time, through the real worker on the embedded bus (motion gate, decode, backend, class filter, fire
colour check, tracker, rules). The camera's rules know every class a county's rules use, so the class filter
hides nothing: a fire/smoke rule over the whole frame, a line-crossing rule for bicycles, motorbikes, cars and
trucks, and an intrusion rule for people. None of the clips holds a fire or smoke, so every fire_smoke
incident is a phantom; bicycle/motorbike detections reaching the rules are phantoms on vtest, which has none.

Setups: ``production`` (the real-world ensemble: ``xueliang.config.detector.real_world_backend``) and
``project`` (the project's model alone, the generated-scene setup).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sources import CLIPS, read_frames

from xueliang.config.detector import DEFAULT_MODEL, real_world_backend

REPO = HERE.parents[1]


def setup_backend(name: str) -> dict[str, Any]:
    if name == "production":
        return real_world_backend()
    if name == "project":
        return {"type": "onnxruntime", "model": str(DEFAULT_MODEL)}
    raise SystemExit(f"unknown setup {name!r}")


def clip_camera(clip: str, width: int, height: int) -> dict[str, Any]:
    w, h = width, height
    return {
        "id": f"real-{clip}",
        "source": {"type": "file", "path": str(CLIPS[clip].path())},
        "sample_fps": 2,
        "zones": [{"name": "frame", "polygon": [[0, 0], [w, 0], [w, h], [0, h]]}],
        "lines": [{"name": "across", "a": [0, int(h * 0.6)], "b": [w, int(h * 0.6)]}],
        "rules": [
            {"type": "fire_smoke", "name": "fire", "zone": "frame"},
            {
                "type": "line_crossing",
                "name": "vehicles",
                "line": "across",
                "classes": ["bicycle", "motorbike", "car", "truck"],
            },
            {"type": "intrusion", "name": "people", "zone": "frame", "classes": ["person"]},
        ],
    }


def sampled(clip: str, fps: float) -> tuple[list[tuple[float, Any]], float]:
    """The clip's frames at ``fps`` as (seconds into the clip, image), and the clip's length in seconds."""
    path = CLIPS[clip].path()
    cap = cv2.VideoCapture(str(path))
    native = cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.release()
    step = max(1, round(native / fps))
    frames = [(i / native, img) for i, img in read_frames(path) if i % step == 0]
    return frames, (frames[-1][0] + step / native) if frames else 0.0


def run(clips: list[str], minutes: float, fps: float, backend: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from xueliang.bus.memory import MemoryBus
    from xueliang.config.cameras import CameraConfig
    from xueliang.contracts import Incident, topic_specs
    from xueliang.detector import metrics
    from xueliang.detector.evaluate import read_incidents, run_worker
    from xueliang.detector.testing import minimal_settings, publish_frames
    from xueliang.detector.tracking import ByteTracker
    from xueliang.detector.worker import DetectorWorker

    results: dict[str, dict[str, Any]] = {}
    for clip in clips:
        frames, length = sampled(clip, fps)
        h, w = frames[0][1].shape[:2]
        cam = clip_camera(clip, w, h)
        settings = minimal_settings(
            [cam],
            # the production thresholds (deploy/config/county-production.yaml): confidence 0.25
            detector={"backend": backend, "confidence": 0.25, "max_age_s": 1e9, "snapshot_dir": "var/bench-snapshots"},
        )
        # every frame is published before the worker starts, so no retention.bytes-like trim: with the default
        # 64 MiB per partition a long clip loses its oldest frames unread (vtest at 10 fps: 40 of 795)
        bus = MemoryBus(max_partition_bytes=None)
        bus.ensure_topics(topic_specs(settings.bus.topics))
        worker = DetectorWorker(settings, bus, worker_id=f"phantoms-{clip}")
        loops = max(1, round(minutes * 60 / length))
        timeline = [(k * length + t, img) for k in range(loops) for t, img in frames]
        before = {s.labels["class_name"] + "/" + s.labels["outcome"]: s.value
                  for m in metrics.DETECTIONS.collect() for s in m.samples if s.name.endswith("_total")}  # fmt: skip
        n = publish_frames(
            bus.producer(), settings.bus.topics.frames, CameraConfig.model_validate({**cam, "village": "v1"}),
            timeline, time.time() - loops * length - 60,  # capture times in the past: the contract refuses the future
        )  # fmt: skip
        # what the tracker is fed, with scores (the rules act on a track's median score >= min_confidence 0.4)
        fed: dict[str, int] = {}
        original_update = ByteTracker.update

        def counting_update(tracker, dets, ts):  # type: ignore[no-untyped-def]
            names = worker.class_names_of[None]
            for c, score in zip(dets.class_id, dets.confidence, strict=True):
                if score >= 0.4:
                    key = names.get(int(c), "?")
                    fed[key] = fed.get(key, 0) + 1
            return original_update(tracker, dets, ts)

        ByteTracker.update = counting_update  # type: ignore[method-assign]
        try:
            wall = run_worker(worker, n)
        finally:
            ByteTracker.update = original_update  # type: ignore[method-assign]
        incidents: dict[str, Incident] = {}
        for inc in read_incidents(bus, settings.bus.topics.incidents, f"phantoms-{clip}", idle_s=0.5):
            incidents[inc.id] = inc
        hours = loops * length / 3600
        by_type: dict[str, int] = {}
        for inc in incidents.values():
            by_type[inc.rule_type] = by_type.get(inc.rule_type, 0) + 1
        after = {s.labels["class_name"] + "/" + s.labels["outcome"]: s.value
                 for m in metrics.DETECTIONS.collect() for s in m.samples if s.name.endswith("_total")}  # fmt: skip
        detections = {k: int(v - before.get(k, 0)) for k, v in after.items() if v - before.get(k, 0) > 0}
        results[clip] = {
            "camera_hours": round(hours, 4),
            "frames": n,
            "inferred": worker.stats.frames_inferred,
            "incidents": by_type,
            "per_camera_hour": {k: round(v / hours, 1) for k, v in by_type.items()},
            "detections": detections,
            "fed_at_0_4": fed,
            "wall_s": round(wall, 1),
        }
        print(clip, json.dumps(results[clip]), flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=[c for c, v in CLIPS.items() if v.role == "test"])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--setup", default="production", choices=["production", "project"])
    args = ap.parse_args()
    results = run(args.clips, args.minutes, args.fps, setup_backend(args.setup))
    print(f"\nsetup {args.setup}: incidents per camera-hour by rule type (fire_smoke: every one is a phantom)")
    print(
        "| clip | camera-hours | fire_smoke | line_crossing | intrusion | bicycle+motorbike detections to the "
        "tracker (score >= 0.25 / >= 0.4) |"
    )
    print("|---|---|---|---|---|---|")
    for clip, r in results.items():
        p = r["per_camera_hour"]
        two = sum(v for k, v in r["detections"].items() if k in ("bicycle/kept", "motorbike/kept"))
        two4 = sum(v for k, v in r["fed_at_0_4"].items() if k in ("bicycle", "motorbike"))
        print(
            f"| {clip} | {r['camera_hours']} | {p.get('fire_smoke', 0)} | {p.get('line_crossing', 0)} | "
            f"{p.get('intrusion', 0)} | {two} / {two4} |"
        )
    out = HERE / "results" / f"phantoms-{args.setup}-{datetime.now(UTC).strftime('%Y%m%dT%H%MZ')}.json"
    out.write_text(json.dumps({"setup": args.setup, "minutes": args.minutes, "fps": args.fps, "results": results}))
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
