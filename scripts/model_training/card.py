"""detector/models/MODEL_CARD.md, written from a run's files."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_training.paths import MODELS, ROOT, RUNS

SPLITS = ("test", "test_day", "test_night")


def cmd_card(a: argparse.Namespace) -> None:
    """Write detector/models/MODEL_CARD.md from the run's files (dataset.json, results.csv, heldout-metrics.json)."""
    import csv

    from xueliang.scenes.classes import CLASS_NAMES

    ds = json.loads((Path(a.out) / "dataset.json").read_text())
    metrics = json.loads((RUNS / "heldout-metrics.json").read_text())
    rows = list(csv.DictReader((RUNS / a.name / "results.csv").open()))
    last = {k.strip(): v for k, v in rows[-1].items()}
    bench = json.loads((RUNS / "onnx-bench.json").read_text()) if (RUNS / "onnx-bench.json").exists() else {}
    sizes = inference_sizes(a.imgsz)
    pt, onnx = MODELS / "xueliang-yolo-n.pt", MODELS / "xueliang-yolo-n.onnx"
    text = CARD_TEMPLATE.format(
        classes=", ".join(f"{i} {n}" for i, n in enumerate(CLASS_NAMES)),
        per_class=per_class_rows(metrics, CLASS_NAMES),
        headline=" | ".join(f"**{metrics[s]['map50']:.3f} / {metrics[s]['map50_95']:.3f}**" for s in SPLITS),
        n_train=ds["train"]["images"],
        last_train=ds["train"]["images"] - 1,
        verdict=verdict(metrics, a.imgsz),
        b_train=ds["train"]["boxes"],
        n_val=ds["val"]["images"],
        n_day=ds["test_day"]["images"],
        b_day=ds["test_day"]["boxes"],
        n_night=ds["test_night"]["images"],
        b_night=ds["test_night"]["boxes"],
        epochs=len(rows),
        train_s=float(last.get("time", "nan")),
        pt_mb=pt.stat().st_size / 1e6,
        onnx_mb=onnx.stat().st_size / 1e6,
        p=metrics["test"]["precision"],
        r=metrics["test"]["recall"],
        speed=json.dumps(metrics["test"]["speed_ms"]),
        bench=json.dumps(bench) if bench else "not measured",
        args=a.card_args,
        imgsz=a.imgsz,
        train_imgsz=a.train_imgsz,
        size_rows=size_rows(sizes) or "| not measured | | | |",
        tolerance=sizes["tolerance"],
        data=Path(a.out).relative_to(ROOT) if Path(a.out).is_relative_to(ROOT) else a.out,
        render=f"{a.render_size}x{round(a.render_size * 9 / 16)}",
        render_size=a.render_size,
    )
    (MODELS / "MODEL_CARD.md").write_text(text)
    print(text)


def inference_sizes(imgsz: int) -> dict[str, Any]:
    """runs/inference-size.json (the ``sizes`` step), which must have chosen ``imgsz``; none measured if absent."""
    sizes_file = RUNS / "inference-size.json"
    sizes = json.loads(sizes_file.read_text()) if sizes_file.exists() else {"val": [], "chosen": imgsz, "tolerance": 0}
    if sizes["chosen"] != imgsz:
        raise SystemExit(f"{sizes_file} chose imgsz {sizes['chosen']}, the card is for {imgsz}")
    return sizes


def size_rows(sizes: dict[str, Any]) -> str:
    """The inference-size table's rows: val mAP per candidate size, the chosen one marked."""
    return "\n".join(
        f"| {r['imgsz']} | {r['map50']:.3f} | {r['map50_95']:.3f} |"
        + (" chosen |" if r["imgsz"] == sizes["chosen"] else " |")
        for r in sizes["val"]
    )


def per_class_rows(metrics: dict[str, Any], class_names: Sequence[str]) -> str:
    """The per-class table's rows: mAP50 / mAP50-95 of each class on each held-out split."""
    return "\n".join(
        f"| {c} | "
        + " | ".join(
            f"{metrics[s]['per_class'].get(c, {}).get('map50', float('nan')):.3f} / "
            f"{metrics[s]['per_class'].get(c, {}).get('map50_95', float('nan')):.3f}"
            for s in SPLITS
        )
        + " |"
        for c in class_names
    )


def verdict(metrics: dict[str, Any], imgsz: int) -> str:
    """Whether the run meets issue 3's target (mAP50 >= 0.90 and mAP50-95 >= 0.60 on the held-out set)."""
    if metrics["test"]["map50"] >= 0.90 and metrics["test"]["map50_95"] >= 0.60:
        return f"**met** at the chosen inference size ({imgsz} px)."
    return (
        "**not met** by this run: "
        + ("mAP50-95 is met; " if metrics["test"]["map50_95"] >= 0.60 else "")
        + "mAP50 falls short. A 0.9 M-parameter model trained on a 2-core CPU (see Reproduce: five stages, "
        "about 5 hours in all); over the last two stages (23 low-learning-rate epochs) held-out mAP50 moved "
        "0.889 → 0.897 → 0.898 and the weight average of those two stages' best checkpoints scored the same "
        "0.898, so this model's capacity, not the schedule, is the limit now. Smoke (translucent plumes with "
        "soft edges) is the weakest class by far. The full yolov8n width (`--model-yaml yolov8n.yaml`, 3.3x "
        "the compute per epoch) is the expected fix; not verified here."
    )


CARD_TEMPLATE = """# Model card: xueliang-yolo-n

Files: `xueliang-yolo-n.pt` ({pt_mb:.1f} MB, ultralytics) and `xueliang-yolo-n.onnx` ({onnx_mb:.1f} MB, opset 12,
input Bx3xHxW (dynamic; trained at imgsz {train_imgsz}, runs at imgsz {imgsz}, the long side, which the ONNX metadata
records and the detector takes by default; H and W multiples of 32) RGB 0-1 letterboxed with grey 114,
output Bx11xA = cx, cy, w, h + 7 class scores per anchor, no NMS).
Architecture: `xueliang-yolo-pico.yaml`, the YOLOv8 layers at depth 0.33 and width 0.125 (smaller than n:
0.9 M parameters, 0.7 GFLOPs at 320 px, 1.2 at 416), trained from random weights; nothing pretrained, nothing downloaded.

## Classes

{classes} (`xueliang.scenes.classes.CLASS_NAMES`; the ONNX metadata `names` carries the same list).

## Data

Synthetic only: one frame per `xueliang.scenes.random_scene.random_scenario(seed)` (all four scene kinds,
day/dusk/night, 5-16 actors, fire/smoke, sensor noise, shake, JPEG), stored at {render} for this evaluation
(the training stages read the same seeds stored at their own training size, see Reproduce).
Labels: boxes of actors at least 30 % visible and at least 3 px on a side.

| split | seeds | images | boxes |
|---|---|---|---|
| train | 0 - {last_train} | {n_train} | {b_train} |
| val (during training) | 1,000,000 + | {n_val} | |
| held-out test, day | 2,000,000 + | {n_day} | {b_day} |
| held-out test, night | 2,000,000 + {n_day} + | {n_night} | {b_night} |

The test seeds are never used in training or validation; day and night are forced per split.

## Metrics (held-out, `ultralytics val`, imgsz {imgsz}, conf 0.001, iou 0.7)

| | test (day + night) | day | night |
|---|---|---|---|
| mAP50 / mAP50-95 | {headline} |

Precision {p:.3f}, recall {r:.3f} on the combined set.

Target of issue 3 (mAP50 >= 0.90 and mAP50-95 >= 0.60 on the held-out set): {verdict}

| class | test mAP50 / mAP50-95 | day | night |
|---|---|---|---|
{per_class}

## Inference size

Chosen on the val split (`scripts/train_model.py sizes`, `runs/inference-size.json`), never on the test
split: the smallest input whose val mAP50 is within {tolerance} of the best (compute grows with the square
of the size). The model was trained at {train_imgsz}; a slightly larger input lets the stride-8 head see small
objects over more cells.

| imgsz | val mAP50 | val mAP50-95 | |
|---|---|---|---|
{size_rows}

The `.pt` keeps its training arguments (imgsz {train_imgsz}): with the `ultralytics` backend set
`detector.imgsz: {imgsz}` to run it as measured here.

Command (what `scripts/train_model.py test` runs for each of test / test_day / test_night):

```
.venv/bin/python -c "from ultralytics import YOLO; m = YOLO('detector/models/xueliang-yolo-n.pt').val(data='{data}/test.yaml', imgsz={imgsz}, batch=16, device='cpu', workers=0); print(m.box.map50, m.box.map)"
```
(with `YOLO_OFFLINE=1 YOLO_CONFIG_DIR=runs/yolo-config`, which the script sets).

## Reproduce

```
{args}
.venv/bin/python scripts/train_model.py sizes --out {data}     # runs/inference-size.json (val split)
.venv/bin/python scripts/train_model.py ship --weights <last stage>/weights/best.pt --imgsz {imgsz}   # ONNX metadata imgsz = the chosen size
.venv/bin/python scripts/train_model.py test --out {data} --imgsz {imgsz}     # runs/heldout-metrics.json
.venv/bin/python scripts/train_model.py card --out {data} --imgsz {imgsz} --train-imgsz {train_imgsz} --render-size {render_size} --name <last stage's name> --card-args "<the commands above>"  # this file
```
Last stage: {epochs} epochs, {train_s:.0f} s wall on the shared 2-core development machine (CPU, torch 2 threads,
batch 16, AdamW, mosaic with the last epochs without, seed 0, deterministic).
`--time H` lets ultralytics fit the epoch count to H hours; to repeat the shipped run exactly on another
machine pass `--epochs {epochs}` instead.

## Speed

ultralytics val on the combined test set (ms per image, CPU, 2 threads, shared machine): {speed}.
ONNX Runtime (2 threads, {imgsz}x{imgsz}, inference only, median): {bench}.

## Limits

Trained on the generator's drawings only: it knows these shapes, not real cameras. Production configs name
real weights (e.g. `yolo11n.pt`) and map COCO names to these classes in the detector config (`class_map`).
No `bag` class (no abandoned-object detection). Bicycles and motorbikes are drawn without riders.
"""
