"""The shipped model: files present, ONNX loads in onnxruntime, detects what the scene generator draws.

A light check with its own letterbox and decoding; the detector's backends are tested elsewhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest

from xueliang.detector.backends import _metadata_imgsz
from xueliang.scenes.classes import CLASS_NAMES
from xueliang.scenes.render import GroundTruthBox, SceneRenderer
from xueliang.scenes.scenario import load_scenario, public_scenarios

ort = pytest.importorskip("onnxruntime")

MODELS = Path(__file__).resolve().parents[1] / "detector" / "models"
ONNX = MODELS / "xueliang-yolo-n.onnx"
PT = MODELS / "xueliang-yolo-n.pt"
CARD = MODELS / "MODEL_CARD.md"


def _session() -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(ONNX), opts, providers=["CPUExecutionProvider"])


def _detect(sess: ort.InferenceSession, img: np.ndarray, conf: float = 0.4) -> list[tuple[int, float, np.ndarray]]:
    """Letterbox to a square input of the model's size, run, decode (cx, cy, w, h, scores...) → (class, score, xyxy) in
    image pixels, greedy NMS per class."""
    inp = sess.get_inputs()[0]
    size = (
        inp.shape[2]
        if isinstance(inp.shape[2], int)
        else _metadata_imgsz(sess.get_modelmeta().custom_metadata_map["imgsz"])
    )
    h, w = img.shape[:2]
    r = min(size / w, size / h)
    nw, nh = round(w * r), round(h * r)
    px, py = (size - nw) / 2, (size - nh) / 2
    canvas = np.full((size, size, 3), 114, np.uint8)
    top, left = round(py - 0.1), round(px - 0.1)
    canvas[top : top + nh, left : left + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    out = sess.run(None, {inp.name: x})[0][0]  # (4 + nc, N)
    boxes, scores = out[:4].T, out[4:].T
    cls = scores.argmax(1)
    best = scores.max(1)
    keep = best >= conf
    xyxy = np.stack(
        [
            boxes[:, 0] - boxes[:, 2] / 2,
            boxes[:, 1] - boxes[:, 3] / 2,
            boxes[:, 0] + boxes[:, 2] / 2,
            boxes[:, 1] + boxes[:, 3] / 2,
        ],
        1,
    )
    xyxy = (xyxy - [left, top, left, top]) / r
    dets = []
    for c in np.unique(cls[keep]):
        idx = np.where(keep & (cls == c))[0]
        order = idx[np.argsort(-best[idx])]
        taken: list[int] = []
        for i in order:
            if all(_iou(xyxy[i], xyxy[j]) < 0.5 for j in taken):
                taken.append(int(i))
        dets += [(int(c), float(best[i]), xyxy[i]) for i in taken]
    return dets


def _iou(a: np.ndarray | tuple[float, ...], b: np.ndarray | tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _found(gt: GroundTruthBox, dets: list[tuple[int, float, np.ndarray]], iou: float = 0.5) -> bool:
    return any(c == gt.class_id and _iou(box, gt.xyxy) >= iou for c, _, box in dets)


def test_shipped_files_and_card() -> None:
    assert ONNX.stat().st_size < 20e6 and PT.stat().st_size < 20e6
    card = CARD.read_text(encoding="utf-8")
    for name in CLASS_NAMES:
        assert name in card
    assert "mAP50-95" in card and "scripts/train_model.py" in card


def test_onnx_class_names_match_the_project_classes() -> None:
    sess = _session()
    meta = sess.get_modelmeta().custom_metadata_map
    names = ast.literal_eval(meta["names"])
    assert [names[i] for i in range(len(names))] == list(CLASS_NAMES)
    size = _metadata_imgsz(meta["imgsz"])
    x = np.zeros((2, 3, size * 3 // 5 // 32 * 32 + 32, size), np.float32)  # a batch of two rectangular inputs
    assert sess.run(None, {sess.get_inputs()[0].name: x})[0].shape[:2] == (2, 4 + len(CLASS_NAMES))


def test_onnx_detects_the_demo_intruder() -> None:
    """Demo, t = 8 s: the villager stands in the restricted gate area; the car waits at the roadside."""
    sc = load_scenario(next(p for p in public_scenarios() if p.name == "demo.yaml"))
    frame = SceneRenderer(sc, 0).render_frame(int(8 * sc.fps))
    dets = _detect(_session(), frame.image)
    person = next(b for b in frame.boxes if b.track_id == 1)
    car = next(b for b in frame.boxes if b.track_id == 2)
    assert _found(person, dets), dets
    assert _found(car, dets), dets


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,t", [("fire_smoke_dusk", 20.0), ("stalled_vehicle_night", 14.0), ("intrusion_night", 12.0)]
)
def test_onnx_finds_most_labelled_objects(name: str, t: float) -> None:
    sc = load_scenario(next(p for p in public_scenarios() if p.stem == name))
    frame = SceneRenderer(sc, 0).render_frame(int(t * sc.fps))
    dets = _detect(_session(), frame.image, conf=0.3)
    # smoke is left out of this single-frame check: it is the weakest class (held-out AP50 0.63 in the
    # model card) and translucent plumes at dusk are often found only below 0.3; fire, which the
    # fire_smoke rule also takes, is checked here, and the scenario test checks the rule end to end
    wanted = [b for b in frame.boxes if b.visible_fraction >= 0.5 and b.class_name != "smoke"]
    assert wanted
    hits = sum(_found(b, dets, iou=0.4) for b in wanted)
    assert hits / len(wanted) >= 0.75, (name, [(b.class_name, b.xyxy) for b in wanted], dets)
    # no confident detection of a class that is not in the picture
    present = {b.class_id for b in frame.boxes}
    assert all(c in present for c, s, _ in dets if s >= 0.6), dets
