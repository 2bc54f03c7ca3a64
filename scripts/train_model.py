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

# The steps live in scripts/model_training/ (dataset, real, yolo, card); this file is the command line.

from __future__ import annotations

import argparse
import sys

from model_training.card import cmd_card
from model_training.dataset import cmd_dataset
from model_training.paths import DATASETS, MODELS, ROOT, offline_env
from model_training.real import cmd_real
from model_training.yolo import cmd_ship, cmd_sizes, cmd_test, cmd_train


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
