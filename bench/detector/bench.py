"""Detector throughput on this box: each backend × imgsz × batch, with and without motion gating,
against ultralytics' plain ``model.predict`` loop measured in the same run.

    YOLO_OFFLINE=1 taskset -c 0,1 .venv/bin/python bench/detector/bench.py \
        --pt detector/models/xueliang-yolo-n.pt --onnx detector/models/xueliang-yolo-n.onnx

Frames come from OpenCV's vtest.avi (768x576 pedestrians; Debian ``opencv-doc``). Every backend
runs with 2 threads. "gated" runs ingest's motion gate first (as the ingest stage would) and the
detector infers only frames with motion or a due keep-alive; its frames/s counts every offered
frame (camera capacity), including the gate's own cost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")


def vtest_path() -> Path:
    try:
        out = subprocess.run(["dpkg", "-L", "opencv-doc"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.endswith("vtest.avi"):
                return Path(line)
    except (OSError, subprocess.CalledProcessError):
        pass
    raise SystemExit("vtest.avi not found: apt-get install opencv-doc")


def load_frames(path: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    if not frames:
        raise SystemExit(f"cannot read {path}")
    return frames


def timed(fn, repeats: int) -> float:
    """Best of ``repeats`` wall times (the box is shared: the minimum is the least disturbed run)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pt", required=True, help="ultralytics weights (.pt) for the plain predict loop")
    ap.add_argument("--onnx", required=True, help="the same model exported to ONNX (dynamic shapes)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--imgsz", type=int, nargs="+", default=[640, 320])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--backends", nargs="+", default=["onnxruntime", "openvino", "openvino-bf16", "ultralytics"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument(
        "--clip",
        default="vtest",
        help="'vtest' (default), 'idle' (a still frame with sensor noise) or a scenario YAML (rendered at --fps)",
    )
    ap.add_argument("--fps", type=float, default=5.0, help="sample rate for a scenario clip")
    return ap.parse_args()


def clip_frames(args: argparse.Namespace) -> tuple[list[np.ndarray], float, str]:
    """The clip's frames, its frame rate and its name for the report."""
    if args.clip == "vtest":
        return load_frames(vtest_path(), args.frames), 10.0, "vtest.avi"
    if args.clip == "idle":  # a camera where nothing happens: vtest's first frame plus sensor noise
        rng = np.random.default_rng(0)
        still = load_frames(vtest_path(), 1)[0].astype(np.int16)
        frames = [np.clip(still + rng.normal(0, 2.0, still.shape), 0, 255).astype(np.uint8) for _ in range(args.frames)]
        return frames, 10.0, "idle (vtest frame 0 + noise)"
    from xueliang.scenes.render import SceneRenderer
    from xueliang.scenes.scenario import load_scenario

    sc = load_scenario(args.clip)
    frames = [f.image for f in SceneRenderer(sc, 0).frames(fps=args.fps)][: args.frames]
    return frames, args.fps, Path(args.clip).name


def plain_predict_rows(args: argparse.Namespace, frames: list[np.ndarray]) -> list[dict]:
    """ultralytics' plain loop: YOLO(pt).predict one frame at a time, defaults (its own threads)."""
    import torch
    from ultralytics import YOLO

    rows: list[dict] = []
    default_threads = torch.get_num_threads()
    for imgsz in args.imgsz:
        model = YOLO(args.pt)
        model.predict(frames[0], imgsz=imgsz, verbose=False)
        torch.set_num_threads(default_threads)
        s = timed(lambda m=model, z=imgsz: [m.predict(f, imgsz=z, verbose=False) for f in frames], args.repeats)
        rows.append(
            {
                "backend": "ultralytics predict (plain)",
                "imgsz": imgsz,
                "batch": 1,
                "gated": False,
                "fps": len(frames) / s,
            }
        )
    return rows


def make_detector(kind: str, args: argparse.Namespace, imgsz: int):  # type: ignore[no-untyped-def]
    from xueliang.detector.backends import OnnxRuntimeDetector, OpenVinoDetector, UltralyticsDetector

    if kind == "onnxruntime":
        return OnnxRuntimeDetector(Path(args.onnx), imgsz, 0.25, 0.45, args.threads)
    if kind.startswith("openvino"):
        return OpenVinoDetector(
            Path(args.onnx), imgsz, 0.25, 0.45, args.threads, "bf16" if kind.endswith("bf16") else "f32"
        )
    return UltralyticsDetector(args.pt, imgsz, 0.25, 0.45, threads=args.threads)


def backend_rows(args: argparse.Namespace, frames: list[np.ndarray], gated: list[int], gate_s: float) -> list[dict]:
    """Each backend x imgsz x batch over every frame, and over the frames the motion gate passes (plus its cost)."""
    rows: list[dict] = []
    for kind in args.backends:
        for imgsz in args.imgsz:
            det = make_detector(kind, args, imgsz)
            for batch in args.batch:
                det.infer(frames[:batch])

                def run(indices: list[int], batch: int = batch, det=det) -> None:
                    for k in range(0, len(indices), batch):
                        det.infer([frames[i] for i in indices[k : k + batch]])

                s = timed(lambda: run(list(range(len(frames)))), args.repeats)
                fps = len(frames) / s
                rows.append({"backend": kind, "imgsz": imgsz, "batch": batch, "gated": False, "fps": fps})
                sg = timed(lambda: run(gated), args.repeats) + gate_s * len(frames)
                rows.append({"backend": kind, "imgsz": imgsz, "batch": batch, "gated": True, "fps": len(frames) / sg})
            det.close()
    return rows


def main() -> None:
    args = parse_args()

    from xueliang.config.cameras import MotionConfig
    from xueliang.ingest.motion import MotionGate

    frames, clip_fps, clip = clip_frames(args)
    # motion gating as ingest does it (every frame of the clip sampled)
    gate = MotionGate(MotionConfig())
    t_gate = time.perf_counter()
    gated = [i for i, f in enumerate(frames) if gate.decide(f, i / clip_fps).publish]
    gate_s = (time.perf_counter() - t_gate) / len(frames)
    share = len(gated) / len(frames)
    rows = plain_predict_rows(args, frames) + backend_rows(args, frames, gated, gate_s)

    base = {r["imgsz"]: r["fps"] for r in rows if r["backend"].startswith("ultralytics predict")}
    h, w = frames[0].shape[:2]
    print(
        f"{clip}, {len(frames)} frames {w}x{h}, {args.threads} threads; motion gate passes "
        f"{len(gated)}/{len(frames)} frames ({share:.0%}), gate {gate_s * 1000:.2f} ms/frame; "
        f"cpu_count={os.cpu_count()}, affinity={len(os.sched_getaffinity(0))}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| backend | imgsz | batch | motion gating | frames/s | × plain predict |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        r["speedup"] = r["fps"] / base[r["imgsz"]]
        print(
            f"| {r['backend']} | {r['imgsz']} | {r['batch']} | {'yes' if r['gated'] else 'no'} | "
            f"{r['fps']:.1f} | {r['speedup']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"frames": len(frames), "gated_share": share, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
