"""Rule semantics against the scene generator's truth, independent of the model: the tracker and
rules fed with the renderer's ground-truth boxes must raise exactly the expected incidents, each
within 2 s of scene time (every public scenario)."""

from __future__ import annotations

import pytest

from xueliang.detector.evaluate import DEFAULT_SAMPLE_FPS, oracle_incidents, scenario_camera, score
from xueliang.scenes.scenario import load_scenario, public_scenarios
from xueliang.scenes.truth import expected_incidents

T0 = 1_800_000_000.0


@pytest.mark.slow
def test_rules_on_ground_truth_boxes_match_expected_incidents():
    scenarios = {p.stem: load_scenario(p) for p in public_scenarios()}
    assert scenarios, "no public scenarios"
    incidents, t0, cams = [], {}, {}
    for i, (name, sc) in enumerate(scenarios.items()):
        t0[name] = T0 + 10_000 * i
        cams[name] = scenario_camera(sc, name).id
        incidents += oracle_incidents(sc, name, DEFAULT_SAMPLE_FPS, t0[name])
    ev = score({n: expected_incidents(sc) for n, sc in scenarios.items()}, incidents, t0, cams)
    print("\n" + ev.table())
    for line in ev.unmatched:
        print("  ", line)
    assert ev.recall == 1.0 and ev.precision == 1.0, ev.unmatched
    assert all(abs(o) <= 2.0 for o in ev.totals().offsets)
