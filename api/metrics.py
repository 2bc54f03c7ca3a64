"""The API's Prometheus metrics (default registry, so other stages in the same process show up on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("xl_api_requests_total", "HTTP requests handled", ["method", "route", "status"])
LATENCY = Histogram(
    "xl_api_request_duration_seconds",
    "HTTP request latency (until the response starts)",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
FEED_CLIENTS = Gauge("xl_api_feed_clients", "connected live-feed (SSE) clients")
FEED_EVENTS = Counter("xl_api_feed_events_total", "change events read from the dispatch event log", ["kind"])
FEED_DROPPED = Counter("xl_api_feed_dropped_total", "events dropped for a slow live-feed client (its queue was full)")
LOGINS = Counter("xl_api_logins_total", "login attempts", ["outcome"])
