"""Detector metrics (prometheus-client), base units, bounded labels (backend, reason, rule, severity)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INFERENCE_SECONDS = Histogram(
    "xl_detector_inference_seconds",
    "Wall time of one inference call (pre-process, network, NMS), per batch",
    ["backend"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56),
)
BATCH_SIZE = Histogram(
    "xl_detector_batch_size_frames", "Frames per inference batch", ["backend"], buckets=(1, 2, 4, 8, 16, 32, 64)
)
FRAMES_INFERRED = Counter("xl_detector_frames_inferred_total", "Frames that went through the network")
FRAMES_SKIPPED = Counter(
    "xl_detector_frames_skipped_total",
    "Frames not inferred, by reason: stale (older than max_age_s), no_motion, disabled_camera",
    ["reason"],
)
INCIDENTS = Counter(
    "xl_detector_incidents_total", "Incident reports published (new and updates)", ["rule_type", "severity", "kind"]
)
CAPTURE_TO_INCIDENT_SECONDS = Histogram(
    "xl_detector_capture_to_incident_seconds",
    "From a frame's capture time to publishing the incident it raised",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
DEAD_LETTERS = Counter("xl_detector_dead_letters_total", "Messages sent to the dead-letter topic", ["reason"])
ZOOM_CROPS = Counter("xl_detector_zoom_crops_total", "Second-look crops inferred around small, uncertain objects")
DETECTIONS = Counter(
    "xl_detector_detections_total",
    "Detections after the network, by project class and what became of them: kept (reach the tracker and "
    "rules), unknown_class (no rule of the camera uses the class), not_flame (a fire without flame colour), "
    "inside_person (smoke inside a person's box)",
    ["class_name", "outcome"],
)
TRACKS = Gauge("xl_detector_tracks", "Live tracks per camera", ["camera"])
CLIPS = Counter(
    "xl_detector_clips_total",
    "Evidence clips by outcome: written, failed, skipped (too many already waiting for the clip writer)",
    ["outcome"],
)
CLIP_FRAMES_ENCODED = Counter(
    "xl_detector_clip_frames_encoded_total",
    "Sampled frames H.264-encoded for evidence clips (each at most once, however many clips show it)",
)
