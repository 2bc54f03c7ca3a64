"""Fire and smoke at each input size of the real-camera ensemble's fire/smoke member.

    .venv/bin/python bench/detector/hazard_sizes.py --sizes 480,416,384,320 --scenes 400

The member's cost grows with its input's area, so the smallest size that still finds the fires a rule must
act on is the one to ship. Fire and smoke exist only in generated scenes, so they are measured there: one
frame of each held-out random scenario (test seeds, 2,000,000 on, which no training or validation split
uses), at the scene's own size (768 px wide, as a camera frame), through the member as the detector runs it
(OpenVINO, the shared letterbox and NMS, the flame-colour check on fire). Reported per size and class:

* AP50 over the frames (``xueliang.detector.accuracy``);
* recall at the detector's confidence (0.25) and the rules' (0.4), by the box's height in frame pixels,
  so what a smaller input loses shows where it is lost (the far, small fires);
* the member's CPU per frame (process time, batch of 8, its own streams), measured in the same run.

Results go to bench/detector/results/hazard-sizes-*.json.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from xueliang.config.detector import HazardCheckConfig
from xueliang.detector.accuracy import average_precision
from xueliang.detector.backends import OpenVinoDetector
from xueliang.detector.hazards import verify_fire
from xueliang.detector.preprocess import canvas_shape

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
TEST_SEEDS = 2_000_000  # scripts/model_training/dataset.py: the held-out test range
HAZARDS = ("fire", "smoke")
HEIGHT_BINS = ((0, 16), (16, 32), (32, 64), (64, 10_000))


def held_out_frames(n: int) -> list[tuple[np.ndarray, dict[str, list[tuple[float, ...]]]]]:
    """(frame, {class: truth boxes}) for the held-out scenes that show fire or smoke."""
    from xueliang.scenes.random_scene import RANDOM_SNAPSHOT_S, random_scenario
    from xueliang.scenes.render import SceneRenderer
    from xueliang.scenes.training import labelled

    out = []
    for seed in range(TEST_SEEDS, TEST_SEEDS + n):
        sc = random_scenario(seed)
        frame = SceneRenderer(sc, seed).render_frame(round(RANDOM_SNAPSHOT_S * sc.fps))
        truth = {c: [b.xyxy for b in labelled(frame.boxes) if b.class_name == c] for c in HAZARDS}
        if any(truth.values()):
            out.append((frame.image, truth))
    return out


def bin_name(lo: int, hi: int) -> str:
    return f"h>={lo}px" if hi >= 10_000 else f"h{lo}-{hi}px"


def recall_by_height(per_frame: list[tuple[list[tuple[tuple[float, ...], float]], list[tuple[float, ...]]]],
                     threshold: float) -> dict[str, list[int]]:  # fmt: skip
    """{height bin: [found, truth]}: a truth box is found when a detection at ``threshold`` or more overlaps it
    by IoU 0.5 (one detection per box, best score first)."""
    from xueliang.detector.accuracy import iou_one_to_many

    counts = {bin_name(lo, hi): [0, 0] for lo, hi in HEIGHT_BINS}
    for dets, gts in per_frame:
        gt = np.asarray(gts, np.float64).reshape(-1, 4)
        taken = np.zeros(len(gt), bool)
        for box, score in sorted(dets, key=lambda d: -d[1]):
            if score < threshold or not len(gt):
                continue
            overlap = iou_one_to_many(box, gt)
            overlap[taken] = -1.0
            best = int(overlap.argmax())
            if overlap[best] >= 0.5:
                taken[best] = True
        for box, hit in zip(gt, taken, strict=True):
            h = box[3] - box[1]
            name = next(bin_name(lo, hi) for lo, hi in HEIGHT_BINS if lo <= h < hi)
            counts[name][0] += int(hit)
            counts[name][1] += 1
    return counts


def cpu_ms_per_frame(member: OpenVinoDetector, images: list[np.ndarray], rounds: int = 5) -> float:
    batch = images[:8]
    member.predict(batch)
    t0 = time.process_time()
    for _ in range(rounds):
        member.predict(batch)
    return (time.process_time() - t0) / rounds / len(batch) * 1000


def measure(model: Path, size: int, frames: list, threads: int) -> dict:
    member = OpenVinoDetector(model, size, 0.001, 0.45, threads, "auto", threads)
    check = HazardCheckConfig()
    per_class: dict[str, list] = {c: [] for c in HAZARDS}
    for i in range(0, len(frames), 8):
        chunk = frames[i : i + 8]
        for (image, truth), dets in zip(chunk, member.predict([f for f, _ in chunk]), strict=True):
            names = [member.names[int(c)] for c in dets.class_id]
            keep = verify_fire(dets, names, image, 1.0, check)
            for c in HAZARDS:
                found = [
                    (tuple(float(v) for v in box), float(s))
                    for box, s, n, k in zip(dets.xyxy, dets.confidence, names, keep, strict=True)
                    if n == c and k
                ]
                per_class[c].append((found, truth[c]))
    h, w = frames[0][0].shape[:2]
    out: dict = {"imgsz": size, "canvas": list(member.fixed_canvas or canvas_shape(h, w, size)), "classes": {}}
    for c in HAZARDS:
        ap = average_precision(per_class[c])
        out["classes"][c] = {
            "ap50": round(ap.ap, 3),
            "truth": ap.ground_truth,
            "recall_by_height@0.25": recall_by_height(per_class[c], 0.25),
            "recall_by_height@0.4": recall_by_height(per_class[c], 0.4),
        }
    out["cpu_ms_per_frame"] = round(cpu_ms_per_frame(member, [f for f, _ in frames]), 2)
    member.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "detector/models/xueliang-yolo-n-real.onnx")
    ap.add_argument("--sizes", default="480,416,384,320")
    ap.add_argument(
        "--scenes", type=int, default=400, help="held-out random scenarios rendered (those with fire/smoke kept)"
    )
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    frames = held_out_frames(args.scenes)
    print(f"{len(frames)} of {args.scenes} held-out scenes show fire or smoke", flush=True)
    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        r = measure(args.model, size, frames, args.threads)
        runs.append(r)
        cells = "  ".join(
            f"{c} AP50 {r['classes'][c]['ap50']:.3f} "
            + " ".join(f"{k} {v[0]}/{v[1]}" for k, v in r["classes"][c]["recall_by_height@0.4"].items())
            for c in HAZARDS
        )
        print(f"imgsz {size}: {r['cpu_ms_per_frame']:.2f} ms CPU/frame  {cells}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%MZ")
    path = RESULTS / f"hazard-sizes-{stamp}.json"
    path.write_text(json.dumps({"at": stamp, "args": {**vars(args), "model": str(args.model)}, "frames": len(frames),
                                "runs": runs}, indent=1) + "\n")  # fmt: skip
    print(f"-> {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
