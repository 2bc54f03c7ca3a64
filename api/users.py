"""Console and API users: a role and a home centre, passwords hashed with scrypt.

The ``api_users`` table (:mod:`xueliang.api.models`, with the map layers) has its own Alembic
migrations, run on the store's database by :func:`ensure_schema`. :func:`create_user` is the
function the CLI calls (``xueliang users add ...``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from xueliang.api.models import UserRow
from xueliang.api.security import DUMMY_HASH, hash_password, verify_password
from xueliang.config._base import ID_FIRST, ID_MAX_LEN, ID_REST
from xueliang.roles import Role  # operator, supervisor, engineer, admin: one definition

USERNAME_RE = re.compile(f"^{ID_FIRST}{ID_REST}{{2,{ID_MAX_LEN - 1}}}$")  # an identifier of 3 characters or more
MIN_PASSWORD_LEN = 8


class UserError(ValueError):
    """Invalid user data (bad name, weak password, unknown centre, duplicate)."""


class UserBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=64, pattern=USERNAME_RE.pattern)
    role: Role
    centre_id: str = Field(min_length=1, max_length=64, description="home command centre; the user sees its subtree")
    display_name: str = Field("", max_length=128)


class UserCreate(UserBase):
    password: str = Field(min_length=MIN_PASSWORD_LEN, max_length=256)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    centre_id: str | None = Field(None, min_length=1, max_length=64)
    display_name: str | None = Field(None, max_length=128)
    password: str | None = Field(None, min_length=MIN_PASSWORD_LEN, max_length=256)
    active: bool | None = None


class UserPublic(UserBase):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    active: bool
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


def _engine(store: Any) -> Any:
    engine = getattr(store, "engine", None)
    if engine is None:
        raise TypeError(f"{type(store).__name__} has no SQLAlchemy `engine` attribute")
    return engine


def _stored_centres(store: Any) -> set[str] | None:
    """Ids of the centres the dispatch service stored (None before its first ``sync_config``)."""
    from sqlalchemy import inspect

    from xueliang.dispatch.models import CentreRow

    if not inspect(_engine(store)).has_table(CentreRow.__tablename__):
        return None
    with store.read() as session:
        ids = set(session.scalars(select(CentreRow.id)))
    return ids or None


API_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def ensure_schema(store: Any) -> None:
    """Upgrade the API's tables to the newest migration (idempotent; serialised with the dispatcher's
    migrations by the store's migration lock)."""
    if not hasattr(store, "migrate"):
        raise TypeError(f"{type(store).__name__} cannot run migrations (expected a xueliang.dispatch.store.Store)")
    store.migrate(scripts=API_MIGRATIONS)


def create_user(
    store: Any,
    username: str,
    password: str,
    role: Role | str,
    centre_id: str,
    *,
    display_name: str = "",
    centres: set[str] | None = None,
    now: datetime | None = None,
    exist_ok: bool = False,
    password_hash: str | None = None,
) -> UserPublic:
    """Add a user; ``centres`` (ids of the configured tree), when given, must contain ``centre_id``.

    With ``exist_ok`` an existing user of that name is returned unchanged (the demo's seeding).
    ``password_hash`` (an already hashed ``password``) skips the deliberate cost of hashing (test fixtures)."""
    if not USERNAME_RE.match(username):
        raise UserError(f"username {username!r}: 3-64 letters, digits, '_', '.', '-', starting with a letter or digit")
    if len(password) < MIN_PASSWORD_LEN:
        raise UserError(f"user {username!r}: password must have at least {MIN_PASSWORD_LEN} characters")
    try:
        role = Role(role)
    except ValueError:
        raise UserError(f"user {username!r}: unknown role {role!r} (one of {[r.value for r in Role]})") from None
    if centres is None:
        centres = _stored_centres(store)
    if centres is not None and centre_id not in centres:
        raise UserError(
            f"user {username!r}: centre {centre_id!r} is not in the centre tree "
            f"(known: {', '.join(sorted(centres)[:20])}{' ...' if len(centres) > 20 else ''})"
        )
    ensure_schema(store)
    row = UserRow(
        username=username,
        password_hash=password_hash or hash_password(password),
        role=role.value,
        centre_id=centre_id,
        display_name=display_name,
        active=True,
        created_at=now or datetime.now(UTC),
    )
    try:
        with store.session() as session:
            session.add(row)
            session.flush()
            return UserPublic.model_validate(row)
    except IntegrityError:
        if exist_ok:
            existing = get_user(store, username)
            if existing is not None:
                return existing
        raise UserError(f"user {username!r} already exists") from None


def get_user(store: Any, username: str) -> UserPublic | None:
    with store.read() as session:
        row = session.get(UserRow, username)
        return UserPublic.model_validate(row) if row is not None else None


def list_users(store: Any) -> list[UserPublic]:
    with store.read() as session:
        rows = session.scalars(select(UserRow).order_by(UserRow.username)).all()
        return [UserPublic.model_validate(r) for r in rows]


def update_user(store: Any, username: str, update: UserUpdate) -> UserPublic | None:
    with store.session() as session:
        row = session.get(UserRow, username)
        if row is None:
            return None
        data = update.model_dump(exclude_unset=True)
        if "password" in data:
            pw = data.pop("password")
            if pw is not None:
                row.password_hash = hash_password(pw)
        for key, value in data.items():
            if value is not None:
                setattr(row, key, value.value if isinstance(value, Role) else value)
        session.flush()
        return UserPublic.model_validate(row)


def delete_user(store: Any, username: str) -> bool:
    with store.session() as session:
        row = session.get(UserRow, username)
        if row is None:
            return False
        session.delete(row)
        return True


def authenticate(store: Any, username: str, password: str) -> UserPublic | None:
    """The user if the password matches and the account is active; constant work either way."""
    with store.read() as session:
        row = session.get(UserRow, username)
        if row is None:
            verify_password(password, DUMMY_HASH)
            return None
        if not verify_password(password, row.password_hash) or not row.active:
            return None
        return UserPublic.model_validate(row)
