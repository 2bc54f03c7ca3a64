"""Fakes and factories for tests and demos of the dispatch stage (shipped, like bytewax's
``testing`` module): a small three-tier centre tree with GB/T 28181 division codes,
settings with short SLAs, and an incident factory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

from xueliang.config import Settings, parse_config
from xueliang.contracts import Box, Incident, Severity

SAMPLE_YAML = """
centres:
  id: city
  name: 绍兴市社会治理中心
  tier: city
  division_code: "330600"
  children:
    - id: county
      name: 柯桥区综治中心
      tier: county
      division_code: "330603"
      children:
        - id: town-a
          name: 安昌街道综治中心
          tier: township
          division_code: "330603101"
          children:
            - {id: village-a1, name: 西扆村, tier: village, division_code: "33060311"}
            - {id: village-a2, name: 大和山村, tier: village, division_code: "33060312"}
        - id: town-b
          name: 齐贤街道综治中心
          tier: township
          division_code: "330603102"
          children:
            - {id: village-b1, name: 山头村, tier: village, division_code: "33060321"}
cameras:
  - id: cam-a1-gate
    name: 西扆村村口
    village: village-a1
    source: {type: file, path: /dev/null}
  - id: "33060312001320000017"
    name: 大和山村文化礼堂 (GB/T 28181)
    source: {type: rtsp, url: "rtsp://admin:secret@10.0.0.7/ch1"}
  - id: cam-b1-school
    name: 山头村小学
    village: village-b1
    source: {type: file, path: /dev/null}
dispatch:
  tick_s: 0.2
  routing:
    - {severity: general, owner_tier: village}
    - {severity: serious, owner_tier: village, notify_tiers: [township]}
    - {severity: major, owner_tier: village, notify_tiers: [township, county]}
    - {severity: major, rule_type: fire_smoke, owner_tier: township, notify_tiers: [county]}
    - {severity: critical, owner_tier: county, notify_tiers: [city]}
  sla:
    general: {accept_s: 1800, close_s: 259200}
    serious: {accept_s: 900, close_s: 86400}
    major: {accept_s: 300, close_s: 14400, warn_share: 0.8}
    critical: {accept_s: 120, close_s: 3600}
"""


def sample_settings(**overrides: Any) -> Settings:
    """The sample tree above; ``overrides`` replace top-level sections (e.g. ``bus=...``, ``store=...``)."""
    import yaml

    raw = yaml.safe_load(SAMPLE_YAML)
    raw.update(overrides)
    # the suites built on this tree raise many incidents per camera and rule to exercise lists,
    # paging and SLAs; merging repeated alarms (事件归并) is off here unless asked for, and has its own tests
    raw.setdefault("dispatch", {}).setdefault("merge", {"window_s": 0})
    return parse_config(yaml.safe_dump(raw, allow_unicode=True), "<sample>")


def make_incident(
    n: int | str,
    at: datetime,
    *,
    camera_id: str = "cam-a1-gate",
    rule: str = "gate-intrusion",
    rule_type: str = "intrusion",
    severity: Severity | str = Severity.major,
    revision: int = 0,
    zone: str | None = "gate",
    dwell_s: float | None = None,
) -> Incident:
    """A detector-style incident with a deterministic id from ``n``."""
    details: dict[str, float | int | str] = {"count": 1}
    if dwell_s is not None:
        details["dwell_s"] = dwell_s
    return Incident(
        id=Incident.make_id(camera_id, rule, str(n)),
        camera_id=camera_id,
        rule=rule,
        rule_type=rule_type,
        severity=Severity(severity),
        zone=zone,
        class_names=["person"],
        started_at=at,
        updated_at=at,
        revision=revision,
        boxes=[Box(xyxy=(10.0, 20.0, 50.0, 120.0 + revision), class_name="person", confidence=0.9, track_id=7)],
        track_ids=[7],
        snapshot_url=f"/snapshots/{n}-{revision}.jpg",
        details=details,
    )


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh, empty schema on the PostgreSQL at ``base_url`` for one test; yields a URL whose
    connections use it (``search_path``) and drops it afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in base_url else "?"
        yield f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
