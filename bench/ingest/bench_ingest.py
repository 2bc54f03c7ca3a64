"""Ingest cost per core against raw OpenCV decode of the same H.264 file, measured in the same run.

For 576p (vtest.avi's native 768×576) and 1080p (vtest.avi upscaled to 1920×1080), both
re-encoded to H.264 at 25 fps with a 1 s GOP, it measures CPU time (all threads of this
process, ``time.process_time``) of:

* ``decode``: ``VideoCapture.read()`` of every frame (decode + BGR conversion), the baseline,
  with the same decoder threads as the ingest source (``sources.DECODE_THREADS`` = 1);
* ``grab``: ``VideoCapture.grab()`` of every frame (decode only, no conversion);
* ``ingest@R``: the real camera loop (:class:`xueliang.ingest.camera.CameraRunner` on a
  non-realtime file source): grab every frame, keep R per second (``--sample-fps``), convert,
  diagnose every 5 s, motion-gate, downscale to ``max_width`` 960, JPEG-encode and publish
  to the bus (embedded by default, Kafka with ``--kafka HOST:PORT``);
* ``pyav@R``: the same loop with ``decoder: pyav``: PyAV decodes every frame into YUV planes, the
  motion gate reads the Y plane and the JPEG is encoded from the planes (no colour conversion);
* ``keyframes@1``: the same loop with ``keyframes_only`` (PyAV decodes key frames only;
  1 fps sample from a 1 s GOP).

"frames/s per core" is stream frames consumed per CPU second (median CPU of the rounds). The
ratio is ingest CPU / decode CPU (goal ≤ 1.25), taken within each round (every case runs once per
round, so a case is compared with the decode measured seconds before it, not minutes) and reported
as the median over ``--repeat`` rounds with its range: this box's CPU speed drifts by ±10 % between
minutes. ``--cameras N`` runs N camera loops in the one worker (a thread each, one publisher and
one producer, as ``IngestWorker`` does), so Kafka requests carry several cameras' frames. Motion gating is on (the footage has walkers in every frame, so
nearly every sampled frame is published: the worst case for encode + publish).

    .venv/bin/python bench/ingest/bench_ingest.py [--seconds 20] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from xueliang.bus.memory import MemoryBus
from xueliang.config.cameras import CameraConfig
from xueliang.contracts import Topics, topic_specs
from xueliang.ingest.camera import CameraRunner
from xueliang.ingest.health import HealthTracker
from xueliang.ingest.publisher import Publisher
from xueliang.ingest.quality import measure
from xueliang.ingest.sources import DECODE_THREADS
from xueliang.ingest.testing import encode_h264, vtest_avi

FRAME_PARTITIONS = 8


def cpu_of(fn) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    t0 = time.process_time()
    n = fn()
    return time.process_time() - t0, n


def raw_decode(path: Path, convert: bool) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, DECODE_THREADS])
    n = 0
    while True:
        ok = cap.read()[0] if convert else cap.grab()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def ingest(
    path: Path,
    sample_fps: float,
    keyframes: bool,
    bus,
    topics: Topics,  # type: ignore[no-untyped-def]
    decoder: str = "opencv",
    cameras: int = 1,
) -> int:
    """One worker: ``cameras`` camera loops over ``path`` (one thread each when more than one) sharing
    one publisher, as ``IngestWorker`` runs them; returns the frames published."""
    publisher = Publisher(bus, topics.frames, max_buffered_frames=10_000, max_in_flight=64)
    publisher.start()
    runners = []
    for i in range(cameras):
        cam = CameraConfig.model_validate(
            {
                "id": f"bench{i}",
                "source": {
                    "type": "file",
                    "path": str(path),
                    "loop": False,
                    "realtime": False,
                    "keyframes_only": keyframes,
                    "decoder": decoder,
                },
                "sample_fps": sample_fps,
                "max_width": 960,
            }
        )
        runners.append(CameraRunner(cam, publisher, i % FRAME_PARTITIONS, HealthTracker(cam)))
    if cameras == 1:
        runners[0]._run()  # in this thread, to the end of the file
    else:
        threads = [threading.Thread(target=r._run) for r in runners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    publisher.close(timeout=30)
    return sum(r.published for r in runners)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the test clips")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample-fps", default="2,5", help="comma-separated sample rates of the ingest cases")
    ap.add_argument("--kafka", default=None, help="publish to this Kafka bootstrap server instead of the embedded bus")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--cameras",
        type=int,
        default=1,
        help="cameras in the one worker (threads sharing one publisher), each reading its own copy of the clip",
    )
    ap.add_argument("--linger-ms", type=int, default=None, help="Kafka producer linger (default: the bus config's)")
    ap.add_argument("--opencv-threads", type=int, default=1, help="cv2.setNumThreads (1: per-core figures)")
    return ap.parse_args(argv)


def make_clips(seconds: float) -> dict[str, Path]:
    """The 576p and 1080p H.264 clips, after paying the one-time costs any long-running worker pays at
    start, not per frame (OpenCV builds its Lab tables on the first conversion, ~0.5 s)."""
    src = vtest_avi()
    warm = cv2.VideoCapture(str(src)).read()[1]
    measure(warm)
    return {
        "576p": encode_h264(src, fps=25, gop=25, seconds=seconds, name="bench576"),
        "1080p": encode_h264(src, fps=25, gop=25, width=1920, height=1080, seconds=seconds, name="bench1080"),
    }


def make_bus(kafka: str | None, linger_ms: int | None):  # type: ignore[no-untyped-def]
    """The embedded bus, or Kafka at ``kafka`` with topics of a fresh prefix; its topics created."""
    if kafka:
        from xueliang.bus.kafka import KafkaBus
        from xueliang.config.bus import KafkaBusConfig

        topics = Topics().with_prefix(f"bench-{uuid.uuid4().hex[:6]}")
        extra = {} if linger_ms is None else {"linger_ms": linger_ms}
        bus = KafkaBus(KafkaBusConfig(bootstrap_servers=[kafka], topics=topics, **extra))
    else:
        topics = Topics()
        bus = MemoryBus()
    bus.ensure_topics(topic_specs(topics, FRAME_PARTITIONS))
    return bus, topics


def bench_clip(cases: dict[str, Callable[[], int]], repeat: int, frames: int) -> dict[str, Any]:
    """CPU of every case over ``repeat`` rounds (one round = every case once; ratios pair each case
    with its round's decode), as medians, rates and ratios."""
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    ratios: dict[str, list[float]] = {k: [] for k in cases}
    published: dict[str, int] = {}
    for _ in range(repeat):
        for case, fn in cases.items():
            t, n = cpu_of(fn)
            cpu[case].append(t)
            if "@" in case:
                published[case] = n
        for case in cases:
            ratios[case].append(cpu[case][-1] / cpu["decode"][-1])
    med = {k: statistics.median(v) for k, v in cpu.items()}
    return {
        "stream_frames": frames,
        "cpu_s": {k: round(v, 3) for k, v in med.items()},
        "fps_per_core": {k: round(frames / v, 1) for k, v in med.items()},
        "ratio_to_decode": {k: round(statistics.median(v), 3) for k, v in ratios.items()},
        "ratio_range": {k: [round(min(v), 3), round(max(v), 3)] for k, v in ratios.items()},
        "ratio_to_grab": {k: round(v / med["grab"], 3) for k, v in med.items()},
        "published": published,
    }


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    print(
        f"\ningest bench: {args.seconds:.0f} s clips of vtest.avi, H.264 25 fps GOP 25, {args.cameras} camera(s) in one "
        f"worker, median of {args.repeat} rounds, "
        f"bus: {'kafka ' + args.kafka if args.kafka else 'embedded'}; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}, OpenCV threads {args.opencv_threads}, decoder threads {DECODE_THREADS}"
    )
    cols = list(next(iter(results.values()))["cpu_s"])
    print(
        "frames/s per core (stream frames per CPU second), and CPU as a ratio to raw decode in the same round "
        "(median of the rounds; range below):"
    )
    print(f"{'':6s} " + " ".join(f"{c:>13s}" for c in cols))
    for name, r in results.items():
        print(f"{name:6s} " + " ".join(f"{r['fps_per_core'][c]:8.0f} ({r['ratio_to_decode'][c]:.2f})" for c in cols))
        spans = (f"{r['ratio_range'][c][0]:.2f}-{r['ratio_range'][c][1]:.2f}" for c in cols)
        print(f"{'':6s} " + " ".join(f"{span:>13s}" for span in spans))


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    cv2.setNumThreads(args.opencv_threads)
    clips = make_clips(args.seconds)
    bus, topics = make_bus(args.kafka, args.linger_ms)
    rates = [float(x) for x in args.sample_fps.split(",")]
    n_cams = args.cameras
    results: dict[str, dict[str, Any]] = {}
    for name, clip in clips.items():
        cases: dict[str, Callable[[], int]] = {
            "decode": lambda c=clip: sum(raw_decode(c, True) for _ in range(n_cams)),
            "grab": lambda c=clip: sum(raw_decode(c, False) for _ in range(n_cams)),
            **{f"ingest@{r:g}": (lambda c=clip, r=r: ingest(c, r, False, bus, topics, cameras=n_cams)) for r in rates},
            **{f"pyav@{r:g}": (lambda c=clip, r=r: ingest(c, r, False, bus, topics, "pyav", n_cams)) for r in rates},
            "keyframes@1": lambda c=clip: ingest(c, 1.0, True, bus, topics, cameras=n_cams),
        }
        results[name] = bench_clip(cases, args.repeat, raw_decode(clip, convert=False) * n_cams)
    bus.close()
    report(args, results)
    if args.json:
        args.json.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
