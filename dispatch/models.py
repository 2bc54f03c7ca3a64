"""Database schema (SQLAlchemy 2 ORM), one definition for SQLite and PostgreSQL.

Every timestamp is stored in UTC and read back timezone-aware (:class:`UtcDateTime`).
The migrations in ``migrations/versions`` create exactly this schema (a test compares
them with Alembic's autogenerate).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; naive values are refused (they hide time-zone bugs)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CentreRow(Base):
    __tablename__ = "centres"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("centres.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(16))
    division_code: Mapped[str | None] = mapped_column(String(12), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CameraRow(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    village_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("centres.id"))
    grid_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("centres.id"), index=True)
    source: Mapped[str] = mapped_column(String(16), default="api", doc="config | api")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    masked_url: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str | None] = mapped_column(String(16), index=True)
    status_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    status_reason: Mapped[str] = mapped_column(Text, default="")
    faults: Mapped[list[str]] = mapped_column(JSON, default=list)
    quality_scores: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    fps: Mapped[float | None] = mapped_column()
    health_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CameraStatusRow(Base):
    """Status changes of a camera (one row per change), for the online rate over a window."""

    __tablename__ = "camera_status_history"
    __table_args__ = (UniqueConstraint("camera_id", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    reason: Mapped[str] = mapped_column(Text, default="")


class IncidentRow(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_owner_reported", "owner_centre_id", "reported_at"),
        Index("ix_incidents_reported_id", "reported_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, doc="the detector's deterministic id")
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(64), index=True)
    rule_type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16), index=True)
    zone: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    owner_centre_id: Mapped[str] = mapped_column(String(64), ForeignKey("centres.id"))
    grid_centre_id: Mapped[str] = mapped_column(String(64), ForeignKey("centres.id"))
    route_reason: Mapped[str] = mapped_column(Text, default="")
    dispatch_target: Mapped[str | None] = mapped_column(String(200), doc="unit name or centre id")
    reject_reason: Mapped[str | None] = mapped_column(String(16))
    # times
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime(), doc="first report (SLA clocks start here)")
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime(), doc="when the dispatcher first stored it")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), doc="the detector's latest update")
    state_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), doc="closed or rejected")
    # evidence (from the latest revision)
    revision: Mapped[int] = mapped_column(Integer)
    class_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    track_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    boxes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    snapshot_url: Mapped[str | None] = mapped_column(Text)
    source_frame_seq: Mapped[int | None] = mapped_column(BigInteger)
    # supervision (督办): stored deadlines, evaluated by the periodic tick
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    accept_flag: Mapped[str] = mapped_column(String(8), default="none")
    close_flag: Mapped[str] = mapped_column(String(8), default="none")
    sla_flag: Mapped[str] = mapped_column(
        String(8), default="none", index=True, doc="worst of the two: none|yellow|red"
    )
    accept_warn_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    accept_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    close_warn_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    close_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    close_target_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime(), doc="original close SLA, for on-time closure"
    )
    next_timer_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    # 事件归并: repeated alarms of the same camera, rule and zone while the case is open
    occurrence_count: Mapped[int] = mapped_column(Integer, default=1, doc="detector incidents merged into this case")
    last_occurrence_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime(), doc="latest occurrence's time (the merge window is measured from it)"
    )
    version: Mapped[int] = mapped_column(Integer, default=1, doc="row version: optimistic concurrency")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy declares it, untyped


class OccurrenceRow(Base):
    """One detector incident (raw, as reported) belonging to a case: the case's own first report and
    every repeated alarm merged into it, each with its own evidence and snapshot."""

    __tablename__ = "incident_occurrences"
    __table_args__ = (
        UniqueConstraint("incident_id"),
        Index("ix_incident_occurrences_case_at", "case_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(64), ForeignKey("incidents.id", ondelete="CASCADE"))
    incident_id: Mapped[str] = mapped_column(String(64), doc="the detector's id of this occurrence")
    revision: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), doc="the detector's latest update of it")
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    class_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    snapshot_url: Mapped[str | None] = mapped_column(Text)


class AuditRow(Base):
    __tablename__ = "audit_trail"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(64), ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    centre_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")


class NotificationRow(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_centre_at", "centre_id", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(64), ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    centre_id: Mapped[str] = mapped_column(String(64), ForeignKey("centres.id"))
    kind: Mapped[str] = mapped_column(String(16), doc="owner | notify | escalation | sla_yellow | sla_red")
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    note: Mapped[str] = mapped_column(Text, default="")
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SlaFlagRow(Base):
    __tablename__ = "sla_flags"
    __table_args__ = (UniqueConstraint("incident_id", "clock", "level", "window_level"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(64), ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    clock: Mapped[str] = mapped_column(String(8), doc="accept | close")
    level: Mapped[str] = mapped_column(String(8), doc="yellow | red")
    window_level: Mapped[int] = mapped_column(Integer, doc="escalation level the clock window belonged to")
    centre_id: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), doc="when the flag was due")
    at: Mapped[datetime] = mapped_column(UtcDateTime(), doc="when the tick raised it")


class EscalationRow(Base):
    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(64), ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    from_centre_id: Mapped[str] = mapped_column(String(64))
    to_centre_id: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16), doc="accept_sla | close_sla | manual")
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), doc="the breached deadline (SLA escalations)")
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(100))


class EventRow(Base):
    """Change feed: the API tails ``id > last_seen`` (works across processes)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[str | None] = mapped_column(String(64))
    camera_id: Mapped[str | None] = mapped_column(String(64))
    centre_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
