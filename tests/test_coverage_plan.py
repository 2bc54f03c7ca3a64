"""End to end: a generated rural county on real terrain, real streets (libpysal geodanet), the CLI,
the API function, and bad input turned into clear errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from xueliang.coverage.api import PlanRequest, PlanResult, plan_coverage
from xueliang.coverage.cli import main
from xueliang.coverage.errors import CoverageInputError, InfeasibleError
from xueliang.coverage.planner import PlanOptions, run_plan
from xueliang.coverage.synth import County, generate_county


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> County:
    return generate_county(tmp_path_factory.mktemp("county"))


@pytest.fixture(scope="module")
def planned(county: County):  # type: ignore[no-untyped-def]
    return run_plan(
        county.demand,
        county.candidates,
        PlanOptions(k=8, time_limit_s=5),
        cameras=county.cameras,
        buildings=county.buildings,
        dem=county.dem,
    )


def _place(report: dict, name: str) -> dict:
    (p,) = [p for p in report["places"] if p["feature"].endswith(f"({name})")]
    return p


def test_blind_spots_include_the_places_left_unseen_and_the_plan_covers_them(county: County, planned) -> None:  # type: ignore[no-untyped-def]
    r = planned.report
    in_spots = {f for s in r["blind_spots"] for f in s["features"]}
    for name in county.unseen:
        assert any(f.endswith(f"({name})") for f in in_spots), name
        assert _place(r, name)["share_before"] == 0.0, name
    for name in ("D-entrance", "D-crossroads", "school", "B-crossroads"):
        assert _place(r, name)["share_after"] == 1.0, name
    assert _place(r, "C-riverbank-sw")["share_after"] > 0.0
    # places the existing cameras do watch are not blind spots
    for name in ("A-entrance", "A-crossroads", "B-entrance", "C-entrance", "C-crossroads", "bridge", "B-market"):
        assert _place(r, name)["share_before"] == 1.0, name
    # blind spots are ranked by weight and carry their categories and villages
    ws = [s["weight"] for s in r["blind_spots"]]
    assert ws == sorted(ws, reverse=True) and [s["rank"] for s in r["blind_spots"]] == list(range(1, len(ws) + 1))
    assert r["after"]["share"] > r["before"]["share"]
    assert r["plan"]["gap"] <= 0.005 and len(r["plan"]["cameras"]) == 8
    assert r["plan"]["upper_bound_total"] >= r["after"]["covered_weight"] - 1e-6
    # per-category and per-village KPIs add up
    assert sum(v["weight"] for v in r["by_category"].values()) == pytest.approx(r["demand"]["total_weight"])
    assert r["by_village"]["D"]["share_before"] < r["by_village"]["D"]["share_after"]
    # the marginal-gain curve is non-decreasing with diminishing gains
    cw = [c["covered_weight"] for c in r["marginal_gain_curve"]]
    assert all(b >= a for a, b in itertools.pairwise(cw))
    gains = np.diff([r["before"]["covered_weight"], *cw])
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(gains))


def test_the_building_is_what_hides_b_crossroads(county: County, planned) -> None:  # type: ignore[no-untyped-def]
    no_bld = run_plan(
        county.demand, county.candidates, PlanOptions(k=1, time_limit_s=2), cameras=county.cameras, dem=county.dem
    )
    assert _place(no_bld.report, "B-crossroads")["share_before"] == 1.0
    assert _place(planned.report, "B-crossroads")["share_before"] == 0.0


def test_budget_and_target_share(county: County) -> None:
    b = run_plan(
        county.demand,
        county.candidates,
        PlanOptions(budget=3.0, time_limit_s=2),
        cameras=county.cameras,
        buildings=county.buildings,
    )
    assert b.report["plan"]["objective"]["cost"] <= 3.0 and len(b.report["plan"]["cameras"]) == 3
    t = run_plan(
        county.demand,
        county.candidates,
        PlanOptions(target_share=0.5, time_limit_s=2),
        cameras=county.cameras,
        buildings=county.buildings,
    )
    assert t.report["after"]["share"] >= 0.5
    obj = t.report["plan"]["objective"]
    assert obj["cost_lower_bound"] is not None and obj["cost_lower_bound"] <= obj["cost"]
    with pytest.raises(InfeasibleError):
        run_plan(
            county.demand,
            county.candidates,
            PlanOptions(target_share=1.0, time_limit_s=2),
            cameras=county.cameras,
            buildings=county.buildings,
        )


def test_cli_writes_geojson_report_and_map(county: County, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plan"
    rc = main(
        [
            "plan",
            "--demand",
            str(county.demand),
            "--candidates",
            str(county.candidates),
            "--cameras",
            str(county.cameras),
            "--buildings",
            str(county.buildings),
            "--dem",
            str(county.dem),
            "--k",
            "5",
            "--out",
            str(out),
            "--time-limit",
            "3",
        ]
    )
    cap = capsys.readouterr()
    assert rc == 0
    assert "100%" in cap.err and "done" in cap.err  # the progress bar
    assert "(k requested 5, 5 used)" in cap.out and " bound, gap " in cap.out
    rec = json.loads((out / "recommended_cameras.geojson").read_text())
    cams = [f for f in rec["features"] if f["properties"]["kind"] == "camera"]
    views = [f for f in rec["features"] if f["properties"]["kind"] == "view"]
    assert len(cams) == len(views) == 5 and views[0]["geometry"]["type"] == "Polygon"
    lon, lat = cams[0]["geometry"]["coordinates"]
    assert -84.3 < lon < -84.0 and 36.5 < lat < 36.7  # back in WGS84
    spots = json.loads((out / "blind_spots.geojson").read_text())
    assert spots["features"] and spots["features"][0]["properties"]["rank"] == 1
    report = json.loads((out / "report.json").read_text())
    assert report["plan"]["cameras"][0]["rank"] == 1
    png = (out / "map.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_api_function(county: County) -> None:
    req = PlanRequest(
        demand=json.loads(county.demand.read_text()),
        candidates=json.loads(county.candidates.read_text()),
        cameras=json.loads(county.cameras.read_text()),
        options=PlanOptions(k=3, time_limit_s=2),
    )
    res = plan_coverage(req)
    assert isinstance(res, PlanResult)
    assert len(res.report["plan"]["cameras"]) == 3
    plan = res.report["plan"]
    assert plan["k_requested"] == 3 and plan["k_used"] == 3 and plan["status_text"]
    assert plan["status"] != "optimal" or plan["upper_bound_total"] - plan["covered_weight_total"] < 0.5
    json.dumps(res.model_dump())  # serialisable for the job endpoint


def test_fewer_cameras_than_k_are_reported_with_the_reason(county: County) -> None:
    # 83 cameras reach everything the poles' capacities (2 per pole) allow: asking for 150 uses 83
    req = PlanRequest(
        demand=json.loads(county.demand.read_text()),
        candidates=json.loads(county.candidates.read_text()),
        cameras=json.loads(county.cameras.read_text()),
        options=PlanOptions(k=150, time_limit_s=5),
    )
    plan = plan_coverage(req).report["plan"]
    assert plan["k_requested"] == 150 and plan["k_used"] == len(plan["cameras"]) < 150
    assert plan["k_text"].startswith(f"k requested 150, {plan['k_used']} used: ")
    if plan["everything_coverable_covered"]:
        assert plan["k_text"].endswith("everything coverable covered")
    assert plan["status"] != "optimal" or plan["upper_bound_total"] - plan["covered_weight_total"] < 0.5


def _fc(*features: dict, crs: str | None = None) -> dict:
    fc: dict = {"type": "FeatureCollection", "features": list(features)}
    if crs:
        fc["crs"] = {"type": "name", "properties": {"name": crs}}
    return fc


def _pt(lon: float, lat: float, **props: object) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


BOWTIE = {
    "type": "Feature",
    "properties": {"id": "bowtie", "category": "square"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[120.0, 30.0], [120.001, 30.001], [120.001, 30.0], [120.0, 30.001], [120.0, 30.0]]],
    },
}
LOOP = {
    "type": "Feature",
    "properties": {"id": "loop-road", "category": "main_road"},
    "geometry": {
        "type": "LineString",
        "coordinates": [[120.0, 30.0], [120.002, 30.002], [120.002, 30.0], [120.0, 30.002]],
    },
}


@pytest.mark.parametrize(
    "demand,dem,needle",
    [
        (
            _fc(_pt(120.0, 30.0, id="gate", category="school"), BOWTIE),
            None,
            "feature 1 (bowtie): invalid geometry: Self-intersection",
        ),
        (
            _fc(_pt(120.0, 30.0, id="gate", category="school"), LOOP),
            None,
            "feature 1 (loop-road): self-intersecting line",
        ),
        (
            _fc(_pt(500000.0, 3300000.0, id="gate", category="school"), crs="EPSG:999999"),
            None,
            "unknown CRS 'EPSG:999999'",
        ),
        (_fc(), None, "no features"),
        (
            _fc(_pt(120.0, 30.0, id="gate", category="spaceport")),
            None,
            "feature 0 (gate): category 'spaceport' not in the weight table",
        ),
        (_fc(_pt(120.0, 30.0, id="gate")), None, "feature 0 (gate): missing property 'category'"),
        (
            _fc(_pt(500000.0, 3300000.0, id="gate", category="school")),
            None,
            "coordinates do not fit CRS EPSG:4326 (projected data without a crs member?)",
        ),
        (_fc(_pt(120.0, 30.0, id="gate", category="school")), "county", "DEM does not overlap the demand"),
    ],
)
def test_bad_input_is_a_clear_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], county: County, demand: dict, dem: str | None, needle: str
) -> None:
    d = tmp_path / "demand.geojson"
    d.write_text(json.dumps(demand))
    c = tmp_path / "poles.geojson"
    c.write_text(json.dumps(_fc(_pt(120.0005, 30.0005, id="p1"))))
    argv = ["plan", "--demand", str(d), "--candidates", str(c), "--k", "1", "--out", str(tmp_path / "o"), "--no-png"]
    if dem == "county":
        argv += ["--dem", str(county.dem)]  # Tennessee terrain, demand in Zhejiang
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err
    assert "Traceback" not in err
    assert str(d) in err or "dem.tif" in err  # names the file


def test_bad_camera_property_names_the_camera(tmp_path: Path) -> None:
    d = _fc(_pt(120.0, 30.0, id="gate", category="school"))
    cams = _fc(_pt(120.0001, 30.0001, id="cam-7", azimuth="north-ish", hfov=60))
    with pytest.raises(CoverageInputError, match=r"cameras, feature 0 \(cam-7\): property 'azimuth' must be a number"):
        run_plan(d, _fc(_pt(120.0005, 30.0005, id="p1")), PlanOptions(k=1), cameras=cams)


@pytest.mark.slow
def test_real_street_network_geodanet() -> None:
    """libpysal's geodanet (real streets and schools, Arizona State Plane feet, shipped in the wheel)."""
    libpysal = pytest.importorskip("libpysal")
    from libpysal import examples

    prj = Path(examples.get_path("streets.prj")).read_text()
    streets = [s for s in libpysal.io.open(examples.get_path("streets.shp"))]
    schools = [s for s in libpysal.io.open(examples.get_path("schools.shp"))]
    feats = []
    for i, s in enumerate(streets):
        for j, part in enumerate(s.parts):
            if len(part) >= 2:
                feats.append(
                    {
                        "type": "Feature",
                        "properties": {"id": f"street-{i}-{j}", "category": "road"},
                        "geometry": {"type": "LineString", "coordinates": [list(p) for p in part]},
                    }
                )
    for i, p in enumerate(schools):
        feats.append(
            {
                "type": "Feature",
                "properties": {"id": f"school-{i}", "category": "school"},
                "geometry": {"type": "Point", "coordinates": [p[0], p[1]]},
            }
        )
    demand = _fc(*feats, crs=prj)
    # candidate poles: every street end point (real intersections), deduplicated
    ends = np.unique(np.round([pt for s in streets for part in s.parts for pt in (part[0], part[-1])], 0), axis=0)
    poles = _fc(
        *[
            {
                "type": "Feature",
                "properties": {"id": f"node-{i}"},
                "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
            }
            for i, (x, y) in enumerate(ends)
        ],
        crs=prj,
    )
    out = run_plan(demand, poles, PlanOptions(k=15, spacing_m=40, time_limit_s=5, headings=8, range_m=150))
    r = out.report
    assert r["demand"]["features"] == len(feats) and r["candidates"]["sites"] == len(ends)
    assert r["before"]["share"] == 0.0 and r["after"]["share"] > 0.15
    assert r["plan"]["gap"] <= 0.01
    # schools weigh 10 each: the best 15 cameras watch most of them
    assert r["by_category"]["school"]["share_after"] >= 0.5


def test_metrics_count_outcomes(county: County) -> None:
    from prometheus_client import REGISTRY

    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value("xl_coverage_plans_total", {"outcome": outcome}) or 0.0

    ok0, bad0 = count("ok"), count("bad_input")
    run_plan(county.demand, county.candidates, PlanOptions(k=1, time_limit_s=1), cameras=county.cameras)
    with pytest.raises(CoverageInputError):
        run_plan(_fc(), county.candidates, PlanOptions(k=1))
    assert count("ok") == ok0 + 1 and count("bad_input") == bad0 + 1
    assert (REGISTRY.get_sample_value("xl_coverage_plan_seconds_count", {"stage": "total"}) or 0) >= 1
