"""Capacity bench: N RTSP cameras through ingest + Kafka + detector + dispatch on this machine.

    XL_KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/capacity/capacity.py --cameras 10,20,30,40

For each N: a loopback RTSP server (deploy/rtsp/rtsp_server.py, GStreamer) streams a 576p
H.264 25 fps clip made from opencv-doc's vtest.avi (real CCTV of pedestrians) to N cameras;
each stage runs as its own process (`xueliang ingest|detect|dispatch`, Kafka between them,
detection sampled at 2 fps, a line across the road that walkers cross every few seconds, so
incidents keep happening, and on every fourth camera (``--fire-every``) a fire/smoke rule, which
is what makes the real-world setup run its fire/smoke model on that camera's frames). After a
warm-up, the bench reads the stages' /metrics twice and from the difference computes

* capture→incident p95 (xl_detector_capture_to_incident_seconds),
* unplanned drops: ingest drops other than motion gating (buffer_full, bus_error, too_large)
  plus detector skips for stale frames or queue overflow,
* frames captured / published / inferred per second.

N passes when p95 ≤ 2 s and there are no unplanned drops; the sweep stops at the first
failure and reports the largest passing N. Results go to bench/capacity/results/*.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / "var" / "bench-capacity"
RESULTS = Path(__file__).resolve().parent / "results"
PLANNED_DROPS = {"no_motion"}
UNPLANNED_SKIPS = {"stale", "overflow"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_vtest() -> Path:
    for cand in [Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi"), *Path("/usr/share").glob("**/vtest.avi")]:
        if cand.exists():
            return cand
    raise SystemExit("vtest.avi not found: apt-get install opencv-doc")


def make_clip(seconds: int = 600, gop: int = 50) -> Path:
    """576p (768x576) H.264 at 25 fps with a key frame every ``gop`` frames, looped to ``seconds``
    (the RTSP server does not loop)."""
    WORK.mkdir(parents=True, exist_ok=True)
    clip = WORK / (f"vtest-576p25-{seconds}s" + ("" if gop == 50 else f"-g{gop}") + ".mp4")
    if not clip.exists():
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-stream_loop",
                "-1",
                "-i",
                str(find_vtest()),
                "-t",
                str(seconds),
                "-r",
                "25",
                "-vf",
                "scale=768:576",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                str(gop),
                "-pix_fmt",
                "yuv420p",
                str(clip),
            ],
            check=True,
        )
    return clip


def config(n: int, rtsp: str, bootstrap: str, prefix: str, workdir: Path, args: argparse.Namespace) -> dict:
    backend: dict = {
        "type": args.backend,
        "model": str(REPO / "detector/models/xueliang-yolo-n.onnx"),
        "threads": args.detector_threads,
        **({"precision": args.precision} if args.backend == "openvino" else {}),
    }
    if args.setup == "real-world":  # the production default for real cameras (both members on --backend)
        from xueliang.config.detector import real_world_backend

        backend = real_world_backend(REPO / "detector" / "models", args.detector_threads, args.backend)
    cams = [
        {
            "id": f"bench-{i:03d}",
            "village": "v1",
            "source": {
                "type": "rtsp",
                "url": f"{rtsp}/cam",
                "transport": "tcp",
                **({} if args.keyframes == "auto" else {"keyframes_only": args.keyframes == "on"}),
            },
            "sample_fps": 2,
            # walkers cross the road at x = 384 every few seconds: each crossing is one incident (an
            # intrusion zone over the always-busy walkway would be one incident per camera, updated forever)
            "lines": [{"name": "road", "a": [384, 150], "b": [384, 360]}],
            "rules": [
                {
                    "type": "line_crossing",
                    "name": "road-crossing",
                    "line": "road",
                    "direction": "any",
                    "classes": ["person"],
                    "min_frames": 2,
                    "cooldown_s": 2,
                },
                # every --fire-every'th camera also watches for fire and smoke (the county example: 39 of 538)
                *([{"type": "fire_smoke", "name": "fire"}] if args.fire_every and i % args.fire_every == 0 else []),
            ],
        }
        for i in range(n)
    ]
    topics = {
        k: f"{prefix}.{k.replace('_', '-')}"
        for k in ("frames", "incidents", "camera_health", "dead_letters", "camera_registry")
    }
    return {
        "centres": {
            "id": "county",
            "name": "县",
            "tier": "county",
            "children": [
                {
                    "id": "t1",
                    "name": "镇",
                    "tier": "township",
                    "children": [{"id": "v1", "name": "村", "tier": "village"}],
                }
            ],
        },
        "cameras": cams,
        "detector": {
            "backend": backend,
            "batch_size": 8,
            "snapshot_dir": str(workdir / "snapshots"),
            "decode_min_scale": args.decode_min_scale,
            **({"clips": {"enabled": False}} if args.no_clips else {}),
            **({"imgsz": args.imgsz} if args.imgsz else {}),
        },  # default: the model's own input size
        "bus": {
            "type": "kafka",
            "bootstrap_servers": [bootstrap],
            "topics": topics,
            **({} if args.linger_ms is None else {"linger_ms": args.linger_ms}),
            "frame_partitions": args.partitions,
        },
        "store": {"url": f"sqlite:///{workdir / 'bench.db'}"},
    }


def kafka_broker_pid() -> int | None:
    """The local Kafka broker's JVM, when it runs on this machine (its CPU is part of the bill)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"kafka.Kafka" in (proc / "cmdline").read_bytes():
                    return int(proc.name)
            except OSError:
                continue
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def delta(a: dict, b: dict, name: str, **match: str) -> dict[tuple, float]:
    out = {}
    for key, v in b.items():
        if key[0] == name and all(dict(key[1]).get(k) == val for k, val in match.items()):
            out[key[1]] = v - a.get(key, 0.0)
    return out


def p95_from_buckets(buckets: dict[tuple, float]) -> float | None:
    pts = sorted(((math.inf if dict(k)["le"] == "+Inf" else float(dict(k)["le"])), v) for k, v in buckets.items())
    total = pts[-1][1] if pts else 0
    if total <= 0:
        return None
    rank, prev_le, prev_c = 0.95 * total, 0.0, 0.0
    for le, c in pts:
        if c >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c
    return None


def start_rtsp_server(clip: Path, procs: list[subprocess.Popen]) -> tuple[int, int]:
    """A loopback GStreamer RTSP server streaming ``clip`` at /cam: (its port, its pid)."""
    port = free_port()
    server = subprocess.Popen(
        ["/usr/bin/python3", str(REPO / "deploy/rtsp/rtsp_server.py"), "--port", str(port), "--mount", f"cam={clip}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    procs.append(server)
    line = server.stdout.readline() if server.stdout else ""
    if "READY" not in line:
        raise RuntimeError(f"RTSP server did not start: {line!r}")
    return port, server.pid


def start_stages(cfg: dict, workdir: Path, replicas: int, procs: list[subprocess.Popen]) -> dict[str, tuple[str, int]]:
    """``xueliang ingest``, ``detect`` (``replicas`` processes of one consumer group) and ``dispatch``, each with
    its own metrics port: instance name -> (stage, port); their pids go to ``procs``."""
    instances = {"ingest": "ingest", **{f"detect-{i}": "detect" for i in range(replicas)}, "dispatch": "dispatch"}
    out: dict[str, tuple[str, int]] = {}
    env = {**os.environ, "YOLO_OFFLINE": "1", "XL_JWT_SECRET": "bench", "XL_LOG_LEVEL": "WARNING"}
    for name, stage in instances.items():
        port = free_port()
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**cfg, "metrics": {"port": port}}, allow_unicode=True))
        log = (workdir / f"{name}.log").open("w")
        cmd = [sys.executable, "-m", "xueliang.cli", stage, "-c", str(path)]
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO))
        out[name] = (stage, port)
        if stage == "ingest":
            time.sleep(2)  # topics exist before the others subscribe
    return out


def scrape_stages(instances: dict[str, tuple[str, int]]) -> dict[str, dict]:
    """Each stage's metrics, a stage's replicas summed sample by sample."""
    merged: dict[str, dict] = {}
    for stage, port in instances.values():
        into = merged.setdefault(stage, {})
        for key, value in scrape(port).items():
            into[key] = into.get(key, 0.0) + value
    return merged


def summarise(n: int, a: dict[str, dict], b: dict[str, dict], span: float) -> dict:
    """The window's figures from two scrapes ``a`` and ``b``, ``span`` seconds apart."""

    def total(stage: str, name: str) -> float:
        return sum(delta(a[stage], b[stage], name).values())

    captured = total("ingest", "xl_ingest_frames_captured_total")
    published = total("ingest", "xl_ingest_frames_published_total")
    inferred = total("detect", "xl_detector_frames_inferred_total")
    drops_by_reason: dict[str, float] = {}
    for k, v in delta(a["ingest"], b["ingest"], "xl_ingest_frames_dropped_total").items():
        drops_by_reason[dict(k)["reason"]] = drops_by_reason.get(dict(k)["reason"], 0) + v
    skips = {
        dict(k)["reason"]: v for k, v in delta(a["detect"], b["detect"], "xl_detector_frames_skipped_total").items()
    }
    unplanned = sum(v for r, v in drops_by_reason.items() if r not in PLANNED_DROPS) + sum(
        v for r, v in skips.items() if r in UNPLANNED_SKIPS
    )
    p95 = p95_from_buckets(delta(a["detect"], b["detect"], "xl_detector_capture_to_incident_seconds_bucket"))
    batches = total("detect", "xl_detector_batch_size_frames_count")
    return {
        "cameras": n,
        "seconds": round(span, 1),
        "cameras_online": sum(
            1 for (name, _), v in b["ingest"].items() if name == "xl_ingest_camera_status" and v == 2
        ),
        "captured_fps": round(captured / span, 1),
        "published_fps": round(published / span, 1),
        "inferred_fps": round(inferred / span, 1),
        "incidents": int(total("detect", "xl_detector_capture_to_incident_seconds_count")),
        "capture_to_incident_p95_s": None if p95 is None else round(p95, 3),
        "ingest_drops": drops_by_reason,
        "detector_skips": skips,
        "unplanned_drops": int(unplanned),
        "bus_bytes_per_s": round(total("ingest", "xl_ingest_bytes_published_total") / span),
        "mean_batch_frames": round(total("detect", "xl_detector_batch_size_frames_sum") / max(batches, 1), 2),
        "inference_ms_per_frame": round(
            1000 * total("detect", "xl_detector_inference_seconds_sum") / max(inferred, 1), 1
        ),
    }


def run_one(n: int, args: argparse.Namespace, clip: Path) -> dict:
    workdir = WORK / f"n{n}-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    procs: list[subprocess.Popen] = []
    try:
        rtsp_port, server_pid = start_rtsp_server(clip, procs)
        cfg = config(n, f"rtsp://127.0.0.1:{rtsp_port}", args.bootstrap, f"bench{uuid.uuid4().hex[:6]}", workdir, args)
        instances = start_stages(cfg, workdir, args.detector_replicas, procs)
        pids = {"rtsp_server": server_pid, **{name: p.pid for name, p in zip(instances, procs[1:], strict=True)}}
        if broker := kafka_broker_pid():
            pids["kafka_broker"] = broker
        time.sleep(args.warmup)
        a, cpu_a, t0 = scrape_stages(instances), {s: cpu_seconds(pid) for s, pid in pids.items()}, time.monotonic()
        time.sleep(args.duration)
        b, span = scrape_stages(instances), time.monotonic() - t0
        dead = [str(p.args) for p in procs if p.poll() is not None]
        result = summarise(n, a, b, span)
        result |= {
            "dead_processes": dead,
            "cpu_count": os.cpu_count(),
            "detector_replicas": args.detector_replicas,
            "cores_used": {s: round((cpu_seconds(pid) - cpu_a[s]) / span, 3) for s, pid in pids.items()},
            "load_average_1m": round(os.getloadavg()[0], 1),
        }
        # throughput holds: every camera online, every published frame inferred, nothing dropped unplanned
        result["throughput_ok"] = bool(
            result["unplanned_drops"] == 0
            and not dead
            and result["cameras_online"] == n
            and result["inferred_fps"] >= 0.9 * result["published_fps"]
        )
        p95 = result["capture_to_incident_p95_s"]
        if p95 is None and args.allow_no_incidents:
            result["pass"] = result["throughput_ok"]
            result["judged_on"] = "throughput only: no incident raised, capture-to-incident p95 unmeasured"
        else:
            result["pass"] = bool(p95 is not None and p95 <= 2.0 and result["throughput_ok"])
        return result
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", default="10,20,30,40", help="comma-separated N to try, ascending")
    ap.add_argument("--warmup", type=float, default=30.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--detector-threads", type=int, default=2, help="inference threads of each detector process")
    ap.add_argument(
        "--detector-replicas",
        type=int,
        default=1,
        help="detector processes (one consumer group: the frames topic's partitions are shared among them)",
    )
    ap.add_argument("--backend", choices=("onnxruntime", "openvino"), default="onnxruntime")
    ap.add_argument(
        "--setup",
        choices=("project", "real-world"),
        default="project",
        help="project: the generated-scene model alone; real-world: the production ensemble (precision auto)",
    )
    ap.add_argument("--precision", choices=("f32", "bf16"), default="f32", help="OpenVINO inference precision")
    ap.add_argument("--gop", type=int, default=50, help="key-frame interval of the streamed clip, in frames")
    ap.add_argument(
        "--keyframes",
        choices=("auto", "on", "off"),
        default="auto",
        help="ingest's key-frame decoding (keyframes_only): auto (the default: key frames only where they come at "
        "the 2/s sample rate, e.g. --gop 12), on, off",
    )
    ap.add_argument("--imgsz", type=int, default=None, help="detector input size (default: the model's own)")
    ap.add_argument("--linger-ms", type=int, default=None, help="producers' batching delay (default: bus.linger_ms's)")
    ap.add_argument(
        "--fire-every",
        type=int,
        default=4,
        help="every N-th camera also has a fire/smoke rule, which runs the real-world setup's fire/smoke model on its "
        "frames (1: every camera; 0: none). Default 4, a quarter of the cameras: the county example has 39 of 538",
    )
    ap.add_argument(
        "--no-clips", action="store_true", help="cost measurement: the detector without evidence clips (not a default)"
    )
    ap.add_argument("--decode-min-scale", type=float, default=1.0, help="detector.decode_min_scale")
    ap.add_argument("--bootstrap", default=os.environ.get("XL_KAFKA_BOOTSTRAP"))
    ap.add_argument("--all", action="store_true", help="run every N even after a failure (cost measurements)")
    ap.add_argument(
        "--allow-no-incidents",
        action="store_true",
        help="when the model raises no incident, judge N on throughput alone (reported as such)",
    )
    ap.add_argument("--keep", action="store_true", help="keep each run's config and logs under var/bench-capacity")
    args = ap.parse_args(argv)
    if not args.bootstrap:
        raise SystemExit("give --bootstrap host:port or XL_KAFKA_BOOTSTRAP (deploy/kafka/kafka.sh start)")
    clip = make_clip(int(args.warmup + args.duration + 60), args.gop)
    RESULTS.mkdir(exist_ok=True)
    best, runs = 0, []
    for n in [int(x) for x in args.cameras.split(",")]:
        r = run_one(n, args, clip)
        runs.append(r)
        print(json.dumps(r, ensure_ascii=False), flush=True)
        if r["pass"]:
            best = max(best, n)
        elif not args.all:
            break
    summary = {
        "largest_passing_cameras": best,
        "runs": runs,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "args": {k: v for k, v in vars(args).items() if k != "bootstrap"},
        "load_avg_1m_at_end": os.getloadavg()[0],
    }
    (RESULTS / f"capacity-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json").write_text(
        json.dumps(summary, indent=2)
    )
    print(f"largest N with capture→incident p95 ≤ 2 s and no unplanned drops: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
