"""Retry delays: exponential backoff, optionally with jitter, shared by every reconnect loop."""

from __future__ import annotations

import random
from collections.abc import Iterator


class Backoff:
    """Delays ``initial``, ``2·initial``, ``4·initial``, ... capped at ``maximum``; :meth:`reset` after a
    success starts again from ``initial``. With ``jitter`` (a share, e.g. 0.2) each delay is moved by up
    to ± that share at random (never below 0.05 s), so that many clients do not retry in step."""

    def __init__(
        self, initial: float, maximum: float, *, jitter: float = 0.0, rng: random.Random | None = None
    ) -> None:
        self.initial, self.maximum, self.jitter = initial, maximum, jitter
        self._rng = rng or random.Random()
        self._delay = initial

    def next(self) -> float:
        """The delay to wait now; the next one doubles (up to ``maximum``)."""
        delay = self._delay
        self._delay = min(self.maximum, self._delay * 2)
        if self.jitter:
            return max(0.05, delay * (1 + self._rng.uniform(-self.jitter, self.jitter)))
        return delay

    def reset(self) -> None:
        self._delay = self.initial


def backoff_delays(initial: float, maximum: float, jitter: float, rng: random.Random) -> Iterator[float]:
    """Exponential backoff with ± ``jitter`` share of randomness: 1, 2, 4, ... up to ``maximum``."""
    backoff = Backoff(initial, maximum, jitter=jitter, rng=rng)
    while True:
        yield backoff.next()
