"""Register the operations collectors in a stage's process (next to its own metrics).

    from xueliang.ops.exporter import install_collectors
    install_collectors(settings, bus)            # fleet inventory + consumer lag of the pipeline

Every process that exports them reports the same values (they come from the config
and from the bus), so the alert rules and dashboards aggregate them with ``max``/``count by
(camera)`` and several exporters do not double-count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from xueliang.bus.base import Bus
from xueliang.config import Settings
from xueliang.ops.fleet import FleetCollector
from xueliang.ops.lag import ConsumerLagCollector, pipeline_watches


@dataclass
class Installed:
    fleet: FleetCollector | None
    lag: ConsumerLagCollector | None

    def uninstall(self) -> None:
        for c in (self.fleet, self.lag):
            if c is not None:
                c.unregister()


def install_collectors(
    settings: Settings,
    bus: Bus | None,
    registry: CollectorRegistry = REGISTRY,
    *,
    fleet: bool = True,
    lag: bool = True,
    lag_interval_s: float = 5.0,
) -> Installed:
    """Register the fleet collector and (given a bus) the pipeline's consumer-lag collector."""
    f = FleetCollector(settings).register(registry) if fleet else None
    c = (
        ConsumerLagCollector(bus, pipeline_watches(settings.bus.topics), min_interval_s=lag_interval_s).register(
            registry
        )
        if lag and bus is not None
        else None
    )
    return Installed(f, c)


def start_metrics_server(
    settings: Settings,
    bus: Bus | None = None,
    collectors: Sequence[Collector] = (),
    *,
    port: int | None = None,
    addr: str = "0.0.0.0",
    registry: CollectorRegistry = REGISTRY,
) -> tuple[Installed, object]:
    """What a stage's entry point calls: register the ops collectors and the stage's own scrape-time
    ``collectors`` (dispatch: its database state), then serve ``registry`` on ``port``
    (default ``settings.metrics.port``). Returns the collectors and the HTTP server
    (``server.shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    port = settings.metrics.port if port is None else port
    if not port:
        raise ValueError("no metrics port: set metrics.port in the configuration")
    installed = install_collectors(settings, bus, registry)
    for collector in collectors:
        registry.register(collector)
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return installed, server
