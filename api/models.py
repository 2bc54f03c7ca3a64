"""The API's own tables (``api_users``, ``api_map_layers``), in their own SQLAlchemy metadata with
their own Alembic migrations (``api/migrations``, version table ``alembic_version_api``): the
dispatch migrations own the incident tables, the API owns these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class _Base(DeclarativeBase):
    metadata = MetaData()


class UserRow(_Base):
    __tablename__ = "api_users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    centre_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MapLayerRow(_Base):
    """A GeoJSON layer for the console's map (coverage, blind spots, proposed cameras from the coverage planner)."""

    __tablename__ = "api_map_layers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    centre_id: Mapped[str] = mapped_column(String(64))
    geojson: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


metadata = _Base.metadata
