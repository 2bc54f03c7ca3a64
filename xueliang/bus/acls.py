"""Per-stage Kafka principals and their ACLs: one table, applied to a KRaft cluster whose
StandardAuthorizer allows nothing without an ACL, and mirrored by the Strimzi KafkaUsers
(deploy/k8s/11-kafka-users.yaml; tests/test_kafka_secure.py checks they agree).

====================  ===============================================================
stage (principal)     may
====================  ===============================================================
ingest                write frames, camera health, incidents (camera faults); read and
                      write the camera registry; group ``ingest``
detector              read frames (group ``detector``); write incidents, dead letters
dispatch              read incidents and camera health (group ``dispatch``); write dead letters
ops                   describe every topic and group (lag metrics)
====================  ===============================================================

Every stage may also DESCRIBE and DESCRIBE_CONFIGS the topics it uses (metadata, size limits).
Creating topics is the operator's (``xueliang topics`` as an admin principal).

``python -m xueliang.bus.acls -c xueliang.yaml --user ingest=xl-ingest --user detector=xl-detector ...``
applies them, connecting as the admin principal of ``bus.security`` (``XL_KAFKA_USERNAME``...).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from xueliang.contracts import Topics

log = logging.getLogger(__name__)

Operation = Literal["READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"]
STAGES = ("ingest", "detector", "dispatch", "ops")
DEFAULT_GROUPS = {"ingest": "ingest", "detector": "detector", "dispatch": "dispatch"}


@dataclass(frozen=True, order=True)
class Grant:
    resource: Literal["topic", "group"]
    name: str
    operation: Operation


def stage_grants(stage: str, topics: Topics, groups: Mapping[str, str] | None = None) -> list[Grant]:
    """What ``stage``'s principal is allowed (see the module docstring)."""
    groups = {**DEFAULT_GROUPS, **(groups or {})}
    writes: list[str]
    reads: list[str]
    if stage == "ingest":
        reads, writes = [topics.camera_registry], [topics.frames, topics.camera_health, topics.incidents]
        writes.append(topics.camera_registry)
    elif stage == "detector":
        reads, writes = [topics.frames], [topics.incidents, topics.dead_letters]
    elif stage == "dispatch":
        reads, writes = [topics.incidents, topics.camera_health], [topics.dead_letters]
    elif stage == "ops":
        every = list(topics.model_dump().values())
        out = [Grant("topic", t, op) for t in every for op in ("DESCRIBE", "DESCRIBE_CONFIGS")]
        return sorted(out + [Grant("group", g, "DESCRIBE") for g in sorted(set(groups.values()))])
    else:
        raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    out = [Grant("topic", t, "READ") for t in reads] + [Grant("topic", t, "WRITE") for t in writes]
    out += [Grant("topic", t, op) for t in {*reads, *writes} for op in ("DESCRIBE", "DESCRIBE_CONFIGS")]
    if stage in groups:
        out.append(Grant("group", groups[stage], "READ"))
    return sorted(set(out))


def apply(bus: object, users: Mapping[str, str], topics: Topics, groups: Mapping[str, str] | None = None) -> int:
    """Create the ACLs of each ``stage -> SCRAM user`` in ``users`` on ``bus`` (a KafkaBus connected as
    an admin principal). Idempotent (Kafka ignores an ACL that exists). Returns how many were sent."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType

    acls = []
    for stage, user in users.items():
        for g in stage_grants(stage, topics, groups):
            rtype = ResourceType.TOPIC if g.resource == "topic" else ResourceType.GROUP
            acls.append(
                ACL(
                    principal=f"User:{user}",
                    host="*",
                    operation=ACLOperation[g.operation],
                    permission_type=ACLPermissionType.ALLOW,
                    resource_pattern=ResourcePattern(rtype, g.name),
                )
            )
    result = bus.admin.call("create ACLs", lambda a: a.create_acls(acls))  # type: ignore[attr-defined]  # ACLs: Kafka only
    failed = result.get("failed") or []
    if failed:
        raise RuntimeError(f"{len(failed)} ACLs were refused, first: {failed[0]!r}")
    _wait_visible(bus, acls)
    log.info("applied %d ACLs for %s", len(acls), ", ".join(f"{s}=User:{u}" for s, u in users.items()))
    return len(acls)


def _wait_visible(bus: object, acls: list[Any], timeout_s: float = 15.0) -> None:
    """Wait until the broker's authorizer shows every new ACL (they reach it through the metadata log)."""
    import time
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from kafka.admin import (
            ACLFilter,
            ACLOperation,
            ACLPermissionType,
            ACLResourcePatternType,
            ResourcePatternFilter,
            ResourceType,
        )

    want = {
        (a.principal, a.operation, a.resource_pattern.resource_type, a.resource_pattern.resource_name) for a in acls
    }
    flt = ACLFilter(
        principal=None,
        host="*",
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    deadline = time.monotonic() + timeout_s
    while True:
        found, _err = bus.admin.call("describe ACLs", lambda a: a.describe_acls(flt))  # type: ignore[attr-defined]  # ACLs: Kafka only
        have = {
            (a.principal, a.operation, a.resource_pattern.resource_type, a.resource_pattern.resource_name)
            for a in found
        }
        if want <= have or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    from xueliang.bus.kafka import KafkaBus
    from xueliang.config import load_config

    ap = argparse.ArgumentParser(description="apply the per-stage Kafka ACLs (connects as bus.security's principal)")
    ap.add_argument("-c", "--config", required=True)
    ap.add_argument("--user", action="append", default=[], metavar="STAGE=USER", help="e.g. detector=xl-detector")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_config(args.config)
    if settings.bus.type != "kafka":
        ap.error("bus.type is not kafka")
    users = dict(u.split("=", 1) for u in args.user) or {s: f"xl-{s}" for s in STAGES}
    bus = KafkaBus(settings.bus)  # type: ignore[arg-type]  # bus.type is kafka, checked above
    try:
        apply(bus, users, settings.bus.topics)
    finally:
        bus.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
