"""A generated rural county for demos and end-to-end tests, on real terrain.

Four villages on a valley floor of matplotlib's Jacksboro DEM (real 3 arc-second terrain,
Tennessee), joined by a main road and village roads, a river with a bridge, a school,
buildings, existing cameras and candidate poles. Some places are deliberately left unseen:

* village D's entrance and crossroads (no camera anywhere near),
* the school grounds (no camera points at it),
* village B's crossroads (an existing camera points at it, but a building stands in the way),
* a stretch of riverbank south-west of village C.

``generate_county(out_dir)`` writes WGS84 GeoJSON files (and a DEM GeoTIFF) and returns their
paths with the names of the unseen places. Deterministic for a given ``seed``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from xueliang.coverage.geo import LocalFrame

CENTRE_LON, CENTRE_LAT = -84.168, 36.617  # a valley floor inside the Jacksboro DEM

UNSEEN = ("D-entrance", "D-crossroads", "school", "B-crossroads", "C-riverbank-sw")


@dataclass(frozen=True)
class County:
    demand: Path
    cameras: Path
    candidates: Path
    buildings: Path
    dem: Path | None
    unseen: tuple[str, ...] = UNSEEN
    local: dict[str, Any] = field(default_factory=dict)


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.degrees(math.atan2(b[0] - a[0], b[1] - a[1])) % 360.0


def _fc(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


@dataclass
class _Layers:
    """The county's features as they are generated (WGS84 GeoJSON), and the local geometry tests check."""

    frame: LocalFrame
    demand: list[dict[str, Any]] = field(default_factory=list)
    buildings: list[dict[str, Any]] = field(default_factory=list)
    cams: list[dict[str, Any]] = field(default_factory=list)
    poles: list[dict[str, Any]] = field(default_factory=list)
    local: dict[str, Any] = field(default_factory=dict)

    def feat(self, geom: Any, **props: Any) -> dict[str, Any]:
        return {"type": "Feature", "geometry": shapely.geometry.mapping(self.frame.to_wgs84(geom)), "properties": props}

    def pole(self, pid: str, xy: tuple[float, float], cost: float = 1.0, capacity: int = 2) -> None:
        self.poles.append(self.feat(shapely.Point(xy), id=pid, cost=cost, capacity=capacity, height=6.0))

    def cam(
        self, cid: str, at: tuple[float, float], target: tuple[float, float], hfov: float = 60.0, rng_m: float = 120.0
    ) -> None:
        """An existing camera on a 6 m pole pointed at ``target``."""
        self.cams.append(
            self.feat(shapely.Point(at), id=cid, height=6.0, azimuth=_bearing(at, target), hfov=hfov, range=rng_m)
        )


def _roads_and_river(L: _Layers) -> list[tuple[str, shapely.LineString]]:
    """The main road west-east through A and B, village roads to C and D, the river north of the main road
    (crossed by the road to C) with its bridge; returns the lines candidate poles stand along."""
    main = shapely.LineString([(-1600, -150), (0, 0), (1200, 350), (1800, 500)])
    road_c = shapely.LineString([(0, 0), (-450, 420), (-900, 800)])
    road_d = shapely.LineString([(0, 0), (250, -550), (400, -1100)])
    L.demand.append(L.feat(main, id="main-road", category="main_road", village="A"))
    L.demand.append(L.feat(road_c, id="road-A-C", category="road", village="C"))
    L.demand.append(L.feat(road_d, id="road-A-D", category="road", village="D"))
    river = shapely.LineString([(-1700, 700), (-1200, 560), (-450, 420), (300, 700), (1500, 950)])
    L.demand.append(
        L.feat(shapely.LineString([(-450, 420), (300, 700)]), id="riverbank-mid", category="riverbank", village="A")
    )
    L.demand.append(
        L.feat(shapely.LineString([(-1500, 645), (-1200, 560)]), id="C-riverbank-sw", category="riverbank", village="C")
    )
    L.demand.append(L.feat(shapely.Point(-450, 420), id="bridge", category="bridge", village="A"))
    L.local["river"] = river
    riverside = shapely.LineString([(-1600, 672), (-1200, 560), (-450, 420), (300, 700)])
    return [("main", main), ("rc", road_c), ("rd", road_d), ("river", riverside)]


def _village(L: _Layers, name: str, x: float, y: float, rng: np.random.Generator) -> None:
    """A village's crossroads and entrance, ten houses around the crossroads, and two candidate poles."""
    L.demand.append(L.feat(shapely.Point(x + 8, y + 6), id=f"{name}-crossroads", category="crossroads", village=name))
    # entrance on the side facing village A (or the west end of the main road for A)
    if name == "A":
        ent = (-160.0, -20.0)
    else:
        vx, vy = -x, -y
        n = math.hypot(vx, vy)
        ent = (x + 150 * vx / n, y + 150 * vy / n)
    L.demand.append(L.feat(shapely.Point(ent), id=f"{name}-entrance", category="village_entrance", village=name))
    L.local[f"{name}-entrance"] = ent
    L.local[f"{name}-crossroads"] = (x + 8, y + 6)
    # houses around the crossroads (not on the roads)
    for i in range(10):
        a = rng.uniform(0, 2 * math.pi)
        r = rng.uniform(45, 110)
        cx, cy = x + r * math.cos(a), y + r * math.sin(a)
        w, h = rng.uniform(8, 14), rng.uniform(8, 12)
        L.buildings.append(
            L.feat(
                shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
                id=f"{name}-house-{i}",
                height=float(rng.choice([6.0, 9.0])),
            )
        )
    # candidate poles: crossroads corner and entrance
    L.pole(f"{name}-p-cross", (x - 12, y - 10))
    L.pole(f"{name}-p-ent", (ent[0] + 15, ent[1] - 12))


def _existing_cameras(L: _Layers, bx: float, by: float) -> None:
    """A's entrance and crossroads, A's square, the bridge, B's entrance and market, C's entrance and
    crossroads (all pointed at their target from 25-60 m)."""
    L.cam("cam-A-ent", (-200, -40), L.local["A-entrance"])
    L.cam("cam-A-cross", (30, -30), L.local["A-crossroads"], hfov=90)
    L.cam("cam-A-square", (-40, 110), (-40, 50))
    L.cam("cam-bridge", (-480, 380), (-450, 420))
    L.cam("cam-B-ent", (bx - 200, by - 60), L.local["B-entrance"])
    L.cam("cam-B-market", (bx + 65, by + 120), (bx + 65, by + 50))
    L.cam("cam-C-ent", (-740, 650), L.local["C-entrance"])
    L.cam("cam-C-cross", (-870, 830), L.local["C-crossroads"])


def generate_county(out_dir: str | Path, *, seed: int = 0, with_dem: bool = True) -> County:
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L = _Layers(LocalFrame(CENTRE_LON, CENTRE_LAT))
    villages = {"A": (0.0, 0.0), "B": (1200.0, 350.0), "C": (-900.0, 800.0), "D": (400.0, -1100.0)}
    pole_lines = _roads_and_river(L)
    for name, (x, y) in villages.items():
        _village(L, name, x, y, rng)
    # village B's crossroads: an existing camera points at it, but a 12 m building stands between
    bx, by = villages["B"]
    cam_b = (bx - 70.0, by - 40.0)
    mid = (bx - 30.0, by - 16.0)
    L.buildings.append(
        L.feat(shapely.box(mid[0] - 8, mid[1] - 8, mid[0] + 8, mid[1] + 8), id="B-warehouse", height=12.0)
    )
    L.cams.append(
        L.feat(
            shapely.Point(cam_b),
            id="cam-B-1",
            height=5.0,
            azimuth=_bearing(cam_b, (bx + 8, by + 6)),
            hfov=50.0,
            range=150.0,
        )
    )
    # square in A, market in B, school south-east of A
    L.demand.append(L.feat(shapely.box(-60, 30, -20, 70), id="A-square", category="square", village="A"))
    L.demand.append(
        L.feat(shapely.box(bx + 40, by + 30, bx + 90, by + 70), id="B-market", category="market", village="B")
    )
    school = shapely.box(300, -300, 380, -240)
    L.demand.append(L.feat(school, id="school", category="school", village="A"))
    L.pole("school-p-gate", (290, -250))
    L.local["school"] = school
    _existing_cameras(L, bx, by)
    # poles along the roads and river every ~150 m
    for lname, line in pole_lines:
        for i, d in enumerate(np.arange(75.0, line.length, 150.0)):
            p = line.interpolate(d)
            L.pole(f"{lname}-p{i}", (p.x + 10, p.y - 10), cost=1.0, capacity=2)
    paths = {key: out / f"{key}.geojson" for key in ("demand", "cameras", "candidates", "buildings")}
    for key, feats in (("demand", L.demand), ("cameras", L.cams), ("candidates", L.poles), ("buildings", L.buildings)):
        paths[key].write_text(json.dumps(_fc(feats)), encoding="utf-8")
    dem_path = _write_dem(out / "dem.tif") if with_dem else None
    return County(paths["demand"], paths["cameras"], paths["candidates"], paths["buildings"], dem_path, UNSEEN, L.local)


def _write_dem(path: Path) -> Path:
    """The Jacksboro DEM (real terrain), cropped to the county, as a WGS84 GeoTIFF."""
    from matplotlib import cbook

    from xueliang.coverage.terrain import DEM

    dem = DEM.from_npz(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False))
    c = int((CENTRE_LON - dem.x0) / dem.dx)
    r = int((dem.y0 - CENTRE_LAT) / dem.dy)
    h = 50  # +-50 cells of 3" (~4 km x 4.6 km around the centre)
    sub = dem.z[r - h : r + h, c - h : c + h]
    crop = DEM(sub.copy(), dem.x0 + (c - h) * dem.dx, dem.y0 - (r - h) * dem.dy, dem.dx, dem.dy, dem.crs, "jacksboro")
    return crop.to_geotiff(path)
