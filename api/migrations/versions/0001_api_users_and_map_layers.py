"""API users and map layers

Revision ID: api0001
Revises:
Create Date: 2026-11-27 16:00:00

Databases created before the API had migrations already hold these tables (created directly
from the models): they are adopted as they are, not created again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "api0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "api_users" not in existing:
        op.create_table(
            "api_users",
            sa.Column("username", sa.String(length=64), nullable=False),
            sa.Column("password_hash", sa.String(length=256), nullable=False),
            sa.Column("role", sa.String(length=16), nullable=False),
            sa.Column("centre_id", sa.String(length=64), nullable=False),
            sa.Column("display_name", sa.String(length=128), nullable=False),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("username"),
        )
    if "api_map_layers" not in existing:
        op.create_table(
            "api_map_layers",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("centre_id", sa.String(length=64), nullable=False),
            sa.Column("geojson", sa.JSON(), nullable=False),
            sa.Column("updated_by", sa.String(length=64), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )


def downgrade() -> None:
    op.drop_table("api_map_layers")
    op.drop_table("api_users")
