"""Which transport the stages use: the embedded one (default) or Kafka."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from xueliang.config._base import StrictModel
from xueliang.contracts import Topics


class MemoryBusConfig(StrictModel):
    """In-process transport: every stage in one process (``xueliang demo``)."""

    type: Literal["memory"] = "memory"
    topics: Topics = Topics()
    frame_partitions: int = Field(6, ge=1, le=256)


class KafkaBusConfig(StrictModel):
    """Apache Kafka (one broker for development, a cluster in production)."""

    type: Literal["kafka"] = "kafka"
    bootstrap_servers: list[str] = Field(default_factory=lambda: ["127.0.0.1:9092"], min_length=1)
    topics: Topics = Topics()
    frame_partitions: int = Field(6, ge=1, le=256, description="partitions of the frames topic (parallel detectors)")
    client_timeout_s: float = Field(30.0, gt=0, description="how long client creation retries an unreachable broker")


BusConfig = Annotated[MemoryBusConfig | KafkaBusConfig, Field(discriminator="type")]
