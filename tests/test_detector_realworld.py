"""Real cameras: the converted COCO models, the ensemble and per-camera backends, the class filter, the fire
colour check, box AP, the real-footage ground truth, and no phantom alarms on held-out real footage.

Real footage comes from Debian's opencv-doc (vtest.avi, tree.avi), which scripts/test.sh installs."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from xueliang.bus.memory import MemoryBus
from xueliang.config import ConfigError, parse_config
from xueliang.config.detector import DetectorConfig, EnsembleBackend, EnsembleMember, real_world_backend
from xueliang.contracts import topic_specs
from xueliang.detector.accuracy import average_precision
from xueliang.detector.backends import (
    BackendError,
    EnsembleDetector,
    InferenceBackend,
    OnnxRuntimeDetector,
    make_backend,
)
from xueliang.detector.hazards import flame_fraction, verify_fire, verify_smoke
from xueliang.detector.testing import BlobBackend, minimal_settings, publish_frames, walker_frames
from xueliang.detector.types import Detections
from xueliang.detector.worker import DetectorWorker

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "detector" / "models"
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
REAL = REPO / "bench" / "realfootage"
needs_footage = pytest.mark.skipif(not VTEST.is_file(), reason="Debian opencv-doc not installed")


def _bench(name: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REAL))
    spec = importlib.util.spec_from_file_location(f"realfootage_{name}", REAL / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vtest_frame(index: int = 200) -> np.ndarray:
    cap = cv2.VideoCapture(str(VTEST))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def fire_frame() -> np.ndarray:
    """A generated frame with a grown fire (the public fire scenario) for the fire half of the ensemble."""
    from xueliang.scenes.render import SceneRenderer
    from xueliang.scenes.scenario import load_scenario, public_scenarios

    scenario = load_scenario(next(p for p in public_scenarios() if p.stem == "fire_smoke_dusk"))
    renderer = SceneRenderer(scenario, 0)
    best = max(
        (f for f in renderer.frames(fps=0.5)), key=lambda f: sum(b.class_name == "fire" for b in f.boxes) + f.t / 1e3
    )
    return best.image


# ----------------------------------------------------------------------------------- converted models
@pytest.mark.parametrize(("name", "canvas"), [("coco-nanodet", (288, 384)), ("coco-centernet", (512, 512))])
@needs_footage
def test_converted_coco_model_finds_the_walkers_of_vtest(name: str, canvas: tuple[int, int]) -> None:
    det = OnnxRuntimeDetector(MODELS / f"{name}.onnx", None, 0.4, 0.6)
    assert det.fixed_canvas == canvas and det.imgsz == max(canvas)
    assert len(det.names) == 80 and det.names[0] == "person"
    d = det.infer([vtest_frame()])[0]
    names = [det.names[int(c)] for c in d.class_id]
    # frame 200: eight or nine people walking, a parked van; no bicycle, nothing burning
    assert names.count("person") >= 6, names
    assert "bicycle" not in names and "motorcycle" not in names
    heights = (d.xyxy[:, 3] - d.xyxy[:, 1])[np.asarray(names) == "person"]
    assert np.median(heights) > 40  # decoded boxes in frame pixels, person-sized (the walkers are 60-90 px)


# ----------------------------------------------------------------------------------- ensemble
@needs_footage
def test_ensemble_takes_each_class_from_its_member() -> None:
    config = DetectorConfig.model_validate({"backend": real_world_backend(MODELS, threads=1), "confidence": 0.25})
    det = make_backend(config)
    assert set(det.names.values()) == {"person", "bicycle", "motorbike", "car", "truck", "bag", "fire", "smoke"}
    people = [det.names[int(c)] for c in det.infer([vtest_frame()])[0].class_id]
    assert people.count("person") >= 6
    fire = [det.names[int(c)] for c in det.infer([fire_frame()])[0].class_id]
    assert "fire" in fire


class _Counting(InferenceBackend):
    """A member that finds one object of its single class in every image it is given, and counts them."""

    kind = "counting"

    def __init__(self, name: str) -> None:
        super().__init__(0, 0.25, 0.45, {0: name})
        self.images = 0

    def _forward(self, tensor: np.ndarray) -> np.ndarray:  # pragma: no cover - predict is overridden
        raise NotImplementedError

    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        self.images += len(images)
        one = Detections(np.array([[1, 1, 5, 9]], np.float32), np.array([0.9], np.float32), np.zeros(1, np.int32))
        return [one for _ in images]


def test_ensemble_runs_a_member_only_for_cameras_whose_rules_want_its_classes() -> None:
    people, hazards = _Counting("person"), _Counting("fire")
    spec = {"type": "onnxruntime", "model": "unused.onnx"}
    det = EnsembleDetector(
        [
            (people, EnsembleMember.model_validate({"backend": spec, "classes": ["person"]})),
            (hazards, EnsembleMember.model_validate({"backend": spec, "classes": ["fire"]})),
        ],
        0.25,
        0.45,
    )
    frames = [np.zeros((48, 64, 3), np.uint8)] * 3
    found = det.infer(frames, [frozenset({"person", "car"}), frozenset({"person", "fire"}), frozenset()])
    assert (people.images, hazards.images) == (2, 1)  # the fire model saw only the camera with a fire rule
    assert [sorted(det.names[int(c)] for c in d.class_id) for d in found] == [["person"], ["fire", "person"], []]
    det.infer(frames)  # no camera given: every member on every frame
    assert (people.images, hazards.images) == (5, 4)


def test_ensemble_member_without_its_class_is_a_clear_error() -> None:
    spec = real_world_backend(MODELS, threads=1)
    spec["members"][0]["classes"] = ["person", "fire_truck"]  # type: ignore[index]
    with pytest.raises(BackendError, match="fire_truck"):
        make_backend(DetectorConfig.model_validate({"backend": spec}))


def test_ensemble_classes_belong_to_one_member() -> None:
    spec = real_world_backend(MODELS)
    spec["members"][1]["classes"] = ["fire", "person"]  # type: ignore[index]
    with pytest.raises(ValueError, match="'person' is taken from member 0 and member 1"):
        EnsembleBackend.model_validate(spec)


def test_production_configs_use_the_real_world_setup() -> None:
    import yaml

    prod = yaml.safe_load((REPO / "deploy" / "config" / "county-production.yaml").read_text())
    assert prod["detector"]["backend"] == real_world_backend(Path("/opt/xueliang/detector/models"))
    compose = yaml.safe_load((REPO / "deploy" / "compose" / "xueliang.yaml").read_text())
    assert compose["detector"]["backend"] == real_world_backend(Path("/opt/xueliang/detector/models"))


# ----------------------------------------------------------------------------------- per-camera backends
def test_camera_backend_must_be_defined() -> None:
    text = """
centres: {id: v1, name: V, tier: village}
cameras:
  - {id: cam-a, village: v1, source: {type: file, path: x.mp4}, detector_backend: real-world}
"""
    with pytest.raises(ConfigError, match=r"detector_backend 'real-world' is not in detector.backends"):
        parse_config(text, "t.yaml")


def test_worker_infers_each_camera_with_its_own_backend(tmp_path: Path) -> None:
    cams = [
        {
            "id": cid,
            "source": {"type": "file", "path": "unused.mp4"},
            "zones": [{"name": "all", "polygon": [[0, 0], [320, 0], [320, 240], [0, 240]]}],
            "rules": [{"name": "in", "type": "intrusion", "zone": "all"}],
            **extra,
        }
        for cid, extra in (("cam-scene", {}), ("cam-real", {"detector_backend": "real-world"}))
    ]
    settings = minimal_settings(
        cams,
        detector={
            "max_age_s": 1e9,
            "snapshot_dir": str(tmp_path),
            "backends": {"real-world": {"type": "onnxruntime", "model": str(MODELS / "xueliang-yolo-n.onnx")}},
        },
    )
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(settings.bus.topics, settings.bus.frame_partitions))
    blob = BlobBackend()
    worker = DetectorWorker(settings, bus, worker_id="w", backend=blob)
    real = worker.backends["real-world"]
    assert worker._backend("cam-scene") is blob and worker._backend("cam-real") is real
    calls: dict[str, int] = {"blob": 0, "real": 0}
    for key, backend in (("blob", blob), ("real", real)):
        original = backend.infer

        def counted(images, wanted=None, *, _key=key, _orig=original):  # type: ignore[no-untyped-def]
            calls[_key] += len(images)
            return _orig(images, wanted)

        backend.infer = counted  # type: ignore[method-assign]
    n = 0
    for cam in settings.cameras:
        n += publish_frames(bus.producer(), settings.bus.topics.frames, cam, walker_frames([(0, 3)], 3), 1.7e9)
    stop = threading.Event()
    th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    th.start()
    deadline = time.monotonic() + 60
    while sum(worker.done.values()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    th.join(10)
    assert calls["blob"] > 0 and calls["real"] > 0
    assert calls["blob"] + calls["real"] == worker.stats.frames_inferred


# ----------------------------------------------------------------------------------- class filter, fire colour
def test_classes_no_rule_knows_are_dropped_before_tracking(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    def sample(cls: str, outcome: str) -> float:
        labels = {"class_name": cls, "outcome": outcome}
        return REGISTRY.get_sample_value("xl_detector_detections_total", labels) or 0.0

    cam = {
        "id": "cam-dog",
        "source": {"type": "file", "path": "unused.mp4"},
        "zones": [{"name": "all", "polygon": [[0, 0], [320, 0], [320, 240], [0, 240]]}],
        "rules": [{"name": "in", "type": "intrusion", "zone": "all", "classes": ["person"]}],
        "motion": {"enabled": False},
    }
    settings = minimal_settings([cam], detector={"max_age_s": 1e9, "snapshot_dir": str(tmp_path)})
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(settings.bus.topics, settings.bus.frame_partitions))
    # a model whose red blobs are "dog" (a COCO class no rule uses) and white blobs are people
    worker = DetectorWorker(settings, bus, worker_id="w", backend=BlobBackend(names={0: "person", 5: "dog", 3: "car"}))
    frames = []
    for i in range(4):
        img = np.zeros((240, 320, 3), np.uint8)
        cv2.rectangle(img, (40, 40), (70, 120), (255, 255, 255), -1)  # person
        cv2.rectangle(img, (200, 150), (240, 200), (0, 0, 255), -1)  # "dog"
        frames.append((i * 0.5, img))
    before = (sample("person", "kept"), sample("dog", "unknown_class"))
    n = publish_frames(bus.producer(), settings.bus.topics.frames, settings.cameras[0], frames, 1.7e9)
    stop = threading.Event()
    th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while sum(worker.done.values()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    th.join(10)
    assert sample("person", "kept") - before[0] == 4
    assert sample("dog", "unknown_class") - before[1] == 4
    tracked = {worker.class_names_of[None][t.class_id] for t in worker.states["cam-dog"].tracker.tracks}
    assert tracked == {"person"}


def test_fire_colour_check_keeps_flames_and_drops_look_alikes() -> None:
    from xueliang.config.detector import HazardCheckConfig

    flames = fire_frame()
    grey = np.full((100, 100, 3), 128, np.uint8)
    brick = np.zeros((100, 100, 3), np.uint8)
    brick[:] = (40, 60, 110)  # dull red-brown: warm but neither bright nor saturated enough
    assert flame_fraction(grey, (0, 0, 100, 100)) == 0.0
    assert flame_fraction(brick, (0, 0, 100, 100)) == 0.0
    dets = Detections(
        np.array([[0, 0, 100, 100], [0, 0, 100, 100]], np.float32), np.array([0.9, 0.9], np.float32), np.array([5, 0])
    )
    config = HazardCheckConfig()
    assert verify_fire(dets, ["fire", "person"], grey, 1.0, config).tolist() == [False, True]
    assert verify_fire(dets, ["fire", "person"], grey, 1.0, HazardCheckConfig(enabled=False)).tolist() == [True, True]
    # the generated fire, where the project's model finds it
    det = OnnxRuntimeDetector(MODELS / "xueliang-yolo-n.onnx", None, 0.4, 0.6)
    d = det.infer([flames])[0]
    fires = [b for b, c in zip(d.xyxy, d.class_id, strict=True) if det.names[int(c)] == "fire"]
    assert fires and all(flame_fraction(flames, tuple(b)) >= config.min_flame_fraction for b in fires)


def test_smoke_inside_a_persons_box_is_that_person() -> None:
    """A face filling an in-car picture scored 0.48-0.54 as smoke, inside the man's 0.7 person box."""
    from xueliang.config.detector import HazardCheckConfig

    names = ["person", "smoke", "smoke", "person", "smoke", "smoke"]
    dets = Detections(
        np.array(
            [
                [15, 15, 165, 143],  # the man
                [37, 36, 77, 94],  # his face, called smoke: inside his box
                [100, 0, 300, 140],  # smoke beside and behind him: 29 % of its box overlaps his
                [300, 10, 380, 90],  # someone the model is unsure of (0.3)
                [310, 20, 370, 80],  # smoke inside that unsure box: kept
                [400, 10, 480, 90],  # smoke with nobody near
            ],
            np.float32,
        ),
        np.array([0.7, 0.54, 0.6, 0.3, 0.5, 0.6], np.float32),
        np.zeros(6, np.int32),
    )
    assert verify_smoke(dets, names, HazardCheckConfig()).tolist() == [True, False, True, True, True, True]
    assert verify_smoke(dets, names, HazardCheckConfig(max_smoke_inside_person=1.0)).all()  # the check off
    assert verify_smoke(dets, names, HazardCheckConfig(enabled=False)).all()


# ----------------------------------------------------------------------------------- box AP
def test_average_precision() -> None:
    gt = [[0, 0, 10, 10]]
    assert average_precision([([([0, 0, 10, 10], 0.9)], gt)]).ap == pytest.approx(1.0)
    # a false detection scored above the true one: precision 1/2 at full recall
    assert average_precision([([([50, 50, 60, 60], 0.95), ([1, 1, 10, 10], 0.9)], gt)]).ap == pytest.approx(0.5)
    # one object of two found: recall 1/2
    score = average_precision([([([0, 0, 10, 10], 0.9)], [*gt, [20, 20, 30, 30]])])
    assert score.ap == pytest.approx(0.5) and score.recall == 0.5
    # a duplicate of a found object is a false positive
    assert average_precision([([([0, 0, 10, 10], 0.9), ([0, 0, 10, 9], 0.8)], gt)]).true_positives == 1
    assert average_precision([([], gt)]).ap == 0.0


def test_real_footage_ground_truth_is_what_the_review_makes() -> None:
    """labels.json = the teachers' draft + the by-eye review (label.py apply), >= 150 frames of 3 clips."""
    label = _bench("label")
    drafts = json.loads((REAL / "draft.json").read_text())
    review = json.loads((REAL / "review.json").read_text())
    labels = json.loads((REAL / "labels.json").read_text())
    assert sum(len(v["frames"]) for v in labels.values()) >= 150 and len(labels) >= 3
    for clip, data in drafts.items():
        rev = review.get(clip, {})
        for idx, boxes in data["frames"].items():
            rows, _ = label.resolve(boxes, rev.get("frames", {}).get(idx, {}), rev)
            assert rows == labels[clip]["frames"][idx]
            assert all(r[4] in label.EVAL_CLASSES and r[0] < r[2] and r[1] < r[3] for r in rows)
    classes = {r[4] for v in labels.values() for rows in v["frames"].values() for r in rows}
    assert {"person", "vehicle", "two_wheeler"} <= classes


# ----------------------------------------------------------------------------------- no phantom alarms
@pytest.mark.slow
@needs_footage
def test_production_setup_raises_no_phantom_fire_and_no_two_wheelers_on_real_footage() -> None:
    """Held-out real clips through the real worker with the production setup: vtest (people, a van; one pass)
    and tree (a tree in the wind; looped to a minute). No fire or smoke anywhere, no bicycle or motorbike
    in vtest: none may become an incident, and no two-wheeler may reach the rules at the rules' score."""
    phantoms = _bench("phantoms")
    results = phantoms.run(["vtest", "tree"], 1.0, 2.0, real_world_backend(MODELS, threads=2))
    for clip, r in results.items():
        assert r["inferred"] > 0, clip
        assert r["incidents"].get("fire_smoke", 0) == 0, (clip, r)
    two_wheelers = {k: v for k, v in results["vtest"]["fed_at_0_4"].items() if k in ("bicycle", "motorbike")}
    assert not two_wheelers, results["vtest"]
    assert results["vtest"]["fed_at_0_4"].get("person", 0) > 100  # it does see the walkers


# ----------------------------------------------------------------------------------- ultralytics weights
def test_standard_ultralytics_weights_go_through_the_class_map(tmp_path: Path) -> None:
    """A site with ``yolo11n.pt`` (COCO names) keeps working: the ultralytics backend loads it and the class
    map turns COCO names into the project's. Nothing can be downloaded here, so the weights are built locally
    from ultralytics' own yolo11n.yaml (random weights) with COCO's names, as the real file carries them."""
    ultralytics = pytest.importorskip("ultralytics")
    import yaml
    from ultralytics import YOLO

    from xueliang.config.detector import COCO_CLASS_MAP

    coco = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "datasets" / "coco.yaml").read_text())
    model = YOLO("yolo11n.yaml")
    model.model.names = dict(coco["names"])
    weights = tmp_path / "yolo11n.pt"
    model.save(str(weights))
    cam = {
        "id": "cam-u",
        "source": {"type": "file", "path": "unused.mp4"},
        "zones": [{"name": "all", "polygon": [[0, 0], [768, 0], [768, 576], [0, 576]]}],
        "rules": [{"name": "bikes", "type": "intrusion", "zone": "all", "classes": ["motorbike", "truck", "person"]}],
    }
    settings = minimal_settings(
        [cam],
        detector={
            "backend": {"type": "ultralytics", "model": str(weights), "threads": 1},
            "imgsz": 320,
            "class_map": dict(COCO_CLASS_MAP),
            "snapshot_dir": str(tmp_path),
        },
    )
    worker = DetectorWorker(settings, MemoryBus(), worker_id="u")
    names = worker.class_names_of[None]
    assert names[0] == "person" and names[3] == "motorbike" and names[5] == "truck"  # motorcycle, bus
    frame = np.zeros((576, 768, 3), np.uint8)
    assert isinstance(worker.backend.infer([frame])[0], Detections)
