"""Liveness, readiness (the database answers) and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from xueliang.api.deps import StoreDep

router = APIRouter(tags=["ops"])
log = logging.getLogger(__name__)


class Health(BaseModel):
    status: str
    detail: str = ""


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process serves requests."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health, "description": "database unreachable"}})
def readyz(store: StoreDep, response: Response) -> Health:
    """Readiness: the database answers a trivial query."""
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means not ready; logged, not swallowed
        # the driver's text (host names, user names, SQL) goes to the log, never to an anonymous client
        log.warning("readiness: database unreachable: %s: %s", type(exc).__name__, exc)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable", detail="database unreachable (see the API log)")
    return Health(status="ok")


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics() -> Response:
    """Prometheus exposition of the default registry (every stage running in this process)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
