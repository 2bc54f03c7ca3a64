"""The application factory: ``create_app(settings, store, clock=None) -> FastAPI``.

Routers, one per resource, live in :mod:`xueliang.api.routers`; the console's
static files in ``api/static`` are served at ``/``. Secure defaults: every
``/api`` route except login needs a bearer token; the JWT secret must be set and
long; responses carry a strict Content-Security-Policy (no inline script, no
third-party origin) and no CORS headers are sent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from xueliang.about import __version__
from xueliang.api import users as users_mod
from xueliang.api.docs import DOCS_URL, mount_docs
from xueliang.api.feed import FeedHub
from xueliang.api.metrics import LATENCY, REQUESTS
from xueliang.api.routers import (
    auth,
    cameras,
    centres,
    clips,
    coverage,
    feed,
    health,
    incidents,
    map,
    snapshots,
    users,
    wall,
)
from xueliang.api.security import LoginThrottle, check_secret
from xueliang.config import Settings
from xueliang.demo import DEMO_PASSWORD
from xueliang.dispatch.clock import system_clock
from xueliang.errors import WorkflowError

log = logging.getLogger("xueliang.api")
STATIC_DIR = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; "
        "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
}
# the interactive docs (/docs) run an inline bootstrap script; their assets are served from here
# (api/docs.py), and from the CDN only when the bundle package is missing
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; frame-ancestors 'none'"
)
DOCS_CSP_LOCAL = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"
)

TAGS = [
    {"name": "auth", "description": "OAuth2 password flow → bearer JWT; live-feed tickets"},
    {
        "name": "incidents",
        "description": "事件: list, detail with audit trail, workflow actions (受理/分拨/处置/办结/督办)",
    },
    {"name": "feed", "description": "live feed per centre (Server-Sent Events)"},
    {
        "name": "cameras",
        "description": "摄像机: CRUD, status, video-quality diagnosis, online rate (在线率), zones, rules",
    },
    {"name": "centres", "description": "综治中心 tree: city → county → township → village; KPIs"},
    {
        "name": "coverage",
        "description": "补点扩面: coverage planning job; its blind spots and proposals become map layers",
    },
    {"name": "users", "description": "accounts (admin)"},
    {"name": "ops", "description": "liveness, readiness, metrics"},
]


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PUBLIC_BODY_PATHS = frozenset({"/api/v1/auth/token"})


def _method_label(method: str) -> str:
    """Bounded label values: any other method (``FOO``, ``PROPFIND``...) counts as ``other``."""
    return method if method in HTTP_METHODS else "other"


class RequestGuard:
    """ASGI middleware that checks a request before anything reads its body:

    * ``Content-Length`` over ``max_body_bytes`` → **413** at once; a chunked body is counted as it
      streams and stopped (413) as soon as it passes the limit;
    * a body sent to ``/api/`` (other than the login form) without a valid bearer token → **401**
      without reading it (the endpoint checks the account again).
    """

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        length = headers.get(b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                await _answer(send, 400, "malformed Content-Length")
                return
            if size > self.max_body_bytes:
                await _answer(send, 413, f"request body of {size} bytes; the limit is {self.max_body_bytes}")
                return
        has_body = (length is not None and length != b"0") or b"transfer-encoding" in headers
        path = scope.get("path", "")
        if has_body and path.startswith("/api/") and path not in PUBLIC_BODY_PATHS and not _bearer_ok(scope, headers):
            await _answer(send, 401, "not authenticated", {"WWW-Authenticate": "Bearer"})
            return
        received, limit = 0, self.max_body_bytes
        too_large, started = False, False
        message_413 = f"request body over the limit of {limit} bytes"

        async def limited() -> Any:
            # a streamed (chunked) body: counted as it arrives; past the limit the app sees a disconnect
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if too_large:  # whatever the app answers to the cut body, the client gets the 413
                if message.get("type") == "http.response.start" and not started:
                    started = True
                    await _answer(send, 413, message_413)
                return
            started = started or message.get("type") == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if too_large and not started:
                await _answer(send, 413, message_413)
                return
            raise


def _bearer_ok(scope: Any, headers: dict[bytes, bytes]) -> bool:
    from xueliang.api.deps import now_from
    from xueliang.api.security import TokenError, decode_token

    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    state = scope["app"].state
    try:
        decode_token(state.jwt_secret, token.strip(), now=now_from(state.clock))
    except TokenError:
        return False
    return True


async def _answer(send: Any, code: int, detail: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _route_template(request: Request) -> str:
    """The matched route's path template (bounded label cardinality): static files count as 'static'."""
    route = request.scope.get("route")
    if route is None:
        return "unmatched"
    path = getattr(route, "path", "unmatched")
    return "static" if path in ("", "/") and getattr(route, "name", "") == "console" else path


def _observe_and_map_errors(app: FastAPI, docs_csp: str) -> None:
    """Request metrics and security headers on every answer; the typed errors as HTTP statuses."""

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            REQUESTS.labels(_method_label(request.method), _route_template(request), "500").inc()
            raise
        route, method = _route_template(request), _method_label(request.method)
        LATENCY.labels(method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(method, route, str(response.status_code)).inc()
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if route == DOCS_URL:
            response.headers["Content-Security-Policy"] = docs_csp
        return response

    @app.exception_handler(WorkflowError)
    async def workflow_error(request: Request, exc: WorkflowError) -> JSONResponse:
        if exc.http_status == 422:  # one 422 shape for every client: FastAPI's validation errors
            return JSONResponse(
                {"detail": [{"loc": ["body"], "msg": str(exc), "type": type(exc).__name__}]}, status_code=422
            )
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=exc.http_status)


def _include_routers(app: FastAPI) -> None:
    for module in (auth, users, wall, incidents, feed, cameras, map, coverage, centres, snapshots, clips, health):
        for route in module.router.routes:  # FastAPI answers 400 to a body it cannot parse: say so
            if isinstance(route, APIRoute) and route.body_field is not None and 400 not in route.responses:
                route.responses[400] = {
                    "description": "malformed request body (not JSON / not a form)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
        app.include_router(module.router)


def create_app(
    settings: Settings,
    store: Any,
    *,
    clock: Callable[[], Any] | None = None,
    service: Any = None,
    public: bool = False,
) -> FastAPI:
    """Build the API and console on ``store`` (a :class:`xueliang.dispatch.store.Store`).

    ``clock`` (a callable returning an aware UTC datetime) is injected into the dispatch
    service and token expiry; ``service`` may be given to share one
    :class:`xueliang.dispatch.service.DispatchService` with other components. ``public``: the
    server listens on a non-loopback address, where the demo's well-known password is refused
    (a database the demo seeded must not open a real deployment to ``admin``/``xueliang-demo``).
    """
    from xueliang.dispatch.service import DispatchService

    secret = check_secret(settings.api.jwt_secret)
    clock = clock or system_clock
    users_mod.ensure_schema(store)
    if service is None:
        service = DispatchService(store, settings, clock)
    service.sync_config()  # centres and cameras from the configuration (idempotent)
    hub = FeedHub(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        title="Xueliang 雪亮 operator API",
        version=__version__,
        description=(
            "Operator API of the three-tier command centres (综治中心: county/township/village). "
            "Authenticate with `POST /api/v1/auth/token` (OAuth2 password flow) and send "
            "`Authorization: Bearer <token>`. A user sees and acts on its home centre's subtree only."
        ),
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    docs_csp = DOCS_CSP_LOCAL if mount_docs(app, app.title) else DOCS_CSP
    app.state.settings = settings
    app.state.store = store
    app.state.service = service
    app.state.clock = clock
    app.state.jwt_secret = secret
    app.state.feed = hub
    app.state.login_throttle = LoginThrottle()
    app.state.refused_passwords = frozenset({DEMO_PASSWORD}) if public else frozenset()
    app.state.feed_recheck_s = 5.0  # an open live feed re-reads its account this often (disabled: stream ends)
    _observe_and_map_errors(app, docs_csp)
    _include_routers(app)

    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="console")
    app.add_middleware(RequestGuard, max_body_bytes=settings.api.max_body_bytes)  # outermost: before any read
    return app


def make_server(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, **config: Any) -> Any:
    """A uvicorn server for ``app`` that ends the live-feed streams when it shuts down.

    Plain ``uvicorn.run`` waits for every open response before it stops, and an SSE stream
    never ends by itself: Ctrl-C would hang while a console is connected. ``config`` goes to
    :class:`uvicorn.Config` (``log_level``, ``timeout_graceful_shutdown``...).
    """
    import uvicorn

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            hub = getattr(app.state, "feed", None)
            if hub is not None:
                hub.close_streams()
            await super().shutdown(sockets=sockets)

    config.setdefault("log_level", "info")
    config.setdefault("timeout_graceful_shutdown", 5)
    return _Server(uvicorn.Config(app, host=host, port=port, **config))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name to listen on) is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, **config: Any) -> None:
    """Run ``app`` until SIGINT/SIGTERM (what ``xueliang api`` should call instead of ``uvicorn.run``)."""
    make_server(app, host, port, **config).run()
