"""Error bodies, one shape per kind, as the OpenAPI schema documents them.

* 4xx/5xx other than 422: :class:`Problem` — ``{"detail": "...", "error": "IllegalTransition"}``.
* 422: FastAPI's validation shape, ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``,
  also for the service's :class:`~xueliang.dispatch.workflow.InvalidRequest` and the API's own
  semantic checks (:func:`unprocessable`), so a client parses every 422 the same way.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field


class Problem(BaseModel):
    detail: str = Field(description="what went wrong, naming the incident, camera, centre or field")
    error: str | None = Field(None, description="error type, e.g. IllegalTransition, StaleRevision, Forbidden")


def problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


def unprocessable(message: str, *loc: str | int, kind: str = "invalid_request") -> RequestValidationError:
    """A 422 in the standard validation shape (``raise unprocessable("...", "body", "options")``)."""
    return RequestValidationError([{"loc": tuple(loc) or ("body",), "msg": message, "type": kind}])


UNAUTHORIZED = problem("missing, invalid or expired token")

CENTRE_MANAGER_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("missing or invalid token"),
    403: problem("engineers and admins only, for a centre in their subtree"),
    404: problem("unknown centre"),
}
"""What a route for engineers and admins acting on a centre (``CameraManager`` + ``check_centre``) answers."""
