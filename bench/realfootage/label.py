"""Ground truth for the real-footage benchmark, made with two COCO teachers and checked by eye.

    python bench/realfootage/label.py draft    # teachers' boxes + contact sheets to look at
    python bench/realfootage/label.py apply    # draft + the by-eye review (review.json) -> labels.json

``draft`` runs both converted COCO models (NanoDet-m and CenterNet, ``detector/models/coco-*.onnx``) on every
selected frame, maps COCO names to the project's classes and merges the two teachers' boxes per class
(IoU >= 0.5). A merged box is *proposed* when either teacher scores it >= ``--accept`` or both see it at
>= ``--agree``; weaker ones are *candidates*. Contact sheets (``.cache/realfootage/sheets``) draw proposed
boxes green and candidates yellow, each with its number. A person then looks at every sheet and writes
``review.json``: per clip and frame, ``drop`` (proposed numbers that are wrong), ``add`` (candidate numbers
that are right) and ``boxes`` (objects both teachers missed, drawn by hand as [x1, y1, x2, y2, class]);
``ignore`` regions (per clip) mark places where no box counts either way (e.g. a reflection).
``apply`` writes the final ``labels.json``; the review file stays in the repository as the record of the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sources import CACHE, CLIPS, read_frames

from xueliang.detector.backends import OnnxRuntimeDetector
from xueliang.detector.teacher import merge, teacher_boxes

HERE = Path(__file__).resolve().parent
MODELS = Path(__file__).resolve().parents[2] / "detector" / "models"
# the benchmark's classes: a van is a "car" to one model and a "truck" to another, and a county's rules
# treat both alike (stalled vehicle: car, truck), so ground truth and scoring group them
EVAL_CLASS = {"person": "person", "car": "vehicle", "truck": "vehicle", "bus": "vehicle",
              "bicycle": "two_wheeler", "motorbike": "two_wheeler"}  # fmt: skip
EVAL_CLASSES = ("person", "vehicle", "two_wheeler")
# frames per clip (>= 150 frames from 3 clips with people and vehicles). bikes: its frames 30-74 are
# out-of-focus close-ups of traffic (bokeh, a face filling the frame) that nobody can box reliably: left out.
SELECTION: dict[str, list[int]] = {
    "vtest": list(range(0, 795, 8)),  # 100 frames, 0.8 s apart
    "bikes": [2, 6, 10, 14, 18, 22, 26, 78, 86, 94, 102, 110, 118, 126],
    "carphone": list(range(0, 120, 3)),  # 40 frames
}


def frame_indices(clip: str) -> list[int]:
    return SELECTION[clip]


def draft(args: argparse.Namespace) -> None:
    teachers = [
        OnnxRuntimeDetector(MODELS / "coco-nanodet.onnx", None, args.candidate, 0.6),
        OnnxRuntimeDetector(MODELS / "coco-centernet.onnx", None, args.candidate, 0.6),
    ]
    out: dict[str, dict] = {}
    for clip in SELECTION:
        frames: dict[str, list[dict]] = {}
        for idx, frame in read_frames(CLIPS[clip].path(), frame_indices(clip)):
            frames[str(idx)] = merge([teacher_boxes(t, frame) for t in teachers], args.accept, args.agree)
        out[clip] = {"size": list(frame.shape[1::-1]), "frames": frames}
        print(f"{clip}: {len(frames)} frames, {sum(b['proposed'] for v in frames.values() for b in v)} proposed boxes")
    (HERE / "draft.json").write_text(json.dumps(out, indent=1))


def _iou(a: list[float], b: list[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def resolve(boxes: list[dict], frame_review: dict, clip_review: dict) -> tuple[list[list], list[int]]:
    """One frame's ground truth from the draft and the review, and the draft numbers left as candidates.

    Kept: proposed boxes not dropped, candidates added; then boxes of a static non-object (a cone, a sign
    post, a rock that a teacher calls a person: ``static_negatives`` of the clip, IoU >= 0.5) go; classes
    become the benchmark's classes, duplicates of one object (IoU >= 0.6, one class) merge; hand-drawn
    ``boxes`` are added last."""
    if frame_review.get("replace"):  # the teachers' boxes are too wrong to mend: the frame is boxed by hand
        return [list(x) for x in frame_review.get("boxes", [])], list(range(len(boxes)))
    drop, add = set(frame_review.get("drop", [])), set(frame_review.get("add", []))
    negatives = clip_review.get("static_negatives", [])
    rows: list[list] = []
    used: list[int] = []
    for n, b in enumerate(boxes):
        if not ((b["proposed"] and n not in drop) or n in add):
            continue
        used.append(n)
        if b["class"] == "person" and any(_iou(b["box"], neg) >= 0.5 for neg in negatives):
            continue
        cls = EVAL_CLASS[b["class"]]
        if any(r[4] == cls and _iou(r[:4], b["box"]) >= 0.6 for r in rows):
            continue
        rows.append([*b["box"], cls])
    rows += [list(x) for x in frame_review.get("boxes", [])]
    left = [n for n in range(len(boxes)) if n not in used]
    return rows, left


def _review() -> dict:
    path = HERE / "review.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def apply(args: argparse.Namespace) -> None:
    drafts = json.loads((HERE / "draft.json").read_text())
    review = _review()
    labels: dict[str, dict] = {}
    for clip, data in drafts.items():
        rev = review.get(clip, {})
        frames = {
            idx: resolve(boxes, rev.get("frames", {}).get(idx, {}), rev)[0] for idx, boxes in data["frames"].items()
        }
        labels[clip] = {"source": CLIPS[clip].package, "licence": CLIPS[clip].licence, "size": data["size"],
                        "frames": frames}  # fmt: skip
    (HERE / "labels.json").write_text(json.dumps(labels, indent=1))
    n = sum(len(v["frames"]) for v in labels.values())
    boxes = sum(len(b) for v in labels.values() for b in v["frames"].values())
    print(f"labels.json: {n} frames, {boxes} boxes")


def sheets(args: argparse.Namespace) -> None:
    """Pictures to check by eye: the current ground truth (green, numbered by draft row) and the draft rows
    left out (yellow), two frames to a picture at 640 px."""
    drafts = json.loads((HERE / "draft.json").read_text())
    review = _review()
    out = CACHE / "sheets"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    for clip in args.clips or list(drafts):
        rev = review.get(clip, {})
        tiles = []
        data = drafts[clip]["frames"]
        for idx, frame in read_frames(CLIPS[clip].path(), [int(i) for i in data]):
            boxes = data[str(idx)]
            rows, left = resolve(boxes, rev.get("frames", {}).get(str(idx), {}), rev)
            tiles.append(_draw(frame, idx, rows, [(n, boxes[n]) for n in left]))
        for s in range(0, len(tiles), 2):
            pair = tiles[s : s + 2] + [np.zeros_like(tiles[0])] * (2 - len(tiles[s : s + 2]))
            cv2.imwrite(str(out / f"{clip}-{s // 2:02d}.png"), np.vstack(pair))
    print(f"sheets in {out}")


def _draw(frame: np.ndarray, idx: int, rows: list[list], left: list[tuple[int, dict]], width: int = 640) -> np.ndarray:
    sx = width / frame.shape[1]
    sy = width * 0.75 / frame.shape[0]
    img = cv2.resize(frame, (width, int(width * 0.75)), interpolation=cv2.INTER_AREA)

    def rect(box: list[float], colour: tuple[int, int, int], text: str, thick: int) -> None:
        x1, y1, x2, y2 = int(box[0] * sx), int(box[1] * sy), int(box[2] * sx), int(box[3] * sy)
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick)
        cv2.putText(img, text, (x1, max(12, y1 - 3)), 0, 0.45, colour, 1)

    for n, b in left:
        rect(b["box"], (0, 220, 255), f"{n}{b['class'][0]}{max(b['scores']):.2f}"[:8], 1)
    for r in rows:
        rect(r[:4], (0, 230, 0), r[4][0], 2)
    cv2.putText(img, f"{idx}", (4, 18), 0, 0.6, (255, 255, 255), 2)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("draft")
    d.add_argument("--accept", type=float, default=0.45)
    d.add_argument("--agree", type=float, default=0.3)
    d.add_argument("--candidate", type=float, default=0.2)
    sh = sub.add_parser("sheets")
    sh.add_argument("clips", nargs="*")
    sub.add_parser("apply")
    args = ap.parse_args()
    {"draft": draft, "apply": apply, "sheets": sheets}[args.cmd](args)


if __name__ == "__main__":
    main()
