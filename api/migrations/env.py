"""Alembic environment for the API's own tables (users, map layers), versioned apart from the
dispatch schema in ``alembic_version_api``. Run through :func:`xueliang.api.users.ensure_schema`."""

from __future__ import annotations

from alembic import context

from xueliang.api.models import metadata

VERSION_TABLE = "alembic_version_api"


def _include(name: str | None, type_: str, _parent: object) -> bool:
    """Autogenerate compares only this component's tables (the dispatch tables share the database)."""
    return type_ != "table" or name in metadata.tables


connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run the API migrations through xueliang.api.users.ensure_schema(store)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=_include,
)
with context.begin_transaction():
    context.run_migrations()
