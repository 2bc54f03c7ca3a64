"""Bus transports behind one interface: embedded (in-process) and Kafka."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xueliang.bus.base import Bus, BusError, Consumer, Producer, Record, TopicPartition, lag

__all__ = ["Bus", "BusError", "Consumer", "Producer", "Record", "TopicPartition", "lag", "make_bus"]


if TYPE_CHECKING:
    from xueliang.config.bus import BusConfig


def make_bus(config: BusConfig) -> Bus:
    """Build the transport named by ``config`` (a :class:`xueliang.config.BusConfig`)."""
    if config.type == "memory":
        from xueliang.bus.memory import MemoryBus

        return MemoryBus()
    from xueliang.bus.kafka import KafkaBus

    return KafkaBus(config)
