"""The county-scale bench on a coarse grid (the full 442,510 x 146,000 run is by hand: bench/coverage/county.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("highspy")
pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parents[1]


def test_county_bench_runs_every_phase_and_the_plan_beats_greedy_with_a_valid_bound(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("county_bench", REPO / "bench/coverage/county.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "county.json"
    argv = ["--spacing", "300", "--villages", "25", "--road-pole-step", "250", "--village-pole-step", "150"]
    assert bench.main([*argv, "--k", "30", "--time-limit", "4", "--block", "64", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    phases = r["phases"]
    for name in (
        "dem",
        "demand grid",
        "poles",
        "visibility (streamed)",
        "model + presolve",
        "greedy only",
        "full solve",
    ):
        assert phases[name]["seconds"] >= 0 and phases[name]["peak_rss_mb"] > 0
    vis = phases["visibility (streamed)"]
    assert vis["demand"] == phases["demand grid"]["points"] > 5000 and vis["views"] == 8 * phases["poles"]["sites"]
    g, f = r["greedy"], r["solved"]
    assert f["covered_weight"] >= g["covered_weight"]
    assert f["upper_bound"] >= f["covered_weight"] and g["upper_bound"] >= g["covered_weight"]
    assert f["k_text"].startswith("k requested 30, ")
    assert f["status_text"] == "optimal" or f["status_text"].startswith("within ")
