#!/usr/bin/env python
"""Generate a YOLO dataset from the scene generator, train a small YOLO on CPU, export ONNX, ship it.

Reproducible: every image comes from ``random_scenario(seed)`` with seeds in fixed, disjoint
ranges (train / val / held-out test), training uses a fixed seed and deterministic mode.

    .venv/bin/python scripts/train_model.py all          # dataset + train + export + test (the shipped run)
    .venv/bin/python scripts/train_model.py dataset      # only the images and labels
    .venv/bin/python scripts/train_model.py train --epochs 3 --n-train 200 --name smoke   # quick pipeline check
    .venv/bin/python scripts/train_model.py test --weights detector/models/xueliang-yolo-n.pt

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
        frame = SceneRenderer(sc, seed).render_frame(int(round(RANDOM_SNAPSHOT_S * sc.fps)))
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
        "test_night": write_split(out, "test_night", range(TEST_SEEDS + a.n_test // 2, TEST_SEEDS + a.n_test),
                                  a.render_size, "night"),
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


def cmd_train(a: argparse.Namespace) -> None:
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(a.threads)
    data = Path(a.out) / "data.yaml"
    if not data.exists():
        raise SystemExit(f"{data} is missing: run the dataset step first")
    model = YOLO(a.model_yaml)
    t0 = time.time()
    model.train(data=str(data), epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, workers=a.workers, device="cpu",
                seed=a.seed, deterministic=True, project=str(RUNS), name=a.name, exist_ok=True, pretrained=False,
                amp=False, plots=False, close_mosaic=a.close_mosaic, patience=0, cache=a.cache, verbose=False,
                optimizer="AdamW", lr0=a.lr0, warmup_epochs=a.warmup_epochs, fliplr=0.5, mosaic=1.0, scale=0.3, translate=0.1, hsv_h=0.01, hsv_s=0.5, hsv_v=0.3, val=True,
                fraction=a.fraction, **({"time": a.time} if a.time else {}))
    print(f"training took {time.time() - t0:.0f} s")
    best = RUNS / a.name / "weights" / "best.pt"
    if a.ship:
        ship(best, a.imgsz)


def ship(best: Path, imgsz: int) -> None:
    from ultralytics import YOLO

    MODELS.mkdir(parents=True, exist_ok=True)
    onnx = Path(YOLO(str(best)).export(format="onnx", imgsz=imgsz, opset=12, dynamic=False, simplify=False))
    shutil.copy(best, MODELS / "xueliang-yolo-n.pt")
    shutil.copy(onnx, MODELS / "xueliang-yolo-n.onnx")
    print(f"shipped {MODELS / 'xueliang-yolo-n.pt'} and {MODELS / 'xueliang-yolo-n.onnx'}")


def cmd_ship(a: argparse.Namespace) -> None:
    ship(Path(a.weights), a.imgsz)


def cmd_test(a: argparse.Namespace) -> None:
    import torch
    from ultralytics import YOLO

    from xueliang.scenes.classes import CLASS_NAMES

    torch.set_num_threads(a.threads)
    results = {}
    for split in ("test", "test_day", "test_night"):
        m = YOLO(a.weights).val(data=str(Path(a.out) / f"{split}.yaml"), imgsz=a.imgsz, batch=16, device="cpu",
                                workers=0, plots=False, project=str(RUNS), name=f"val-{split}", exist_ok=True,
                                verbose=False)
        per_class = {CLASS_NAMES[int(c)]: {"map50": round(float(m.box.ap50[i]), 4), "map50_95": round(float(m.box.ap[i]), 4)}
                     for i, c in enumerate(m.box.ap_class_index)}
        results[split] = {"map50": round(float(m.box.map50), 4), "map50_95": round(float(m.box.map), 4),
                          "precision": round(float(m.box.mp), 4), "recall": round(float(m.box.mr), 4),
                          "per_class": per_class, "speed_ms": {k: round(v, 2) for k, v in m.speed.items()}}
    out = RUNS / "heldout-metrics.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def main(argv: list[str] | None = None) -> None:
    offline_env()
    sys.path.insert(0, str(ROOT))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["dataset", "train", "ship", "test", "all"])
    p.add_argument("--out", default=str(DATASETS / "xueliang-synth"))
    p.add_argument("--n-train", type=int, default=1600)
    p.add_argument("--n-val", type=int, default=160)
    p.add_argument("--n-test", type=int, default=400)
    p.add_argument("--render-size", type=int, default=320, help="long side of the stored images")
    p.add_argument("--model-yaml", default=str(MODELS / "xueliang-yolo-pico.yaml"))
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr0", type=float, default=0.002)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--close-mosaic", type=int, default=3)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--fraction", type=float, default=1.0)
    p.add_argument("--time", type=float, default=None,
                   help="hours of training; ultralytics fits the epoch count to it (overrides --epochs)")
    p.add_argument("--cache", default="disk", help="'disk' keeps training deterministic; 'ram' may not")
    p.add_argument("--name", default="xueliang-yolo-n")
    p.add_argument("--ship", action="store_true", help="copy best.pt and its ONNX export to detector/models/")
    p.add_argument("--weights", default=str(MODELS / "xueliang-yolo-n.pt"))
    a = p.parse_args(argv)
    if a.step in ("dataset", "all"):
        cmd_dataset(a)
    if a.step in ("train", "all"):
        if a.step == "all":
            a.ship = True
        cmd_train(a)
    if a.step == "ship":
        cmd_ship(a)
    if a.step in ("test", "all"):
        cmd_test(a)


if __name__ == "__main__":
    main()
