"""Detector section: which inference backend (a discriminated union), batching, freshness,
and the mapping from the model's class names to the project's incident classes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from xueliang.config._base import StrictModel

DEFAULT_MODEL = Path(__file__).resolve().parents[1].parent / "detector" / "models" / "xueliang-yolo-n.onnx"


class UltralyticsBackend(StrictModel):
    """Any weights ultralytics loads: our shipped .pt/.onnx, or e.g. ``yolo11n.pt`` where internet exists."""

    type: Literal["ultralytics"]
    model: str = Field(description="path or ultralytics model name (yolo11n.pt)")
    device: str = "cpu"
    threads: int | None = Field(None, ge=1, le=64, description="torch CPU threads; None keeps torch's default")


class OnnxRuntimeBackend(StrictModel):
    """Lean backend without torch: ONNX Runtime with the project's letterbox/NMS."""

    type: Literal["onnxruntime"]
    model: Path
    threads: int = Field(2, ge=1, le=64)


class OpenVinoBackend(StrictModel):
    """Lean backend without torch: OpenVINO (bf16 where the CPU has it)."""

    type: Literal["openvino"]
    model: Path
    threads: int = Field(2, ge=1, le=64)
    precision: Literal["f32", "bf16", "auto"] = Field(
        "f32",
        description="auto: bf16 where the CPU computes it natively (OpenVINO reports BF16: AVX512-BF16/AMX), else "
        "f32; the choice and its reason are logged",
    )
    streams: int | Literal["auto"] = Field(
        "auto",
        description="inference streams: a batch's frames are inferred in parallel, one stream each, the threads "
        "shared among them (OpenVINO's throughput mode); 1: one request on all the threads (its latency mode). "
        "auto: one stream per thread, which costs about 30 % less CPU a frame than one request on two threads "
        "(no synchronisation between them; docs/operations.md, capacity)",
    )

    @property
    def stream_count(self) -> int:
        return self.threads if self.streams == "auto" else min(self.streams, self.threads)


SingleBackend = Annotated[UltralyticsBackend | OnnxRuntimeBackend | OpenVinoBackend, Field(discriminator="type")]


class EnsembleMember(StrictModel):
    """One model of an ensemble and the project classes it answers for."""

    backend: SingleBackend
    imgsz: int | None = Field(None, ge=64, le=1920, multiple_of=32, description="default: the model's own size")
    class_map: dict[str, str] = Field(
        default_factory=dict, description="this model's class names → project classes (COCO 'motorcycle' → 'motorbike')"
    )
    classes: list[str] = Field(
        min_length=1,
        description="project classes taken from this model (after its class_map); its other classes are dropped",
    )


class EnsembleBackend(StrictModel):
    """Several models, each answering for its own classes: e.g. a COCO-trained detector for people and
    vehicles, trained on real images, and the project's model for fire and smoke only. A member runs on a
    camera's frames only when one of the camera's rules looks at one of its classes (no fire/smoke rule, no
    fire/smoke model)."""

    type: Literal["ensemble"]
    members: list[EnsembleMember] = Field(min_length=1, max_length=4)

    @model_validator(mode="after")
    def _disjoint_classes(self) -> EnsembleBackend:
        seen: dict[str, int] = {}
        for i, m in enumerate(self.members):
            for c in m.classes:
                if c in seen:
                    raise ValueError(f"class {c!r} is taken from member {seen[c]} and member {i}: give each to one")
                seen[c] = i
        return self


Backend = Annotated[
    UltralyticsBackend | OnnxRuntimeBackend | OpenVinoBackend | EnsembleBackend, Field(discriminator="type")
]


# the project's model trained again with real frames as hard negatives: fire and smoke for real cameras
REAL_FIRE_MODEL = "xueliang-yolo-n-real.onnx"
# COCO names a county's rules use, in the project's words; the rest of COCO's 80 classes are dropped
COCO_CLASS_MAP = {"motorcycle": "motorbike", "bus": "truck", "backpack": "bag", "handbag": "bag", "suitcase": "bag"}


def real_world_backend(
    models_dir: Path = DEFAULT_MODEL.parent, threads: int = 2, runtime: Literal["openvino", "onnxruntime"] = "openvino"
) -> dict[str, object]:
    """The backend for real cameras (the production default, as a config mapping): people, vehicles and bags
    from NanoDet-m, trained on COCO's real photographs; fire and smoke from the project's model, the only one
    that knows them, trained on generated scenes, then again with real frames as hard negatives (xueliang-yolo-n-real).
    OpenVINO by default, in bf16 where the CPU has it (same AP50 on the real frames; ULTRALYTICS.md: 1.5-1.7x
    ONNX Runtime's speed on an idle 2-core box); ``runtime="onnxruntime"`` for lean hosts without OpenVINO. docs/detector.md,
    "Which model serves which job", gives the measurements behind the choice."""

    def member(model: str) -> dict[str, object]:
        spec: dict[str, object] = {"type": runtime, "model": str(models_dir / model), "threads": threads}
        if runtime == "openvino":
            spec["precision"] = "auto"
        return spec

    return {
        "type": "ensemble",
        "members": [
            {
                "backend": member("coco-nanodet.onnx"),
                "class_map": dict(COCO_CLASS_MAP),
                "classes": ["person", "bicycle", "motorbike", "car", "truck", "bag"],
            },
            {
                "backend": member(REAL_FIRE_MODEL),
                "classes": ["fire", "smoke"],
            },
        ],
    }


class TrackerConfig(StrictModel):
    """The per-camera tracker (a small ByteTrack: high-score IoU matching, low-score rescue, then centre distance)."""

    high_score: float = Field(0.5, ge=0, le=1, description="detections at or above this start tracks and match first")
    low_score: float = Field(0.1, ge=0, le=1, description="detections between this and high_score only extend tracks")
    match_iou: float = Field(0.2, ge=0, le=1, description="minimum IoU for a detection to continue a track")
    min_hits: int = Field(2, ge=1, description="matched frames before a track is confirmed")
    lost_ttl_s: float = Field(2.0, gt=0, description="a track unseen this long (capture time) is evicted")
    score_window: int = Field(7, ge=1, le=100, description="recent scores kept for the median-score test")
    max_speed_sizes_per_s: float = Field(
        1.5,
        ge=0,
        description="last association stage, for what IoU leaves unmatched (a new track has no velocity yet, and "
        "at 2 frames/s a walker moves about its own width between samples): a detection continues a track seen in the "
        "previous sample when "
        "its box centre lies within this many of the track's box sizes (longer side) per second of capture time "
        "since the track was last seen, from the track's last or predicted centre; nearest first, one to one, "
        "same class. 1.5: a walker (under 2.5 m/s, 1.7 m tall) or a car at 25 km/h (7 m/s, 4.5 m long, side "
        "view); faster objects are followed by their velocity once seen twice. 0 turns the stage off",
    )
    max_size_ratio: float = Field(
        1.5,
        ge=1,
        description="the centre-distance stage pairs boxes whose longer sides differ by at most this factor",
    )


class ZoomConfig(StrictModel):
    """Second look at small, uncertain objects: after the whole-frame pass, crops of imgsz *frame* pixels
    around them are inferred at full resolution and merged in (a 10-px fire at 768 px is 6 px at 480)."""

    enabled: bool = False
    min_confidence: float = Field(
        0.1,
        ge=0,
        le=1,
        description="whole-frame detections from this score are candidates (none below detector.confidence reach it)",
    )
    max_object_px: float = Field(
        24.0,
        gt=0,
        description="candidates are at most this big at the model's input scale "
        "(a new fire's first boxes take in its smoke column: 34 frame px tall, 21 at 480)",
    )
    hold_s: float = Field(2.0, ge=0, description="a candidate's place is looked at again for this long (capture time)")
    max_crops: int = Field(2, ge=1, le=8, description="crops per frame at most")
    min_frame_scale: float = Field(1.5, ge=1.0, description="only frames at least this many times imgsz (long side)")


class HazardCheckConfig(StrictModel):
    """Second opinions on fire and smoke before tracking (``xueliang.detector.hazards``): a box counts as fire
    only when this share of its pixels is flame-coloured (real footage's false fires, on dark corners, brick,
    leaves and glare, have about none; real and generated flames have far more), and a smoke box that lies
    inside a person's box is the person (a close-up face), not smoke."""

    enabled: bool = True
    fire_classes: list[str] = Field(default_factory=lambda: ["fire"], description="project classes checked")
    min_flame_fraction: float = Field(0.08, ge=0, le=1, description="share of flame-coloured pixels in the box")
    smoke_classes: list[str] = Field(
        default_factory=lambda: ["smoke"], description="project classes checked against the people in the frame"
    )
    max_smoke_inside_person: float = Field(
        0.8,
        gt=0,
        le=1,
        description="a smoke box with at least this share of its area inside a person's box (score ≥ "
        "person_min_score, from any member) is that person, not smoke (1.0: the check is off)",
    )
    person_min_score: float = Field(0.5, ge=0, le=1, description="people this sure count for the smoke check")


class ClipConfig(StrictModel):
    """Evidence clips (H.264 MP4 beside the snapshot, needs the 'ingest' extra: PyAV)."""

    enabled: bool = Field(True, description="write a clip per incident (skipped with a warning if PyAV is missing)")
    pre_s: float = Field(4.0, ge=0, le=60, description="seconds of sampled frames before the incident")
    post_s: float = Field(4.0, ge=0, le=60, description="seconds after it")
    retention_s: float = Field(7 * 86400, gt=0, description="clips older than this are deleted")
    max_files: int = Field(2000, ge=1, description="at most this many clips are kept (oldest deleted first)")


class DetectorConfig(StrictModel):
    backend: Backend = Field(default_factory=lambda: OnnxRuntimeBackend(type="onnxruntime", model=DEFAULT_MODEL))
    backends: dict[str, Backend] = Field(
        default_factory=dict,
        description="more backends by name, for cameras that name one (cameras[].detector_backend); cameras that "
        "name none use `backend`",
    )
    imgsz: int | None = Field(
        None,
        ge=64,
        le=1920,
        multiple_of=32,
        description="network input size (the long side); default: the size the model was "
        "trained and exported at (its metadata), else 320",
    )
    confidence: float = Field(
        0.1,
        ge=0,
        le=1,
        description="detections below this are discarded before tracking "
        "(keep it low: the tracker rescues tracks with low-score detections, and each rule "
        "applies its own min_confidence to the median score)",
    )
    iou: float = Field(0.45, ge=0, le=1)
    batch_size: int = Field(8, ge=1, le=64)
    batch_timeout_ms: int = Field(50, ge=0, le=5000)
    max_age_s: float = Field(5.0, gt=0, description="frames older than this (capture time) are skipped and counted")
    full_pass_s: float = Field(10.0, gt=0, description="re-infer a camera at least this often even without motion")
    class_map: dict[str, str] = Field(
        default_factory=dict,
        description="model class name → project class (e.g. COCO 'motorcycle' → 'motorbike'); unmapped names pass "
        "through unchanged; map to '' to drop a class",
    )
    snapshot_dir: Path = Path("var/snapshots")
    snapshot_url_prefix: str = Field("/snapshots/", description="incident snapshot_url = prefix + '<incident id>.jpg'")
    snapshot_jpeg_quality: int = Field(85, ge=30, le=100)
    clips: ClipConfig = Field(default_factory=ClipConfig, description="evidence clips around each incident")
    tracker: TrackerConfig = TrackerConfig()
    queue_frames: int = Field(64, ge=1, le=10000, description="frames buffered per worker; beyond it the oldest drop")
    timezone: str = Field("Asia/Shanghai", description="IANA zone in which rule schedules (active hours) are read")
    episode_grace_s: float = Field(
        2.0, ge=0, description="a rule's condition may lapse this long (missed detections) before its episode ends"
    )
    max_replay_s: float = Field(
        120.0,
        gt=0,
        description="offsets are held back at most this long (capture time) "
        "to let a successor rebuild open episodes after a crash",
    )
    decode_min_scale: float = Field(
        1.0,
        ge=0.5,
        le=1.0,
        description="JPEG frames are decoded at 1/2, 1/4 or 1/8 size while that is at least this × the input size "
        "(long side) of the networks the camera's rules need: 1.0 never upscales (a 768-px frame is decoded at 384 "
        "for the real-camera setup's 384-px NanoDet, at full size where a fire/smoke rule also needs the 480-px "
        "fire model); 0.9 decodes a 768-px frame at 384 for a 416-px model and lets the letterbox enlarge it 8 %",
    )
    roi_crops: bool = Field(
        False,
        description="on frames wider than 2×imgsz, infer on crops around motion and "
        "tracked objects instead of the shrunken whole frame",
    )
    zoom: ZoomConfig = ZoomConfig()
    hazard_check: HazardCheckConfig = HazardCheckConfig()
