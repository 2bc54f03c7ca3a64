"""Topic names and how the project creates each topic (partitions, retention, size limit)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from xueliang.contracts.checks import MAX_MESSAGE_BYTES


class Topics(BaseModel):
    """Topic names; a deployment may prefix them (several sites on one cluster)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frames: str = "xl.frames"
    incidents: str = "xl.incidents"
    camera_health: str = "xl.camera-health"
    dead_letters: str = "xl.dead-letters"
    camera_registry: str = "xl.camera-registry"

    def with_prefix(self, prefix: str) -> Topics:
        """These names behind ``prefix.`` (a site's, or a test's or benchmark's private set)."""
        return Topics(**{k: f"{prefix}.{v}" for k, v in self.model_dump().items()})


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How the project creates a topic: explicit partitions, retention, size limit."""

    name: str
    partitions: int
    retention_ms: int
    max_message_bytes: int = 1024 * 1024
    compacted: bool = False


def topic_specs(topics: Topics, frame_partitions: int = 6) -> list[TopicSpec]:
    hour = 3600 * 1000
    return [
        TopicSpec(topics.frames, frame_partitions, retention_ms=1 * hour, max_message_bytes=MAX_MESSAGE_BYTES),
        TopicSpec(topics.incidents, 3, retention_ms=7 * 24 * hour),
        TopicSpec(topics.camera_health, 3, retention_ms=7 * 24 * hour),
        TopicSpec(topics.dead_letters, 1, retention_ms=14 * 24 * hour, max_message_bytes=MAX_MESSAGE_BYTES),
        TopicSpec(topics.camera_registry, 1, retention_ms=-1, compacted=True),
    ]
