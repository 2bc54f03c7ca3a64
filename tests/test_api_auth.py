"""Authentication: scrypt passwords, JWT expiry on the injected clock, login, 401s, user management."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from xueliang.api.security import (
    SecretError,
    TokenError,
    check_secret,
    create_token,
    decode_token,
    hash_password,
    verify_password,
)
from xueliang.api.testing import JWT_SECRET, PASSWORD, ApiEnv
from xueliang.api.users import UserError, authenticate, create_user
from xueliang.dispatch.clock import ManualClock


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))


@pytest.fixture()
def env(tmp_path, clock) -> ApiEnv:
    return ApiEnv.create(tmp_path, clock=clock)


@pytest.fixture()
def client(env):
    with TestClient(env.app) as c:
        yield c


def test_password_hash_is_salted_and_verifies():
    a, b = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("s3cret-pass", a) and verify_password("s3cret-pass", b)
    assert not verify_password("s3cret-pasS", a)
    assert not verify_password("s3cret-pass", "md5$abc")


@pytest.mark.parametrize("secret, message", [("", "not set"), ("${XL_JWT_SECRET}", "not set"), ("short", "too short")])
def test_weak_or_missing_secret_is_refused(secret, message):
    with pytest.raises(SecretError, match=message):
        check_secret(secret)


def test_token_expires_on_the_injected_clock():
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    tok = create_token(JWT_SECRET, "u", "operator", "c", now=t0, ttl_s=60)
    assert decode_token(JWT_SECRET, tok, now=t0 + timedelta(seconds=59)).username == "u"
    with pytest.raises(TokenError, match="expired"):
        decode_token(JWT_SECRET, tok, now=t0 + timedelta(seconds=60))
    with pytest.raises(TokenError, match="invalid"):
        decode_token("another-secret-" + "z" * 40, tok, now=t0)
    with pytest.raises(TokenError, match="not a feed token"):
        decode_token(JWT_SECRET, tok, now=t0, typ="feed")


def test_create_user_validates(env):
    with pytest.raises(UserError, match="password"):
        create_user(env.store, "newbie", "short", "operator", "xishi")
    with pytest.raises(UserError, match="unknown role"):
        create_user(env.store, "newbie", PASSWORD, "janitor", "xishi")
    with pytest.raises(UserError, match="not in the centre tree"):
        create_user(env.store, "newbie", PASSWORD, "operator", "atlantis", centres={"xishi"})
    with pytest.raises(UserError, match="'atlantis' is not in the centre tree"):  # checked against the stored tree
        create_user(env.store, "newbie", PASSWORD, "operator", "atlantis")
    with pytest.raises(UserError, match="already exists"):
        create_user(env.store, "op-xishi", PASSWORD, "operator", "xishi")
    same = create_user(env.store, "op-xishi", "other-password", "admin", "xishi", exist_ok=True)
    assert same.role.value == "operator"  # unchanged
    assert authenticate(env.store, "op-xishi", PASSWORD) is not None
    assert authenticate(env.store, "op-xishi", "other-password") is None
    assert authenticate(env.store, "nobody", PASSWORD) is None


def test_login_and_me(client):
    r = client.post("/api/v1/auth/token", data={"username": "op-dajiaqiao", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["user"]["centre_id"] == "dajiaqiao"
    assert "password" not in r.text and "scrypt" not in r.text
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == "op-dajiaqiao" and me.json()["role"] == "operator"


def test_wrong_password_is_401(client):
    r = client.post("/api/v1/auth/token", data={"username": "op-dajiaqiao", "password": "wrong-password"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.post("/api/v1/auth/token", data={"username": "ghost", "password": PASSWORD})
    assert r.status_code == 401


def test_repeated_failed_logins_are_throttled(client, clock):
    bad = {"username": "op-xishi", "password": "guess-000"}
    for _ in range(5):
        assert client.post("/api/v1/auth/token", data=bad).status_code == 401
    r = client.post("/api/v1/auth/token", data={"username": "op-xishi", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 300  # even the right password waits
    assert client.post("/api/v1/auth/token", data={"username": "op-dajiaqiao", "password": PASSWORD}).status_code == 200
    clock.advance(301)
    assert client.post("/api/v1/auth/token", data={"username": "op-xishi", "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/incidents",
        "/api/v1/cameras",
        "/api/v1/centres",
        "/api/v1/auth/me",
        "/api/v1/map",
        "/api/v1/users",
        "/api/v1/feed",
        "/snapshots/inc-x.jpg",
    ],
)
def test_missing_or_bad_token_is_401(client, env, clock, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    forged = create_token("forged-secret-" + "f" * 40, "admin", "admin", "shaoxing", now=clock(), ttl_s=600)
    assert client.get(path, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = create_token(JWT_SECRET, "admin", "admin", "shaoxing", now=clock() - timedelta(hours=9), ttl_s=3600)
    assert client.get(path, headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_disabled_user_loses_access(client, env):
    h = env.headers("admin")
    assert client.get("/api/v1/auth/me", headers=env.headers("op-xishi")).status_code == 200
    r = client.patch("/api/v1/users/op-xishi", headers=h, json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/v1/auth/me", headers=env.headers("op-xishi")).status_code == 401


def test_user_management_is_admin_only_and_scoped(client, env):
    h = env.headers("admin")
    r = client.post(
        "/api/v1/users",
        headers=h,
        json={"username": "op-dongjia", "password": PASSWORD, "role": "operator", "centre_id": "dongjia"},
    )
    assert r.status_code == 201, r.text
    assert (
        client.post(
            "/api/v1/users",
            headers=h,
            json={"username": "op-dongjia", "password": PASSWORD, "role": "operator", "centre_id": "dongjia"},
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/v1/users",
            headers=h,
            json={"username": "op-x", "password": PASSWORD, "role": "operator", "centre_id": "atlantis"},
        ).status_code
        == 404
    )
    assert client.get("/api/v1/users", headers=env.headers("sup-keqiao")).status_code == 403
    assert client.post("/api/v1/auth/token", data={"username": "op-dongjia", "password": PASSWORD}).status_code == 200
    assert client.delete("/api/v1/users/op-dongjia", headers=h).status_code == 204
    assert client.get("/api/v1/users/op-dongjia", headers=h).status_code == 404


def test_feed_ticket_is_short_lived_and_only_for_the_feed(client, env, clock):
    r = client.post("/api/v1/auth/feed-ticket", headers=env.headers("op-xishi"))
    ticket = r.json()["ticket"]
    assert r.json()["expires_in"] == 60
    # a ticket is not an access token
    assert client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {ticket}"}).status_code == 401
    clock.advance(61)
    assert client.get(f"/api/v1/feed?ticket={ticket}").status_code == 401


def test_security_headers_and_console(client):
    r = client.get("/")
    assert r.status_code == 200 and "雪亮" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in r.headers
    for asset in ("/app.js", "/i18n.js", "/style.css"):
        assert client.get(asset).status_code == 200
    page = client.get("/index.html").text
    assert "//cdn" not in client.get("/app.js").text and 'src="http' not in page and 'href="http' not in page


def test_ops_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok", "detail": ""}
    assert client.get("/readyz").status_code == 200
    client.get("/api/v1/incidents")  # a 401, counted
    text = client.get("/metrics").text
    assert 'xl_api_requests_total{method="GET",route="/api/v1/incidents",status="401"}' in text
    assert "xl_dispatch_" in text  # other stages' metrics in the same registry


def test_readyz_reports_an_unreachable_database(tmp_path, client, env, monkeypatch):
    def broken():
        raise OSError("disk gone")

    monkeypatch.setattr(env.store.engine, "connect", broken)
    r = client.get("/readyz")
    # 503, and the driver's error text (hosts, users, SQL) stays in the log (issue 16 #10)
    assert r.status_code == 503 and r.json()["detail"] == "database unreachable (see the API log)"
    assert "disk gone" not in r.text


def test_api_tables_have_their_own_migrations(tmp_path):
    """The API's migrations create exactly its models' tables (own version table), run twice harmlessly,
    and adopt a database whose tables an older release created straight from the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect, text

    from xueliang.api.models import metadata
    from xueliang.api.users import ensure_schema
    from xueliang.dispatch.store import Store

    def api_diff(store: Store) -> list:
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": lambda n, t, p: t != "table" or n in metadata.tables}
            )
            return compare_metadata(ctx, metadata)

    fresh = Store.from_url(f"sqlite:///{tmp_path}/fresh.db")
    fresh.migrate()
    ensure_schema(fresh)
    ensure_schema(fresh)
    assert api_diff(fresh) == []
    with fresh.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version_api")).scalar() == "api0001"
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"  # dispatch's own

    old = Store.from_url(f"sqlite:///{tmp_path}/old.db")
    old.migrate()
    metadata.create_all(old.engine)  # how releases before the API migrations made the tables
    with old.engine.begin() as conn:
        conn.execute(text("INSERT INTO api_users VALUES ('keep-me', 'x', 'operator', 'v1', '', 1, '2026-11-27')"))
    ensure_schema(old)
    assert api_diff(old) == [] and "alembic_version_api" in inspect(old.engine).get_table_names()
    with old.engine.connect() as conn:
        assert conn.execute(text("SELECT username FROM api_users")).scalars().all() == ["keep-me"]


def test_demo_password_is_refused_on_a_public_interface(tmp_path):
    """#4: a database the demo seeded (admin / xueliang-demo) does not open a public `xueliang api`."""
    from xueliang.api.app import create_app, is_loopback
    from xueliang.demo import DEMO_PASSWORD

    env = ApiEnv.create(tmp_path)
    create_user(env.store, "demo-admin", DEMO_PASSWORD, "admin", "shaoxing")
    form = {"username": "demo-admin", "password": DEMO_PASSWORD}
    with TestClient(env.app) as local:  # the demo itself, on loopback
        assert local.post("/api/v1/auth/token", data=form).status_code == 200
    public = create_app(env.settings, env.store, public=True)
    with TestClient(public) as c:
        assert c.post("/api/v1/auth/token", data=form).status_code == 401
        assert c.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}).status_code == 200
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("::")


def test_method_label_is_bounded(client):
    """#10: an odd HTTP method does not create new series on the public /metrics."""
    for method in ("FOO", "PROPFIND", "X" * 50):
        client.request(method, "/api/v1/incidents")
    text = client.get("/metrics").text
    assert 'method="FOO"' not in text and "PROPFIND" not in text and "XXXXX" not in text
    assert 'xl_api_requests_total{method="other",route=' in text
