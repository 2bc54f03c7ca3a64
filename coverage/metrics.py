"""Coverage-planning metrics (prometheus-client), base units, bounded labels (stage, outcome)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PLAN_SECONDS = Histogram(
    "xl_coverage_plan_seconds",
    "Wall time of one coverage plan, by stage (inputs, visibility, optimise, total)",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
)
PLANS = Counter("xl_coverage_plans_total", "Coverage plans run, by outcome: ok, bad_input, infeasible", ["outcome"])
