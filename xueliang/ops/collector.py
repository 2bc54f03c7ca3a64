"""Base of the project's custom Prometheus collectors: register once, unregister cleanly."""

from __future__ import annotations

from typing import Self

from prometheus_client.registry import REGISTRY, CollectorRegistry


class RegisteredCollector:
    """A custom collector that remembers the registry it joined (tests and reloads unregister it)."""

    _registry: CollectorRegistry | None = None

    def describe(self):  # type: ignore[no-untyped-def]
        # an empty description keeps registration from calling collect() (no I/O at registration)
        return []

    def register(self, registry: CollectorRegistry = REGISTRY) -> Self:
        registry.register(self)  # type: ignore[arg-type]
        self._registry = registry
        return self

    def unregister(self) -> None:
        if self._registry is not None:
            self._registry.unregister(self)  # type: ignore[arg-type]
            self._registry = None
