"""The shared letterbox/NMS, and the backends agreeing on the same frames (shipped model)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from xueliang.config.detector import DEFAULT_MODEL, DetectorConfig
from xueliang.detector.backends import OnnxRuntimeDetector, OpenVinoDetector, make_backend
from xueliang.detector.preprocess import LetterboxInfo, canvas_shape, letterbox, nms, postprocess
from xueliang.detector.tracking import iou_matrix

PT_MODEL = DEFAULT_MODEL.with_suffix(".pt")


# ------------------------------------------------------------------ letterbox / NMS
@pytest.mark.parametrize(
    "h, w, imgsz, rect",
    [
        (576, 768, 320, (256, 320)),
        (432, 768, 640, (384, 640)),
        (720, 1280, 320, (192, 320)),
        (100, 50, 320, (320, 160)),
        (320, 320, 320, (320, 320)),
    ],
)
@pytest.mark.parametrize("fixed", [False, True])
def test_letterbox_places_and_inverts(h, w, imgsz, rect, fixed):
    """Rectangular canvases (stride-aligned, the frame's aspect) by default; a static model's square on demand."""
    img = np.zeros((h, w, 3), np.uint8)
    img[h // 4 : h // 2, w // 4 : w // 2] = 255
    assert canvas_shape(h, w, imgsz) == rect
    canvas, info = letterbox(img, imgsz, (imgsz, imgsz) if fixed else None)
    assert canvas.shape == ((imgsz, imgsz) if fixed else rect) + (3,)
    assert max(info.scale * h, info.scale * w) == pytest.approx(imgsz, abs=0.5)  # the long side is imgsz either way
    assert canvas[0, 0].tolist() in ([114] * 3, [0] * 3)
    ys, xs = np.nonzero(canvas[..., 0] > 200)
    x1 = (xs.min() - info.pad_x) / info.scale
    y1 = (ys.min() - info.pad_y) / info.scale
    assert abs(x1 - w // 4) <= 2 / info.scale + 1 and abs(y1 - h // 4) <= 2 / info.scale + 1


def test_nms_keeps_best_of_overlaps_and_separates_classes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.8, 0.9, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    # postprocess: the same two boxes with different classes both survive (class-aware)
    out = np.zeros((1, 4 + 2, 2), np.float32)
    out[0, :4, 0] = [5, 5, 10, 10]
    out[0, :4, 1] = [5.5, 5.5, 10, 10]
    out[0, 4, 0], out[0, 5, 1] = 0.9, 0.8
    det = postprocess(out, [LetterboxInfo(1.0, 0, 0, 100, 100)], conf=0.25, iou=0.5)[0]
    assert sorted(det.class_id.tolist()) == [0, 1]
    np.testing.assert_allclose(det.xyxy[det.class_id == 0][0], [0, 0, 10, 10])


def test_postprocess_end_to_end_layout():
    out = np.zeros((1, 300, 6), np.float32)
    out[0, 0] = [10, 20, 30, 40, 0.9, 3]
    out[0, 1] = [10, 20, 30, 40, 0.1, 3]
    det = postprocess(out, [LetterboxInfo(0.5, 0, 10, 200, 200)], conf=0.25, iou=0.5)[0]
    assert len(det) == 1 and det.class_id[0] == 3
    np.testing.assert_allclose(det.xyxy[0], [20, 20, 60, 60])


def test_missing_model_is_a_clear_error(tmp_path):
    from xueliang.detector.backends import BackendError

    with pytest.raises(BackendError, match="does not exist"):
        OnnxRuntimeDetector(tmp_path / "nope.onnx", 320, 0.25, 0.45)


# ------------------------------------------------------------------ agreement
def scene_frames(n: int = 6) -> list[np.ndarray]:
    from xueliang.scenes.render import SceneRenderer
    from xueliang.scenes.scenario import load_scenario

    repo = Path(__file__).resolve().parents[1]
    out = []
    for name in ("crowding_crossroads", "fire_smoke_dusk", "stalled_vehicle_night"):
        r = SceneRenderer(load_scenario(repo / "scenes" / "scenarios" / f"{name}.yaml"), seed=1)
        out += [r.render_frame(i * 40).image for i in range(2, 2 + n // 3)]
    return out


def assert_same_boxes(a, b, min_iou=0.9, margin=0.05, conf=0.25):
    """Every confident detection of one backend has a same-class twin (IoU ≥ min_iou) in the other;
    detections within ``margin`` of the threshold may fall either side of it."""
    for x, y in ((a, b), (b, a)):
        firm = x.confidence >= conf + margin
        if not firm.any():
            continue
        ious = iou_matrix(x.xyxy[firm], y.xyxy)
        same = x.class_id[firm][:, None] == y.class_id[None, :]
        best = (ious * same).max(axis=1) if len(y) else np.zeros(firm.sum())
        assert (best >= min_iou).all(), (x.xyxy[firm][best < min_iou], y.xyxy)


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="shipped model missing")
def test_onnxruntime_and_openvino_agree():
    frames = scene_frames()
    ort = OnnxRuntimeDetector(DEFAULT_MODEL, 320, 0.25, 0.45, 2)
    ov = OpenVinoDetector(DEFAULT_MODEL, 320, 0.25, 0.45, 2, "f32")
    assert ort.names == ov.names
    # the raw network outputs agree (same letterboxed tensor in) ...
    from xueliang.detector.preprocess import to_tensor

    canvases = [letterbox(f, 320, ort.fixed_canvas)[0] for f in frames[:1]]
    assert ort.tensor(canvases).dtype == np.float32 and ov.tensor(canvases).dtype == np.uint8  # OpenVINO converts
    np.testing.assert_allclose(
        ort._forward(to_tensor(canvases)), ov._forward(ov.tensor(canvases)), rtol=1e-3, atol=1e-2
    )
    # ... and so do the boxes after the shared NMS
    total = 0
    for a, b in zip(ort.infer(frames), ov.infer(frames), strict=False):
        assert_same_boxes(a, b)
        total += len(a)
    print(f"{total} detections on {len(frames)} frames")


@pytest.mark.parametrize("model", [DEFAULT_MODEL, DEFAULT_MODEL.parent / "coco-nanodet.onnx"], ids=lambda p: p.stem)
def test_openvino_streams_infer_a_batch_in_parallel_with_the_same_result(model: Path) -> None:
    """streams > 1 (the config's auto: one per thread): a batch goes to the streams at once, frame by frame for
    a fixed-batch model (NanoDet), one slice per stream for a dynamic one; the boxes are those of one request."""
    frames = scene_frames()[:5]
    one = OpenVinoDetector(model, None, 0.25, 0.45, 2, "f32")
    two = OpenVinoDetector(model, None, 0.25, 0.45, 2, "f32", streams=2)
    assert one.queue is None and two.queue is not None and two.streams == 2
    a, b = one.infer(frames), two.infer(frames)
    assert len(a) == len(b) == 5
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.xyxy, y.xyxy, atol=1e-3)
        np.testing.assert_array_equal(x.class_id, y.class_id)


def test_openvino_streams_default_to_one_per_thread() -> None:
    from xueliang.config.detector import OpenVinoBackend

    auto = OpenVinoBackend.model_validate({"type": "openvino", "model": str(DEFAULT_MODEL), "threads": 2})
    assert auto.streams == "auto" and auto.stream_count == 2
    fixed = OpenVinoBackend.model_validate({"type": "openvino", "model": "m.onnx", "threads": 2, "streams": 4})
    assert fixed.stream_count == 2  # never more streams than threads


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="shipped model missing")
def test_openvino_bf16_finds_the_same_objects():
    """bf16 (the capacity bench's setting; OpenVINO falls back to f32 on CPUs without bf16 units)
    rounds activations, so scores move a little: the same objects, boxes within IoU 0.8."""
    frames = scene_frames()
    f32 = OnnxRuntimeDetector(DEFAULT_MODEL, 320, 0.25, 0.45, 2)
    bf16 = OpenVinoDetector(DEFAULT_MODEL, 320, 0.25, 0.45, 2, "bf16")
    total = 0
    for a, b in zip(f32.infer(frames), bf16.infer(frames), strict=False):
        assert_same_boxes(a, b, min_iou=0.8, margin=0.1)
        total += len(a)
    assert total > 0


@pytest.mark.slow
@pytest.mark.skipif(not PT_MODEL.is_file(), reason="shipped .pt model missing")
def test_ultralytics_backend_agrees_with_onnxruntime():
    os.environ.setdefault("YOLO_OFFLINE", "1")
    frames = scene_frames()
    ort = make_backend(DetectorConfig())
    # the .pt keeps its training arguments (416); the ONNX records the inference size chosen on val
    ul = make_backend(
        DetectorConfig(backend={"type": "ultralytics", "model": str(PT_MODEL), "threads": 2}, imgsz=ort.imgsz)
    )
    assert ul.names == ort.names
    for a, b in zip(ort.infer(frames), ul.infer(frames), strict=False):
        assert_same_boxes(a, b, min_iou=0.85)


def test_input_size_defaults_to_the_models_own():
    """No imgsz configured: the size the model was exported at (its metadata); a configured one wins."""
    from xueliang.detector.backends import _metadata_imgsz, onnx_metadata

    assert _metadata_imgsz("[416, 416]") == 416 and _metadata_imgsz([256, 320]) == 320 and _metadata_imgsz(640) == 640
    assert _metadata_imgsz("not a size") is None and _metadata_imgsz(None) is None
    trained = _metadata_imgsz(onnx_metadata(DEFAULT_MODEL)["imgsz"])
    assert OnnxRuntimeDetector(DEFAULT_MODEL, None, 0.25, 0.45, 1).imgsz == trained
    assert OnnxRuntimeDetector(DEFAULT_MODEL, 640, 0.25, 0.45, 1).imgsz == 640
