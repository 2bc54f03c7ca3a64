"""Every shipped model on hand-checked real frames: per-class AP50, phantom detections, speed, same run.

    python bench/realfootage/bench_models.py [--models detector/models/a.onnx ...] [--threads 2]

Ground truth: ``labels.json`` (see ``label.py``): 154 frames of three real clips (vtest, bikes, carphone),
classes person, vehicle (car, truck, bus), two_wheeler (bicycle, motorbike). Each model's classes go through
the production class map (COCO ``motorcycle`` -> motorbike, ``bus`` -> truck) and then to those three.
Phantoms: detections per frame at score >= 0.4 (the rules' default) of classes that are not in the clip at
all: bicycle, motorbike, fire, smoke on vtest (people and a parked van only), anything on tree (no objects).
Speed: median wall time of one frame through the backend (letterbox, network, NMS) at the model's own input
size, every model measured in this run, one after another, on the same frames.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from label import EVAL_CLASS, EVAL_CLASSES
from sources import CLIPS, read_frames

from xueliang.detector.accuracy import average_precision
from xueliang.detector.backends import InferenceBackend, OnnxRuntimeDetector, OpenVinoDetector

REPO = HERE.parents[1]
MODELS = REPO / "detector" / "models"
DEFAULT_MODELS = [MODELS / "xueliang-yolo-n.onnx", MODELS / "coco-nanodet.onnx", MODELS / "coco-centernet.onnx"]
PRODUCTION_MAP = {"motorcycle": "motorbike", "bus": "truck"}
PHANTOM_CLASSES = ("bicycle", "motorbike", "fire", "smoke")


def project_name(model_name: str) -> str:
    return PRODUCTION_MAP.get(model_name, model_name)


def load(path: Path, runtime: str, conf: float, threads: int) -> InferenceBackend:
    if runtime == "onnxruntime":
        return OnnxRuntimeDetector(path, None, conf, 0.6, threads)
    return OpenVinoDetector(path, None, conf, 0.6, threads, runtime.split("-")[1])


def run_model(path: Path, threads: int, frames: dict[str, dict[int, np.ndarray]], labels: dict, runtime: str) -> dict:
    det = load(path, runtime, 0.05, threads)
    names = {i: project_name(n) for i, n in det.names.items()}
    per_class: dict[str, list] = {c: [] for c in EVAL_CLASSES}
    times: list[float] = []
    for clip, by_index in frames.items():
        for idx, image in by_index.items():
            started = time.perf_counter()
            d = det.infer([image])[0]
            times.append(time.perf_counter() - started)
            gt = labels[clip]["frames"][str(idx)]
            for cls in EVAL_CLASSES:
                dets = [
                    (box.tolist(), float(s))
                    for box, s, c in zip(d.xyxy, d.confidence, d.class_id, strict=True)
                    if EVAL_CLASS.get(names[int(c)]) == cls
                ]
                per_class[cls].append((dets, [g[:4] for g in gt if g[4] == cls]))
    ap = {}
    for cls, rows in per_class.items():
        score = average_precision(rows)
        ap[cls] = {"ap50": round(score.ap, 3), "ground_truth": score.ground_truth, "recall": round(score.recall, 3)}
    return {"ap50": ap, "ms_per_frame": round(1000 * statistics.median(times), 2), "imgsz": det.imgsz}


def phantoms(path: Path, threads: int, clip: str, step: int, runtime: str) -> dict:
    det = load(path, runtime, 0.4, threads)
    names = {i: project_name(n) for i, n in det.names.items()}
    counts: dict[str, int] = {}
    n = 0
    for _, image in read_frames(CLIPS[clip].path(), list(range(0, 10_000, step))):
        n += 1
        for c in det.infer([image])[0].class_id:
            name = names[int(c)]
            if clip == "tree" or name in PHANTOM_CLASSES:
                counts[name] = counts.get(name, 0) + 1
    return {"frames": n, "per_frame": {k: round(v / n, 3) for k, v in sorted(counts.items())}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", type=Path, default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--runtimes", nargs="+", default=["onnxruntime"], choices=["onnxruntime", "openvino-f32", "openvino-bf16"]
    )
    ap.add_argument("--phantom-step", type=int, default=5, help="every n-th frame of vtest and tree")
    args = ap.parse_args()
    labels = json.loads((HERE / "labels.json").read_text())
    frames = {
        clip: dict(read_frames(CLIPS[clip].path(), sorted(int(i) for i in data["frames"])))
        for clip, data in labels.items()
    }
    results = {}
    for model in args.models:
        for runtime in args.runtimes:
            r = run_model(model, args.threads, frames, labels, runtime)
            r["phantoms_vtest"] = phantoms(model, args.threads, "vtest", args.phantom_step, runtime)
            r["phantoms_tree"] = phantoms(model, args.threads, "tree", args.phantom_step, runtime)
            name = model.name if runtime == "onnxruntime" else f"{model.name} ({runtime})"
            results[name] = r
            print(name, json.dumps(r), flush=True)
    print()
    print(
        "| model | input | person AP50 | vehicle AP50 | two-wheeler AP50 | ms / frame | frames/s | vtest phantoms / frame (>= 0.4) | tree phantoms / frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        a = r["ap50"]
        pv = ", ".join(f"{k} {v}" for k, v in r["phantoms_vtest"]["per_frame"].items()) or "none"
        pt = ", ".join(f"{k} {v}" for k, v in r["phantoms_tree"]["per_frame"].items()) or "none"
        print(
            f"| {name} | {r['imgsz']} | {a['person']['ap50']:.3f} | {a['vehicle']['ap50']:.3f} | "
            f"{a['two_wheeler']['ap50']:.3f} | {r['ms_per_frame']} | {1000 / r['ms_per_frame']:.1f} | {pv} | {pt} |"
        )
    out = HERE / "results" / f"models-{datetime.now(UTC).strftime('%Y%m%dT%H%MZ')}.json"
    out.write_text(json.dumps({"host": platform.node(), "threads": args.threads, "results": results}, indent=1))
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
