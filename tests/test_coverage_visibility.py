"""Terrain, buildings and view sectors; the terrain line of sight checked against gdal_viewshed on real terrain."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import shapely

from xueliang.coverage.errors import CoverageInputError
from xueliang.coverage.terrain import DEM, STANDARD_REFRACTION_CC
from xueliang.coverage.visibility import (
    Buildings,
    Scene,
    camera_coverage,
    candidate_coverage,
    in_sector,
)


def _flat(n: int = 101, cell: float = 1.0, z: np.ndarray | None = None) -> DEM:
    arr = np.zeros((n, n)) if z is None else z
    return DEM(arr.astype(float), 0.0, n * cell, cell, cell, None, "test")


def test_bilinear_is_exact_on_a_plane() -> None:
    xs = (np.arange(50) + 0.5) * 2.0
    ys = 100 - (np.arange(50) + 0.5) * 2.0
    X, Y = np.meshgrid(xs, ys)
    dem = DEM(2 * X + 3 * Y, 0.0, 100.0, 2.0, 2.0, None, "plane")
    rng = np.random.default_rng(0)
    px, py = rng.uniform(2, 98, 200), rng.uniform(2, 98, 200)
    assert np.allclose(dem.elevation(px, py), 2 * px + 3 * py)
    assert np.isnan(dem.elevation(np.array([-5.0]), np.array([50.0])))[0]


def test_ridge_blocks_low_observer_but_not_high_one() -> None:
    z = np.zeros((101, 101))
    z[:, 48:53] = 20.0  # a 20 m ridge running north-south at x = 50
    dem = _flat(z=z)
    vis = dem.line_of_sight(np.array([5.0, 5.0]), 50.0, np.array([5.0, 60.0]), 95.0, 50.0, 1.5)
    assert vis.tolist() == [False, True]
    # parallel to the ridge: clear
    assert dem.line_of_sight(5.0, 10.0, 5.0, 5.0, 90.0, 1.5).tolist() == [True]


def test_earth_curvature_horizon_matches_the_formula() -> None:
    # flat ground, observer 10 m up: with refraction cc, ground targets beyond sqrt(2 R h / cc) are hidden
    dem = DEM(np.zeros((3, 400)), 0.0, 300.0, 100.0, 100.0, None, "flat")
    h = 10.0
    horizon = np.sqrt(2 * 6_378_137.0 * h / STANDARD_REFRACTION_CC)  # ~12.2 km
    tx = np.array([0.9 * horizon, 1.1 * horizon])
    curved = dem.line_of_sight(50.0, 150.0, h, tx + 50.0, 150.0, 0.0, curvature=STANDARD_REFRACTION_CC, step=20.0)
    flat = dem.line_of_sight(50.0, 150.0, h, tx + 50.0, 150.0, 0.0, curvature=0.0, step=20.0)
    assert curved.tolist() == [True, False]
    assert flat.tolist() == [True, True]


def test_building_blocks_only_when_the_sight_line_is_below_its_roof() -> None:
    b = Buildings.build([shapely.box(45, -5, 55, 5)], np.array([10.0]))
    o = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 20.0]])
    t = np.array([[100.0, 0.0], [100.0, 0.0], [100.0, 20.0]])
    ok = b.clear(o, np.array([6.0, 30.0, 6.0]), t, np.array([1.5, 1.5, 1.5]))
    # low camera: blocked; 30 m camera: line at x=45..55 is ~16-17 m > 10 m roof: clear; beside it: clear
    assert ok.tolist() == [False, True, True]


@pytest.mark.parametrize(
    "dx,dy,az,hfov,expected",
    [
        (0, 10, 0, 60, True),
        (10, 0, 0, 60, False),
        (10, 10, 0, 90, True),
        (10, 10.5, 0, 90, True),
        (-1, 10, 350, 20, True),
        (1, 10, 350, 20, False),
        (0, -10, 90, 360, True),
    ],
)
def test_sector_filter(dx: float, dy: float, az: float, hfov: float, expected: bool) -> None:
    got = in_sector(
        np.array([dx], float), np.array([dy], float), np.array([0.0]), np.array([az], float), np.array([hfov], float)
    )
    assert got[0] == expected


def test_vertical_field_of_view_hides_the_foot_of_the_pole() -> None:
    # camera 8 m up tilted 10 degrees down with a 30 degree VFOV sees 8 m ahead? depression 45 deg: no; 40 m: 11 deg: yes
    dz = np.array([-6.5, -6.5])
    got = in_sector(
        np.array([0.0, 0.0]),
        np.array([6.5, 40.0]),
        dz,
        np.array([0.0, 0.0]),
        np.array([60.0, 60.0]),
        np.array([-10.0, -10.0]),
        np.array([30.0, 30.0]),
    )
    assert got.tolist() == [False, True]


def test_candidate_headings_equal_fixed_cameras() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, (101, 101)).cumsum(axis=0).cumsum(axis=1) * 0.05
    dem = _flat(z=z)
    bld = Buildings.build([shapely.box(40, 40, 48, 48), shapely.box(60, 20, 70, 26)], np.array([8.0, 12.0]), dem)
    scene = Scene(dem, bld, 1.5)
    demand = rng.uniform(3, 97, (400, 2))
    sites = np.array([[30.0, 30.0], [70.0, 60.0]])
    heads = np.arange(8) * 45.0
    A, site_of, head_of = candidate_coverage(
        scene, demand, sites, np.array([6.0, 9.0]), heads, np.array([60.0, 60.0]), np.array([50.0, 40.0])
    )
    B = camera_coverage(
        scene,
        demand,
        sites[site_of],
        np.array([6.0, 9.0])[site_of],
        head_of,
        np.full(16, 60.0),
        np.array([50.0, 40.0])[site_of],
    )
    assert A.nnz > 0
    assert (A != B).nnz == 0


def test_streamed_blocks_give_the_same_matrix_and_report_progress() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(0, 2, (101, 101)).cumsum(axis=0).cumsum(axis=1) * 0.05
    scene = Scene(_flat(z=z), Buildings.build([shapely.box(40, 40, 48, 48)], np.array([8.0]), None), 1.5)
    demand = rng.uniform(3, 97, (500, 2))
    sites = rng.uniform(10, 90, (23, 2))
    hfov = np.where(np.arange(23) % 5 == 0, 360.0, 60.0)  # some all-round domes: one candidate each
    args = (scene, demand, sites, np.full(23, 6.0), np.arange(8) * 45.0, hfov, np.full(23, 30.0))
    whole, so, ho = candidate_coverage(*args, block=10_000)
    seen: list[float] = []
    parts, so2, ho2 = candidate_coverage(*args, block=4, progress=seen.append)
    assert whole.nnz > 0 and (whole != parts).nnz == 0
    assert np.array_equal(so, so2) and np.array_equal(ho, ho2) and whole.shape[1] == 5 * 1 + 18 * 8
    assert len(seen) == 6 and seen[-1] == 1.0 and seen == sorted(seen)


def test_dem_needs_two_by_two_cells() -> None:
    with pytest.raises(CoverageInputError):
        DEM(np.zeros((1, 5)), 0, 0, 1, 1)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gdal_viewshed") is None, reason="Debian gdal-bin not installed")
def test_viewshed_agrees_with_gdal_on_real_terrain(tmp_path: Path) -> None:
    """matplotlib's Jacksboro DEM (real, 3 arc-second), warped to UTM 17N at 90 m, written to GeoTIFF;
    gdal_viewshed and our line of sight must agree on >= 98% of the cells within range."""
    import rasterio
    from matplotlib import cbook

    src = DEM.from_npz(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False))
    dem = src.to_crs("EPSG:32617", 90.0)
    tif = dem.to_geotiff(tmp_path / "dem.tif")
    xs, ys = dem.cell_centres()
    X, Y = np.meshgrid(xs, ys)
    cases = [  # row, col, observer height, target height, curvature coefficient, max distance
        (dem.z.shape[0] // 2, dem.z.shape[1] // 2, 10.0, 2.0, 0.0, 8000.0),
        (150, 120, 20.0, 1.5, STANDARD_REFRACTION_CC, 12000.0),
        (60, 300, 5.0, 0.0, STANDARD_REFRACTION_CC, 20000.0),
    ]
    for r, c, oz, tz, cc, md in cases:
        ox, oy = xs[c], ys[r]
        out = tmp_path / f"vs_{r}_{c}.tif"
        subprocess.run(
            [
                "gdal_viewshed",
                "-q",
                "-ox",
                str(ox),
                "-oy",
                str(oy),
                "-oz",
                str(oz),
                "-tz",
                str(tz),
                "-md",
                str(md),
                "-cc",
                str(cc),
                "-vv",
                "255",
                "-iv",
                "0",
                "-ov",
                "0",
                str(tif),
                str(out),
            ],
            check=True,
            timeout=120,
        )
        with rasterio.open(out) as ds:  # GDAL crops its output to the max-distance window
            g_win = ds.read(1) == 255
            c0 = round((ds.transform.c - dem.x0) / dem.dx)
            r0 = round((dem.y0 - ds.transform.f) / dem.dy)
        gdal = np.zeros(dem.z.shape, dtype=bool)
        gdal[r0 : r0 + g_win.shape[0], c0 : c0 + g_win.shape[1]] = g_win
        ours = dem.viewshed(ox, oy, observer_height=oz, target_height=tz, max_distance=md, curvature=cc)
        in_range = (np.hypot(X - ox, Y - oy) <= md) & ~np.isnan(dem.z)
        agree = float((gdal == ours)[in_range].mean())
        assert in_range.sum() > 20_000
        assert 0.005 < gdal[in_range].mean() < 0.5  # a non-trivial viewshed
        assert agree >= 0.98, (r, c, agree)


def test_matplotlib_real_dems_load_with_their_georeference() -> None:
    from matplotlib import cbook

    jb = DEM.from_npz(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False))
    tb = DEM.from_npz(cbook.get_sample_data("topobathy.npz", asfileobj=False))
    assert jb.z.shape == (344, 403) and np.nanmin(jb.z) > 230 and np.nanmax(jb.z) < 1100
    x0, y0, x1, y1 = jb.bounds
    assert -84.42 < x0 < x1 < -84.07 and 36.44 < y0 < y1 < 36.74
    x0, y0, x1, y1 = tb.bounds
    assert -126.1 < x0 < x1 < -121.9 and 47.9 < y0 < y1 < 50.1  # 234..238 E written as -126..-122
    assert np.nanmin(tb.z) < -1000 and np.nanmax(tb.z) > 2000
    # oriented: open Pacific in the south-west corner, Coast Mountains in the north-east, Vancouver near sea level
    sw, ne, van = tb.elevation(np.array([-125.9, -122.2, -123.1]), np.array([48.05, 49.9, 49.25]))
    assert sw < -500 and ne > 1000 and -50 < van < 100
    local = tb.to_crs("+proj=aeqd +lat_0=49 +lon_0=-124 +datum=WGS84 +units=m", 2000.0)
    assert np.isfinite(local.elevation(np.array([0.0]), np.array([0.0])))[0]
