"""The tracker at the deployment sample rate (2 frames/s): centre-distance association, constant-velocity motion.

A walker 30 px wide and 80 px tall (1.7 m: 47 px/m) walking 1.3 m/s moves 61 px/s, 31 px (its own width) between
samples 0.5 s apart: consecutive boxes do not overlap, so IoU alone cannot follow it (docs/detector.md, real
footage). The generated scenes' rules and tracker tables are in test_detector_rules.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from xueliang.config.detector import TrackerConfig
from xueliang.detector.tracking import ByteTracker
from xueliang.detector.types import Detections

DT = 0.5  # 2 frames/s, the deployment default
W, H = 30.0, 80.0  # a walker
STEP = 31.0  # px per sample: 1.3 m/s at 47 px/m


def frame(*boxes: tuple[float, float, int]) -> Detections:
    """Detections of walkers (or other classes) whose top-left corners are (x, y), score 0.9."""
    rows = [(x, y, x + W, y + H, 0.9, cls) for x, y, cls in boxes]
    arr = np.asarray(rows, np.float32).reshape(-1, 6)
    return Detections(arr[:, :4].copy(), arr[:, 4].copy(), arr[:, 5].astype(np.int32))


def walk(tr: ByteTracker, n: int, x0: float = 100.0, step: float = STEP, dt: float = DT) -> list[int]:
    return [int(tr.update(frame((x0 + step * i, 200.0, 0)), i * dt).track_id[0]) for i in range(n)]


def test_a_walker_moving_its_own_width_per_sample_keeps_one_id() -> None:
    tr = ByteTracker(TrackerConfig())
    ids = walk(tr, 12)
    assert len(set(ids)) == 1
    [track] = tr.tracks
    assert track.confirmed and track.hits == 12
    assert track.velocity[0] == pytest.approx(STEP / DT)  # constant velocity, known from the second sample


def test_without_the_centre_stage_the_walker_is_lost_every_sample() -> None:
    """The measured failure: consecutive boxes touch (IoU 0) and a new track has no velocity."""
    ids = walk(ByteTracker(TrackerConfig(max_speed_sizes_per_s=0)), 6)
    assert len(set(ids)) == 6


def test_the_walker_keeps_its_id_when_a_sample_is_missed() -> None:
    tr = ByteTracker(TrackerConfig())
    ids = [int(tr.update(frame((100 + STEP * i, 200.0, 0)), i * DT).track_id[0]) for i in (0, 1, 2, 3)]
    tr.update(Detections.empty(), 4 * DT)  # not detected once (1 s unseen)
    ids += [int(tr.update(frame((100 + STEP * i, 200.0, 0)), i * DT).track_id[0]) for i in (5, 6)]
    assert len(set(ids)) == 1


def test_two_walkers_passing_each_other_keep_their_ids() -> None:
    tr = ByteTracker(TrackerConfig())
    a_ids, b_ids = [], []
    for i in range(12):
        a, b = (100 + STEP * i, 200.0, 0), (100 + STEP * 11 - STEP * i, 210.0, 0)
        order = (a, b) if i % 2 else (b, a)  # the detector's order says nothing
        out = tr.update(frame(*order), i * DT)
        ia, ib = (0, 1) if i % 2 else (1, 0)
        a_ids.append(int(out.track_id[ia]))
        b_ids.append(int(out.track_id[ib]))
    assert len(set(a_ids)) == 1 and len(set(b_ids)) == 1 and a_ids[0] != b_ids[0]


def test_two_new_walkers_side_by_side_are_paired_one_to_one_nearest_first() -> None:
    tr = ByteTracker(TrackerConfig())
    first = tr.update(frame((100, 200, 0), (160, 200, 0)), 0.0).track_id
    # both step right by their width: each box is 31 px from its own and 29 px from the other's last centre
    second = tr.update(frame((160 + STEP, 200, 0), (100 + STEP, 200, 0)), DT).track_id
    assert list(second) == [first[1], first[0]]


@pytest.mark.parametrize(
    "where, cls, width, why",
    [
        ((400.0, 200.0), 0, W, "300 px away: 3.75 heights in 0.5 s, faster than any walker"),
        # one step past where it is predicted (no overlap: IoU, which ignores the class as ByteTrack does, fails)
        ((100.0 + 2 * STEP, 200.0), 2, W, "within reach, but another class"),
        ((100.0 + 2 * STEP, 200.0), 0, 2.5 * W, "within reach, but a box of another size"),
    ],
)
def test_a_detection_that_cannot_be_the_object_does_not_steal_its_track(where, cls, width, why) -> None:
    tr = ByteTracker(TrackerConfig())
    tr.update(frame((100.0 - STEP, 200.0, 0)), 0.0)
    tr.update(frame((100.0, 200.0, 0)), DT)
    [track] = tr.tracks
    x, y = where
    box = np.asarray([[x, y, x + width, y + (H if width == W else 2.5 * H)]], np.float32)
    out = tr.update(Detections(box, np.asarray([0.9], np.float32), np.asarray([cls], np.int32)), 2 * DT)
    assert out.track_id[0] != track.track_id, why
    assert track.hits == 2


def test_the_gate_scales_with_the_capture_interval() -> None:
    """The same 1.2-height jump is too fast for 0.5 s (1.5 heights/s: 0.75) and a walk in 1 s (1.5)."""
    jump = 1.2 * H
    for dt, same in ((0.5, False), (1.0, True)):
        tr = ByteTracker(TrackerConfig())
        first = tr.update(frame((100.0, 200.0, 0)), 0.0).track_id[0]
        second = tr.update(frame((100.0 + jump, 200.0, 0)), dt).track_id[0]
        assert bool(first == second) is same, dt


def test_a_track_with_a_velocity_is_found_where_it_is_predicted() -> None:
    """A runner (3 m/s, 70 px per sample: 0.9 heights per 0.5 s, past the walking gate) once seen twice close
    together (at 10 frames/s, say) is followed at 2 frames/s by its predicted box."""
    tr = ByteTracker(TrackerConfig())
    tr.update(frame((100.0, 200.0, 0)), 0.0)
    tr.update(frame((114.0, 200.0, 0)), 0.1)  # 140 px/s
    ids = {int(tr.update(frame((114.0 + 70.0 * i, 200.0, 0)), 0.1 + i * DT).track_id[0]) for i in range(1, 6)}
    assert ids == {tr.tracks[0].track_id} and len(tr.tracks) == 1


def test_a_track_missed_in_the_last_sample_is_not_recovered_by_distance_alone() -> None:
    """Someone leaves the picture and someone else arrives near there a sample later: within the gate for 1 s
    (1.5 heights), but off the first one's predicted path, so a new track (the first is found by its prediction)."""
    tr = ByteTracker(TrackerConfig())
    ids = walk(tr, 4)  # at x = 100 + 31 * 3 at 1.5 s, walking right
    tr.update(Detections.empty(), 4 * DT)
    arrival = int(tr.update(frame((100.0 + STEP * 3 - 60.0, 250.0, 0)), 5 * DT).track_id[0])
    assert arrival != ids[0]
