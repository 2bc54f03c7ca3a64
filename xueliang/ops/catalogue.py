"""The metrics catalogue: every ``xl_*`` metric the stages and the ops collectors export,
with its type, labels and meaning, read from the code (not written by hand).

    python -m xueliang.ops.catalogue            # print the Markdown table
    python -m xueliang.ops.catalogue --write docs/operations.md   # refresh the table in the docs

tests/test_ops_docs.py checks the table in docs/operations.md equals this output.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

STAGE_MODULES = (
    "xueliang.ingest.metrics",
    "xueliang.detector.metrics",
    "xueliang.dispatch.metrics",
    "xueliang.api.metrics",
    "xueliang.coverage.metrics",
)
START, END = "<!-- metrics-catalogue:start -->", "<!-- metrics-catalogue:end -->"
_SUFFIX = {"counter": "_total", "histogram": " (`_bucket`, `_sum`, `_count`)"}


@dataclass(frozen=True, order=True)
class Row:
    name: str
    type: str
    labels: tuple[str, ...]
    help: str
    source: str


def _row(name: str, kind: str, labels: Any, help_: str, source: str) -> Row:
    return Row(name, kind, tuple(labels or ()), " ".join(help_.split()), source)


def _custom_collectors() -> list[tuple[Any, str]]:
    """One instance of each scrape-time collector, on throw-away inputs (their families are static;
    the dispatch collector describes its own without a database)."""
    from xueliang.bus.memory import MemoryBus
    from xueliang.config import parse_config
    from xueliang.contracts import Topics, topic_specs
    from xueliang.dispatch.metrics import StoreCollector
    from xueliang.ops.fleet import FleetCollector
    from xueliang.ops.lag import ConsumerLagCollector, pipeline_watches

    settings = parse_config("centres: {id: c, name: c, tier: county}\n")
    bus = MemoryBus()
    bus.ensure_topics(topic_specs(Topics()))
    return [
        (FleetCollector(settings), "xueliang.ops.fleet"),
        (ConsumerLagCollector(bus, pipeline_watches(Topics()), min_interval_s=0), "xueliang.ops.lag"),
        (StoreCollector(store=None), "xueliang.dispatch.metrics (StoreCollector)"),
    ]


def catalogue() -> list[Row]:
    rows: dict[str, Row] = {}
    for mod in STAGE_MODULES:
        importlib.import_module(mod)
    from xueliang.dispatch.metrics import get_metrics

    get_metrics()
    for collector in list(REGISTRY._collector_to_names):
        name = getattr(collector, "_name", None)
        if isinstance(name, str) and name.startswith("xl_") and hasattr(collector, "_type"):
            module = type(collector).__module__
            source = next((m for m in STAGE_MODULES if m.split(".")[1] in name.split("_")[1]), module)
            rows[name] = _row(name, collector._type, collector._labelnames, collector._documentation, source)
    for collector, source in _custom_collectors():
        for fam in list(collector.describe()) or list(collector.collect()):
            labels = getattr(fam, "_labelnames", ()) or sorted({k for s in fam.samples for k in s.labels})
            rows[fam.name] = _row(fam.name, fam.type, labels, fam.documentation, source)
    return sorted(rows.values())


def markdown(rows: list[Row]) -> str:
    lines = ["| metric | type | labels | meaning | exported by |", "|---|---|---|---|---|"]
    for r in rows:
        name = f"`{r.name}_total`" if r.type == "counter" else f"`{r.name}`" + _SUFFIX.get(r.type, "")
        labels = ", ".join(f"`{lb}`" for lb in r.labels) or "—"
        lines.append(f"| {name} | {r.type} | {labels} | {r.help.replace('|', '/')} | `{r.source.split(' ')[0]}` |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, table: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"markers {START} / {END} not found")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", type=Path, help="replace the catalogue block in this Markdown file")
    args = ap.parse_args(argv)
    table = markdown(catalogue())
    if args.write:
        args.write.write_text(replace_block(args.write.read_text(encoding="utf-8"), table), encoding="utf-8")
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
