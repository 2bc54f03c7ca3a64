"""The capacity bench's arithmetic and the configuration it generates (the bench itself runs by hand)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from xueliang.config import parse_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("capacity", REPO / "bench/capacity/capacity.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def buckets(pairs: list[tuple[str, float]]) -> dict[tuple[tuple[str, str], ...], float]:
    return {(("le", le),): v for le, v in pairs}


def test_p95_interpolates_like_prometheus(bench) -> None:  # type: ignore[no-untyped-def]
    # 10 observations: 1 ≤ 1 s, 2 ≤ 2 s, all ≤ 4 s → rank 9.5 falls in (2, 4]: 2 + 2 × 7.5 / 8
    assert bench.p95_from_buckets(buckets([("1", 1), ("2", 2), ("4", 10), ("+Inf", 10)])) == pytest.approx(3.875)
    assert bench.p95_from_buckets(buckets([("1", 0), ("+Inf", 0)])) is None
    # everything above the last finite bucket: the bound is the best known
    assert bench.p95_from_buckets(buckets([("1", 0), ("2", 0), ("+Inf", 5)])) == 2.0


def test_delta_between_scrapes(bench) -> None:  # type: ignore[no-untyped-def]
    a = {("x_total", (("reason", "stale"),)): 3.0}
    b = {("x_total", (("reason", "stale"),)): 5.0, ("x_total", (("reason", "overflow"),)): 1.0}
    assert bench.delta(a, b, "x_total") == {(("reason", "stale"),): 2.0, (("reason", "overflow"),): 1.0}
    assert bench.delta(a, b, "x_total", reason="overflow") == {(("reason", "overflow"),): 1.0}


def test_generated_config_is_valid(bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import argparse

    args = argparse.Namespace(
        backend="openvino",
        precision="bf16",
        detector_threads=2,
        keyframes="on",
        partitions=6,
        imgsz=None,
        linger_ms=25,
        decode_min_scale=0.9,
        setup="project",
        fire_every=2,
        no_clips=False,
    )
    cfg = bench.config(3, "rtsp://127.0.0.1:8554", "127.0.0.1:9092", "benchx", tmp_path, args)
    settings = parse_config(yaml.safe_dump({**cfg, "metrics": {"port": 9100}}, allow_unicode=True), "bench")
    assert [c.id for c in settings.cameras] == ["bench-000", "bench-001", "bench-002"]
    assert settings.bus.topics.frames == "benchx.frames" and settings.cameras[0].sample_fps == 2
    assert settings.cameras[0].rules[0].type == "line_crossing" and settings.cameras[0].source.keyframes_only is True
    assert settings.detector.backend.type == "openvino" and settings.detector.backend.precision == "bf16"
    assert settings.bus.frame_partitions == 6 and settings.bus.linger_ms == 25
    assert settings.detector.decode_min_scale == 0.9
    # every --fire-every'th camera also watches for fire (which makes the real-world setup run its fire model there)
    assert [[r.type for r in c.rules] for c in settings.cameras] == [
        ["line_crossing", "fire_smoke"],
        ["line_crossing"],
        ["line_crossing", "fire_smoke"],
    ]
    assert settings.detector.clips.enabled
    args.no_clips = True
    cfg = bench.config(1, "rtsp://127.0.0.1:8554", "127.0.0.1:9092", "benchx", tmp_path, args)
    assert not parse_config(
        yaml.safe_dump({**cfg, "metrics": {"port": 9100}}, allow_unicode=True), "b"
    ).detector.clips.enabled
    args.no_clips = False
    # the production ensemble for real cameras, on the same runtime
    args.setup = "real-world"
    cfg = bench.config(1, "rtsp://127.0.0.1:8554", "127.0.0.1:9092", "benchx", tmp_path, args)
    real = parse_config(yaml.safe_dump({**cfg, "metrics": {"port": 9100}}, allow_unicode=True), "bench").detector
    assert real.backend.type == "ensemble" and {m.backend.type for m in real.backend.members} == {"openvino"}
    # the shipped defaults: key frames chosen from the stream, the bus's own linger
    args.keyframes, args.linger_ms = "auto", None
    cfg = bench.config(1, "rtsp://127.0.0.1:8554", "127.0.0.1:9092", "benchx", tmp_path, args)
    defaults = parse_config(yaml.safe_dump({**cfg, "metrics": {"port": 9100}}, allow_unicode=True), "bench")
    assert defaults.cameras[0].source.keyframes_only == "auto" and defaults.bus.linger_ms == 50
