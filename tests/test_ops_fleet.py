"""Fleet inventory collector: camera places in the centre tree and village coverage."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from xueliang.config import load_config
from xueliang.ops.fleet import FleetCollector, camera_places

REPO = Path(__file__).resolve().parents[1]


def families(reg: CollectorRegistry) -> dict[str, list]:  # type: ignore[type-arg]
    return {f.name: f.samples for f in text_string_to_metric_families(generate_latest(reg).decode())}


@pytest.mark.slow  # loads the 538-camera county example (~5 s of YAML parsing)
def test_county_fleet_metrics() -> None:
    settings = load_config(REPO / "deploy/config/county-production.yaml")
    reg = CollectorRegistry()
    FleetCollector(settings).register(reg)
    fam = families(reg)
    info = fam["xl_fleet_camera_info"]
    assert len(info) == len(settings.cameras) > 300
    by_cam = {s.labels["camera"]: s.labels for s in info}
    first = settings.cameras[0]
    assert by_cam[first.id]["village"] == first.village
    assert by_cam[first.id]["county"] == "keqiao-county"
    assert by_cam[first.id]["township"] == first.village.rsplit("-v", 1)[0]
    villages = sum(s.value for s in fam["xl_fleet_villages"])
    covered = sum(s.value for s in fam["xl_fleet_villages_with_cameras"])
    with_cams = {c.village for c in settings.cameras}
    assert villages == 317 and covered == len(with_cams) < villages
    thresholds = {(s.labels["camera"], s.labels["check"]): s.value for s in fam["xl_fleet_quality_threshold"]}
    assert thresholds[(first.id, "blur")] == first.quality.blur
    assert len(thresholds) == 8 * len(settings.cameras)


def test_disabled_cameras_are_not_in_the_fleet() -> None:
    settings = load_config(REPO / "deploy/compose/xueliang.yaml")
    cams = [settings.cameras[0].model_copy(update={"enabled": False}), *settings.cameras[1:]]
    settings = settings.model_copy(update={"cameras": cams})
    places = camera_places(settings)
    assert [p.camera for p in places] == [c.id for c in settings.cameras[1:]]
    assert places[0].township == "anchang" and places[0].source == "rtsp"
