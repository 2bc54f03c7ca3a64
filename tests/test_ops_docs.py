"""docs/operations.md keeps the generated metrics catalogue and every alert in step with the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from xueliang.ops.catalogue import END, START, catalogue, markdown

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "operations.md"


def test_catalogue_in_the_docs_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split(START, 1)[1].split(END, 1)[0].lstrip("\n")
    rows = catalogue()

    def key_columns(table: str) -> set[tuple[str, ...]]:
        """metric, type and labels of each row (a reworded help text is not a stale catalogue)."""
        return {tuple(c.strip() for c in line.split("|")[1:4]) for line in table.splitlines()[2:]}

    assert key_columns(block) == key_columns(markdown(rows)), (
        "run: python -m xueliang.ops.catalogue --write docs/operations.md"
    )
    names = {r.name for r in rows}
    # every stage and the ops collectors are in it
    for prefix in ("xl_ingest_", "xl_detector_", "xl_dispatch_", "xl_api_", "xl_kafka_", "xl_fleet_"):
        assert any(n.startswith(prefix) for n in names), prefix
    for r in rows:
        assert r.help, f"{r.name} has no help text"
        assert "track" not in r.labels and "incident" not in r.labels and "id" not in r.labels, r


def test_every_alert_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    rules = yaml.safe_load((REPO / "deploy/prometheus/rules/xueliang.yml").read_text())
    for g in rules["groups"]:
        for r in g["rules"]:
            name = r.get("alert") or r["record"]
            assert f"`{name}`" in text, name
