"""Base of the project's custom Prometheus collectors: register once, unregister cleanly."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry


class RegisteredCollector(Collector):
    """A custom collector that remembers the registry it joined (tests and reloads unregister it)."""

    _registry: CollectorRegistry | None = None

    def describe(self) -> Iterable[Metric]:
        # an empty description keeps registration from calling collect() (no I/O at registration)
        return []

    def register(self, registry: CollectorRegistry = REGISTRY) -> Self:
        registry.register(self)
        self._registry = registry
        return self

    def unregister(self) -> None:
        if self._registry is not None:
            self._registry.unregister(self)
            self._registry = None
