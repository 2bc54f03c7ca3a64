"""The typed errors of the services (dispatch and what the API calls through it): each carries the
HTTP status the API answers with, and a message naming the incident, camera or field."""

from __future__ import annotations


class WorkflowError(Exception):
    """Base of the typed errors (the API maps each to its ``http_status``)."""

    http_status = 400


class StaleRevision(WorkflowError):
    """The caller acted on an old view of the incident (HTTP 409)."""

    http_status = 409


class Forbidden(WorkflowError):
    """The actor's role or centre does not allow this action on this incident (HTTP 403)."""

    http_status = 403


class NotFound(WorkflowError, LookupError):
    """No such incident / camera / centre (HTTP 404)."""

    http_status = 404


class InvalidRequest(WorkflowError, ValueError):
    """Missing or inconsistent arguments, e.g. a rejection without a reason (HTTP 422)."""

    http_status = 422
