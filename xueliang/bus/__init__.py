"""Bus transports behind one interface: embedded (in-process) and Kafka."""

from xueliang.bus.base import Bus, BusError, Consumer, Producer, Record, TopicPartition, lag

__all__ = ["Bus", "BusError", "Consumer", "Producer", "Record", "TopicPartition", "lag", "make_bus"]


def make_bus(config):  # type: ignore[no-untyped-def]
    """Build the transport named by ``config`` (a :class:`xueliang.config.BusConfig`)."""
    if config.type == "memory":
        from xueliang.bus.memory import MemoryBus

        return MemoryBus()
    from xueliang.bus.kafka import KafkaBus

    return KafkaBus(config)
