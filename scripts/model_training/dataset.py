"""The synthetic YOLO dataset: one rendered frame per random scenario, in disjoint seed ranges."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

# disjoint seed ranges: training never sees a val or test seed
TRAIN_SEEDS = 0
VAL_SEEDS = 1_000_000
TEST_SEEDS = 2_000_000


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
