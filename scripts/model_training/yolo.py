"""Training, shipping and evaluating the YOLO model (ultralytics, CPU), and choosing its inference size."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from model_training.paths import MODELS, RUNS


def cmd_train(a: argparse.Namespace) -> None:
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(a.threads)
    data = Path(a.out) / "data.yaml"
    if not data.exists():
        raise SystemExit(f"{data} is missing: run the dataset step first")
    if a.with_real:  # generated scenes plus the real hard negatives (``real`` step)
        real = Path(a.real_out) / "images" / "train"
        if not real.is_dir():
            raise SystemExit(f"{real} is missing: run the real step first")
        data = Path(a.out) / "data-real.yaml"
        text = (Path(a.out) / "data.yaml").read_text()
        data.write_text(text.replace("train: images/train", f"train: [images/train, {real}]"))
    model = YOLO(a.model_yaml)
    t0 = time.time()
    model.train(
        data=str(data),
        epochs=a.epochs,
        imgsz=a.imgsz,
        batch=a.batch,
        workers=a.workers,
        device="cpu",
        seed=a.seed,
        deterministic=True,
        project=str(RUNS),
        name=a.name,
        exist_ok=True,
        pretrained=a.init_weights or False,
        amp=False,
        plots=False,
        close_mosaic=a.close_mosaic,
        patience=0,
        cache=a.cache,
        verbose=False,
        optimizer="AdamW",
        lr0=a.lr0,
        warmup_epochs=a.warmup_epochs,
        fliplr=0.5,
        mosaic=1.0,
        scale=0.3,
        translate=0.1,
        hsv_h=0.01,
        hsv_s=0.5,
        hsv_v=0.3,
        val=True,
        fraction=a.fraction,
        **({"time": a.time} if a.time else {}),
    )
    print(f"training took {time.time() - t0:.0f} s")
    best = RUNS / a.name / "weights" / "best.pt"
    if a.ship:
        ship(best, a.imgsz, a.ship_name)


def ship(best: Path, imgsz: int, name: str = "xueliang-yolo-n") -> None:
    from ultralytics import YOLO

    MODELS.mkdir(parents=True, exist_ok=True)
    # dynamic batch, height and width: the backends batch frames and give each batch a rectangular,
    # stride-aligned canvas (a 16:9 camera at 320 px runs 320x192, not the 320x320 square)
    onnx = Path(YOLO(str(best)).export(format="onnx", imgsz=imgsz, opset=12, dynamic=True, simplify=False))
    shutil.copy(best, MODELS / f"{name}.pt")
    shutil.copy(onnx, MODELS / f"{name}.onnx")
    print(f"shipped {MODELS / f'{name}.pt'} and {MODELS / f'{name}.onnx'}")


def cmd_ship(a: argparse.Namespace) -> None:
    ship(Path(a.weights), a.imgsz, a.ship_name)


def validate(weights: str, data: Path, imgsz: int, name: str) -> Any:
    """``ultralytics val`` of ``weights`` on ``data`` at ``imgsz`` (CPU, batch 16), under runs/``name``."""
    from ultralytics import YOLO

    return YOLO(weights).val(
        data=str(data),
        imgsz=imgsz,
        batch=16,
        device="cpu",
        workers=0,
        plots=False,
        project=str(RUNS),
        name=name,
        exist_ok=True,
        verbose=False,
    )


def cmd_test(a: argparse.Namespace) -> None:
    import torch

    from xueliang.scenes.classes import CLASS_NAMES

    torch.set_num_threads(a.threads)
    results: dict[str, Any] = {}
    for split in ("test", "test_day", "test_night"):
        m = validate(a.weights, Path(a.out) / f"{split}.yaml", a.imgsz, f"val-{split}")
        per_class = {
            CLASS_NAMES[int(c)]: {"map50": round(float(m.box.ap50[i]), 4), "map50_95": round(float(m.box.ap[i]), 4)}
            for i, c in enumerate(m.box.ap_class_index)
        }
        results[split] = {
            "map50": round(float(m.box.map50), 4),
            "map50_95": round(float(m.box.map), 4),
            "precision": round(float(m.box.mp), 4),
            "recall": round(float(m.box.mr), 4),
            "per_class": per_class,
            "speed_ms": {k: round(v, 2) for k, v in m.speed.items()},
        }
    onnx = Path(a.weights).with_suffix(".onnx")
    if onnx.exists():
        bench = onnx_bench(onnx, a.imgsz, a.threads)
        (RUNS / "onnx-bench.json").write_text(json.dumps(bench))
        results["onnx_bench"] = bench
    out = RUNS / "heldout-metrics.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def onnx_bench(onnx: Path, imgsz: int, threads: int) -> dict[str, float | int]:
    """ONNX Runtime inference time of one imgsz x imgsz input: median and min of 50 runs after 10 warm-ups."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    name = sess.get_inputs()[0].name
    times = []
    for _ in range(60):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "median_ms": round(float(np.median(times[10:])), 2),
        "min_ms": round(float(np.min(times[10:])), 2),
        "threads": threads,
    }


def cmd_sizes(a: argparse.Namespace) -> None:
    """Choose the inference size on the val split, never the test split: the smallest size whose val mAP50
    is within ``--size-tolerance`` of the best one (a larger input costs compute by its square).

    A model trained at one size may find small objects better a little larger: the stride-8 head then sees
    them over more cells. Writes runs/inference-size.json, which ``card`` prints; ship at the chosen size."""
    import torch

    torch.set_num_threads(a.threads)
    rows = []
    for imgsz in (int(s) for s in a.sizes.split(",")):
        m = validate(a.weights, Path(a.out) / "data.yaml", imgsz, "val-sizes")
        rows.append({"imgsz": imgsz, "map50": round(float(m.box.map50), 4), "map50_95": round(float(m.box.map), 4)})
        print(json.dumps(rows[-1]), flush=True)
    best = max(r["map50"] for r in rows)
    chosen = min(r["imgsz"] for r in rows if r["map50"] >= best - a.size_tolerance)
    report = {
        "split": "val",
        "data": str(Path(a.out) / "data.yaml"),
        "tolerance": a.size_tolerance,
        "val": rows,
        "chosen": chosen,
    }
    (RUNS / "inference-size.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
