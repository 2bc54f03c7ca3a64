"""Generate the Grafana dashboards in deploy/grafana/dashboards/ (run after editing; a test
checks the committed JSON equals this script's output).

    python deploy/grafana/build_dashboards.py

Every panel's PromQL uses only metrics the stages export (see docs/operations.md,
"Metrics catalogue"); tests/test_ops_integration.py runs each expression against a
real Prometheus scraping a running pipeline and requires a non-empty result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the panel builders beside this script (also when a test loads it by path)
    sys.path.insert(0, str(HERE))

from dashboard_panels import Panel, dashboard, mean, quantile, ratio, series, stat, table  # noqa: E402

OPEN = 'state!~"closed|rejected"'
STATUS = "max by (camera) (xl_ingest_camera_status)"
FLEET = "count(count by (camera) (xl_fleet_camera_info))"
FAULTED = (
    "(max by (camera, check) (xl_ingest_quality_score) > bool on (camera, check) "
    "max by (camera, check) (xl_fleet_quality_threshold))"
)


def fleet() -> dict[str, Any]:
    return dashboard(
        "xl-fleet",
        "Xueliang · Fleet (摄像机在线率)",
        "Camera online rate, frame rates and video-quality diagnosis",
        [
            stat(
                "Online rate (在线率)",
                "xl:camera_online:ratio",
                "percentunit",
                description="Cameras reporting online / configured cameras",
                thresholds=[(None, "red"), (0.9, "orange"), (0.95, "green")],
            ),
            stat(
                "Intact rate (完好率)",
                "xl:camera_intact:ratio",
                "percentunit",
                description="Online with no quality check above its threshold / configured cameras",
                thresholds=[(None, "red"), (0.85, "orange"), (0.9, "green")],
            ),
            stat("Configured cameras", FLEET),
            stat("Cameras run by ingest workers", "sum(xl_ingest_cameras_assigned)"),
            series(
                "Cameras by status",
                [
                    (f"count({STATUS} == 2) or vector(0)", "online"),
                    (f"count({STATUS} == 1) or vector(0)", "degraded"),
                    (f"{FLEET} - (count({STATUS} >= 1) or vector(0))", "offline or unassigned"),
                ],
            ),
            series(
                "Captured fps per camera",
                [("sum by (camera) (rate(xl_ingest_frames_captured_total[1m]))", "{{camera}}")],
                unit="fps",
            ),
            series(
                "Published fps per camera (to detection)",
                [("sum by (camera) (rate(xl_ingest_frames_published_total[1m]))", "{{camera}}")],
                unit="fps",
            ),
            series(
                "Ingest CPU per camera",
                [("sum by (camera) (rate(xl_ingest_cpu_seconds_total[1m]))", "{{camera}}")],
                description="Cores used by each camera's thread (read, decode, sample, diagnose, gate, encode); "
                "a camera far above its peers is usually fed its main stream instead of the substream",
            ),
            series(
                "Decoded frames per core-second per camera",
                [
                    (
                        ratio("camera", "rate", "xl_ingest_frames_captured_total", "xl_ingest_cpu_seconds_total", "1m"),
                        "{{camera}}",
                    )
                ],
                description="The ingest bench's figure (bench/ingest), live: stream frames per CPU second",
            ),
            series(
                "Reconnects and decode errors (10 min)",
                [
                    (
                        "sum by (camera) (increase(xl_ingest_reconnects_total[10m])) or vector(0)",
                        "reconnects {{camera}}",
                    ),
                    (
                        "sum by (camera) (increase(xl_ingest_decode_errors_total[10m])) or vector(0)",
                        "decode errors {{camera}}",
                    ),
                ],
            ),
            table("Camera status (2 online, 1 degraded, 0 offline)", STATUS),
            table(
                "Quality scores (视频质量诊断; 1 = worst)",
                "max by (camera, check) (xl_ingest_quality_score)",
                unit="percentunit",
            ),
            series("Cameras failing each quality check", [(f"sum by (check) ({FAULTED})", "{{check}}")]),
        ],
    )


def pipeline() -> dict[str, Any]:
    return dashboard(
        "xl-pipeline",
        "Xueliang · Pipeline",
        "Ingest → Kafka → detector → dispatch: throughput, drops, lag, latency",
        [*_pipeline_flow(), *_pipeline_detector(), *_pipeline_ingest(), *_pipeline_downstream()],
    )


def _pipeline_flow() -> list[Panel]:
    """Headline rates, frames through the stages, drops, the bus."""
    return [
        stat("Ingest fps (captured)", "sum(rate(xl_ingest_frames_captured_total[1m]))", "fps"),
        stat("Published fps", "sum(rate(xl_ingest_frames_published_total[1m]))", "fps"),
        stat("Inferred fps", "sum(rate(xl_detector_frames_inferred_total[1m]))", "fps"),
        stat(
            "Capture → incident p95",
            quantile(0.95, "xl_detector_capture_to_incident_seconds", "10m"),
            "s",
            thresholds=[(None, "green"), (1.5, "orange"), (2, "red")],
        ),
        series(
            "Frames per second through the stages",
            [
                ("sum(rate(xl_ingest_frames_captured_total[1m]))", "captured"),
                ("sum(rate(xl_ingest_frames_sampled_total[1m]))", "sampled"),
                ("sum(rate(xl_ingest_frames_published_total[1m]))", "published"),
                ("sum(rate(xl_detector_frames_inferred_total[1m]))", "inferred"),
            ],
            unit="fps",
        ),
        series(
            "Drops and skips by reason",
            [
                ("sum by (reason) (rate(xl_ingest_frames_dropped_total[1m])) or vector(0)", "ingest {{reason}}"),
                ("sum by (reason) (rate(xl_detector_frames_skipped_total[1m])) or vector(0)", "detector {{reason}}"),
            ],
            unit="fps",
            description="no_motion / keepalive gating is planned; buffer_full, overflow, stale are not",
        ),
        series(
            "Kafka consumer lag",
            [("sum by (group, topic) (xl_kafka_consumer_lag)", "{{group}} ← {{topic}}")],
            unit="short",
        ),
        series("Topic write rate", [("sum by (topic) (rate(xl_kafka_topic_end_offset[1m]))", "{{topic}}")], unit="wps"),
    ]


def _pipeline_detector() -> list[Panel]:
    """Inference latency and batching, capture-to-incident latency."""
    return [
        series(
            "Inference latency per batch",
            [
                (quantile(0.5, "xl_detector_inference_seconds", "1m", "backend"), "p50 {{backend}}"),
                (quantile(0.95, "xl_detector_inference_seconds", "1m", "backend"), "p95 {{backend}}"),
            ],
            unit="s",
        ),
        series(
            "Batch size",
            [
                (mean("backend", "rate", "xl_detector_batch_size_frames", "1m"), "mean {{backend}}"),
                (quantile(0.95, "xl_detector_batch_size_frames", "1m", "backend"), "p95 {{backend}}"),
            ],
            unit="short",
        ),
        series(
            "Capture → incident latency",
            [
                (quantile(0.5, "xl_detector_capture_to_incident_seconds", "5m"), "p50"),
                (quantile(0.95, "xl_detector_capture_to_incident_seconds", "5m"), "p95"),
            ],
            unit="s",
            description="From the frame's capture time to publishing the incident it raised (target p95 ≤ 2 s)",
        ),
    ]


def _pipeline_ingest() -> list[Panel]:
    """The ingest side: encoding, bytes and buffer, CPU."""
    return [
        series("JPEG encode time p95", [(quantile(0.95, "xl_ingest_encode_seconds", "1m"), "p95")], unit="s"),
        series(
            "Bytes published to the bus", [("sum(rate(xl_ingest_bytes_published_total[1m]))", "frames")], unit="Bps"
        ),
        series("Ingest publish buffer", [("sum(xl_ingest_buffered_frames)", "buffered frames")]),
        series(
            "Ingest CPU (camera threads)",
            [("sum(rate(xl_ingest_cpu_seconds_total[1m]))", "cores")],
            description="Cores used by all camera threads (per camera: the Fleet dashboard)",
        ),
    ]


def _pipeline_downstream() -> list[Panel]:
    """Dispatch, dead letters, tracks and the API."""
    return [
        series(
            "Dispatch: records consumed",
            [("sum by (topic, outcome) (rate(xl_dispatch_messages_total[1m]))", "{{topic}} {{outcome}}")],
            unit="rps",
        ),
        series(
            "Dead letters (10 min)",
            [
                (
                    'sum by (job, stage, reason) (label_replace(increase(xl_detector_dead_letters_total[10m]), "stage", "detector", "", "") or label_replace(increase(xl_dispatch_dead_letters_total[10m]), "stage", "dispatch", "", "")) or vector(0)',
                    "{{job}} {{stage}} {{reason}}",
                )
            ],
        ),
        series("Live tracks per camera", [("sum by (camera) (xl_detector_tracks)", "{{camera}}")]),
        series(
            "API request latency p95",
            [(quantile(0.95, "xl_api_request_duration_seconds", "5m", "route"), "{{route}}")],
            unit="s",
        ),
    ]


def incidents() -> dict[str, Any]:
    return dashboard(
        "xl-incidents",
        "Xueliang · Incidents (事件处置)",
        "Incidents by tier, severity and state; MTTA/MTTR; SLA and escalations",
        [*_incident_counts(), *_incident_timing(), *_incident_sla()],
    )


def _incident_counts() -> list[Panel]:
    """Open incidents, flags and ratios; reports by rule type and outcome."""
    return [
        stat("Open incidents", f"sum(xl_dispatch_incidents{{{OPEN}}}) or vector(0)"),
        stat(
            "Supervision flags (督办)",
            "sum(xl_dispatch_incidents_flagged) or vector(0)",
            thresholds=[(None, "green"), (1, "orange"), (10, "red")],
        ),
        stat("False-alarm ratio", "max(xl_dispatch_false_alarm_ratio)", "percentunit"),
        stat("Escalated ratio", "max(xl_dispatch_escalated_incidents_ratio)", "percentunit"),
        series("Open incidents by owner tier", [(f"sum by (tier) (xl_dispatch_incidents{{{OPEN}}})", "{{tier}}")]),
        series(
            "Open incidents by severity", [(f"sum by (severity) (xl_dispatch_incidents{{{OPEN}}})", "{{severity}}")]
        ),
        table(
            "Incidents by centre, tier, severity and state",
            "sum by (centre, tier, severity, state) (xl_dispatch_incidents)",
            w=24,
        ),
        series(
            "Reports by rule type (1 h)",
            [
                (
                    "sum by (rule_type, severity) (increase(xl_detector_incidents_total[1h]))",
                    "{{rule_type}} {{severity}}",
                )
            ],
        ),
        series(
            "Stored reports by outcome",
            [("sum by (outcome) (rate(xl_dispatch_incidents_ingested_total[5m]))", "{{outcome}}")],
            unit="rps",
        ),
    ]


def _incident_timing() -> list[Panel]:
    """MTTA, MTTR and the time-to-accept quantile, per severity."""
    return [
        series(
            "MTTA: mean time to accept (1 h)",
            [(mean("severity", "rate", "xl_dispatch_time_to_accept_seconds", "1h"), "{{severity}}")],
            unit="s",
        ),
        series(
            "MTTR: mean time to close (1 h)",
            [(mean("severity", "rate", "xl_dispatch_time_to_close_seconds", "1h"), "{{severity}}")],
            unit="s",
        ),
        series(
            "Time to accept p90",
            [(quantile(0.9, "xl_dispatch_time_to_accept_seconds", "1h", "severity"), "{{severity}}")],
            unit="s",
        ),
    ]


def _incident_sla() -> list[Panel]:
    """SLA breaches and warnings, escalations, on-time closing, flags."""
    on_time = 'xl_dispatch_closed_total{on_time="true"}'
    return [
        series(
            "SLA breaches (red flags, 1 h)",
            [("sum by (clock, severity) (increase(xl_dispatch_overdue_total[1h]))", "{{clock}} {{severity}}")],
        ),
        series(
            "SLA warnings (yellow flags, 1 h)",
            [("sum by (clock, severity) (increase(xl_dispatch_sla_warnings_total[1h]))", "{{clock}} {{severity}}")],
        ),
        series(
            "Escalations (1 h)",
            [("sum by (reason, to_tier) (increase(xl_dispatch_escalations_total[1h]))", "{{reason}} → {{to_tier}}")],
        ),
        series(
            "Closed on time share (24 h)",
            [(ratio("severity", "increase", on_time, "xl_dispatch_closed_total", "24h"), "{{severity}}")],
            unit="percentunit",
        ),
        series("Flags by centre", [("sum by (centre, flag) (xl_dispatch_incidents_flagged)", "{{centre}} {{flag}}")]),
    ]


def coverage() -> dict[str, Any]:
    info = "max by (camera, {by}) (xl_fleet_camera_info)"

    def rate_by(by: str, numerator: str) -> str:
        return (
            f"sum by ({by}) ({numerator} * on (camera) group_left ({by}) {info.format(by=by)}) / "
            f"sum by ({by}) ({info.format(by=by)})"
        )

    online = f"({STATUS} == bool 2)"
    intact = (
        f"(({STATUS} == bool 2) unless on (camera) "
        f"(max by (camera, check) (xl_ingest_quality_score) > on (camera, check) "
        f"max by (camera, check) (xl_fleet_quality_threshold)))"
    )
    villages = "max by (county, township) (xl_fleet_villages)"
    covered = "max by (county, township) (xl_fleet_villages_with_cameras)"
    return dashboard(
        "xl-coverage",
        "Xueliang · Coverage KPIs (雪亮工程考核)",
        "Online and intact rates by township, grid coverage of villages",
        [
            stat(
                "Online rate (在线率)",
                "xl:camera_online:ratio",
                "percentunit",
                thresholds=[(None, "red"), (0.9, "orange"), (0.95, "green")],
            ),
            stat(
                "Intact rate (完好率)",
                "xl:camera_intact:ratio",
                "percentunit",
                thresholds=[(None, "red"), (0.85, "orange"), (0.9, "green")],
            ),
            stat(
                "Villages with cameras",
                f"sum({covered}) / sum({villages})",
                "percentunit",
                description="Share of village grids with at least one enabled camera (补点扩面 target: 100%)",
            ),
            stat(
                "Villages without cameras",
                f"sum({villages}) - sum({covered})",
                thresholds=[(None, "green"), (1, "orange")],
            ),
            series("Online rate by township", [(rate_by("township", online), "{{township}}")], unit="percentunit"),
            series("Intact rate by township", [(rate_by("township", intact), "{{township}}")], unit="percentunit"),
            table(
                "Grid coverage by township (villages with cameras / villages)",
                f"sum by (county, township) ({covered}) / sum by (county, township) ({villages})",
                unit="percentunit",
            ),
            table(
                "Cameras per township",
                "count by (county, township) (max by (camera, county, township) (xl_fleet_camera_info))",
            ),
            series("Online rate by county", [(rate_by("county", online), "{{county}}")], unit="percentunit"),
            series("Cameras by status (dispatch registry)", [("sum by (status) (xl_dispatch_cameras)", "{{status}}")]),
            series(
                "Coverage plans run (补点扩面 planning, 24 h)",
                [("sum by (outcome) (increase(xl_coverage_plans_total[24h]))", "{{outcome}}")],
            ),
            series(
                "Mean plan time by stage (24 h)",
                [(mean("stage", "increase", "xl_coverage_plan_seconds", "24h"), "{{stage}}")],
                unit="s",
            ),
        ],
    )


DASHBOARDS = {"fleet.json": fleet, "pipeline.json": pipeline, "incidents.json": incidents, "coverage.json": coverage}


def render() -> dict[str, str]:
    return {name: json.dumps(make(), indent=2, ensure_ascii=False) + "\n" for name, make in DASHBOARDS.items()}


def main() -> int:
    out = HERE / "dashboards"
    out.mkdir(exist_ok=True)
    for name, text in render().items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
