"""The application factory: ``create_app(settings, store, clock=None) -> FastAPI``.

Routers, one per resource, live in :mod:`xueliang.api.routers`; the console's
static files in ``api/static`` are served at ``/``. Secure defaults: every
``/api`` route except login needs a bearer token; the JWT secret must be set and
long; responses carry a strict Content-Security-Policy (no inline script, no
third-party origin) and no CORS headers are sent.
"""

from __future__ import annotations

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
from xueliang.api.routers import auth, cameras, centres, coverage, feed, health, incidents, map, snapshots, users, wall
from xueliang.api.security import LoginThrottle, check_secret
from xueliang.config import Settings
from xueliang.dispatch.clock import system_clock
from xueliang.dispatch.workflow import WorkflowError

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


def _route_template(request: Request) -> str:
    """The matched route's path template (bounded label cardinality): static files count as 'static'."""
    route = request.scope.get("route")
    if route is None:
        return "unmatched"
    path = getattr(route, "path", "unmatched")
    return "static" if path in ("", "/") and getattr(route, "name", "") == "console" else path


def create_app(
    settings: Settings, store: Any, *, clock: Callable[[], Any] | None = None, service: Any = None
) -> FastAPI:
    """Build the API and console on ``store`` (a :class:`xueliang.dispatch.store.Store`).

    ``clock`` (a callable returning an aware UTC datetime) is injected into the dispatch
    service and token expiry; ``service`` may be given to share one
    :class:`xueliang.dispatch.service.DispatchService` with other components.
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

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            REQUESTS.labels(request.method, _route_template(request), "500").inc()
            raise
        route = _route_template(request)
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
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

    for module in (auth, users, wall, incidents, feed, cameras, map, coverage, centres, snapshots, health):
        for route in module.router.routes:  # FastAPI answers 400 to a body it cannot parse: say so
            if isinstance(route, APIRoute) and route.body_field is not None and 400 not in route.responses:
                route.responses[400] = {
                    "description": "malformed request body (not JSON / not a form)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
        app.include_router(module.router)
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="console")
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


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, **config: Any) -> None:
    """Run ``app`` until SIGINT/SIGTERM (what ``xueliang api`` should call instead of ``uvicorn.run``)."""
    make_server(app, host, port, **config).run()
