"""Prometheus metrics of the ingest tier (one set per process, labelled by camera id).

Label cardinality stays bounded: camera ids (a configured, finite list) and a
small fixed set of drop reasons / quality checks; never frame or track ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES_CAPTURED = Counter(
    "xl_ingest_frames_captured_total", "Frames read from the camera (decoded or grabbed), before sampling", ["camera"]
)
FRAMES_SAMPLED = Counter("xl_ingest_frames_sampled_total", "Frames kept by the sample rate and converted", ["camera"])
FRAMES_PUBLISHED = Counter("xl_ingest_frames_published_total", "Frames handed to the bus producer", ["camera"])
FRAMES_DROPPED = Counter(
    "xl_ingest_frames_dropped_total",
    "Frames not published, by reason: no_motion (gated), buffer_full (drop-oldest), bus_error, too_large",
    ["camera", "reason"],
)
DECODE_ERRORS = Counter(
    "xl_ingest_decode_errors_total", "Frames the decoder failed to deliver on an open stream", ["camera"]
)
RECONNECTS = Counter("xl_ingest_reconnects_total", "Stream (re)connection attempts after the first", ["camera"])
STATUS = Gauge("xl_ingest_camera_status", "Camera status: 2 online, 1 degraded, 0 offline", ["camera"])
QUALITY = Gauge("xl_ingest_quality_score", "Video-quality diagnosis score in [0, 1] (1 = worst)", ["camera", "check"])
ENCODE_SECONDS = Histogram(
    "xl_ingest_encode_seconds",
    "JPEG encode time of one published frame",
    ["camera"],
    buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064),
)
CPU_SECONDS = Counter(
    "xl_ingest_cpu_seconds",
    "CPU time of the camera's own thread: reading and decoding the stream, sampling, diagnosis, motion gate and "
    "JPEG encode (not the worker's shared publisher and bus producer)",
    ["camera"],
)
BYTES_PUBLISHED = Counter("xl_ingest_bytes_published_total", "JPEG bytes handed to the bus producer", ["camera"])
BUFFERED = Gauge("xl_ingest_buffered_frames", "Frames waiting in the worker's bounded publish buffer")
ASSIGNED = Gauge("xl_ingest_cameras_assigned", "Cameras this worker runs now")

STATUS_VALUE = {"online": 2, "degraded": 1, "offline": 0}


def forget_camera(camera_id: str) -> None:
    """Drop a camera's gauges when it moves to another worker (counters stay: they are monotonic
    per process), so dashboards taking the max over workers do not see a stale status or score."""
    from xueliang.ingest.quality import CHECKS

    for gauge, labels in [(STATUS, (camera_id,)), *((QUALITY, (camera_id, c)) for c in CHECKS)]:
        try:
            gauge.remove(*labels)
        except KeyError:
            continue  # never set on this worker
