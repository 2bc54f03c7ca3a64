"""事件归并: incident occurrences (repeated alarms merged into one case)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 02:00:00

Adds ``incidents.occurrence_count`` / ``incidents.last_occurrence_at`` and the
``incident_occurrences`` table; every existing incident becomes a case with itself as its one
occurrence (so the table lists every detector incident the store ever received).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurrence_count", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("last_occurrence_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column("occurrence_count", server_default=None)
    op.execute("UPDATE incidents SET last_occurrence_at = updated_at")

    op.create_table(
        "incident_occurrences",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("class_names", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("snapshot_url", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["incidents.id"],
            name=op.f("fk_incident_occurrences_case_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_occurrences")),
        sa.UniqueConstraint("incident_id", name=op.f("uq_incident_occurrences_incident_id")),
    )
    with op.batch_alter_table("incident_occurrences", schema=None) as batch_op:
        batch_op.create_index("ix_incident_occurrences_case_at", ["case_id", "occurred_at"], unique=False)
    op.execute(
        "INSERT INTO incident_occurrences (case_id, incident_id, revision, severity, started_at, occurred_at,"
        " received_at, class_names, details, snapshot_url)"
        " SELECT id, id, revision, severity, started_at, updated_at, stored_at, class_names, details, snapshot_url"
        " FROM incidents"
    )


def downgrade() -> None:
    with op.batch_alter_table("incident_occurrences", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_occurrences_case_at")
    op.drop_table("incident_occurrences")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("last_occurrence_at")
        batch_op.drop_column("occurrence_count")
