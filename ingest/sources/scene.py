"""Frames rendered live by the scene generator (:mod:`xueliang.scenes.render`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from xueliang.config.cameras import SceneSource
from xueliang.ingest.sources.base import FrameSource, SourceError, sleep_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    from xueliang.scenes.render import RenderedFrame


class SceneFrameSource(FrameSource):
    """Frames rendered live by the scene generator; capture time = start wall time + scene t."""

    def __init__(self, camera_id: str, source: SceneSource) -> None:
        super().__init__(camera_id)
        self.source = source
        self._frames: Iterator[RenderedFrame] | None = None
        self._image: np.ndarray | None = None
        self._t0 = 0.0
        self._offset = 0.0
        self._last_t = 0.0
        self._dt = 0.1

    def _start(self) -> None:
        from xueliang.scenes.render import SceneRenderer
        from xueliang.scenes.scenario import load_scenario

        try:
            scenario = load_scenario(self.source.scenario)
        except (OSError, ValueError) as exc:
            raise SourceError(f"camera {self.camera_id}: scenario {self.source.scenario}: {exc}") from exc
        self._frames = iter(SceneRenderer(scenario, self.source.seed).frames())

    def open(self) -> None:
        self._start()
        self._t0 = time.time()
        self._offset = 0.0
        self._last_t = 0.0

    def grab(self) -> float | None:
        assert self._frames is not None
        frame = next(self._frames, None)
        if frame is None:
            if not self.source.loop:
                return None
            self._offset += self._last_t + self._dt
            self._start()
            frame = next(self._frames, None)
            if frame is None:
                raise SourceError(f"camera {self.camera_id}: scenario {self.source.scenario} renders no frame")
        t = float(frame.t)
        if t > self._last_t:
            self._dt = t - self._last_t
        self._last_t = t
        self._image = frame.image
        ts = self._t0 + self._offset + t
        if self.source.realtime:
            sleep_until(ts)
        return ts

    def retrieve(self) -> np.ndarray:
        if self._image is None:
            raise SourceError(f"camera {self.camera_id}: retrieve before grab")
        return self._image

    def close(self) -> None:
        self._frames = None
