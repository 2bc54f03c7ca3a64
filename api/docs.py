"""The interactive API docs (/docs), served from this host.

FastAPI's default /docs page loads Swagger UI from a public CDN, which a county's command-centre
network (often without internet) cannot reach: the page stays blank. Here the Swagger UI files
come from the ``swagger-ui-bundle-v2`` package and are served under ``/docs/assets``; without that
package the page falls back to the CDN. ReDoc (CDN only) is not offered.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def swagger_ui_dir() -> str | None:
    """Where the bundled Swagger UI files are (None without the package)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    path = swagger_ui_path
    return str(path) if (path / "swagger-ui-bundle.js").is_file() else None


def mount_docs(app: FastAPI, title: str) -> bool:
    """Add /docs (and its assets, if bundled) to ``app``; True when the assets are served locally.

    Create the app with ``docs_url=None, redoc_url=None`` and call this before any catch-all mount."""
    local = swagger_ui_dir()
    if local is not None:
        app.mount(ASSETS_URL, StaticFiles(directory=local), name="docs-assets")
    assets: dict[str, Any] = (
        {
            "swagger_js_url": f"{ASSETS_URL}/swagger-ui-bundle.js",
            "swagger_css_url": f"{ASSETS_URL}/swagger-ui.css",
            "swagger_favicon_url": f"{ASSETS_URL}/favicon-32x32.png",
        }
        if local
        else {}
    )

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} (docs)",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            **assets,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    return local is not None
