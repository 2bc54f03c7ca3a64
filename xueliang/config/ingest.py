"""Ingest section: what one stream-worker process holds for the bus and how often it re-checks its cameras.

Per-camera settings (source, sample rate, motion gate, quality diagnosis, JPEG size and quality)
live on each camera (``cameras[]``); these are the worker's own.
"""

from __future__ import annotations

from pydantic import Field

from xueliang.config._base import StrictModel


class IngestConfig(StrictModel):
    """Bounds a worker keeps however long the broker is away: buffer + in flight frames at most."""

    max_buffered_frames: int = Field(
        64,
        ge=1,
        le=100_000,
        description="frames queued for the bus per worker; when full the oldest is dropped and counted "
        '(xl_ingest_frames_dropped_total{reason="buffer_full"})',
    )
    max_in_flight: int = Field(32, ge=1, le=10_000, description="frames sent but not yet acknowledged by the bus")
    tick_s: float = Field(0.5, gt=0, le=60, description="how often the worker checks its cameras and assignment")
