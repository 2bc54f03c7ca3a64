"""The dispatch database: engine, sessions, Alembic migrations, and the change feed.

``Store.from_url("sqlite:///var/xueliang.db")`` or ``Store.from_url("postgresql+psycopg://...")``:
one code path, SQLAlchemy 2. ``Store.migrate()`` runs the Alembic migrations shipped
inside the package to head (no ``alembic.ini`` needed).

Write transactions (:meth:`Store.session`) are serialised on both backends: SQLite's
write lock is taken at ``BEGIN`` (``BEGIN IMMEDIATE``), PostgreSQL's write sessions
start with a transaction-scoped advisory lock. Two writers never interleave a
read-modify-write, and ``events`` ids appear in commit order, so tailing ``id > last``
is safe. The service also locks incident rows (``SELECT ... FOR UPDATE``), and incident
rows carry a version column (optimistic concurrency) as a last line of defence.
Dispatch writes are small and short, so one writer at a time is not a bottleneck at
the rates of a county's cameras.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, create_engine, delete, event, select, text
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from xueliang.config.cameras import mask_url
from xueliang.dispatch.changes import ChangeEvent
from xueliang.dispatch.models import Base, EventRow

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = 0x78_6C_64_73  # "xlds": pg_advisory_xact_lock key of Store.migrate
WRITE_LOCK_KEY = 0x78_6C_64_77  # "xldw": taken by every write session on PostgreSQL


class Store:
    """Owns the engine and hands out sessions. Cheap to share across threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write = sessionmaker(bind=engine.execution_options(xl_write=True), expire_on_commit=False)
        self._read = sessionmaker(bind=engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, *, echo: bool = False, pool_size: int = 5) -> Store:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            memory = parsed.database in (None, "", ":memory:")
            if parsed.database and not memory:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
            if memory:
                kwargs["poolclass"] = StaticPool
            engine = create_engine(parsed, echo=echo, **kwargs)
            _sqlite_setup(engine, wal=not memory)
        else:
            engine = create_engine(parsed, echo=echo, pool_size=pool_size, pool_pre_ping=True)
            if engine.dialect.name == "postgresql":
                _postgres_setup(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def masked_url(self) -> str:
        return mask_url(self.engine.url.render_as_string(hide_password=True))

    def migrate(self, revision: str = "head", *, scripts: Path = MIGRATIONS) -> None:
        """Upgrade the schema to ``revision`` with the Alembic scripts shipped in the package
        (``scripts``: another component's migrations on the same database, such as the API's)."""
        from alembic import command

        # Serialise concurrent migrations (the API and the dispatcher start together): SQLite's
        # write lock (BEGIN IMMEDIATE) or a PostgreSQL transaction-scoped advisory lock.
        with self.engine.execution_options(xl_write=True).begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            command.upgrade(alembic_config(conn, scripts), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on error."""
        with self._write.begin() as s:
            yield s

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (never takes SQLite's write lock)."""
        with self._read() as s:  # close() ends the transaction and keeps loaded objects readable
            yield s

    def events_after(self, last_id: int = 0, limit: int = 200) -> list[ChangeEvent]:
        """Change-feed events with ``id > last_id``, oldest first (see docs/dispatch.md, "Live feed")."""
        with self.read() as s:
            rows = s.scalars(select(EventRow).where(EventRow.id > last_id).order_by(EventRow.id).limit(limit))
            return [ChangeEvent.from_row(r) for r in rows]

    def last_event_id(self) -> int:
        with self.read() as s:
            return s.scalar(select(EventRow.id).order_by(EventRow.id.desc()).limit(1)) or 0

    def prune_events(self, before: datetime) -> int:
        """Delete change-feed rows older than ``before`` (the feed is for live clients, not history:
        the audit trail, escalations and flags keep that). Returns the number deleted."""
        with self.session() as s:
            result = cast("CursorResult[Any]", s.execute(delete(EventRow).where(EventRow.at < before)))
            return result.rowcount or 0

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(connection: Any = None, scripts: Path = MIGRATIONS) -> Any:
    """An Alembic ``Config`` pointing at the packaged migrations (optionally bound to a connection)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(scripts))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _postgres_setup(engine: Engine) -> None:
    """Write sessions take one transaction-scoped advisory lock first: writers are serialised as on
    SQLite, so ``events`` ids are assigned in commit order (a tailer reading ``id > last`` never
    skips a late commit) and row locks are never taken in conflicting orders."""

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get("xl_write"):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")


def _enable_wal(cur: Any, attempts: int = 100) -> None:
    """Switch the file to WAL (persistent: a no-op once done). The switch needs the database to itself and
    SQLite answers "database is locked" at once, without its busy timeout, when another connection opens
    the fresh file at the same moment (processes starting together): retry for up to ~5 s."""
    import sqlite3

    for attempt in range(attempts):
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _sqlite_setup(engine: Engine, *, wal: bool) -> None:
    """Foreign keys on, WAL, and BEGIN IMMEDIATE for write sessions (pysqlite's own BEGIN is disabled)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if wal:
            _enable_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("xl_write") else "BEGIN")


__all__ = ["Base", "Store", "alembic_config"]
