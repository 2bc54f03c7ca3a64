"""The detector's one canonical detection type (converted at the edges: backends in, incidents out)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Detections:
    """Detections of one frame, in frame pixel coordinates.

    ``xyxy`` is (N, 4) float32, ``confidence`` (N,) float32, ``class_id`` (N,) int32 (the model's
    class index), ``track_id`` (N,) int64 with -1 for "not tracked".
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    track_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must be (N, 4), got {self.xyxy.shape}")
        if self.confidence.shape != (n,) or self.class_id.shape != (n,):
            raise ValueError(f"confidence/class_id must be ({n},), got {self.confidence.shape}/{self.class_id.shape}")
        if self.track_id.shape == (0,) and n:
            object.__setattr__(self, "track_id", np.full(n, -1, np.int64))
        elif self.track_id.shape != (n,):
            raise ValueError(f"track_id must be ({n},), got {self.track_id.shape}")

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(0, np.int64))

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], self.track_id[index])

    def bottom_centres(self) -> np.ndarray:
        """(N, 2) bottom-centre points: where an object stands, the point zones are tested with."""
        return (
            np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)
            if len(self)
            else np.zeros((0, 2), np.float32)
        )

    def areas(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]).clip(0) * (self.xyxy[:, 3] - self.xyxy[:, 1]).clip(0)
