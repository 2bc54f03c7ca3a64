"""Detector section: which inference backend (a discriminated union), batching, freshness,
and the mapping from the model's class names to the project's incident classes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from xueliang.config._base import StrictModel

DEFAULT_MODEL = Path(__file__).resolve().parents[1].parent / "detector" / "models" / "xueliang-yolo-n.onnx"


class UltralyticsBackend(StrictModel):
    """Any weights ultralytics loads: our shipped .pt/.onnx, or e.g. ``yolo11n.pt`` where internet exists."""

    type: Literal["ultralytics"]
    model: str = Field(description="path or ultralytics model name (yolo11n.pt)")
    device: str = "cpu"


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
    precision: Literal["f32", "bf16"] = "f32"


Backend = Annotated[UltralyticsBackend | OnnxRuntimeBackend | OpenVinoBackend, Field(discriminator="type")]


class DetectorConfig(StrictModel):
    backend: Backend = Field(default_factory=lambda: OnnxRuntimeBackend(type="onnxruntime", model=DEFAULT_MODEL))
    imgsz: int = Field(320, ge=64, le=1920, multiple_of=32)
    confidence: float = Field(0.25, ge=0, le=1, description="detections below this are discarded before tracking")
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
