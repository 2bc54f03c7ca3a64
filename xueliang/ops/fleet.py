"""Fleet inventory as Prometheus metrics: which cameras are configured, where they sit in
the centre tree, and their video-quality thresholds.

The stages export measurements labelled by ``camera`` only (bounded cardinality);
this collector adds the configuration side so PromQL can join on ``camera`` and
roll up by village, township and county, and count a camera that no worker runs
as offline (it has an info series but no status series):

* ``xl_fleet_camera_info{camera,village,township,county,source}`` = 1 for each enabled camera;
* ``xl_fleet_quality_threshold{camera,check}``: score above which a check is a fault;
* ``xl_fleet_villages{county,township}`` and ``xl_fleet_villages_with_cameras{county,township}``:
  the grid coverage of the centre tree (补点扩面 targets villages without cameras).

Everything comes from the validated :class:`~xueliang.config.Settings`; labels are as
many as configured cameras × eight checks at most.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from xueliang.config import CameraConfig, Centre, Settings, Tier
from xueliang.ops.collector import RegisteredCollector

#: Quality checks and the config field of their threshold ("frozen" is a time share: fault at 1).
QUALITY_CHECKS = ("signal_loss", "covered", "frozen", "too_dark", "too_bright", "colour_cast", "blur", "noise")


@dataclass(frozen=True, slots=True)
class CameraPlace:
    camera: str
    village: str
    township: str
    county: str
    source: str


def _ancestors(settings: Settings) -> dict[str, dict[Tier, str]]:
    """centre id → {tier: id of the centre of that tier on its path from the root (itself included)}."""
    out: dict[str, dict[Tier, str]] = {}

    def walk(c: Centre, path: dict[Tier, str]) -> None:
        here = {**path, c.tier: c.id}
        out[c.id] = here
        for child in c.children:
            walk(child, here)

    walk(settings.centres, {})
    return out


def _village_of(cam: CameraConfig, settings: Settings) -> str:
    if cam.village is not None:
        return cam.village
    division = cam.gb28181_division or ""
    for centre, _ in settings.centres.walk():
        if centre.tier is Tier.village and centre.division_code and centre.division_code.startswith(division):
            return centre.id
    return ""


def camera_places(settings: Settings) -> list[CameraPlace]:
    paths = _ancestors(settings)
    places = []
    for cam in settings.cameras:
        if not cam.enabled:
            continue
        village = _village_of(cam, settings)
        path = paths.get(village, {})
        places.append(
            CameraPlace(cam.id, village, path.get(Tier.township, ""), path.get(Tier.county, ""), cam.source.type)
        )
    return places


def quality_thresholds(cam: CameraConfig) -> dict[str, float]:
    q = cam.quality
    return {
        "signal_loss": q.signal_loss,
        "covered": q.covered,
        "frozen": 0.999,
        "too_dark": q.too_dark,
        "too_bright": q.too_bright,
        "colour_cast": q.colour_cast,
        "blur": q.blur,
        "noise": q.noise,
    }


class FleetCollector(RegisteredCollector):
    """Prometheus collector of the configured fleet (static; cheap to collect)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.places = camera_places(settings)

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "xl_fleet_camera_info",
            "Configured, enabled camera and its place in the centre tree",
            labels=["camera", "village", "township", "county", "source"],
        )
        for p in self.places:
            info.add_metric([p.camera, p.village, p.township, p.county, p.source], 1)
        thresholds = GaugeMetricFamily(
            "xl_fleet_quality_threshold",
            "Quality score above which a check is a fault, per camera",
            labels=["camera", "check"],
        )
        for cam in self.settings.cameras:
            if cam.enabled and cam.quality.enabled:
                for check, value in quality_thresholds(cam).items():
                    thresholds.add_metric([cam.id, check], value)
        villages = GaugeMetricFamily(
            "xl_fleet_villages", "Villages (grids) in the centre tree", labels=["county", "township"]
        )
        covered = GaugeMetricFamily(
            "xl_fleet_villages_with_cameras", "Villages with at least one enabled camera", labels=["county", "township"]
        )
        paths = _ancestors(self.settings)
        with_cams = {p.village for p in self.places}
        total: Counter[tuple[str, str]] = Counter()
        have: Counter[tuple[str, str]] = Counter()
        for centre, _ in self.settings.centres.walk():
            if centre.tier is Tier.village:
                key = (paths[centre.id].get(Tier.county, ""), paths[centre.id].get(Tier.township, ""))
                total[key] += 1
                have[key] += centre.id in with_cams
        for key in sorted(total):
            villages.add_metric(list(key), total[key])
            covered.add_metric(list(key), have[key])
        yield from (info, thresholds, villages, covered)
