"""Region-of-interest crops for high-resolution frames."""

from __future__ import annotations

import numpy as np
import pytest

from xueliang.detector.roi import merge_crops, roi_regions
from xueliang.detector.types import Detections


def contains(region, box):
    return region[0] <= box[0] and region[1] <= box[1] and region[2] >= box[2] and region[3] >= box[3]


@pytest.mark.parametrize(
    "w, h, boxes, expect_none",
    [
        (600, 400, [(10, 10, 20, 40)], True),  # small frame (< 2 x imgsz): whole frame is better
        (1920, 1080, [], True),  # nothing to look at
        (1920, 1080, [(1500, 200, 1510, 225)], False),  # a far-away person
    ],
)
def test_roi_whole_frame_or_crops(w, h, boxes, expect_none):
    regions = roi_regions(w, h, boxes, 320)
    assert (regions is None) is expect_none
    if regions:
        for r in regions:
            assert r[2] - r[0] >= 320 and r[3] - r[1] >= 320
            assert r[0] >= 0 and r[2] <= w and r[1] >= 0 and r[3] <= h
        for b in boxes:
            assert any(contains(r, b) for r in regions)


def test_roi_clusters_near_boxes_and_splits_far_ones():
    near = roi_regions(1920, 1080, [(100, 100, 120, 150), (200, 120, 220, 170)], 320)
    far = roi_regions(1920, 1080, [(100, 100, 120, 150), (1700, 900, 1720, 950)], 320)
    assert near is not None and len(near) == 1
    assert far is not None and len(far) == 2


def test_roi_too_many_regions_falls_back():
    boxes = [(x, y, x + 10, y + 20) for x in (0, 500, 1000, 1500) for y in (0, 700)]
    assert roi_regions(1920, 1080, boxes, 320) is None


def test_merge_crops_offsets_and_dedups_overlap():
    d1 = Detections(np.array([[300, 10, 330, 60]], np.float32), np.array([0.9], np.float32), np.array([0], np.int32))
    d2 = Detections(np.array([[100, 10, 130, 60]], np.float32), np.array([0.8], np.float32), np.array([0], np.int32))
    out = merge_crops([((0, 0, 400, 400), d1), ((200, 0, 600, 400), d2)], iou=0.5)
    assert len(out) == 1 and out.confidence[0] == pytest.approx(0.9)
    np.testing.assert_allclose(out.xyxy[0], [300, 10, 330, 60])


def test_roi_merging_the_same_spot_twice_does_not_grow_the_crop():
    once = roi_regions(1920, 1080, [(100, 100, 120, 150)], 320)
    thrice = roi_regions(1920, 1080, [(100, 100, 120, 150)] * 3, 320)
    assert once == thrice and once[0][2] - once[0][0] == 320
