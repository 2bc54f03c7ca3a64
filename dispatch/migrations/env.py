"""Alembic environment for the dispatch schema. Run through ``Store.migrate()`` (the
connection arrives in ``config.attributes``), or with the ``alembic`` CLI given
``-x url=...`` and ``script_location`` pointing here."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from xueliang.dispatch.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(
        url=context.get_x_argument(as_dictionary=True)["url"], target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database with -x url=... (or call Store.migrate())")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
