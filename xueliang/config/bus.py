"""Which transport the stages use: the embedded one (default) or Kafka."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from xueliang.config._base import StrictModel
from xueliang.contracts import Topics


class MemoryBusConfig(StrictModel):
    """In-process transport: every stage in one process (``xueliang demo``)."""

    type: Literal["memory"] = "memory"
    topics: Topics = Topics()
    frame_partitions: int = Field(6, ge=1, le=256)


class KafkaSecurityConfig(StrictModel):
    """How a stage authenticates to Kafka. Credentials come from the environment: a field left
    unset reads ``XL_KAFKA_USERNAME``, ``XL_KAFKA_PASSWORD`` and ``XL_KAFKA_CA_FILE`` (or write
    ``${VAR}`` references); each component runs as its own principal (deploy/k8s, deploy/compose)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="SASL_SSL in production: SCRAM over TLS"
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    username: str | None = Field(None, description="SCRAM user (the stage's principal); default $XL_KAFKA_USERNAME")
    password: str | None = Field(None, description="default $XL_KAFKA_PASSWORD", repr=False)
    ca_file: str | None = Field(
        None, description="PEM CA bundle the broker's certificate chains to; default $XL_KAFKA_CA_FILE"
    )
    check_hostname: bool = Field(True, description="verify the broker certificate's host name")

    def resolved(self) -> KafkaSecurityConfig:
        """This configuration with unset fields taken from the environment."""
        import os

        return self.model_copy(
            update={
                "username": self.username or os.environ.get("XL_KAFKA_USERNAME") or None,
                "password": self.password or os.environ.get("XL_KAFKA_PASSWORD") or None,
                "ca_file": self.ca_file or os.environ.get("XL_KAFKA_CA_FILE") or None,
            }
        )


class KafkaBusConfig(StrictModel):
    """Apache Kafka (one broker for development, a cluster in production)."""

    type: Literal["kafka"] = "kafka"
    bootstrap_servers: list[str] = Field(default_factory=lambda: ["127.0.0.1:9092"], min_length=1)
    topics: Topics = Topics()
    security: KafkaSecurityConfig = Field(
        default_factory=KafkaSecurityConfig, description="PLAINTEXT by default; SASL_SSL with SCRAM in production"
    )
    frame_partitions: int = Field(6, ge=1, le=256, description="partitions of the frames topic (parallel detectors)")
    client_timeout_s: float = Field(30.0, gt=0, description="how long client creation retries an unreachable broker")
    delivery_timeout_s: float = Field(
        120.0,
        ge=1,
        le=3600,
        description="how long a produced record may wait (broker away, retries) before it counts as failed "
        "and Producer.flush raises",
    )
    linger_ms: int = Field(
        50,
        ge=0,
        le=1000,
        description="how long a producer waits to batch records into one request; each request costs the "
        "client ≈ 2 ms of CPU, so a worker with many cameras spends less at 20–50 ms (latency +linger: "
        "50 ms of a 2-s alarm budget; 5 for a single camera where latency matters more than CPU)",
    )
    session_timeout_s: float = Field(
        10.0, ge=1, le=300, description="consumer group session timeout: a member silent this long loses its partitions"
    )
    heartbeat_interval_s: float = Field(
        1.0,
        gt=0,
        le=100,
        description="consumer heartbeat period (under a third of the session timeout); members notice "
        "a rebalance within about this long",
    )

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> KafkaBusConfig:
        if self.heartbeat_interval_s * 3 > self.session_timeout_s:
            raise ValueError(
                f"heartbeat_interval_s ({self.heartbeat_interval_s}) must be at most a third "
                f"of session_timeout_s ({self.session_timeout_s})"
            )
        return self


BusConfig = Annotated[MemoryBusConfig | KafkaBusConfig, Field(discriminator="type")]
