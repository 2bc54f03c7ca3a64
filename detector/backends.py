"""Inference backends behind one interface, chosen by the config's discriminated union.

Every backend gets the same input (the shared :func:`~xueliang.detector.preprocess.letterbox`)
and its raw output goes through the same :func:`~xueliang.detector.preprocess.postprocess`,
so on the same frames they return the same boxes up to floating-point noise:

* ``onnxruntime`` and ``openvino`` are lean: numpy + the runtime, no torch;
* ``ultralytics`` runs any weights ultralytics' ``AutoBackend`` loads (.pt, .onnx, an
  OpenVINO folder...) and needs torch; it is imported only when chosen.
"""

from __future__ import annotations

import abc
import ast
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xueliang.config.detector import (
    Backend,
    DetectorConfig,
    EnsembleBackend,
    EnsembleMember,
    OnnxRuntimeBackend,
    OpenVinoBackend,
    UltralyticsBackend,
)
from xueliang.detector import metrics
from xueliang.detector.preprocess import canvas_shape, letterbox, postprocess, to_tensor
from xueliang.detector.types import Detections

log = logging.getLogger(__name__)

Wanted = frozenset[str] | None  # the project classes an image's camera needs; None: every class


class BackendError(RuntimeError):
    """The model cannot be loaded or run (missing file, unknown format, wrong output)."""


def _parse_names(raw: Any) -> dict[int, str]:
    if isinstance(raw, str):
        raw = ast.literal_eval(raw)
    if isinstance(raw, list | tuple):
        raw = dict(enumerate(raw))
    if not isinstance(raw, dict):
        raise BackendError(f"cannot read class names from model metadata: {raw!r}")
    return {int(k): str(v) for k, v in raw.items()}


def onnx_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` ultralytics writes into an exported ONNX (names, imgsz, stride...)."""
    try:
        import onnx
    except ImportError:  # lean host without the onnx package: ask ONNX Runtime if it is there
        try:
            import onnxruntime as ort
        except ImportError:
            return {}
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return dict(sess.get_modelmeta().custom_metadata_map)
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


DEFAULT_IMGSZ = 320


def _metadata_imgsz(value: object) -> int | None:
    """The long side of a model's recorded input size: ``416``, ``[416, 416]`` or the string ``'[416, 416]'``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, int) for v in value):
        return max(value)
    return None


def _static_canvas(model: Path, height: object, width: object, imgsz: int | None) -> tuple[int, int] | None:
    """A model with a fixed input size gets exactly that canvas (a dynamic one: None)."""
    if not (isinstance(height, int) and isinstance(width, int)):
        return None
    if imgsz and max(height, width) != imgsz:
        log.warning("model %s has a fixed %sx%s input; using it instead of imgsz %s", model, width, height, imgsz)
    return height, width


class InferenceBackend(abc.ABC):
    """Frames in (BGR uint8, any size), detections in frame pixels out, one batch per call."""

    kind: str = "?"

    def __init__(
        self,
        imgsz: int | None,
        conf: float,
        iou: float,
        names: dict[int, str],
        fixed_batch: int | None = None,
        fixed_canvas: tuple[int, int] | None = None,
        model_imgsz: int | None = None,
    ) -> None:
        # a fixed input wins; then the configured size; then the size the model was trained at
        self.imgsz = max(fixed_canvas) if fixed_canvas else (imgsz or model_imgsz or DEFAULT_IMGSZ)
        self.fixed_canvas = fixed_canvas  # a static-shape model's (H, W); else each batch gets a rectangular canvas
        self.conf = conf
        self.iou = iou
        self.names = names
        self.fixed_batch = fixed_batch  # a static-shape model runs batches of exactly this size

    @abc.abstractmethod
    def _forward(self, tensor: np.ndarray) -> np.ndarray:
        """(B, 3, H, W) float32 → raw model output (B, 4 + nc, A) or (B, K, 6)."""

    def infer(self, images: list[np.ndarray], wanted: Sequence[Wanted] | None = None) -> list[Detections]:
        """Detections per image (frame pixels); times the call into the metrics. ``wanted``: per image, the
        project classes its camera's rules look at (None: all), which lets an ensemble leave out the members
        that answer for none of them (:meth:`predict_for`)."""
        if not images:
            return []
        started = time.perf_counter()
        dets = self.predict(images) if wanted is None else self.predict_for(images, wanted)
        metrics.INFERENCE_SECONDS.labels(backend=self.kind).observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.labels(backend=self.kind).observe(len(images))
        return dets

    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        """Shared letterbox → network → shared NMS."""
        canvas = self.fixed_canvas
        if canvas is None:  # one canvas per batch: the largest of its frames' rectangular canvases
            shapes = [canvas_shape(img.shape[0], img.shape[1], self.imgsz) for img in images]
            canvas = (max(h for h, _ in shapes), max(w for _, w in shapes))
        placed = [letterbox(img, self.imgsz, canvas) for img in images]
        raw = self._forward_batch(self.tensor([c for c, _ in placed]))
        return postprocess(raw, [i for _, i in placed], self.conf, self.iou)

    def input_size(self, wanted: Wanted = None) -> int:
        """The long side of the network input that images wanting the classes ``wanted`` go through (an
        ensemble: its largest member among those that run for them); the detector decodes no larger."""
        return self.imgsz

    def predict_for(self, images: list[np.ndarray], wanted: Sequence[Wanted]) -> list[Detections]:
        """:meth:`predict` where image ``i`` needs only the classes ``wanted[i]`` (None: all). One network
        answers for all its classes at once, so a single model runs on every image; the ensemble overrides."""
        return self.predict(images)

    def tensor(self, canvases: list[np.ndarray]) -> np.ndarray:
        """Same-shape BGR uint8 canvases as this backend's network input: (B, 3, H, W) float32 RGB in [0, 1]."""
        return to_tensor(canvases)

    def _forward_batch(self, tensor: np.ndarray) -> np.ndarray:
        """The whole batch through the network: in one call, or frame by frame where the model's batch is fixed."""
        if self.fixed_batch is not None and self.fixed_batch != len(tensor):
            return np.concatenate([self._forward(tensor[i : i + 1]) for i in range(len(tensor))], axis=0)
        return self._forward(tensor)

    def close(self) -> None:
        return None


class OnnxRuntimeDetector(InferenceBackend):
    kind = "onnxruntime"

    def __init__(self, model: Path, imgsz: int | None, conf: float, iou: float, threads: int = 2) -> None:
        import onnxruntime as ort

        if not Path(model).is_file():
            raise BackendError(f"ONNX model {model} does not exist")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        names = _parse_names(meta["names"]) if "names" in meta else {}
        fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None
        canvas = _static_canvas(model, inp.shape[2], inp.shape[3], imgsz)
        super().__init__(imgsz, conf, iou, names, fixed, canvas, _metadata_imgsz(meta.get("imgsz")))

    def _forward(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: tensor})[0]


def cpu_precision(core: Any, model: Path) -> str:
    """bf16 where OpenVINO reports the CPU computes it natively (AVX512-BF16 / AMX), else f32; logged."""
    try:
        caps = list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except RuntimeError as exc:  # an OpenVINO build without the property: the safe choice
        log.info("model %s: OpenVINO precision f32 (CPU capabilities unreadable: %s)", model, exc)
        return "f32"
    chosen = "bf16" if "BF16" in caps else "f32"
    log.info(
        "model %s: OpenVINO precision %s (%s; CPU capabilities %s)",
        model,
        chosen,
        "the CPU computes bf16 natively" if chosen == "bf16" else "no native bf16 on this CPU",
        ",".join(caps),
    )
    return chosen


def _uint8_bgr_input(net: Any) -> Any:
    """The network with :func:`~xueliang.detector.preprocess.to_tensor`'s conversion built in (OpenVINO's
    pre-processing: BGR uint8 NHWC in, RGB float32 NCHW / 255 to the network), so the canvases go in as they are
    and the conversion runs in the compiled model's own kernels instead of numpy's passes over the batch."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(net)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return ppp.build()


class OpenVinoDetector(InferenceBackend):
    kind = "openvino"

    def __init__(
        self,
        model: Path,
        imgsz: int | None,
        conf: float,
        iou: float,
        threads: int = 2,
        precision: str = "f32",
        streams: int = 1,
    ) -> None:
        import openvino as ov

        model = Path(model)
        if not model.exists():
            raise BackendError(f"OpenVINO model {model} does not exist")
        core = ov.Core()
        net = core.read_model(str(model))
        names: dict[int, str] = {}
        meta: dict[str, Any] = {}
        if model.suffix == ".onnx":
            meta = dict(onnx_metadata(model))
        else:  # an ultralytics OpenVINO export folder/xml keeps metadata.yaml next to it
            meta_yaml = (model if model.is_dir() else model.parent) / "metadata.yaml"
            if meta_yaml.is_file():
                import yaml

                meta = yaml.safe_load(meta_yaml.read_text()) or {}
        if "names" in meta:
            names = _parse_names(meta["names"])
        shape = net.inputs[0].get_partial_shape()
        fixed = shape[0].get_length() if shape[0].is_static else None
        height, width = (shape[i].get_length() if shape[i].is_static else None for i in (2, 3))
        canvas = _static_canvas(model, height, width, imgsz=imgsz)
        if precision == "auto":
            precision = cpu_precision(core, model)
        self.model = model
        self.streams = max(1, min(streams, threads))
        mode = {"PERFORMANCE_HINT": "LATENCY"} if self.streams == 1 else {"PERFORMANCE_HINT": "THROUGHPUT"}
        if self.streams > 1:
            mode["NUM_STREAMS"] = str(self.streams)
        self.compiled = core.compile_model(
            _uint8_bgr_input(net),
            "CPU",
            {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision, **mode},
        )
        self.request = self.compiled.create_infer_request()
        self.queue = ov.AsyncInferQueue(self.compiled, self.streams) if self.streams > 1 else None
        log.info(
            "model %s: OpenVINO %s, %d thread(s)%s",
            model,
            precision,
            threads,
            f" as {self.streams} parallel streams (a batch's frames inferred at once, each single-threaded)"
            if self.streams > 1
            else " on one request",
        )
        super().__init__(imgsz, conf, iou, names, fixed, canvas, _metadata_imgsz(meta.get("imgsz")))

    def tensor(self, canvases: list[np.ndarray]) -> np.ndarray:
        """The canvases as they are, (B, H, W, 3) BGR uint8: the compiled model converts them (see
        :func:`_uint8_bgr_input`)."""
        return np.stack(canvases)

    def _forward(self, tensor: np.ndarray) -> np.ndarray:
        self.request.infer({0: tensor})
        return np.array(self.request.get_output_tensor(0).data, copy=True)  # the request reuses its buffer

    def _forward_batch(self, tensor: np.ndarray) -> np.ndarray:
        """With several streams, the batch's frames (or, for a model that takes any batch, one slice per stream)
        go to the streams at once, each request single-threaded; else as the base class does."""
        if self.queue is None or len(tensor) == 1:
            return super()._forward_batch(tensor)
        parts = len(tensor) if self.fixed_batch == 1 else min(self.streams, len(tensor))
        chunks = np.array_split(tensor, parts) if parts < len(tensor) else [tensor[i : i + 1] for i in range(parts)]
        outs: list[np.ndarray | None] = [None] * len(chunks)

        def done(request: Any, index: int) -> None:
            outs[index] = np.array(request.get_output_tensor(0).data, copy=True)

        self.queue.set_callback(done)
        for i, chunk in enumerate(chunks):
            self.queue.start_async({0: np.ascontiguousarray(chunk)}, i)
        self.queue.wait_all()
        if any(o is None for o in outs):
            raise BackendError(
                f"OpenVINO model {self.model}: {outs.count(None)} of {len(outs)} requests gave no output"
            )
        return np.concatenate([o for o in outs if o is not None], axis=0)


class UltralyticsDetector(InferenceBackend):
    """Ultralytics' AutoBackend runs the network (torch); letterbox and NMS stay ours."""

    kind = "ultralytics"

    def __init__(
        self, model: str, imgsz: int | None, conf: float, iou: float, device: str = "cpu", threads: int | None = None
    ) -> None:
        import torch
        from ultralytics.nn.autobackend import AutoBackend

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        try:
            self.net = AutoBackend(model, device=torch.device(device), fuse=True, verbose=False)
        except FileNotFoundError as exc:
            raise BackendError(f"ultralytics cannot load {model!r}: {exc}") from exc
        self.net.eval()
        static = not (self.net.format == "pt" or self.net.metadata.get("dynamic"))
        fixed = int(self.net.metadata.get("batch", 1)) if static else None
        canvas = None
        if static and self.net.metadata.get("imgsz"):
            h, w = (int(v) for v in self.net.metadata["imgsz"])
            canvas = _static_canvas(Path(model), h, w, imgsz)
        trained = (getattr(self.net, "metadata", None) or {}).get("imgsz") or (
            getattr(getattr(self.net, "model", None), "args", None) or {}
        ).get("imgsz")
        super().__init__(imgsz, conf, iou, _parse_names(self.net.names), fixed, canvas, _metadata_imgsz(trained))

    def _forward(self, tensor: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            out = self.net(self._torch.from_numpy(tensor).to(self.net.device))
        if isinstance(out, list | tuple):
            out = out[0]
        return out.detach().float().cpu().numpy()


class EnsembleDetector(InferenceBackend):
    """Every member runs on every batch (its own letterbox size, the shared NMS); each keeps only the project
    classes it answers for, renamed by its own class map, and the results are joined per frame. Class ids are
    the ensemble's: the members' classes in the order the config lists them."""

    kind = "ensemble"

    def __init__(self, members: list[tuple[InferenceBackend, EnsembleMember]], conf: float, iou: float) -> None:
        names: dict[int, str] = {}
        self.members: list[tuple[InferenceBackend, dict[int, int]]] = []
        for backend, spec in members:
            remap: dict[int, int] = {}
            for model_id, model_name in backend.names.items():
                project = spec.class_map.get(model_name, model_name)
                if project in spec.classes:
                    ours = next((i for i, n in names.items() if n == project), len(names))
                    names[ours] = project
                    remap[model_id] = ours
            missing = set(spec.classes) - set(names.values())
            if missing:
                raise BackendError(
                    f"ensemble member {getattr(spec.backend, 'model', '?')} has no class for {sorted(missing)} "
                    f"(its classes: {sorted(backend.names.values())[:12]}...; map them with class_map)"
                )
            self.members.append((backend, remap))
        super().__init__(max(b.imgsz for b, _ in members), conf, iou, names)
        self._answers = [frozenset(names[i] for i in remap.values()) for _, remap in self.members]  # per member

    def _forward(self, tensor: np.ndarray) -> np.ndarray:  # pragma: no cover - predict() is overridden
        raise NotImplementedError

    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        return self.predict_for(images, [None] * len(images))

    def _runs_for(self, member: int, wanted: Wanted) -> bool:
        return wanted is None or not self._answers[member].isdisjoint(wanted)

    def input_size(self, wanted: Wanted = None) -> int:
        sizes = [b.imgsz for m, (b, _) in enumerate(self.members) if self._runs_for(m, wanted)]
        return max(sizes) if sizes else min(b.imgsz for b, _ in self.members)

    def predict_for(self, images: list[np.ndarray], wanted: Sequence[Wanted]) -> list[Detections]:
        """Each member runs on the images that want one of its classes: a camera without a fire/smoke rule never
        pays for the fire/smoke member (in the county configuration, 39 of 538 cameras have one)."""
        parts: list[list[Detections]] = [[Detections.empty()] for _ in images]
        for m, (backend, remap) in enumerate(self.members):
            needed = [i for i, w in enumerate(wanted) if self._runs_for(m, w)]
            for i, found in zip(needed, backend.predict([images[i] for i in needed]) if needed else [], strict=True):
                keep = np.asarray([int(c) in remap for c in found.class_id], bool) if len(found) else np.zeros(0, bool)
                d = found[keep]
                ids = np.asarray([remap[int(c)] for c in d.class_id], np.int32)
                parts[i].append(Detections(d.xyxy, d.confidence, ids))
        return [
            Detections(
                np.concatenate([p.xyxy for p in frame]).reshape(-1, 4).astype(np.float32),
                np.concatenate([p.confidence for p in frame]).astype(np.float32),
                np.concatenate([p.class_id for p in frame]).astype(np.int32),
            )
            for frame in parts
        ]

    def close(self) -> None:
        for backend, _ in self.members:
            backend.close()


def _single(b: OnnxRuntimeBackend | OpenVinoBackend | UltralyticsBackend, imgsz: int | None, conf: float,
            iou: float) -> InferenceBackend:  # fmt: skip
    if isinstance(b, OnnxRuntimeBackend):
        return OnnxRuntimeDetector(b.model, imgsz, conf, iou, b.threads)
    if isinstance(b, OpenVinoBackend):
        return OpenVinoDetector(b.model, imgsz, conf, iou, b.threads, b.precision, b.stream_count)
    if isinstance(b, UltralyticsBackend):
        return UltralyticsDetector(b.model, imgsz, conf, iou, b.device, b.threads)
    raise BackendError(f"unknown backend {b!r}")  # pragma: no cover - the union is closed


def make_backend(config: DetectorConfig, backend: Backend | None = None) -> InferenceBackend:
    """Build ``backend`` (default: the config's ``backend``) with the config's thresholds and size."""
    b = config.backend if backend is None else backend
    if isinstance(b, EnsembleBackend):
        members = [(_single(m.backend, m.imgsz, config.confidence, config.iou), m) for m in b.members]
        return EnsembleDetector(members, config.confidence, config.iou)
    return _single(b, config.imgsz, config.confidence, config.iou)
