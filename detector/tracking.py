"""A small ByteTrack per camera, numpy + scipy only (runs on lean hosts without torch).

Association follows ByteTrack (Zhang et al., 2022): detections at or above ``high_score``
are matched first to every live track by IoU (Hungarian assignment); the remaining
confirmed tracks then get a second chance with the low-score detections (occluded or
blurred objects keep their id); unmatched high-score detections start tentative tracks.
A track is confirmed after ``min_hits`` matches. Ages are measured on capture timestamps:
a track unseen for ``lost_ttl_s`` seconds is evicted, so state stays bounded.

Motion: a track seen twice predicts its box with a constant velocity (its first velocity is
the displacement between its first two boxes over their capture interval, then a 0.5
moving average); IoU is taken with the better of the predicted and the last box (robust to
sudden stops and turns). At a low sample rate (2 frames/s) IoU is not enough: a walker
moves about its own width between samples, and a new track has no velocity yet. So the
tracks IoU leaves unmatched that were seen in the previous sample get a third stage by
centre distance, as OC-SORT and BoT-SORT recover what IoU misses: the distance from the
track's last or predicted box centre to the detection's, in the track's box sizes (longer
side), gated at ``max_speed_sizes_per_s`` times the capture time since the track was last
seen (a physical speed, so the gate scales with the actual sampling interval), same class,
box sizes within ``max_size_ratio``; solved one to one (Hungarian on the distances).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from xueliang.config.detector import TrackerConfig
from xueliang.detector.types import Detections


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    return inter / (area_a + area_b - inter + 1e-9)


def centres(xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) box centres of (N, 4) xyxy boxes."""
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2], axis=1)


def sizes(xyxy: np.ndarray) -> np.ndarray:
    """(N,) longer sides of (N, 4) xyxy boxes (a walker's height, a car's length seen from the side)."""
    return np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])


@dataclass
class Track:
    track_id: int
    xyxy: np.ndarray
    first_ts: float
    last_ts: float
    scores: deque[float]
    classes: deque[int]
    hits: int = 1
    confirmed: bool = False
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    seen_now: bool = True  # matched in the latest update

    @property
    def class_id(self) -> int:
        """The class most often detected over the recent window (stable against one-frame flips)."""
        return Counter(self.classes).most_common(1)[0][0]

    @property
    def median_score(self) -> float:
        return float(np.median(np.asarray(self.scores)))

    def bottom_centre(self) -> tuple[float, float]:
        return float((self.xyxy[0] + self.xyxy[2]) / 2), float(self.xyxy[3])

    def predicted(self, ts: float) -> np.ndarray:
        dt = min(max(ts - self.last_ts, 0.0), 1.0)
        return self.xyxy + self.velocity * dt


class ByteTracker:
    """Tracks of one camera. ``update`` takes one inferred frame's detections."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.tracks: list[Track] = []
        self._next_id = 1
        self._last_ts: float | None = None  # capture time of the previous update

    def reset(self) -> None:
        self.tracks.clear()
        self._next_id = 1
        self._last_ts = None

    def _match(self, tracks: list[Track], boxes: np.ndarray, ts: float, min_iou: float) -> list[tuple[int, int]]:
        if not tracks or not len(boxes):
            return []
        # the better of the motion-predicted and the last box: robust to sudden stops and turns
        ious = np.maximum(
            iou_matrix(np.stack([t.predicted(ts) for t in tracks]), boxes),
            iou_matrix(np.stack([t.xyxy for t in tracks]), boxes),
        )
        rows, cols = linear_sum_assignment(-ious)
        return [(r, c) for r, c in zip(rows, cols, strict=False) if ious[r, c] >= min_iou]

    def _match_centres(
        self, tracks: list[Track], dets: Detections, idx: np.ndarray, ts: float
    ) -> list[tuple[int, int]]:
        """Third stage: tracks and detections IoU left unmatched, by normalised centre distance (see the module)."""
        cfg = self.config
        if not tracks or not len(idx) or cfg.max_speed_sizes_per_s <= 0:
            return []
        boxes = dets.xyxy[idx].astype(np.float32)
        det_c, det_size, det_cls = centres(boxes), sizes(boxes), dets.class_id[idx]
        cost = np.full((len(tracks), len(idx)), np.inf)
        for i, t in enumerate(tracks):
            dt = ts - t.last_ts
            if dt <= 0:
                continue
            size = float(sizes(t.xyxy[None])[0])
            if size <= 0:
                continue
            last, pred = centres(np.stack([t.xyxy, t.predicted(ts)]))
            d = np.minimum(np.linalg.norm(det_c - last, axis=1), np.linalg.norm(det_c - pred, axis=1)) / size
            ratio = np.maximum(det_size, size) / np.maximum(np.minimum(det_size, size), 1e-6)
            ok = (d <= cfg.max_speed_sizes_per_s * dt) & (ratio <= cfg.max_size_ratio) & (det_cls == t.class_id)
            cost[i, ok] = d[ok]
        feasible = np.isfinite(cost)
        if not feasible.any():
            return []
        rows, cols = linear_sum_assignment(np.where(feasible, cost, 1e6))
        return [(r, c) for r, c in zip(rows, cols, strict=False) if feasible[r, c]]

    def _apply(self, track: Track, det: Detections, j: int, ts: float) -> None:
        dt = ts - track.last_ts
        box = det.xyxy[j].astype(np.float32)
        if dt > 1e-3:
            step = (box - track.xyxy) / dt
            # the first velocity is the displacement between the first two boxes, undamped: a walker sampled at
            # 2 frames/s moves its own width per sample, and half that speed would lose it at the third sample
            track.velocity = step if track.hits == 1 else 0.5 * track.velocity + 0.5 * step
        track.xyxy = box
        track.last_ts = ts
        track.scores.append(float(det.confidence[j]))
        track.classes.append(int(det.class_id[j]))
        track.hits += 1
        track.seen_now = True
        if track.hits >= self.config.min_hits:
            track.confirmed = True

    def update(self, dets: Detections, ts: float) -> Detections:
        """Associate ``dets`` (captured at ``ts``) and return them with ``track_id`` set (-1: untracked)."""
        cfg = self.config
        # evict what has been unseen too long (capture time, so dropped frames do not stretch it)
        self.tracks = [t for t in self.tracks if ts - t.last_ts <= cfg.lost_ttl_s]
        for t in self.tracks:
            t.seen_now = False
        track_ids = np.full(len(dets), -1, np.int64)
        high = np.flatnonzero(dets.confidence >= cfg.high_score)
        low = np.flatnonzero((dets.confidence < cfg.high_score) & (dets.confidence >= cfg.low_score))

        pool = list(self.tracks)
        matched_tracks: set[int] = set()
        for r, c in self._match(pool, dets.xyxy[high], ts, cfg.match_iou):
            j = int(high[c])
            self._apply(pool[r], dets, j, ts)
            track_ids[j] = pool[r].track_id
            matched_tracks.add(r)
        # second chance: confirmed tracks left over, with the low-score detections
        rest = [pool[i] for i in range(len(pool)) if i not in matched_tracks and pool[i].confirmed]
        for r, c in self._match(rest, dets.xyxy[low], ts, max(cfg.match_iou, 0.3)):
            j = int(low[c])
            self._apply(rest[r], dets, j, ts)
            track_ids[j] = rest[r].track_id
        # third stage: what IoU left, by centre distance gated at a physical speed (new tracks have no velocity).
        # Only tracks seen in the previous sample: one missed since has a velocity (seen twice) or was tentative
        # (dropped), and reaching further back by distance alone would pair an object leaving the picture with
        # another arriving there (the gate grows to 1.5 x lost_ttl_s sizes)
        left = [t for t in pool if not t.seen_now and t.last_ts == self._last_ts]
        free = np.asarray([j for j in map(int, high) if track_ids[j] < 0], np.int64)
        for r, c in self._match_centres(left, dets, free, ts):
            j = int(free[c])
            self._apply(left[r], dets, j, ts)
            track_ids[j] = left[r].track_id
        # a tentative track that missed its next frame is dropped (ByteTrack's "unconfirmed" rule)
        self.tracks = [t for t in self.tracks if t.confirmed or t.seen_now]
        # unmatched high-score detections start tentative tracks
        for j in map(int, high):
            if track_ids[j] >= 0:
                continue
            t = Track(
                self._next_id,
                dets.xyxy[j].astype(np.float32),
                ts,
                ts,
                deque([float(dets.confidence[j])], maxlen=cfg.score_window),
                deque([int(dets.class_id[j])], maxlen=cfg.score_window),
            )
            t.confirmed = cfg.min_hits <= 1
            self._next_id += 1
            self.tracks.append(t)
            track_ids[j] = t.track_id
        self._last_ts = ts
        return Detections(dets.xyxy, dets.confidence, dets.class_id, track_ids)

    def by_id(self) -> dict[int, Track]:
        return {t.track_id: t for t in self.tracks}
